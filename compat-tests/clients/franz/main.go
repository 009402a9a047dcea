// franzcompat drives a broker with franz-go (twmb/franz-go) over the security protocols Kafka
// offers and prints what it observed as one JSON object:
//
//	franzcompat --bootstrap 127.0.0.1:9093 --topic T --group G --records 100 \
//	    [--sasl-mechanism PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 --sasl-user U --sasl-password P] \
//	    [--tls-ca ca.pem [--tls-cert client.pem --tls-key client.key]]
//
// It produces --records records (key k-i, value v-i, header h=i) to partition 0 of an existing
// topic, collecting the acknowledged offsets, then consumes them in consumer group --group from
// the earliest offset and commits. An error (an authentication failure included) goes to stderr
// and exits 1; a run longer than --deadline seconds exits 2.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

type Rec struct {
	O int64  `json:"o"`
	K string `json:"k"`
	V string `json:"v"`
	H string `json:"h"`
}

type Result struct {
	Produced  []int64 `json:"produced"`
	Consumed  []Rec   `json:"consumed"`
	Committed int64   `json:"committed"`
}

var (
	bootstrap = flag.String("bootstrap", "127.0.0.1:9092", "bootstrap server")
	topic     = flag.String("topic", "", "existing topic")
	group     = flag.String("group", "", "consumer group")
	records   = flag.Int("records", 100, "records to produce and consume")
	mechanism = flag.String("sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)")
	user      = flag.String("sasl-user", "", "SASL user")
	password  = flag.String("sasl-password", "", "SASL password")
	caFile    = flag.String("tls-ca", "", "CA certificates (PEM) to trust; TLS when set")
	certFile  = flag.String("tls-cert", "", "client certificate chain (PEM)")
	keyFile   = flag.String("tls-key", "", "client key (PEM)")
	deadline  = flag.Int("deadline", 60, "seconds before giving up")
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func options() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(*bootstrap), kgo.RequestRetries(2),
		kgo.RetryTimeout(10 * time.Second), kgo.RecordDeliveryTimeout(20 * time.Second)}
	switch *mechanism {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: *user, Pass: *password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: *user, Pass: *password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: *user, Pass: *password}.AsSha512Mechanism()))
	default:
		fail(fmt.Errorf("unknown mechanism %s", *mechanism))
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fail(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fail(fmt.Errorf("no certificate in %s", *caFile))
		}
		cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
		if *certFile != "" {
			pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
			if err != nil {
				fail(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	return opts
}

func main() {
	flag.Parse()
	time.AfterFunc(time.Duration(*deadline)*time.Second, func() {
		fmt.Fprintln(os.Stderr, "deadline exceeded")
		os.Exit(2)
	})
	ctx := context.Background()
	res := Result{Produced: []int64{}, Consumed: []Rec{}, Committed: -1}

	producer, err := kgo.NewClient(append(options(), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(*records+1))...)
	if err != nil {
		fail(err)
	}
	batch := make([]*kgo.Record, *records)
	for i := range batch {
		batch[i] = &kgo.Record{Topic: *topic, Partition: 0, Key: []byte("k-" + strconv.Itoa(i)),
			Value:   []byte("v-" + strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(i))}}}
	}
	results := producer.ProduceSync(ctx, batch...)
	producer.Close()
	if err := results.FirstErr(); err != nil {
		fail(fmt.Errorf("produce: %w", err))
	}
	for _, r := range results {
		res.Produced = append(res.Produced, r.Record.Offset)
	}

	consumer, err := kgo.NewClient(append(options(), kgo.ConsumerGroup(*group),
		kgo.ConsumeTopics(*topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit())...)
	if err != nil {
		fail(err)
	}
	for len(res.Consumed) < *records {
		fetches := consumer.PollFetches(ctx)
		if errs := fetches.Errors(); len(errs) > 0 {
			fail(fmt.Errorf("consume: %w", errs[0].Err))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			h := ""
			if len(r.Headers) == 1 {
				h = r.Headers[0].Key + "=" + string(r.Headers[0].Value)
			}
			res.Consumed = append(res.Consumed, Rec{O: r.Offset, K: string(r.Key), V: string(r.Value), H: h})
		})
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		fail(fmt.Errorf("commit: %w", err))
	}
	consumer.Close()

	admin, err := kgo.NewClient(options()...)
	if err != nil {
		fail(err)
	}
	defer admin.Close()
	committed, err := fetchCommitted(ctx, admin)
	if err != nil {
		fail(fmt.Errorf("offset fetch: %w", err))
	}
	res.Committed = committed
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}
