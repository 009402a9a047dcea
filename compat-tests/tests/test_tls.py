"""TLS: SSL and SASL_SSL listeners beside PLAINTEXT, against gregor and Apache Kafka alike.

Certificates are made with `openssl` at test time (harness/certs.py): a CA, the broker's certificate
(SAN DNS:localhost, IP:127.0.0.1), a client certificate from the CA and one from another CA.
Two brokers for the module, configured with Kafka's own keys:

- `tls_broker`: SSL and SASL_SSL (PLAIN, SCRAM-SHA-256) with a PEM key store file
  (ssl.keystore.type=PEM, the PKCS#8 key then the chain, no ssl.key.password), no client auth;
- `mtls_broker`: SSL with a PKCS12 key store, ssl.client.auth=required with a PEM trust store, and
  ssl.enabled.protocols=TLSv1.3.

What is checked:
- librdkafka, kafka-python (TLS 1.3 and 1.2) and the Java console producer/consumer round-trip 100
  records exactly over SSL (keys, values, headers, offsets; one value of 600 KB, more than the
  256 KiB pieces gregor copies file regions through TLS in), read back over PLAINTEXT too;
- SASL_SSL with PLAIN and SCRAM-SHA-256 (user created with kafka-configs.sh over PLAINTEXT) for
  librdkafka and the Java clients; a wrong password gets Kafka's message;
- mTLS: a CA-signed client certificate works (librdkafka, kafka-python, Java); no certificate or
  one from another CA fails as on Kafka: librdkafka _TRANSPORT "Receive failed: ... SSL alert" in
  state APIVERSION_QUERY then _ALL_BROKERS_DOWN; Java SslAuthenticationException "Failed to process
  post-handshake messages" from a fatal alert (TLS 1.3: the client finished its handshake first);
- a client not trusting the broker's CA: librdkafka _SSL "certificate verify failed", Java
  SslAuthenticationException "SSL handshake failed" (PKIX path building failed);
- a plaintext client on the SSL port gets no Kafka response and is closed (librdkafka: _TRANSPORT,
  raw ApiVersions: at most one TLS alert record, then EOF);
- ssl.enabled.protocols=TLSv1.3: a TLS 1.2 client gets a protocol_version alert (Python's ssl,
  Java), TLS 1.3 works; with the default protocols TLS 1.2 works;
- kafka-broker-api-versions.sh over SSL (--command-config) prints what it prints over PLAINTEXT;
- TLS clients that pipeline requests and never read are closed after connections.max.idle.ms, do
  not slow another TLS client, and the broker still stops cleanly on SIGTERM.

Where the two targets differ in detail (not in category), the assertion accepts both and the
docstring says which is which.
"""

import dataclasses
import hashlib
import re
import socket
import ssl
import struct
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from harness import certs
from harness import clients as C
from harness.broker import Broker
from harness.java import kafka_script
from harness.wire import frame, read_frame

MECHANISMS = ["PLAIN", "SCRAM-SHA-256"]
PLAIN_USERS = {"alice": "alice-secret"}
BIG = 600_000  # bytes of the one large value: several of gregor's 256 KiB TLS copy pieces


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory, pki):
    keys = certs.pem_key_store(pki.server)
    b = Broker(tmp_path_factory.mktemp("tls"),
               sasl={"mechanisms": MECHANISMS, "plain_users": PLAIN_USERS},
               tls={"SSL": keys, "SASL_SSL": keys})
    try:
        b.start()
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def mtls_broker(tmp_path_factory, pki):
    keys = {**certs.p12_key_store(pki.server), **certs.client_auth("required", pki.ca),
            "ssl.enabled.protocols": "TLSv1.3"}
    b = Broker(tmp_path_factory.mktemp("mtls"), tls={"SSL": keys})
    try:
        b.start()
        yield b
    finally:
        b.close()


# ---- helpers ---------------------------------------------------------------------------

def big_value(n=BIG):
    """n printable bytes that differ all along (a misplaced piece would show)."""
    out = b"".join(hashlib.sha256(str(i).encode()).hexdigest().encode()
                   for i in range(n // 64 + 1))
    return out[:n]


def records(tag, n=100, big_at=57):
    """Keys, values (some UTF-8; the one at `big_at` BIG bytes) and headers that survive the Java
    console line format."""
    out = []
    for i in range(n):
        value = big_value() if i == big_at else f"{tag}-v{i:03d}-é€".encode() * (1 + i % 5)
        out.append(C.Rec(f"{tag}-k{i:03d}".encode(), value,
                         (("i", str(i).encode()), ("tag", tag.encode())), partition=0))
    return out


def content(recs):
    return [(r.offset, r.key, r.value, r.headers) for r in recs]


def expected(recs):
    return [(i, r.key, r.value, r.headers) for i, r in enumerate(recs)]


def check_plaintext_copy(broker, topic, got):
    """The same records, read over PLAINTEXT."""
    plain = C.ck_read(broker.bootstrap, topic, 0, 0, count=len(got))
    assert [r.full() for r in plain] == [r.full() for r in got]
    assert C.watermarks(broker.bootstrap, topic) == (0, len(got))


def rdkafka_failure(bootstrap, conf, timeout=5.0):
    """librdkafka asked for metadata through `bootstrap` with `conf`: (the error code list_topics
    raised, [(code name, text)] of the errors error_cb got, in order, duplicates dropped)."""
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "log_level": 0, "error_cb": errors.append,
                  **conf})
    try:
        with pytest.raises(KafkaException) as e:
            p.list_topics(timeout=timeout)
        p.poll(0.5)
    finally:
        p.close()
    seen = []
    for x in errors:
        item = (x.name(), re.sub(r"after \d+ms", "after Nms", x.str()))
        if item not in seen:
            seen.append(item)
    return e.value.args[0].code(), seen


def java_api_versions(bootstrap, auth, timeout=90):
    """kafka-broker-api-versions.sh over `bootstrap` with `auth` in --command-config."""
    with C.java_client_config(auth) as props:
        return kafka_script("kafka-broker-api-versions.sh", "--bootstrap-server", bootstrap,
                            "--command-config", props, timeout=timeout)


def java_refused(r, *patterns):
    """A Java tool that failed on TLS: exit 1, nothing on stdout, and each pattern (a regex)
    matching a line of its stderr."""
    assert (r.returncode, r.stdout) == (1, ""), r
    lines = r.stderr.splitlines()
    for p in patterns:
        assert any(re.fullmatch(p, line) for line in lines), (p, r.stderr[-4000:])


def tls_context(ca, identity=None, max_version=None):
    ctx = ssl.create_default_context(cafile=str(ca))
    if identity is not None:
        ctx.load_cert_chain(str(identity.cert), str(identity.key))
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


class RecordingSocket(ssl.SSLSocket):
    """Records the TLS version of each completed handshake (SSLContext.sslsocket_class)."""
    versions = []

    def do_handshake(self, *args, **kwargs):
        super().do_handshake(*args, **kwargs)
        RecordingSocket.versions.append(self.version())


def tls_api_versions(port, ctx):
    """ApiVersions v0 over a TLS connection made with `ctx`: (TLS version, correlation id,
    error code)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            t.sendall(frame(18, 0, 77, b""))
            r = read_frame(t)
            return t.version(), *struct.unpack(">ih", r[:6])


def scram_user(broker, mechanism, tag):
    from test_sasl import add_scram_user  # waits until the user authenticates (SASL_PLAINTEXT)

    user = C.unique_name(tag)
    return add_scram_user(broker, mechanism, user, f"{user}-pw")


def sasl_ssl(broker, pki, mechanism, tag):
    tls = C.Tls.of(pki.ca)
    if mechanism == "PLAIN":
        return C.Sasl("PLAIN", "alice", PLAIN_USERS["alice"], tls=tls)
    return dataclasses.replace(scram_user(broker, mechanism, tag), tls=tls)


# ---- SSL round trips -------------------------------------------------------------------

def test_librdkafka_ssl_round_trip(tls_broker, pki):
    auth = C.Tls.of(pki.ca)
    t = C.create_topic(tls_broker.bootstrap, C.unique_name("ssl-rd"))
    recs = records("rd")
    acked = C.ck_produce(tls_broker.ssl_bootstrap, t, recs, conf={"acks": "all"}, auth=auth)
    assert [r.offset for r in acked] == list(range(100))
    got = C.ck_read(tls_broker.ssl_bootstrap, t, 0, 0, count=100, auth=auth)
    assert [r.full() for r in got] == [r.full() for r in acked]
    assert content(got) == expected(recs)
    check_plaintext_copy(tls_broker, t, got)


@pytest.mark.parametrize("version", ["default", "TLSv1.2"])
def test_kafka_python_ssl_round_trip(tls_broker, pki, version):
    """kafka-python with ssl_cafile (TLS 1.3 is negotiated), and with an ssl_context limited to
    TLS 1.2 (the broker enables both by default)."""
    auth = C.Tls.of(pki.ca)
    conf = {}
    if version == "TLSv1.2":
        ctx = tls_context(pki.ca, max_version=ssl.TLSVersion.TLSv1_2)
        ctx.sslsocket_class = RecordingSocket
        conf["ssl_context"] = ctx
    RecordingSocket.versions.clear()
    t = C.create_topic(tls_broker.bootstrap, C.unique_name("ssl-kp"))
    recs = records("kp")
    acked = C.kp_produce(tls_broker.ssl_bootstrap, t, recs, auth=auth, **conf)
    assert [r.offset for r in acked] == list(range(100))
    got = C.kp_read(tls_broker.ssl_bootstrap, t, 0, 0, count=100, auth=auth, **conf)
    if version == "TLSv1.2":
        assert RecordingSocket.versions and set(RecordingSocket.versions) == {"TLSv1.2"}
    assert [r.full() for r in got] == [r.full() for r in acked]
    assert content(got) == expected(recs)
    check_plaintext_copy(tls_broker, t, got)


def test_java_console_ssl_round_trip(tls_broker, pki):
    auth = C.Tls.of(pki.ca)
    t = C.create_topic(tls_broker.bootstrap, C.unique_name("ssl-java"))
    recs = records("java")
    C.console_produce(tls_broker.ssl_bootstrap, t, recs, auth=auth)
    got = C.console_consume(tls_broker.ssl_bootstrap, t, 0, 100, auth=auth)
    assert content(got) == expected(recs)
    check_plaintext_copy(tls_broker, t, got)


def test_kafka_broker_api_versions_over_ssl(tls_broker, mtls_broker, pki):
    """The same output as over PLAINTEXT (its own endpoint named), on both brokers (the mTLS one
    with a client certificate in a Java PEM key store)."""
    for b, auth in [(tls_broker, C.Tls.of(pki.ca)), (mtls_broker, C.Tls.of(pki.ca, pki.client))]:
        plain = kafka_script("kafka-broker-api-versions.sh", "--bootstrap-server", b.bootstrap)
        plain.check()
        r = java_api_versions(b.ssl_bootstrap, auth)
        r.check()
        assert r.stdout.startswith(f"{b.ssl_bootstrap} (id: 1 rack: null isFenced: false) -> (\n")
        assert r.stdout.replace(b.ssl_bootstrap, b.bootstrap) == plain.stdout
        assert "Produce(0)" in r.stdout and "SaslAuthenticate(36)" in r.stdout


# ---- SASL_SSL --------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_librdkafka_sasl_ssl_round_trip(tls_broker, pki, mechanism):
    auth = sasl_ssl(tls_broker, pki, mechanism, "rd")
    t = C.create_topic(tls_broker.bootstrap, C.unique_name("sasl-ssl-rd"))
    recs = records(mechanism)
    acked = C.ck_produce(tls_broker.sasl_ssl_bootstrap, t, recs, conf={"acks": "all"}, auth=auth)
    assert [r.offset for r in acked] == list(range(100))
    got = C.ck_read(tls_broker.sasl_ssl_bootstrap, t, 0, 0, count=100, auth=auth)
    assert [r.full() for r in got] == [r.full() for r in acked]
    assert content(got) == expected(recs)
    check_plaintext_copy(tls_broker, t, got)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_java_sasl_ssl_round_trip(tls_broker, pki, mechanism):
    auth = sasl_ssl(tls_broker, pki, mechanism, "java")
    t = C.create_topic(tls_broker.bootstrap, C.unique_name("sasl-ssl-java"))
    recs = records(mechanism)
    C.console_produce(tls_broker.sasl_ssl_bootstrap, t, recs, auth=auth)
    got = C.console_consume(tls_broker.sasl_ssl_bootstrap, t, 0, 100, auth=auth)
    assert content(got) == expected(recs)
    check_plaintext_copy(tls_broker, t, got)
    with C.java_client_config(auth) as props:
        r = kafka_script("kafka-topics.sh", "--bootstrap-server", tls_broker.sasl_ssl_bootstrap,
                         "--command-config", props, "--list", "--topic", t)
    assert (r.returncode, r.stdout) == (0, f"{t}\n"), r


def test_sasl_ssl_wrong_password(tls_broker, pki):
    """Kafka's message through TLS, as on SASL_PLAINTEXT; nothing is stored."""
    t = C.create_topic(tls_broker.bootstrap, C.unique_name("sasl-ssl-wrong"))
    auth = C.Sasl("PLAIN", "alice", "not-her-password", tls=C.Tls.of(pki.ca))
    errors = []
    p = Producer({"bootstrap.servers": tls_broker.sasl_ssl_bootstrap, "log_level": 0,
                  "error_cb": errors.append, **auth.librdkafka()})
    p.produce(t, b"must not be stored")
    deadline = time.monotonic() + 15
    while not errors and time.monotonic() < deadline:
        p.poll(0.1)
    p.purge()
    p.close()
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION, errors
    assert re.fullmatch(rf"sasl_ssl://127\.0\.0\.1:{tls_broker.tls_ports['SASL_SSL']}/bootstrap: "
                        r"SASL authentication error: Authentication failed: Invalid username or "
                        r"password \(after \d+ms in state AUTH_REQ\)", errors[0].str()), errors[0]
    assert C.watermarks(tls_broker.bootstrap, t) == (0, 0)


# ---- client certificates (ssl.client.auth=required) -----------------------------------

def test_mtls_client_certificate_accepted(mtls_broker, pki):
    auth = C.Tls.of(pki.ca, pki.client)
    t = C.create_topic(mtls_broker.bootstrap, C.unique_name("mtls"))
    recs = records("mtls", n=30, big_at=7)
    acked = C.ck_produce(mtls_broker.ssl_bootstrap, t, recs, auth=auth)
    assert [r.offset for r in acked] == list(range(30))
    got = C.ck_read(mtls_broker.ssl_bootstrap, t, 0, 0, count=30, auth=auth)
    assert [r.full() for r in got] == [r.full() for r in acked]
    got = C.kp_read(mtls_broker.ssl_bootstrap, t, 0, 0, count=30, auth=auth)
    assert [r.full() for r in got] == [r.full() for r in acked]
    got = C.console_consume(mtls_broker.ssl_bootstrap, t, 0, 30, auth=auth)
    assert content(got) == expected(recs)


# The alert a refused client certificate gets: Kafka (JSSE) sends bad_certificate (42) for a
# missing certificate and an untrusted one alike, and certificate_unknown (46) for an expired one;
# gregor (rustls) sends certificate_required (116) for a missing one, unknown_ca (48) for an
# untrusted one (Python's ssl gets that; librdkafka and Java get 116 there for a certificate from
# another CA too: they do not send it) and certificate_expired (45) for an expired one.
REFUSED_ALERTS = {42: "bad certificate", 116: "certificate required", 48: "unknown ca",
                  45: "certificate expired", 46: "certificate unknown"}
JAVA_REFUSED_ALERTS = ("bad_certificate|certificate_required|unknown_ca|certificate_expired|"
                       "certificate_unknown")


@pytest.mark.parametrize("client", ["none", "other-ca", "expired"])
def test_mtls_librdkafka_refused(mtls_broker, pki, client):
    identity = {"none": None, "other-ca": pki.stranger, "expired": pki.expired}[client]
    code, errors = rdkafka_failure(mtls_broker.ssl_bootstrap,
                                   C.Tls.of(pki.ca, identity).librdkafka())
    assert code == KafkaError._TRANSPORT, (code, errors)
    port = mtls_broker.tls_ports["SSL"]
    alerts = "|".join(rf"(?:ssl/tls|tlsv1|tlsv13) alert {re.escape(v)}: SSL alert number {k}"
                      for k, v in REFUSED_ALERTS.items())
    failed = re.compile(rf"ssl://127\.0\.0\.1:{port}/bootstrap: Receive failed: "
                        rf"error:[0-9A-F]+:SSL routines::(?:{alerts}) "
                        r"\(after Nms in state APIVERSION_QUERY\)")
    names = [n for n, _ in errors]
    assert names[0] == "_TRANSPORT" and "_ALL_BROKERS_DOWN" in names, errors
    for name, text in errors:
        assert (name == "_TRANSPORT" and failed.fullmatch(text)) or (
            name == "_ALL_BROKERS_DOWN" and re.fullmatch(r"\d+/\d+ brokers are down", text)), errors


@pytest.mark.parametrize("client", ["none", "other-ca", "expired"])
def test_mtls_java_refused(mtls_broker, pki, client):
    identity = {"none": None, "other-ca": pki.stranger, "expired": pki.expired}[client]
    r = java_api_versions(mtls_broker.ssl_bootstrap, C.Tls.of(pki.ca, identity))
    java_refused(
        r, r"org\.apache\.kafka\.common\.errors\.SslAuthenticationException: Failed to process "
           r"post-handshake messages",
        rf"Caused by: javax\.net\.ssl\.SSLHandshakeException: Received fatal alert: "
        rf"(?:{JAVA_REFUSED_ALERTS})")


# ---- the broker's certificate not trusted ----------------------------------------------

def test_untrusted_broker_certificate(tls_broker, pki):
    """A client trusting another CA fails verifying the broker's certificate. (librdkafka also
    reports the same verification failure as _TRANSPORT now and then on either target, first
    too under load: the full suite once saw it.)"""
    port = tls_broker.tls_ports["SSL"]
    code, errors = rdkafka_failure(tls_broker.ssl_bootstrap, C.Tls.of(pki.other_ca).librdkafka())
    assert code == KafkaError._TRANSPORT, (code, errors)
    verify = (rf"ssl://127\.0\.0\.1:{port}/bootstrap: SSL handshake failed: error:0A000086:SSL "
              r"routines::certificate verify failed: broker certificate could not be verified, "
              r"verify that ssl\.ca\.location is correctly configured or root CA certificates are "
              r"installed \(install ca-certificates package\) \(after Nms in state SSL_HANDSHAKE\)")
    # Each report is this verification failure, as _SSL with librdkafka's explanation or as
    # _TRANSPORT (which, under load, can come first, with or without the explanation).
    transport = (rf"ssl://127\.0\.0\.1:{port}/bootstrap: error:0A000086:SSL routines::"
                 r"certificate verify failed \(after Nms in (state SSL_HANDSHAKE|.*root CA "
                 r"certificates are installed \(install ca-certificates package\) \(after Nms "
                 r"in state SSL_HANDSHAKE)\)")
    assert any(name in ("_SSL", "_TRANSPORT") for name, _ in errors), errors
    for name, text in errors:
        assert ((name == "_SSL" and re.fullmatch(verify, text))
                or (name == "_TRANSPORT" and re.fullmatch(transport, text))
                or name == "_ALL_BROKERS_DOWN"), errors

    r = java_api_versions(tls_broker.ssl_bootstrap, C.Tls.of(pki.other_ca))
    java_refused(
        r, r"org\.apache\.kafka\.common\.errors\.SslAuthenticationException: SSL handshake failed",
        r"Caused by: javax\.net\.ssl\.SSLHandshakeException: PKIX path building failed: "
        r"sun\.security\.provider\.certpath\.SunCertPathBuilderException: unable to find valid "
        r"certification path to requested target")

    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        tls_api_versions(port, tls_context(pki.other_ca))


# ---- plaintext on a TLS port -----------------------------------------------------------

def test_plaintext_client_on_ssl_port(tls_broker):
    """No Kafka response, the connection closed. Raw: the broker answers the ApiVersions bytes
    (not a ClientHello) with at most one fatal TLS alert record, then EOF (Kafka: internal_error,
    gregor: decode_error)."""
    code, errors = rdkafka_failure(tls_broker.ssl_bootstrap, {})
    assert code == KafkaError._TRANSPORT, (code, errors)
    assert all(n in ("_ALL_BROKERS_DOWN", "_TRANSPORT") for n, _ in errors), errors

    for body in [frame(18, 0, 1, b""), frame(18, 3, 1, b"\x00", flexible=True)]:
        with socket.create_connection(("127.0.0.1", tls_broker.tls_ports["SSL"]),
                                      timeout=10) as s:
            s.settimeout(10)
            s.sendall(body)
            data = b""
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except ConnectionResetError:
                pass
        assert data == b"" or (len(data) == 7 and data[:5] == b"\x15\x03\x03\x00\x02"
                               and data[5] == 2), data


# ---- TLS versions ----------------------------------------------------------------------

def test_tls13_only(mtls_broker, tls_broker, pki):
    """ssl.enabled.protocols=TLSv1.3: a TLS 1.2 client (with a good certificate) gets a
    protocol_version alert; TLS 1.3 is answered. A broker with the default protocols takes 1.2."""
    port = mtls_broker.tls_ports["SSL"]
    with pytest.raises(ssl.SSLError, match=r"TLSV1_ALERT_PROTOCOL_VERSION"):
        tls_api_versions(port, tls_context(pki.ca, pki.client, ssl.TLSVersion.TLSv1_2))
    assert tls_api_versions(port, tls_context(pki.ca, pki.client)) == ("TLSv1.3", 77, 0)
    assert tls_api_versions(tls_broker.tls_ports["SSL"], tls_context(
        pki.ca, max_version=ssl.TLSVersion.TLSv1_2)) == ("TLSv1.2", 77, 0)

    tls12 = (("ssl.protocol", "TLSv1.2"), ("ssl.enabled.protocols", "TLSv1.2"))
    r = java_api_versions(mtls_broker.ssl_bootstrap, C.Tls.of(pki.ca, pki.client,
                                                             java_extra=tls12))
    java_refused(
        r, r"org\.apache\.kafka\.common\.errors\.SslAuthenticationException: SSL handshake failed",
        r"Caused by: javax\.net\.ssl\.SSLHandshakeException: Received fatal alert: "
        r"protocol_version")
    java_api_versions(tls_broker.ssl_bootstrap, C.Tls.of(pki.ca, java_extra=tls12)).check()


# ---- clients that never read -----------------------------------------------------------

def established(port):
    """Server-side ESTABLISHED TCP connections on local `port` (/proc/net/tcp, and tcp6 where
    the JVM keeps its IPv4-mapped sockets)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    n += 1
    return n


def test_tls_clients_that_never_read_are_closed(broker_factory, pki):
    """Ten TLS clients pipeline Metadata requests for 3 s and never read a response (their
    responses fill the socket buffers): another TLS client's requests are answered meanwhile, the
    broker closes all ten within connections.max.idle.ms (3 s) plus 10 s, as it does on PLAINTEXT,
    and it stops cleanly on SIGTERM afterwards."""
    b = broker_factory(tls={"SSL": certs.pem_key_store(pki.server)},
                       **{"connections.max.idle.ms": 3000})
    port = b.tls_ports["SSL"]
    request = frame(3, 1, 9, struct.pack(">i", -1)) * 200
    hogs = []
    try:
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            t = tls_context(pki.ca).wrap_socket(s, server_hostname="127.0.0.1")
            t.settimeout(0.2)
            hogs.append(t)
        assert established(port) == 10
        start = time.monotonic()
        while time.monotonic() - start < 3:
            for t in hogs:
                try:
                    t.sendall(request)
                except OSError:  # blocked (timeout), or closed already
                    pass
        took = time.monotonic()
        assert tls_api_versions(port, tls_context(pki.ca))[1:] == (77, 0)
        assert time.monotonic() - took < 2.0
        deadline = time.monotonic() + 13
        while established(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        print(f"\nnon-reading TLS clients closed {time.monotonic() - start:.1f} s after they "
              f"started (3 s of requests, connections.max.idle.ms=3000)")
        assert established(port) == 0, (
            f"{established(port)} of 10 non-reading TLS connections still open "
            f"{time.monotonic() - start:.0f} s after they stopped reading "
            f"(connections.max.idle.ms=3000)")
    finally:
        for t in hogs:
            try:
                t.close()
            except OSError:
                pass
    b.stop(timeout=20)
