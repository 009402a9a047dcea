"""ACLs with StandardAuthorizer, against gregor and Apache Kafka alike, with Kafka's own keys:
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer and
super.users=User:ANONYMOUS;User:admin (the PLAINTEXT listener is the administrators'; Kafka's
controller talks over it too). Principals are PLAIN users on a SASL_PLAINTEXT listener and a
client certificate on an SSL listener with ssl.client.auth=required, named through
ssl.principal.mapping.rules.

- kafka-acls.sh --add / --list / --remove print exactly what Kafka prints; --producer and
  --consumer add what Kafka adds; a non-super user cannot list or add ACLs;
- a principal allowed only to produce produces 100 records exactly, and cannot consume them,
  delete the topic or alter its configs (librdkafka, kafka-topics.sh, kafka-configs.sh get
  Kafka's errors), and its Metadata shows only its topic;
- DENY overrides ALLOW; a prefixed ALLOW covers its prefix only;
- --consumer with a group lets a principal consume in that group and no other;
- a super user needs no ACL;
- a client certificate's subject, mapped by ssl.principal.mapping.rules, is the principal.
"""

import re
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from harness import certs
from harness import clients as C
from harness.broker import Broker
from harness.java import kafka_script

USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret",
         "carol": "carol-secret"}
STANDARD = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# The client certificate's subject is CN=client: the rule makes it User:client.
MAPPING = r"RULE:^CN=([a-z]+)$/$1/L,DEFAULT"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory, pki):
    keys = {**certs.pem_key_store(pki.server), **certs.client_auth("required", pki.ca)}
    b = Broker(tmp_path_factory.mktemp("acls"),
               sasl={"mechanisms": ["PLAIN"], "plain_users": USERS},
               tls={"SSL": keys},
               overrides={"authorizer.class.name": STANDARD,
                          "super.users": "User:ANONYMOUS;User:admin",
                          "ssl.principal.mapping.rules": MAPPING})
    try:
        b.start()
        yield b
    finally:
        b.close()


def user(name):
    return C.Sasl("PLAIN", name, USERS[name])


def acls(broker, *args, auth=None):
    """kafka-acls.sh over PLAINTEXT (a super user), or as `auth` over SASL_PLAINTEXT."""
    if auth is None:
        return kafka_script("kafka-acls.sh", "--bootstrap-server", broker.bootstrap, *args)
    with C.java_client_config(auth) as props:
        return kafka_script("kafka-acls.sh", "--bootstrap-server", broker.sasl_bootstrap,
                            "--command-config", props, *args)


def pattern(kind, name, pattern_type="LITERAL"):
    return f"ResourcePattern(resourceType={kind}, name={name}, patternType={pattern_type})"


def entry(principal, operation, permission="ALLOW"):
    return (f"(principal={principal}, host=*, operation={operation}, "
            f"permissionType={permission})")


def blocks(out):
    """kafka-acls.sh output as {header line: set of ACL lines}. Kafka prints a resource's ACLs
    in hash order, which changes from run to run: after "Adding ACLs for resource `R`: " the
    first line starts " \t", after "Current ACLs for resource `R`:" every line starts "\t"."""
    got = {}
    for block in out.split("\n\n"):
        if not block:
            continue
        head, first, *rest = block.split("\n")
        if head.startswith("Adding"):
            assert head.endswith("`: ") and first.startswith(" \t"), block
            first = first[1:]
        else:
            assert head.startswith("Current") and head.endswith("`:"), block
        assert all(line.startswith("\t") for line in [first, *rest]), block
        assert head not in got, out
        got[head] = {line[1:] for line in [first, *rest]}
    return got


def added(resource, entries):
    return {f"Adding ACLs for resource `{resource}`: ": set(entries)}


def current(*resources):
    """`--list` output of (resource, entries) pairs."""
    return {f"Current ACLs for resource `{res}`:": set(entries) for res, entries in resources}


def wait_until(check, what, timeout=30.0):
    """ACLs reach Kafka's authorizer through its metadata log shortly after kafka-acls.sh
    returns: poll `check` until it is true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout}s: {what}")
        time.sleep(0.3)


def produce_errors(bootstrap, auth, topic, n):
    """Produce n records as `auth` with librdkafka: the delivery errors' codes (one per
    record), [] when all were acknowledged."""
    p = Producer({"bootstrap.servers": bootstrap, "log_level": 0, "retries": 0,
                  "message.timeout.ms": 20000, **auth.librdkafka()})
    errors = []
    for i in range(n):
        p.produce(topic, value=f"{topic}-{i}".encode(), key=str(i).encode(),
                  on_delivery=lambda e, m: errors.append(e.code()) if e else None)
    assert p.flush(30) == 0
    return errors


def consume_error(bootstrap, auth, topic, group):
    """The first error a subscribing librdkafka consumer in `group` gets for `topic`, or the
    count of records it read before the partition's end when it gets none."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True,
                  **auth.librdkafka()})
    try:
        c.subscribe([topic])
        read = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    c.commit(asynchronous=False)
                    return read
                return m.error().code()
            read += 1
        raise AssertionError(f"consumer in {group} got neither an error nor the end of {topic}")
    finally:
        c.close()


def visible(bootstrap, auth):
    """The topics Metadata shows `auth` (librdkafka's list_topics)."""
    p = Producer({"bootstrap.servers": bootstrap, "log_level": 0, **auth.librdkafka()})
    try:
        return set(p.list_topics(timeout=15).topics)
    finally:
        p.flush(1)


def values(broker, topic, n):
    return [r.value for r in C.ck_read(broker.bootstrap, topic, 0, 0, count=n)]


# ---- kafka-acls.sh -----------------------------------------------------------------------

def test_kafka_acls_add_list_remove(broker):
    t = C.unique_name("acl-cli")
    res = pattern("TOPIC", t)
    r = acls(broker, "--add", "--allow-principal", "User:alice", "--operation", "Read",
             "--operation", "Write", "--topic", t)
    both = {entry("User:alice", "READ"), entry("User:alice", "WRITE")}
    assert (r.returncode, blocks(r.stdout)) == (0, added(res, both)), r
    r = acls(broker, "--list", "--topic", t)
    assert (r.returncode, blocks(r.stdout)) == (0, current((res, both))), r
    r = acls(broker, "--remove", "--force", "--allow-principal", "User:alice", "--operation",
             "Read", "--topic", t)
    assert (r.returncode, r.stdout) == (0, ""), r
    r = acls(broker, "--list", "--topic", t)
    assert (r.returncode, blocks(r.stdout)) == (
        0, current((res, {entry("User:alice", "WRITE")}))), r
    r = acls(broker, "--remove", "--force", "--topic", t)
    assert (r.returncode, r.stdout) == (0, ""), r
    r = acls(broker, "--list", "--topic", t)
    assert (r.returncode, r.stdout) == (0, ""), r
    # A principal without a type is refused by the tool itself, as with Kafka.
    r = acls(broker, "--add", "--allow-principal", "alice", "--operation", "Read", "--topic", t)
    assert r.returncode == 1 and r.stdout.startswith(
        "Error while executing ACL command: expected a string in format "
        "principalType:principalName but got alice\n"), r


def test_kafka_acls_producer_consumer_and_prefixed_shortcuts(broker):
    t = C.unique_name("acl-short")
    g = C.unique_name("grp")
    literal = pattern("TOPIC", t)
    topic, group = pattern("TOPIC", t, "PREFIXED"), pattern("GROUP", g, "PREFIXED")
    producer = {entry("User:bob", op) for op in ["WRITE", "DESCRIBE", "CREATE"]}
    consumer = {entry("User:bob", op) for op in ["READ", "DESCRIBE"]}
    r = acls(broker, "--add", "--allow-principal", "User:bob", "--producer", "--topic", t)
    assert (r.returncode, blocks(r.stdout)) == (0, added(literal, producer)), r
    r = acls(broker, "--add", "--allow-principal", "User:bob", "--consumer", "--topic", t,
             "--group", g, "--resource-pattern-type", "prefixed")
    assert (r.returncode, blocks(r.stdout)) == (0, {
        **added(topic, consumer), **added(group, {entry("User:bob", "READ")})}), r
    # --list of a principal prints its ACLs on every resource, after a line naming it.
    r = acls(broker, "--list", "--principal", "User:bob")
    head = "ACLs for principal `User:bob`\n"
    assert r.returncode == 0 and r.stdout.startswith(head), r
    listed = blocks(r.stdout[len(head):])
    assert {h: e for h, e in listed.items() if t in h or g in h} == current(
        (literal, producer), (topic, consumer), (group, {entry("User:bob", "READ")})), r.stdout


def test_only_super_users_manage_acls(broker):
    carol = user("carol")
    r = acls(broker, "--list", auth=carol)
    assert r.returncode == 1 and r.stdout.startswith(
        "Error while executing ACL command: org.apache.kafka.common.errors."
        "ClusterAuthorizationException: "), r
    assert r.stdout.split("\n")[0].endswith(" needs DESCRIBE permission."), r
    t = C.unique_name("acl-self")
    r = acls(broker, "--add", "--allow-principal", "User:carol", "--operation", "All",
             "--topic", t, auth=carol)
    assert r.returncode == 1, r
    assert ("\n\nError while executing ACL command: org.apache.kafka.common.errors."
            "ClusterAuthorizationException: ") in r.stdout, r
    assert " needs ALTER permission.\n" in r.stdout, r
    assert acls(broker, "--list", "--topic", t).stdout == ""


# ---- what ACLs allow and refuse ----------------------------------------------------------

def test_a_producer_only_principal_cannot_consume_delete_or_alter(broker):
    t = C.create_topic(broker.bootstrap, C.unique_name("acl-orders"))
    other = C.create_topic(broker.bootstrap, C.unique_name("acl-payroll"))
    assert acls(broker, "--add", "--allow-principal", "User:alice", "--producer",
                "--topic", t).returncode == 0
    alice = user("alice")
    wait_until(lambda: t in visible(broker.sasl_bootstrap, alice), "alice sees her topic")
    assert produce_errors(broker.sasl_bootstrap, alice, t, 100) == []
    assert produce_errors(broker.sasl_bootstrap, alice, other, 1) == [
        KafkaError.TOPIC_AUTHORIZATION_FAILED]
    # She sees her topic and not the other one.
    seen = visible(broker.sasl_bootstrap, alice)
    assert t in seen and other not in seen, seen
    # No consuming: the group first (no ACL on it), then the topic.
    assert consume_error(broker.sasl_bootstrap, alice, t, C.unique_name("g")) == \
        KafkaError.GROUP_AUTHORIZATION_FAILED
    with C.java_client_config(alice) as props:
        r = kafka_script("kafka-topics.sh", "--bootstrap-server", broker.sasl_bootstrap,
                         "--command-config", props, "--delete", "--topic", t)
        assert (r.returncode, r.stdout) == (
            1, "Error while executing topic command : Topic authorization failed.\n"), r
        r = kafka_script("kafka-configs.sh", "--bootstrap-server", broker.sasl_bootstrap,
                         "--command-config", props, "--alter", "--entity-type", "topics",
                         "--entity-name", t, "--add-config", "retention.ms=1000")
        assert r.returncode == 1, r
        assert ("org.apache.kafka.common.errors.TopicAuthorizationException: "
                "Topic authorization failed.") in r.stdout + r.stderr, r
    # Nothing was deleted or altered: the 100 records are there, retention.ms is the default.
    assert values(broker, t, 100) == [f"{t}-{i}".encode() for i in range(100)]
    r = kafka_script("kafka-configs.sh", "--bootstrap-server", broker.bootstrap, "--describe",
                     "--entity-type", "topics", "--entity-name", t)
    assert (r.returncode, r.stdout) == (
        0, f"Dynamic configs for topic {t} are:\n"), r


def test_deny_overrides_allow_and_prefixes_cover_only_their_prefix(broker):
    prefix = C.unique_name("acl-bob") + "-"
    public, secret = prefix + "public", prefix + "secret"
    outside = C.unique_name("acl-elsewhere")
    for t in [public, secret, outside]:
        C.create_topic(broker.bootstrap, t)
    assert acls(broker, "--add", "--allow-principal", "User:bob", "--operation", "Write",
                "--operation", "Describe", "--topic", prefix,
                "--resource-pattern-type", "prefixed").returncode == 0
    assert acls(broker, "--add", "--deny-principal", "User:bob", "--operation", "Write",
                "--topic", secret).returncode == 0
    bob = user("bob")
    wait_until(lambda: public in visible(broker.sasl_bootstrap, bob), "bob sees the prefix")
    assert produce_errors(broker.sasl_bootstrap, bob, public, 10) == []
    assert produce_errors(broker.sasl_bootstrap, bob, secret, 1) == [
        KafkaError.TOPIC_AUTHORIZATION_FAILED]
    assert produce_errors(broker.sasl_bootstrap, bob, outside, 1) == [
        KafkaError.TOPIC_AUTHORIZATION_FAILED]
    assert [C.watermarks(broker.bootstrap, t) for t in [public, secret, outside]] == [
        (0, 10), (0, 0), (0, 0)]
    # Removing the DENY lets the prefix's ALLOW through.
    assert acls(broker, "--remove", "--force", "--deny-principal", "User:bob", "--operation",
                "Write", "--topic", secret).returncode == 0
    wait_until(lambda: produce_errors(broker.sasl_bootstrap, bob, secret, 1) == [],
               "bob writes to the secret topic once the DENY is gone")


def test_a_consumer_reads_in_its_group_only(broker):
    t = C.create_topic(broker.bootstrap, C.unique_name("acl-feed"))
    C.ck_produce(broker.bootstrap, t, [C.Rec(None, f"v{i}".encode()) for i in range(20)])
    g = C.unique_name("acl-carol")
    assert acls(broker, "--add", "--allow-principal", "User:carol", "--consumer", "--topic", t,
                "--group", g).returncode == 0
    carol = user("carol")
    wait_until(lambda: t in visible(broker.sasl_bootstrap, carol), "carol sees the topic")
    assert consume_error(broker.sasl_bootstrap, carol, t, g) == 20
    assert consume_error(broker.sasl_bootstrap, carol, t, g + "-other") == \
        KafkaError.GROUP_AUTHORIZATION_FAILED
    # The offsets carol committed in her group are there for the administrator.
    r = kafka_script("kafka-consumer-groups.sh", "--bootstrap-server", broker.bootstrap,
                     "--describe", "--group", g, "--offsets")
    assert r.returncode == 0, r
    assert re.search(rf"^{g}\s+{t}\s+0\s+20\s+20\s+0\s", r.stdout, re.M), r.stdout


def test_a_super_user_needs_no_acl(broker):
    t = C.create_topic(broker.bootstrap, C.unique_name("acl-admin"))
    admin = user("admin")
    assert produce_errors(broker.sasl_bootstrap, admin, t, 5) == []
    with C.java_client_config(admin) as props:
        r = kafka_script("kafka-topics.sh", "--bootstrap-server", broker.sasl_bootstrap,
                         "--command-config", props, "--delete", "--topic", t)
    assert (r.returncode, r.stdout) == (0, ""), r


def test_a_client_certificate_is_the_principal_the_mapping_rules_make(broker, pki):
    t = C.create_topic(broker.bootstrap, C.unique_name("acl-mtls"))
    tls = C.Tls.of(pki.ca, pki.client)
    assert produce_errors(broker.ssl_bootstrap, tls, t, 1) == [
        KafkaError.TOPIC_AUTHORIZATION_FAILED]
    # CN=client becomes User:client (not User:CN=client).
    assert acls(broker, "--add", "--allow-principal", "User:client", "--producer",
                "--topic", t).returncode == 0
    wait_until(lambda: produce_errors(broker.ssl_bootstrap, tls, t, 3) == [],
               "the certificate's principal may write")
    assert C.watermarks(broker.bootstrap, t)[1] >= 3
