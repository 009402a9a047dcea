"""kafka-configs.sh (kafka.admin.ConfigCommand) on topics and brokers: --alter --add-config /
--delete-config, --describe (the dynamic configs with their synonyms), --describe --all (every
topic config with its default and synonyms, exactly as Kafka 4.1.1 prints it), the errors for
an unknown key, invalid values and an unknown topic; broker 1's dynamic/default/all configs;
topic configs survive a broker restart.

The broker gets harness.admin.ADMIN_BROKER_CONFIG (num.partitions=2, min.insync.replicas=1,
default.replication.factor=1) as static configuration on both targets. On Kafka 4.1.1 a new
cluster also has a cluster-level min.insync.replicas=1 (DYNAMIC_DEFAULT_BROKER_CONFIG), which
the controller writes when ELR is enabled (the 4.1 default); it shows up in the synonyms and in
`--entity-type brokers --entity-default`.
"""

from pathlib import Path

import pytest

from harness import clients as C
from harness.admin import Mismatches, parse_configs_describe, start_admin_broker, tool

TOPIC_ALL_CONFIGS = [  # kafka-configs.sh --describe --all, after cleanup.policy=compact
    "cleanup.policy=compact sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact, DEFAULT_CONFIG:log.cleanup.policy=delete}",
    "compression.gzip.level=-1 sensitive=false synonyms={DEFAULT_CONFIG:compression.gzip.level=-1}",
    "compression.lz4.level=9 sensitive=false synonyms={DEFAULT_CONFIG:compression.lz4.level=9}",
    "compression.type=producer sensitive=false synonyms={DEFAULT_CONFIG:compression.type=producer}",
    "compression.zstd.level=3 sensitive=false synonyms={DEFAULT_CONFIG:compression.zstd.level=3}",
    "delete.retention.ms=86400000 sensitive=false synonyms={DEFAULT_CONFIG:log.cleaner.delete.retention.ms=86400000}",
    "file.delete.delay.ms=60000 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.delete.delay.ms=60000}",
    "flush.messages=9223372036854775807 sensitive=false synonyms={DEFAULT_CONFIG:log.flush.interval.messages=9223372036854775807}",
    "flush.ms=9223372036854775807 sensitive=false synonyms={}",
    "follower.replication.throttled.replicas= sensitive=false synonyms={}",
    "index.interval.bytes=4096 sensitive=false synonyms={DEFAULT_CONFIG:log.index.interval.bytes=4096}",
    "leader.replication.throttled.replicas= sensitive=false synonyms={}",
    "local.retention.bytes=-2 sensitive=false synonyms={DEFAULT_CONFIG:log.local.retention.bytes=-2}",
    "local.retention.ms=-2 sensitive=false synonyms={DEFAULT_CONFIG:log.local.retention.ms=-2}",
    "max.compaction.lag.ms=9223372036854775807 sensitive=false synonyms={DEFAULT_CONFIG:log.cleaner.max.compaction.lag.ms=9223372036854775807}",
    "max.message.bytes=1048588 sensitive=false synonyms={DEFAULT_CONFIG:message.max.bytes=1048588}",
    "message.timestamp.after.max.ms=3600000 sensitive=false synonyms={DEFAULT_CONFIG:log.message.timestamp.after.max.ms=3600000}",
    "message.timestamp.before.max.ms=9223372036854775807 sensitive=false synonyms={DEFAULT_CONFIG:log.message.timestamp.before.max.ms=9223372036854775807}",
    "message.timestamp.type=CreateTime sensitive=false synonyms={DEFAULT_CONFIG:log.message.timestamp.type=CreateTime}",
    "min.cleanable.dirty.ratio=0.5 sensitive=false synonyms={DEFAULT_CONFIG:log.cleaner.min.cleanable.ratio=0.5}",
    "min.compaction.lag.ms=0 sensitive=false synonyms={DEFAULT_CONFIG:log.cleaner.min.compaction.lag.ms=0}",
    "min.insync.replicas=1 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:min.insync.replicas=1, STATIC_BROKER_CONFIG:min.insync.replicas=1, DEFAULT_CONFIG:min.insync.replicas=1}",
    "preallocate=false sensitive=false synonyms={DEFAULT_CONFIG:log.preallocate=false}",
    "remote.log.copy.disable=false sensitive=false synonyms={}",
    "remote.log.delete.on.disable=false sensitive=false synonyms={}",
    "remote.storage.enable=false sensitive=false synonyms={}",
    "retention.bytes=-1 sensitive=false synonyms={DEFAULT_CONFIG:log.retention.bytes=-1}",
    "retention.ms=604800000 sensitive=false synonyms={}",
    "segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.bytes=1073741824}",
    "segment.index.bytes=10485760 sensitive=false synonyms={DEFAULT_CONFIG:log.index.size.max.bytes=10485760}",
    "segment.jitter.ms=0 sensitive=false synonyms={}",
    "segment.ms=604800000 sensitive=false synonyms={}",
    "unclean.leader.election.enable=false sensitive=false synonyms={DEFAULT_CONFIG:unclean.leader.election.enable=false}",
]

DYN_COMPACT = ("  cleanup.policy=compact sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:"
               "cleanup.policy=compact, DEFAULT_CONFIG:log.cleanup.policy=delete}")


@pytest.fixture(scope="module")
def admin_broker(tmp_path_factory):
    b = None
    try:
        b = start_admin_broker(tmp_path_factory.mktemp("admin-configs"))
        yield b
    finally:
        if b is not None:
            b.close()


def configs(b, *args):
    return tool("kafka-configs.sh", b.bootstrap, *args)


def ok(r):
    assert r.returncode == 0, f"rc {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    return r.stdout


def topic_cfg(b, t, *args):
    return configs(b, "--entity-type", "topics", "--entity-name", t, *args)


def test_topic_config_alter_describe(admin_broker):
    b = admin_broker
    m = Mismatches()
    t = C.unique_name("cfg")
    C.create_topic(b.bootstrap, t, 1)
    m.eq("describe (no dynamic configs)", ok(topic_cfg(b, t, "--describe")),
         f"Dynamic configs for topic {t} are:\n")

    m.eq("alter --add-config", ok(topic_cfg(b, t, "--alter", "--add-config",
                                            "retention.ms=5000,cleanup.policy=compact")),
         f"Completed updating config for topic {t}.\n")
    m.eq("describe after --add-config", ok(topic_cfg(b, t, "--describe")).splitlines(), [
        f"Dynamic configs for topic {t} are:",
        DYN_COMPACT,
        "  retention.ms=5000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=5000}",
    ])

    m.eq("alter --delete-config", ok(topic_cfg(b, t, "--alter", "--delete-config",
                                               "retention.ms")),
         f"Completed updating config for topic {t}.\n")
    m.eq("describe after --delete-config", ok(topic_cfg(b, t, "--describe")).splitlines(),
         [f"Dynamic configs for topic {t} are:", DYN_COMPACT])

    out = ok(topic_cfg(b, t, "--describe", "--all"))
    [(header, entries)] = parse_configs_describe(out)
    m.eq("--all header", header, f"All configs for topic {t} are:")
    # a handful first (a clearer message than the whole listing)
    vals = {k: v[0] for k, v in entries.items()}
    m.eq("--all values", {k: vals.get(k) for k in (
        "max.message.bytes", "segment.bytes", "cleanup.policy", "min.insync.replicas",
        "message.timestamp.type", "retention.ms", "retention.bytes", "compression.type")}, {
        "max.message.bytes": "1048588", "segment.bytes": "1073741824",
        "cleanup.policy": "compact", "min.insync.replicas": "1",
        "message.timestamp.type": "CreateTime", "retention.ms": "604800000",
        "retention.bytes": "-1", "compression.type": "producer"})
    m.eq("--all keys", sorted(entries), sorted(ln.split("=", 1)[0] for ln in TOPIC_ALL_CONFIGS))
    # then every key, value and synonym list exactly as Kafka 4.1.1 prints them
    m.eq("--all lines", out.splitlines()[1:], ["  " + ln for ln in TOPIC_ALL_CONFIGS])
    m.check()


def test_topic_config_errors(admin_broker):
    """ConfigCommand exits 1 and prints the ExecutionException and its cause on stderr."""
    b = admin_broker
    t = C.unique_name("cfgerr")
    C.create_topic(b.bootstrap, t, 1, config={"retention.ms": "12345"})
    exc = "org.apache.kafka.common.errors.InvalidConfigurationException"
    cases = [
        (t, "foo.bar=1", exc, "Unknown topic config name: foo.bar"),
        (t, "segment.bytes=10", exc,
         "Invalid value 10 for configuration segment.bytes: Value must be at least 1048576"),
        (t, "retention.ms=abc", exc,
         "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
        (t, "cleanup.policy=bogus", exc,
         "Invalid value bogus for configuration cleanup.policy: String must be one of: "
         "compact, delete"),
        (t + "-nope", "retention.ms=1",
         "org.apache.kafka.common.errors.UnknownTopicOrPartitionException", ""),
    ]
    m = Mismatches()
    for name, kv, exc_class, msg in cases:
        args = ["--entity-type", "topics", "--entity-name", name, "--alter", "--add-config", kv]
        r = configs(b, *args)
        lines = r.stderr.splitlines()
        m.eq(f"--add-config {kv} on {name}",
             (r.returncode, r.stdout, [ln for ln in lines if not ln.startswith("\t")]), (1, "", [
            f"Error while executing config command with args '--bootstrap-server "
            f"{b.bootstrap} {' '.join(args)}'",
            f"java.util.concurrent.ExecutionException: {exc_class}: {msg}",
            f"Caused by: {exc_class}: {msg}"]))
    m.check()

    # nothing changed
    assert ok(topic_cfg(b, t, "--describe")).splitlines() == [
        f"Dynamic configs for topic {t} are:",
        "  retention.ms=12345 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=12345}"]
    assert ok(topic_cfg(b, t + "-nope", "--describe")) == (
        f"The topic '{t}-nope' doesn't exist and doesn't have dynamic config.\n")


def test_broker_configs(admin_broker):
    b = admin_broker
    brk = ["--entity-type", "brokers"]
    m = Mismatches()
    m.eq("broker 1 --describe", ok(configs(b, *brk, "--entity-name", "1", "--describe")),
         "Dynamic configs for broker 1 are:\n")
    m.eq("--entity-default --describe",
         ok(configs(b, *brk, "--entity-default", "--describe")).splitlines(), [
        "Default configs for brokers in the cluster are:",
        "  min.insync.replicas=1 sensitive=false "
        "synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:min.insync.replicas=1}"])

    [(header, entries)] = parse_configs_describe(
        ok(configs(b, *brk, "--entity-name", "1", "--describe", "--all")))
    m.eq("broker 1 --all header", header, "All configs for broker 1 are:")
    d = str(b.data_dir)
    want = {
        "log.dirs": (d, "false", f"STATIC_BROKER_CONFIG:log.dirs={d}"),
        "node.id": ("1", "false", "STATIC_BROKER_CONFIG:node.id=1"),
        "broker.id": ("1", "false", "STATIC_BROKER_CONFIG:broker.id=1, DEFAULT_CONFIG:broker.id=-1"),
        "num.partitions": ("2", "false", "STATIC_BROKER_CONFIG:num.partitions=2, "
                                         "DEFAULT_CONFIG:num.partitions=1"),
        "default.replication.factor": ("1", "false",
                                       "STATIC_BROKER_CONFIG:default.replication.factor=1, "
                                       "DEFAULT_CONFIG:default.replication.factor=1"),
        "auto.create.topics.enable": ("true", "false",
                                      "STATIC_BROKER_CONFIG:auto.create.topics.enable=true, "
                                      "DEFAULT_CONFIG:auto.create.topics.enable=true"),
        "min.insync.replicas": ("1", "false",
                                "DYNAMIC_DEFAULT_BROKER_CONFIG:min.insync.replicas=1, "
                                "STATIC_BROKER_CONFIG:min.insync.replicas=1, "
                                "DEFAULT_CONFIG:min.insync.replicas=1"),
        "advertised.listeners": (f"PLAINTEXT://{b.bootstrap}", "false",
                                 f"STATIC_BROKER_CONFIG:advertised.listeners="
                                 f"PLAINTEXT://{b.bootstrap}"),
        "message.max.bytes": ("1048588", "false", "DEFAULT_CONFIG:message.max.bytes=1048588"),
        "log.segment.bytes": ("1073741824", "false",
                              "DEFAULT_CONFIG:log.segment.bytes=1073741824"),
        "log.cleanup.policy": ("delete", "false", "DEFAULT_CONFIG:log.cleanup.policy=delete"),
        "log.retention.hours": ("168", "false", "DEFAULT_CONFIG:log.retention.hours=168"),
        "log.retention.ms": ("null", "false", ""),
        "log.retention.bytes": ("-1", "false", "DEFAULT_CONFIG:log.retention.bytes=-1"),
    }
    for k, v in want.items():
        m.eq(f"broker 1 --all: {k}", entries.get(k), v)
    m.check()


def test_topic_configs_survive_restart(admin_broker):
    b = admin_broker
    t = C.unique_name("cfgrestart")
    C.create_topic(b.bootstrap, t, 1, config={"retention.ms": "7000"})
    assert ok(topic_cfg(b, t, "--alter", "--add-config", "cleanup.policy=compact,"
                        "max.message.bytes=2000000")) == f"Completed updating config for topic {t}.\n"
    expected = [
        f"Dynamic configs for topic {t} are:",
        DYN_COMPACT,
        "  max.message.bytes=2000000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:"
        "max.message.bytes=2000000, DEFAULT_CONFIG:message.max.bytes=1048588}",
        "  retention.ms=7000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=7000}",
    ]
    before = ok(topic_cfg(b, t, "--describe")).splitlines()
    b.stop()
    b.start()
    C.wait_topic(b.bootstrap, t, 1)
    after = ok(topic_cfg(b, t, "--describe")).splitlines()
    assert after == before, "configs changed across the restart"
    assert before == expected


KAFKA_BROKER_CONFIG_NAMES = (Path(__file__).parent / "kafka_4_1_1_broker_config_names.txt")


def test_broker_config_names_and_secrets(tmp_path):
    """`--describe --all` on broker 1 lists exactly the configs Kafka 4.1.1's broker lists
    (every non-internal key of its ConfigDef; the list is generated by
    compat-tests/tools/gen_broker_configs.py), and a password set in the broker's config comes
    back sensitive, without its value, and is not in the broker's log."""
    b = start_admin_broker(tmp_path, **{"ssl.keystore.password": "hunter2"})
    try:
        out = ok(configs(b, "--entity-type", "brokers", "--entity-name", "1", "--describe",
                         "--all"))
        [(header, entries)] = parse_configs_describe(out)
        m = Mismatches()
        m.eq("header", header, "All configs for broker 1 are:")
        want = KAFKA_BROKER_CONFIG_NAMES.read_text().split()
        m.eq("broker config names", sorted(entries), sorted(want))
        m.eq("ssl.keystore.password", entries.get("ssl.keystore.password"),
             ("null", "true", "STATIC_BROKER_CONFIG:ssl.keystore.password=null"))
        m.eq("ssl.truststore.password", entries.get("ssl.truststore.password"),
             ("null", "true", ""))
        m.eq("secret in output", "hunter2" in out, False)
        b.stop()
        m.eq("secret in broker log", "hunter2" in b.log_path.read_text(errors="replace"), False)
        m.check()
    finally:
        b.close()
