//! Which config keys are Kafka's: every key of Kafka 4.1.1's broker ConfigDef
//! ([`super::broker_configs::BROKER_CONFIGS`]), keys earlier Kafka versions defined, and Kafka's
//! per-listener and plugin prefixes. gregor accepts all of them; those it does not yet honour are
//! logged once at start. Keys outside these (and not gregor's own) are unknown.

/// Broker keys of earlier Kafka versions (ZooKeeper mode, removed in 4.0).
const EARLIER_KAFKA_KEYS: &[&str] = &[
    "auto.include.jmx.reporter",
    "broker.id.generation.enable",
    "control.plane.listener.name",
    "controlled.shutdown.max.retries",
    "controlled.shutdown.retry.backoff.ms",
    "delegation.token.master.key",
    "inter.broker.protocol.version",
    "leader.imbalance.per.broker.percentage",
    "log.message.downconversion.enable",
    "reserved.broker.max.id",
    "zookeeper.connect",
];

/// Prefixes of Kafka's per-listener and plugin keys (`listener.name.*`, `ssl.*`, `sasl.*`, ...).
const KAFKA_KEY_PREFIXES: &[&str] = &[
    "listener.name.",
    "ssl.",
    "sasl.",
    "log.cleaner.",
    "remote.log.",
    "group.",
    "share.",
    "confluent.",
    "metrics.",
    "metric.",
    "quota.",
    "controller.",
    "metadata.",
    "kafka.metrics.",
];

/// Whether Kafka defines (or defined) `key`.
pub(super) fn is_kafka_key(key: &str) -> bool {
    super::describe::kafka_def(key).is_some()
        || EARLIER_KAFKA_KEYS.contains(&key)
        || KAFKA_KEY_PREFIXES.iter().any(|p| key.starts_with(p))
}
