package main

// SASL for the scenario (test_sasl.py): with --sasl-mechanism PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512, every connection sarama and confluent-kafka-go make authenticates as
// --sasl-user/--sasl-password (security.protocol SASL_PLAINTEXT). sarama's handshake version is
// --sasl-handshake: 1 (SaslHandshake v1 + SaslAuthenticate) or 0 (SaslHandshake v0, then bare
// tokens; sarama then sends no ApiVersions). sarama leaves SCRAM's client side to the
// application: scramClient below is RFC 5802's, from the standard library.

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

var (
	saslMechanism = flag.String("sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)")
	saslUser      = flag.String("sasl-user", "", "SASL user")
	saslPassword  = flag.String("sasl-password", "", "SASL password")
	saslHandshake = flag.Int("sasl-handshake", 1, "sarama: SaslHandshake version, 0 or 1")
)

func saramaSASL(cfg *sarama.Config) {
	if *saslMechanism == "" {
		return
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Mechanism = sarama.SASLMechanism(*saslMechanism)
	cfg.Net.SASL.User = *saslUser
	cfg.Net.SASL.Password = *saslPassword
	if *saslHandshake == 0 {
		cfg.Net.SASL.Version = sarama.SASLHandshakeV0
		cfg.ApiVersionsRequest = false
	} else {
		cfg.Net.SASL.Version = sarama.SASLHandshakeV1
	}
	switch *saslMechanism {
	case "SCRAM-SHA-256":
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{h: sha256.New} }
	case "SCRAM-SHA-512":
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{h: sha512.New} }
	}
}

// ckSASL adds the SASL settings to a confluent-kafka-go (librdkafka) configuration.
func ckSASL(cm *kafka.ConfigMap) *kafka.ConfigMap {
	if *saslMechanism != "" {
		(*cm)["security.protocol"] = "SASL_PLAINTEXT"
		(*cm)["sasl.mechanism"] = *saslMechanism
		(*cm)["sasl.username"] = *saslUser
		(*cm)["sasl.password"] = *saslPassword
	}
	return cm
}

// scramClient is the client side of SCRAM (RFC 5802) without channel binding.
type scramClient struct {
	h                func() hash.Hash
	user, password   string
	nonce, firstBare string
	serverSignature  []byte
	step             int
	done             bool
}

func (c *scramClient) Begin(user, password, authzID string) error {
	if authzID != "" {
		return errors.New("scram: authzid not supported")
	}
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	c.user, c.password, c.nonce = user, password, base64.RawStdEncoding.EncodeToString(b)
	return nil
}

func (c *scramClient) mac(key []byte, msg string) []byte {
	m := hmac.New(c.h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(c.user)
		c.firstBare = "n=" + name + ",r=" + c.nonce
		return "n,," + c.firstBare, nil
	case 2:
		attrs := map[string]string{}
		for _, kv := range strings.Split(challenge, ",") {
			if len(kv) > 2 && kv[1] == '=' {
				attrs[kv[:1]] = kv[2:]
			}
		}
		nonce, salt64, iter := attrs["r"], attrs["s"], attrs["i"]
		if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
			return "", fmt.Errorf("scram: bad server nonce in %q", challenge)
		}
		salt, err := base64.StdEncoding.DecodeString(salt64)
		if err != nil {
			return "", fmt.Errorf("scram: bad salt in %q", challenge)
		}
		n, err := strconv.Atoi(iter)
		if err != nil || n <= 0 {
			return "", fmt.Errorf("scram: bad iteration count in %q", challenge)
		}
		salted, err := pbkdf2.Key(c.h, c.password, salt, n, c.h().Size())
		if err != nil {
			return "", err
		}
		clientKey := c.mac(salted, "Client Key")
		hh := c.h()
		hh.Write(clientKey)
		storedKey := hh.Sum(nil)
		finalNoProof := "c=biws,r=" + nonce
		authMessage := c.firstBare + "," + challenge + "," + finalNoProof
		proof := c.mac(storedKey, authMessage)
		for i := range proof {
			proof[i] ^= clientKey[i]
		}
		c.serverSignature = c.mac(c.mac(salted, "Server Key"), authMessage)
		return finalNoProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
	case 3:
		if e, ok := strings.CutPrefix(challenge, "e="); ok {
			return "", fmt.Errorf("scram: server error %q", e)
		}
		v, ok := strings.CutPrefix(challenge, "v=")
		if !ok || v != base64.StdEncoding.EncodeToString(c.serverSignature) {
			return "", fmt.Errorf("scram: bad server signature in %q", challenge)
		}
		c.done = true
		return "", nil
	}
	return "", errors.New("scram: exchange already complete")
}

func (c *scramClient) Done() bool { return c.done }
