"""SASL on a SASL_PLAINTEXT listener beside PLAINTEXT, against gregor and Apache Kafka alike.

One broker for the module with Kafka's own keys (Broker(sasl=SASL), see harness/broker.py):
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512, PLAIN's users in the listener's
PlainLoginModule JAAS config, SCRAM users created at runtime over PLAINTEXT with kafka-configs.sh
(AlterUserScramCredentials). Each test uses its own topics and users.

- librdkafka, kafka-python and the Java console producer/consumer authenticate with PLAIN,
  SCRAM-SHA-256 and SCRAM-SHA-512 and round-trip 100 records exactly (also read over PLAINTEXT);
- a wrong password (or unknown user) fails with Kafka's message and produces nothing;
- kafka-configs.sh prints exactly what Kafka prints for SCRAM users (create, describe, delete,
  unacceptable iterations, deleting what does not exist), and a deleted credential stops working;
  the same through librdkafka's admin API (broker-side validation) and raw
  DescribeUserScramCredentials frames (messages "" where there is no error, as Kafka sends them);
- raw frames: before authentication only ApiVersions and SaslHandshake are answered, anything else
  closes the connection; an unknown mechanism gets UNSUPPORTED_SASL_MECHANISM (33) with the enabled
  mechanisms, then the close; PLAIN over SaslAuthenticate v0/v2 and the legacy unframed tokens
  after SaslHandshake v0; a PLAINTEXT listener answers SASL requests with ILLEGAL_SASL_STATE (34);
- the Go clients' whole scenario (test_clients_go.py) over SASL: sarama with SaslHandshake v0 and
  v1, PLAIN and SCRAM; confluent-kafka-go.
"""

import logging
import re
import socket
import struct
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

from harness import clients as C
from harness.broker import Broker
from harness.java import kafka_script
from harness.wire import compact, frame, read_frame, read_uvarint, string16, uvarint

MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PLAIN_USERS = {"alice": "alice-secret", "bob": "bob-secret"}
SASL = {"mechanisms": MECHANISMS, "plain_users": PLAIN_USERS}

PLAIN_FAILED = "Authentication failed: Invalid username or password"


def scram_failed(mechanism):
    return ("Authentication failed during authentication due to invalid credentials with SASL "
            f"mechanism {mechanism}")


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("sasl"), sasl=SASL)
    try:
        b.start()
        yield b
    finally:
        b.close()


# ---- helpers ---------------------------------------------------------------------------

def configs(broker, *args):
    """kafka-configs.sh over the PLAINTEXT listener."""
    return kafka_script("kafka-configs.sh", "--bootstrap-server", broker.bootstrap, *args)


def add_scram_user(broker, mechanism, user, password, iterations=8192):
    r = configs(broker, "--alter", "--add-config",
                f"{mechanism}=[iterations={iterations},password={password}]",
                "--entity-type", "users", "--entity-name", user)
    assert (r.returncode, r.stdout) == (0, f"Completed updating config for user {user}.\n"), r
    auth = C.Sasl(mechanism, user, password)
    wait_auth(broker, auth, None)
    return auth


def describe_user(broker, user):
    """kafka-configs.sh --describe of a user's SCRAM credentials: the set of
    'MECHANISM=iterations=N' it printed (Kafka lists them in no fixed order), or None when it
    printed nothing (no credentials)."""
    r = configs(broker, "--describe", "--entity-type", "users", "--entity-name", user)
    assert r.returncode == 0, r
    if r.stdout == "":
        return None
    prefix = f"SCRAM credential configs for user-principal '{user}' are "
    assert r.stdout.startswith(prefix) and r.stdout.endswith("\n"), r.stdout
    items = r.stdout[len(prefix):-1].split(", ")
    assert len(set(items)) == len(items), r.stdout
    return set(items)


def auth_error(bootstrap, auth, timeout=15.0):
    """None when librdkafka authenticates with `auth` (its Metadata request is answered), else
    the text of the _AUTHENTICATION error it reports."""
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "log_level": 0, "error_cb": errors.append,
                  **auth.librdkafka()})
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                p.list_topics(timeout=1)
                return None
            except KafkaException:
                pass
            p.poll(0.1)
            failed = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
            if failed:
                return failed[0].str()
    finally:
        p.close()
    raise AssertionError(f"librdkafka neither authenticated nor failed in {timeout}s: {errors}")


def rdkafka_auth_failure(broker, message, state="AUTH_REQ"):
    """librdkafka's _AUTHENTICATION text for a broker error `message`."""
    return re.compile(rf"sasl_plaintext://127\.0\.0\.1:{broker.sasl_port}/bootstrap: "
                      rf"SASL authentication error: {re.escape(message)} "
                      rf"\(after \d+ms in state {state}\)")


def wait_auth(broker, auth, expected, timeout=15.0):
    """Until librdkafka's authentication result is `expected` (None: success; else a pattern of
    the error): credentials reach Kafka's SASL listener through its metadata log, shortly after
    kafka-configs.sh returned."""
    deadline = time.monotonic() + timeout
    while True:
        got = auth_error(broker.sasl_bootstrap, auth)
        if expected is None and got is None:
            return
        if expected is not None and got is not None and expected.fullmatch(got):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{auth.mechanism} {auth.username}: expected "
                                 f"{expected.pattern if expected else 'success'}, got {got!r}")
        time.sleep(0.3)


def records(tag, n=100):
    """Keys, values and headers (the console producer needs one) that survive the Java console
    line format; some UTF-8."""
    return [C.Rec(f"{tag}-k{i:03d}".encode(), f"{tag}-v{i:03d}-é€".encode() * (1 + i % 5),
                  (("i", str(i).encode()),), partition=0) for i in range(n)]


def content(recs):
    return [(r.offset, r.key, r.value, r.headers) for r in recs]


# ---- round trips -----------------------------------------------------------------------

def credentials(broker, mechanism, tag):
    if mechanism == "PLAIN":
        return C.Sasl("PLAIN", "alice", PLAIN_USERS["alice"])
    user = C.unique_name(tag)
    return add_scram_user(broker, mechanism, user, f"{user}-pw")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_librdkafka_round_trip(sasl_broker, mechanism):
    auth = credentials(sasl_broker, mechanism, "rd")
    t = C.create_topic(sasl_broker.bootstrap, C.unique_name("sasl-rd"))
    recs = records(mechanism)
    acked = C.ck_produce(sasl_broker.sasl_bootstrap, t, recs, conf={"acks": "all"}, auth=auth)
    assert [r.offset for r in acked] == list(range(100))
    got = C.ck_read(sasl_broker.sasl_bootstrap, t, 0, 0, count=100, auth=auth)
    assert [r.full() for r in got] == [r.full() for r in acked]
    plain = C.ck_read(sasl_broker.bootstrap, t, 0, 0, count=100)
    assert [r.full() for r in plain] == [r.full() for r in acked]
    assert C.watermarks(sasl_broker.bootstrap, t) == (0, 100)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python_round_trip(sasl_broker, mechanism):
    auth = credentials(sasl_broker, mechanism, "kp")
    t = C.create_topic(sasl_broker.bootstrap, C.unique_name("sasl-kp"))
    recs = records(mechanism)
    acked = C.kp_produce(sasl_broker.sasl_bootstrap, t, recs, auth=auth)
    assert [r.offset for r in acked] == list(range(100))
    got = C.kp_read(sasl_broker.sasl_bootstrap, t, 0, 0, count=100, auth=auth)
    assert [r.full() for r in got] == [r.full() for r in acked]
    plain = C.ck_read(sasl_broker.bootstrap, t, 0, 0, count=100)
    assert [r.full() for r in plain] == [r.full() for r in acked]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_java_console_round_trip(sasl_broker, mechanism):
    auth = credentials(sasl_broker, mechanism, "java")
    t = C.create_topic(sasl_broker.bootstrap, C.unique_name("sasl-java"))
    recs = records(mechanism)
    C.console_produce(sasl_broker.sasl_bootstrap, t, recs, auth=auth)
    got = C.console_consume(sasl_broker.sasl_bootstrap, t, 0, 100, auth=auth)
    expected = [(i, r.key, r.value, r.headers) for i, r in enumerate(recs)]
    assert content(got) == expected
    plain = C.ck_read(sasl_broker.bootstrap, t, 0, 0, count=100)
    assert [r.full() for r in plain] == [r.full() for r in got]
    # The Java admin client authenticates too (--command-config).
    with C.java_client_config(auth) as props:
        r = kafka_script("kafka-topics.sh", "--bootstrap-server", sasl_broker.sasl_bootstrap,
                         "--command-config", props, "--list", "--topic", t)
    assert (r.returncode, r.stdout) == (0, f"{t}\n"), r


# ---- wrong credentials -----------------------------------------------------------------

WRONG = [("PLAIN", "alice", "alice-wrong"), ("PLAIN", "mallory", "alice-secret"),
         ("SCRAM-SHA-256", None, "wrong"), ("SCRAM-SHA-512", None, "wrong"),
         ("SCRAM-SHA-256", "nobody-scram", "wrong")]


def wrong_credentials(broker, mechanism, user, password):
    if mechanism != "PLAIN" and user is None:
        user = C.unique_name("wrong")
        add_scram_user(broker, mechanism, user, f"{user}-pw")
    return C.Sasl(mechanism, user, password), (
        PLAIN_FAILED if mechanism == "PLAIN" else scram_failed(mechanism))


@pytest.mark.parametrize("mechanism,user,password", WRONG)
def test_librdkafka_wrong_password(sasl_broker, mechanism, user, password):
    auth, message = wrong_credentials(sasl_broker, mechanism, user, password)
    t = C.create_topic(sasl_broker.bootstrap, C.unique_name("sasl-wrong"))
    errors, reports = [], []
    p = Producer({"bootstrap.servers": sasl_broker.sasl_bootstrap, "log_level": 0,
                  "error_cb": errors.append, **auth.librdkafka()})
    p.produce(t, b"must not be stored", on_delivery=lambda e, m: reports.append(e))
    deadline = time.monotonic() + 15
    while not errors and time.monotonic() < deadline:
        p.poll(0.1)
    assert errors, "no error reported"
    first = errors[0]
    assert first.code() == KafkaError._AUTHENTICATION, first
    assert rdkafka_auth_failure(sasl_broker, message).fullmatch(first.str()), first.str()
    p.purge()
    p.close()
    assert C.watermarks(sasl_broker.bootstrap, t) == (0, 0)


@pytest.mark.parametrize("mechanism,user,password", WRONG)
def test_kafka_python_wrong_password(sasl_broker, mechanism, user, password):
    """kafka-python 3.0.12 retries a failed authentication until its bootstrap times out and
    raises KafkaTimeoutError; the reason of each failed attempt is only in its log. It also drops a
    response that arrives together with the broker's FIN (net/transport.py _sock_recv returns the
    error, not the bytes read before it), so an attempt may show 'socket disconnected' instead of
    Kafka's error: both are accepted, a timeout only for the attempt the deadline cut short."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    auth, message = wrong_credentials(sasl_broker, mechanism, user, password)
    t = C.create_topic(sasl_broker.bootstrap, C.unique_name("sasl-wrong"))
    reasons = []

    class Reasons(logging.Handler):
        def emit(self, record):
            m = re.fullmatch(r"Bootstrap connection to bootstrap-0 failed: (.*) "
                             r"\(backoff [0-9.]+ secs\)", record.getMessage())
            if m:
                reasons.append(m.group(1))

    log = logging.getLogger("kafka.net.manager")
    handler, level = Reasons(), log.level
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    try:
        with pytest.raises(KafkaTimeoutError,
                           match=re.escape(f"Unable to bootstrap from {sasl_broker.sasl_bootstrap}")):
            p = KafkaProducer(bootstrap_servers=sasl_broker.sasl_bootstrap,
                              bootstrap_timeout_ms=4000, **auth.kafka_python())
            p.send(t, b"must not be stored").get(timeout=10)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    failed = f"[Error 58] SaslAuthenticationFailedError: SaslAuthenticationFailedError: {message}"
    allowed = {failed, "KafkaConnectionError: socket disconnected"}
    assert reasons and all(r in allowed for r in reasons[:-1]), reasons
    assert reasons[-1] in allowed or (
        len(reasons) > 1 and reasons[-1].startswith("[Error 7] RequestTimedOutError")), reasons
    assert C.watermarks(sasl_broker.bootstrap, t) == (0, 0)


# ---- SCRAM credentials administration --------------------------------------------------

def test_scram_users_with_kafka_configs(sasl_broker):
    b = sasl_broker
    carol256 = add_scram_user(b, "SCRAM-SHA-256", "carol", "carol-secret", iterations=8192)
    assert describe_user(b, "carol") == {"SCRAM-SHA-256=iterations=8192"}
    r = configs(b, "--alter", "--add-config", "SCRAM-SHA-512=[password=carol-512]",
                "--entity-type", "users", "--entity-name", "carol")
    assert (r.returncode, r.stdout) == (0, "Completed updating config for user carol.\n"), r
    carol512 = C.Sasl("SCRAM-SHA-512", "carol", "carol-512")
    wait_auth(b, carol512, None)
    assert describe_user(b, "carol") == {"SCRAM-SHA-256=iterations=8192",
                                         "SCRAM-SHA-512=iterations=4096"}
    # each mechanism has its own password
    assert auth_error(b.sasl_bootstrap, carol256) is None
    wrong512 = C.Sasl("SCRAM-SHA-512", "carol", "carol-secret")
    assert rdkafka_auth_failure(b, scram_failed("SCRAM-SHA-512")).fullmatch(
        auth_error(b.sasl_bootstrap, wrong512))

    # deleting one credential: it stops working, the other one does not
    r = configs(b, "--alter", "--delete-config", "SCRAM-SHA-256",
                "--entity-type", "users", "--entity-name", "carol")
    assert (r.returncode, r.stdout) == (0, "Completed updating config for user carol.\n"), r
    wait_auth(b, carol256, rdkafka_auth_failure(b, scram_failed("SCRAM-SHA-256")))
    assert auth_error(b.sasl_bootstrap, carol512) is None
    assert describe_user(b, "carol") == {"SCRAM-SHA-512=iterations=4096"}

    # a user without credentials describes as nothing
    assert describe_user(b, "nobody") is None

    # errors, as Kafka prints them
    def fails(user, *change):
        r = configs(b, "--alter", *change, "--entity-type", "users", "--entity-name", user)
        assert (r.returncode, r.stdout) == (1, ""), r
        return r.stderr.splitlines()

    args = "--alter --delete-config SCRAM-SHA-256 --entity-type users --entity-name carol"
    assert fails("carol", "--delete-config", "SCRAM-SHA-256")[:2] == [
        f"Error while executing config command with args '--bootstrap-server {b.bootstrap} "
        f"{args}'",
        "java.util.concurrent.ExecutionException: org.apache.kafka.common.errors."
        "ResourceNotFoundException: Attempt to delete a user credential that does not exist"]
    args = ("--alter --add-config SCRAM-SHA-256=[iterations=16385,password=x] "
            "--entity-type users --entity-name dave")
    assert fails("dave", "--add-config", "SCRAM-SHA-256=[iterations=16385,password=x]")[:2] == [
        f"Error while executing config command with args '--bootstrap-server {b.bootstrap} "
        f"{args}'",
        "java.util.concurrent.ExecutionException: org.apache.kafka.common.errors."
        "UnacceptableCredentialException: Too many iterations"]
    # Too few iterations: the tool refuses before asking the broker.
    assert fails("dave", "--add-config", "SCRAM-SHA-256=[iterations=1000,password=x]") == [
        "Iterations 1000 is less than the minimum 4096 required for SCRAM-SHA-256"]
    # Two mechanisms of one user in one request: Kafka refuses the whole request.
    args = ("--alter --add-config SCRAM-SHA-512=[password=d5],SCRAM-SHA-256=[password=d2] "
            "--entity-type users --entity-name dave")
    assert fails("dave", "--add-config",
                 "SCRAM-SHA-512=[password=d5],SCRAM-SHA-256=[password=d2]")[:2] == [
        f"Error while executing config command with args '--bootstrap-server {b.bootstrap} "
        f"{args}'",
        "java.util.concurrent.ExecutionException: org.apache.kafka.common.errors."
        "DuplicateResourceException: A user credential cannot be altered twice in the same "
        "request"]
    assert describe_user(b, "dave") is None
    r = configs(b, "--alter", "--add-config", "SCRAM-SHA-256=[iterations=16384,password=x]",
                "--entity-type", "users", "--entity-name", "dave")
    assert (r.returncode, r.stdout) == (0, "Completed updating config for user dave.\n"), r
    assert describe_user(b, "dave") == {"SCRAM-SHA-256=iterations=16384"}


def test_scram_admin_api_librdkafka(sasl_broker):
    """AlterUserScramCredentials / DescribeUserScramCredentials through librdkafka's admin
    client: the broker's own validation (librdkafka checks nothing) and its messages."""
    b = sasl_broker
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    sha256, sha512 = ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512

    def alter(*changes):
        out = {}
        for user, f in admin.alter_user_scram_credentials(list(changes)).items():
            try:
                out[user] = f.result(timeout=30)
            except KafkaException as e:
                out[user] = (e.args[0].name(), e.args[0].str())
        return out

    def upsert(user, mechanism, iterations, password):
        return UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, iterations),
                                            password.encode())

    assert alter(upsert("erin", sha256, 1000, "erin-secret")) == {
        "erin": ("UNACCEPTABLE_CREDENTIAL", "Too few iterations")}
    assert alter(upsert("erin", sha256, 16385, "erin-secret")) == {
        "erin": ("UNACCEPTABLE_CREDENTIAL", "Too many iterations")}
    assert alter(UserScramCredentialDeletion("erin", sha512)) == {
        "erin": ("RESOURCE_NOT_FOUND", "Attempt to delete a user credential that does not exist")}
    assert alter(upsert("erin", sha256, 4096, "erin-secret"),
                 upsert("frank", sha512, 5000, "frank-secret")) == {"erin": None, "frank": None}
    wait_auth(b, C.Sasl("SCRAM-SHA-256", "erin", "erin-secret"), None)
    wait_auth(b, C.Sasl("SCRAM-SHA-512", "frank", "frank-secret"), None)

    described = {}
    for user, f in admin.describe_user_scram_credentials(["erin", "frank", "zed"]).items():
        try:
            d = f.result(timeout=30)
            described[user] = [(i.mechanism, i.iterations) for i in d.scram_credential_infos]
        except KafkaException as e:
            # librdkafka 2.16 reads this error message one byte too long (the next byte of the
            # response, the empty credential array's length, 0x01); Kafka sends it without.
            described[user] = (e.args[0].name(), e.args[0].str().removesuffix("\x01"))
    assert described == {
        "erin": [(sha256, 4096)], "frank": [(sha512, 5000)],
        "zed": ("RESOURCE_NOT_FOUND", "Attempt to describe a user credential that does not exist: zed")}


# ---- raw frames ------------------------------------------------------------------------

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(10)
    return s


def api_versions_v3(s, correlation=1):
    """{api_key: (min, max)} from ApiVersions v3 (error code must be 0)."""
    s.sendall(frame(18, 3, correlation, compact(b"gregor-compat") + compact(b"1.0") + b"\0",
                    flexible=True))
    r = read_frame(s)
    corr, err = struct.unpack(">ih", r[:6])
    assert (corr, err) == (correlation, 0)
    n, pos = read_uvarint(r, 6)
    apis = {}
    for _ in range(n - 1):
        k, lo, hi = struct.unpack(">hhh", r[pos:pos + 6])
        _, pos = read_uvarint(r, pos + 6)
        apis[k] = (lo, hi)
    return apis


def handshake(s, mechanism, version=1, correlation=2):
    """SaslHandshake: (error_code, [mechanisms])."""
    s.sendall(frame(17, version, correlation, string16(mechanism)))
    r = read_frame(s)
    corr, err, n = struct.unpack(">ihi", r[:10])
    assert corr == correlation
    pos, mechanisms = 10, []
    for _ in range(n):
        (ln,) = struct.unpack(">h", r[pos:pos + 2])
        mechanisms.append(r[pos + 2:pos + 2 + ln].decode())
        pos += 2 + ln
    assert pos == len(r)
    return err, mechanisms


def authenticate_v2(s, token, correlation=3):
    """SaslAuthenticate v2: (error_code, error_message, auth_bytes, session_lifetime_ms)."""
    s.sendall(frame(36, 2, correlation, compact(token) + b"\0", flexible=True))
    r = read_frame(s)
    (corr,) = struct.unpack(">i", r[:4])
    assert corr == correlation
    _, pos = read_uvarint(r, 4)  # response header tagged fields
    (err,) = struct.unpack(">h", r[pos:pos + 2])
    n, pos = read_uvarint(r, pos + 2)
    message = None if n == 0 else r[pos:pos + n - 1].decode()
    pos += max(n - 1, 0)
    n, pos = read_uvarint(r, pos)
    auth_bytes = r[pos:pos + n - 1]
    (lifetime,) = struct.unpack(">q", r[pos + n - 1:pos + n + 7])
    return err, message, auth_bytes, lifetime


def authenticate_v0(s, token, correlation=3):
    """SaslAuthenticate v0: (error_code, error_message, auth_bytes)."""
    s.sendall(frame(36, 0, correlation, struct.pack(">i", len(token)) + token))
    r = read_frame(s)
    corr, err, n = struct.unpack(">ihh", r[:8])
    assert corr == correlation
    pos = 8
    message = None if n < 0 else r[pos:pos + n].decode()
    pos += max(n, 0)
    (n,) = struct.unpack(">i", r[pos:pos + 4])
    return err, message, r[pos + 4:pos + 4 + n]


def metadata_brokers(s, correlation=5):
    """Metadata v1 for all topics: [(node_id, host, port)]."""
    s.sendall(frame(3, 1, correlation, struct.pack(">i", -1)))
    r = read_frame(s)
    corr, n = struct.unpack(">ii", r[:8])
    assert corr == correlation
    pos, brokers = 8, []
    for _ in range(n):
        node, ln = struct.unpack(">ih", r[pos:pos + 6])
        host = r[pos + 6:pos + 6 + ln].decode()
        pos += 6 + ln
        (port,) = struct.unpack(">i", r[pos:pos + 4])
        (rack,) = struct.unpack(">h", r[pos + 4:pos + 6])
        pos += 6 + max(rack, 0)
        brokers.append((node, host, port))
    return brokers


def assert_closed(s):
    """The broker closed the connection (EOF or reset) without a response."""
    with pytest.raises(ConnectionError):
        read_frame(s)
    s.close()


def plain_token(user, password, authzid=""):
    return f"{authzid}\0{user}\0{password}".encode()


def compact_string(r, pos):
    """(a compact nullable string, position after it)."""
    n, pos = read_uvarint(r, pos)
    return (None, pos) if n == 0 else (r[pos:pos + n - 1].decode(), pos + n - 1)


def describe_scram_raw(port, users, correlation=1):
    """DescribeUserScramCredentials v0: (error_code, error_message,
    [(user, error_code, error_message, [(mechanism, iterations)])])."""
    body = uvarint(len(users) + 1) + b"".join(compact(u.encode()) + b"\0" for u in users) + b"\0"
    with connect(port) as s:
        s.sendall(frame(50, 0, correlation, body, flexible=True))
        r = read_frame(s)
    corr, tags, err = struct.unpack(">ibxxxxh", r[:11])
    assert (corr, tags) == (correlation, 0)
    message, pos = compact_string(r, 11)
    n, pos = read_uvarint(r, pos)
    results = []
    for _ in range(n - 1):
        user, pos = compact_string(r, pos)
        (user_err,) = struct.unpack(">h", r[pos:pos + 2])
        user_message, pos = compact_string(r, pos + 2)
        m, pos = read_uvarint(r, pos)
        infos = []
        for _ in range(m - 1):
            mechanism, iterations = struct.unpack(">bi", r[pos:pos + 5])
            infos.append((mechanism, iterations))
            pos += 6  # and its empty tagged fields
        assert r[pos] == 0
        pos += 1
        results.append((user, user_err, user_message, infos))
    assert r[pos:] == b"\0"
    return err, message, results


def test_raw_describe_user_scram_credentials(sasl_broker):
    """DescribeUserScramCredentials as Kafka answers it, messages included: "" (not null) where
    there is no error, RESOURCE_NOT_FOUND (91) for a user without credentials, DUPLICATE_RESOURCE
    (92) for a user named twice. Mechanisms: 1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512."""
    b = sasl_broker
    user = C.unique_name("raw")
    add_scram_user(b, "SCRAM-SHA-512", user, "raw-secret", iterations=4500)
    ok = (user, 0, "", [(2, 4500)])
    missing = ("zed", 91, "Attempt to describe a user credential that does not exist: zed", [])
    assert describe_scram_raw(b.port, [user]) == (0, "", [ok])
    assert describe_scram_raw(b.port, ["zed"]) == (0, "", [missing])
    err, message, results = describe_scram_raw(b.port, [user, "zed"])
    assert (err, message, sorted(results)) == (0, "", sorted([ok, missing]))  # in no fixed order
    assert describe_scram_raw(b.port, [user, user]) == (0, "", [
        (user, 92, "Cannot describe SCRAM credentials for the same user twice in a single "
                   f"request: {user}", [])])


def test_unauthenticated_requests_close_the_connection(sasl_broker):
    b = sasl_broker
    with connect(b.port) as s:
        plaintext_apis = api_versions_v3(s)
    # ApiVersions is answered before authentication (the same versions), then Metadata closes it.
    s = connect(b.sasl_port)
    assert api_versions_v3(s) == plaintext_apis
    assert plaintext_apis[17] == (0, 1) and plaintext_apis[36] == (0, 2)
    s.sendall(frame(3, 1, 5, struct.pack(">i", -1)))
    assert_closed(s)
    # Metadata as the first request: closed too.
    s = connect(b.sasl_port)
    s.sendall(frame(3, 1, 5, struct.pack(">i", -1)))
    assert_closed(s)
    # So is SaslAuthenticate without SaslHandshake.
    s = connect(b.sasl_port)
    s.sendall(frame(36, 2, 3, compact(plain_token("alice", "alice-secret")) + b"\0",
                    flexible=True))
    assert_closed(s)
    # librdkafka without SASL gets no metadata (its connection is closed after ApiVersions).
    errors = []
    p = Producer({"bootstrap.servers": b.sasl_bootstrap, "log_level": 0,
                  "error_cb": errors.append})
    try:
        with pytest.raises(KafkaException) as e:
            p.list_topics(timeout=5)
        assert e.value.args[0].code() == KafkaError._TRANSPORT, e.value
        p.poll(0)
    finally:
        p.close()
    assert all(x.code() != KafkaError._AUTHENTICATION for x in errors), errors


@pytest.mark.parametrize("mechanism", ["GSSAPI", "OAUTHBEARER", "plain", "SCRAM-SHA-1", ""])
def test_unsupported_mechanism(sasl_broker, mechanism):
    """UNSUPPORTED_SASL_MECHANISM (33) naming the enabled mechanisms (Kafka lists them in its
    own order, PLAIN, SCRAM-SHA-512, SCRAM-SHA-256: compared as a set), then the close."""
    for version in (0, 1):
        s = connect(sasl_broker.sasl_port)
        err, mechanisms = handshake(s, mechanism, version)
        assert err == 33
        assert sorted(mechanisms) == sorted(MECHANISMS) and len(mechanisms) == 3, mechanisms
        s.sendall(frame(17, 1, 3, string16("PLAIN")))
        assert_closed(s)


def test_librdkafka_unsupported_mechanism(sasl_broker):
    errors = []
    p = Producer({"bootstrap.servers": sasl_broker.sasl_bootstrap, "log_level": 0,
                  "error_cb": errors.append, "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True,
                  "sasl.oauthbearer.config": "principal=alice"})
    deadline = time.monotonic() + 15
    while not errors and time.monotonic() < deadline:
        p.poll(0.2)
    p.close()
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION, errors
    m = re.fullmatch(rf"sasl_plaintext://127\.0\.0\.1:{sasl_broker.sasl_port}/bootstrap: "
                     r"SASL OAUTHBEARER mechanism handshake failed: Broker: Unsupported SASL "
                     r"mechanism: broker's supported mechanisms: ([A-Z0-9,-]+) "
                     r"\(after \d+ms in state AUTH_HANDSHAKE\)", errors[0].str())
    assert m and sorted(m.group(1).split(",")) == sorted(MECHANISMS), errors[0].str()


@pytest.mark.parametrize("version", [0, 2])
def test_raw_plain_authentication(sasl_broker, version):
    b = sasl_broker
    authenticate = authenticate_v2 if version == 2 else authenticate_v0

    def start():
        s = connect(b.sasl_port)
        api_versions_v3(s)
        err, mechanisms = handshake(s, "PLAIN")
        assert err == 0 and sorted(mechanisms) == sorted(MECHANISMS), (err, mechanisms)
        return s

    s = start()
    got = authenticate(s, plain_token("bob", "bob-secret"))
    # Kafka: error_message "" (not null), no auth bytes, session lifetime 0
    # (connections.max.reauth.ms=0).
    assert got[:3] == (0, "", b"")
    if version == 2:
        assert got[3] == 0
    assert metadata_brokers(s) == [(1, "127.0.0.1", b.sasl_port)]
    s.close()

    s = start()  # authzid = username is allowed
    assert authenticate(s, plain_token("alice", "alice-secret", "alice"))[:2] == (0, "")
    assert metadata_brokers(s) == [(1, "127.0.0.1", b.sasl_port)]
    s.close()

    for token, message in [
            (plain_token("alice", "bob-secret"), PLAIN_FAILED),
            (plain_token("carl", "x"), PLAIN_FAILED),
            (plain_token("alice", "alice-secret", "bob"),
             "Authentication failed: Client requested an authorization id that is different "
             "from username"),
            (b"alice\0alice-secret", "Invalid SASL/PLAIN response: expected 3 tokens, got 2"),
            (b"garbage", "Invalid SASL/PLAIN response: expected 3 tokens, got 1")]:
        s = start()
        got = authenticate(s, token)
        assert got[:3] == (58, message, b""), (token, got)
        assert_closed(s)


def test_legacy_unframed_plain_after_handshake_v0(sasl_broker):
    """SaslHandshake v0, then the SASL tokens as bare size-prefixed frames (clients from before
    KIP-152, e.g. sarama with Version < 1.0.0): an empty token answers success, a wrong password
    closes the connection (there is no frame for an error)."""
    b = sasl_broker
    s = connect(b.sasl_port)
    err, mechanisms = handshake(s, "PLAIN", version=0)
    assert err == 0 and sorted(mechanisms) == sorted(MECHANISMS)
    token = plain_token("alice", "alice-secret")
    s.sendall(struct.pack(">i", len(token)) + token)
    assert read_frame(s) == b""
    assert metadata_brokers(s) == [(1, "127.0.0.1", b.sasl_port)]
    s.close()

    s = connect(b.sasl_port)
    assert handshake(s, "PLAIN", version=0)[0] == 0
    token = plain_token("alice", "wrong")
    s.sendall(struct.pack(">i", len(token)) + token)
    assert_closed(s)


def test_plaintext_listener_refuses_sasl(sasl_broker):
    """On the PLAINTEXT listener SaslHandshake and SaslAuthenticate get ILLEGAL_SASL_STATE (34) and
    the connection stays usable; librdkafka configured for SASL fails there."""
    b = sasl_broker
    with connect(b.port) as s:
        assert handshake(s, "PLAIN") == (34, [])
        assert authenticate_v2(s, plain_token("alice", "alice-secret")) == (
            34, "SaslAuthenticate request received after successful authentication", b"", 0)
        assert metadata_brokers(s) == [(1, "127.0.0.1", b.port)]
    got = auth_error(b.bootstrap, C.Sasl("PLAIN", "alice", "alice-secret"))
    assert got is not None and re.fullmatch(
        rf"sasl_plaintext://127\.0\.0\.1:{b.port}/bootstrap: SASL PLAIN mechanism handshake "
        r"failed: Broker: Request not valid in current SASL state: broker's supported "
        r"mechanisms:  \(after \d+ms in state AUTH_HANDSHAKE\)", got), got


# ---- Go clients (clients/go: --sasl-* flags) ----------------------------------------------

GO = [  # (library, sarama Version, SaslHandshake version, mechanism)
    ("sarama", "0.11.0.0", 0, "PLAIN"),  # v0: bare tokens after the handshake
    ("sarama", "1.0.0.0", 0, "SCRAM-SHA-512"),
    ("sarama", "2.8.0.0", 1, "PLAIN"),
    ("sarama", "2.8.0.0", 1, "SCRAM-SHA-256"),
    ("sarama", "4.1.0.0", 1, "SCRAM-SHA-512"),
    ("ckgo", None, None, "SCRAM-SHA-256"),
    ("ckgo", None, None, "PLAIN"),
]


@pytest.mark.parametrize("lib,version,handshake,mechanism", GO,
                         ids=lambda v: str(v).replace(".", "_"))
def test_go_clients(sasl_broker, lib, version, handshake, mechanism):
    """test_clients_go.py's whole scenario (create a topic, produce 60 records, consume them in a
    group, commit, describe, list, delete), every connection authenticated: sarama at several
    Versions with SaslHandshake v0 (then bare tokens) or v1 (SaslAuthenticate), its SCRAM client
    RFC 5802's from Go's standard library; confluent-kafka-go (librdkafka 2.11)."""
    from test_clients_go import SARAMA_BEFORE_1_1, _ts_base, check, run_gocompat

    auth = credentials(sasl_broker, mechanism, "go")
    topic, group = C.unique_name(f"go-{lib}"), C.unique_name(f"g-{lib}")
    ts = _ts_base()
    extra = ["--sasl-mechanism", mechanism, "--sasl-user", auth.username,
             "--sasl-password", auth.password]
    if lib == "sarama":
        extra += ["--version", version, "--sasl-handshake", str(handshake)]
    out = run_gocompat(lib, sasl_broker.sasl_bootstrap, topic, group, ts, *extra)
    if lib == "sarama":
        old = version in SARAMA_BEFORE_1_1
        check(out, lib, topic, ts, version=version, describe_configs=not old,
              delete_group=not old, listed={"protocol_type": "consumer"},
              active_extra={"protocol_type": "consumer", "protocol": "range"},
              empty_extra={"protocol_type": "consumer"})
    else:
        check(out, lib, topic, ts,
              listed={"simple": "false", "state": "Empty", "type": "Classic"},
              active_extra={"protocol": "range"})


def test_sarama_wrong_password(sasl_broker):
    from test_clients_go import BIN

    p = subprocess.run([str(BIN), "sarama", "--bootstrap", sasl_broker.sasl_bootstrap,
                        "--topic", C.unique_name("go-wrong"), "--group", "g", "--version",
                        "2.8.0.0", "--sasl-mechanism", "PLAIN", "--sasl-user", "alice",
                        "--sasl-password", "alice-wrong", "--deadline", "55"],
                       capture_output=True, text=True, timeout=90)
    assert p.returncode == 1, p
    assert p.stderr == (
        "sarama: NewClusterAdmin: kafka: client has run out of available brokers to talk to: "
        f"kafka server: SASL Authentication failed: {PLAIN_FAILED}\n"), p.stderr
