"""franz-go (twmb/franz-go 1.22.3, `clients/franz`, built into `.bin/franzcompat`) over every
security protocol Kafka offers, against gregor and Apache Kafka alike: PLAINTEXT, SSL,
SASL_PLAINTEXT and SASL_SSL with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, and mutual TLS.

Each run produces 100 records to partition 0 of a new topic, consumes them in a consumer group and
commits: the acknowledged offsets, the records read back (key, value, header) and the committed
offset must be exact. A wrong password fails with SASL_AUTHENTICATION_FAILED and Kafka's message
(after franz-go's 20 s record delivery timeout: it retries), and stores nothing.
"""

import dataclasses
import json
import subprocess

import pytest

from harness import certs
from harness import clients as C
from harness.broker import COMPAT_DIR, Broker

BIN = COMPAT_DIR / ".bin" / "franzcompat"
N = 100
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PLAIN_USERS = {"alice": "alice-secret"}


@pytest.fixture(autouse=True)
def _franzcompat_installed():
    """install.sh builds it; a missing client is a failure, never a silent skip."""
    if not BIN.exists():
        pytest.fail("franzcompat missing (compat-tests/clients/franz/install.sh)")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory, pki):
    keys = certs.pem_key_store(pki.server)
    mtls = {**keys, **certs.client_auth("required", pki.ca)}
    b = Broker(tmp_path_factory.mktemp("franz"),
               sasl={"mechanisms": MECHANISMS, "plain_users": PLAIN_USERS},
               tls={"SSL": mtls, "SASL_SSL": keys})
    try:
        b.start()
        yield b
    finally:
        b.close()


def run(bootstrap, topic, args=()):
    r = subprocess.run([str(BIN), "--bootstrap", bootstrap, "--topic", topic,
                        "--group", C.unique_name("franz-g"), "--records", str(N), *args],
                       capture_output=True, text=True, timeout=120)
    return r


def sasl_args(auth):
    return ["--sasl-mechanism", auth.mechanism, "--sasl-user", auth.username,
            "--sasl-password", auth.password]


def credentials(broker, mechanism):
    if mechanism == "PLAIN":
        return C.Sasl("PLAIN", "alice", PLAIN_USERS["alice"])
    from test_sasl import add_scram_user  # waits until the user authenticates

    user = C.unique_name("franz")
    return add_scram_user(broker, mechanism, user, f"{user}-pw")


def check(broker, topic, r):
    assert r.returncode == 0, (r.returncode, r.stderr)
    got = json.loads(r.stdout)
    assert got == {
        "produced": list(range(N)),
        "consumed": [{"o": i, "k": f"k-{i}", "v": f"v-{i}", "h": f"h={i}"} for i in range(N)],
        "committed": N,
    }
    # The same records, read over PLAINTEXT by another client.
    plain = C.ck_read(broker.bootstrap, topic, 0, 0, count=N)
    assert [(r.key, r.value) for r in plain] == [
        (f"k-{i}".encode(), f"v-{i}".encode()) for i in range(N)]


def test_plaintext(broker):
    t = C.create_topic(broker.bootstrap, C.unique_name("franz-plain"))
    check(broker, t, run(broker.bootstrap, t))


def test_ssl_with_a_client_certificate(broker, pki):
    t = C.create_topic(broker.bootstrap, C.unique_name("franz-ssl"))
    check(broker, t, run(broker.ssl_bootstrap, t,
                         ["--tls-ca", pki.ca, "--tls-cert", pki.client.cert,
                          "--tls-key", pki.client.key]))


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_sasl_plaintext(broker, mechanism):
    auth = credentials(broker, mechanism)
    t = C.create_topic(broker.bootstrap, C.unique_name("franz-sasl"))
    check(broker, t, run(broker.sasl_bootstrap, t, sasl_args(auth)))


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_sasl_ssl(broker, pki, mechanism):
    auth = dataclasses.replace(credentials(broker, mechanism), tls=C.Tls.of(pki.ca))
    t = C.create_topic(broker.bootstrap, C.unique_name("franz-sasl-ssl"))
    check(broker, t, run(broker.sasl_ssl_bootstrap, t, [*sasl_args(auth), "--tls-ca", pki.ca]))


def test_wrong_password(broker):
    t = C.create_topic(broker.bootstrap, C.unique_name("franz-wrong"))
    r = run(broker.sasl_bootstrap, t, ["--sasl-mechanism", "PLAIN", "--sasl-user", "alice",
                                       "--sasl-password", "wrong"])
    assert r.returncode == 1, r
    # franz-go retries a refused authentication until the record's delivery timeout.
    assert r.stderr == (
        "produce: records have timed out before they were able to be produced, last err: "
        "SASL_AUTHENTICATION_FAILED: SASL Authentication failed.: Authentication failed: "
        "Invalid username or password\n"), r.stderr
    assert C.watermarks(broker.bootstrap, t) == (0, 0)
