//! Every topic-level config Kafka 4.x defines: type, default, the broker keys it falls back to,
//! validation and documentation. DescribeConfigs reports from this table; CreateTopics,
//! AlterConfigs and IncrementalAlterConfigs validate against it.

use std::collections::BTreeMap;

use crate::log::rewrite::TopicCompression;
use crate::log::LogConfig;

/// DescribeConfigs `config_type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

/// DescribeConfigs `config_source` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
    GroupConfig = 8,
}

#[derive(Debug, Clone, Copy)]
enum Rule {
    Any,
    AtLeast(i64),
    Between(i64, i64),
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
    Ratio,
    Bool,
}

pub struct TopicConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    /// Kafka's default when neither the topic nor the broker sets it.
    pub default: &'static str,
    /// Broker keys whose value is the topic's default, in precedence order.
    pub synonyms: &'static [&'static str],
    rule: Rule,
    pub doc: &'static str,
}

const LONG_MAX: &str = "9223372036854775807";

macro_rules! def {
    ($name:expr, $ty:ident, $default:expr, [$($syn:expr),*], $rule:expr, $doc:expr) => {
        TopicConfigDef { name: $name, ty: ConfigType::$ty, default: $default, synonyms: &[$($syn),*], rule: $rule, doc: $doc }
    };
}

pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def!("cleanup.policy", List, "delete", ["log.cleanup.policy"], Rule::ListOf(&["compact", "delete"]), "The retention policy on old log segments: \"delete\" discards old segments when their retention time or size limit is reached; \"compact\" keeps the latest value per key."),
    def!("compression.gzip.level", Int, "-1", ["compression.gzip.level"], Rule::Between(-1, 9), "The compression level to use if compression.type is set to gzip."),
    def!("compression.lz4.level", Int, "9", ["compression.lz4.level"], Rule::Between(1, 17), "The compression level to use if compression.type is set to lz4."),
    def!("compression.type", String, "producer", ["compression.type"], Rule::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), "The final compression type for a topic: a codec, \"uncompressed\", or \"producer\" to keep the codec the producer chose."),
    def!("compression.zstd.level", Int, "3", ["compression.zstd.level"], Rule::Between(-131072, 22), "The compression level to use if compression.type is set to zstd."),
    def!("delete.retention.ms", Long, "86400000", ["log.cleaner.delete.retention.ms"], Rule::AtLeast(0), "How long tombstone markers are retained on compacted topics."),
    def!("file.delete.delay.ms", Long, "60000", ["log.segment.delete.delay.ms"], Rule::AtLeast(0), "The time to wait before deleting a file from the filesystem."),
    def!("flush.messages", Long, LONG_MAX, ["log.flush.interval.messages"], Rule::AtLeast(1), "Force an fsync of the log after this many messages."),
    def!("flush.ms", Long, LONG_MAX, ["log.flush.interval.ms"], Rule::AtLeast(0), "Force an fsync of the log when the oldest unflushed message is this old."),
    def!("follower.replication.throttled.replicas", List, "", [], Rule::Any, "Replicas whose log replication should be throttled on the follower side."),
    def!("index.interval.bytes", Int, "4096", ["log.index.interval.bytes"], Rule::AtLeast(0), "How frequently an entry is added to the offset index."),
    def!("leader.replication.throttled.replicas", List, "", [], Rule::Any, "Replicas whose log replication should be throttled on the leader side."),
    def!("local.retention.bytes", Long, "-2", ["log.local.retention.bytes"], Rule::AtLeast(-2), "The maximum size local log segments can grow to before being deleted (tiered storage)."),
    def!("local.retention.ms", Long, "-2", ["log.local.retention.ms"], Rule::AtLeast(-2), "How long local log segments are retained before being deleted (tiered storage)."),
    def!("max.compaction.lag.ms", Long, LONG_MAX, ["log.cleaner.max.compaction.lag.ms"], Rule::AtLeast(1), "The maximum time a message remains ineligible for compaction."),
    def!("max.message.bytes", Int, "1048588", ["message.max.bytes"], Rule::AtLeast(0), "The largest record batch size allowed."),
    def!("message.timestamp.after.max.ms", Long, "3600000", ["log.message.timestamp.after.max.ms"], Rule::AtLeast(0), "How far a record's timestamp may be ahead of the broker's time."),
    def!("message.timestamp.before.max.ms", Long, LONG_MAX, ["log.message.timestamp.before.max.ms"], Rule::AtLeast(0), "How far a record's timestamp may be behind the broker's time."),
    def!("message.timestamp.type", String, "CreateTime", ["log.message.timestamp.type"], Rule::OneOf(&["CreateTime", "LogAppendTime"]), "Whether record timestamps are the producer's (CreateTime) or the broker's append time (LogAppendTime)."),
    def!("min.cleanable.dirty.ratio", Double, "0.5", ["log.cleaner.min.cleanable.ratio"], Rule::Ratio, "How much of the log may be uncompacted before the cleaner runs."),
    def!("min.compaction.lag.ms", Long, "0", ["log.cleaner.min.compaction.lag.ms"], Rule::AtLeast(0), "The minimum time a message remains uncompacted."),
    def!("min.insync.replicas", Int, "1", ["min.insync.replicas"], Rule::AtLeast(1), "The minimum number of in-sync replicas that must acknowledge a write with acks=all."),
    def!("preallocate", Boolean, "false", ["log.preallocate"], Rule::Bool, "Whether to preallocate the file on disk when creating a new log segment."),
    def!("remote.log.copy.disable", Boolean, "false", [], Rule::Bool, "Whether copying segments to remote storage is disabled (tiered storage)."),
    def!("remote.log.delete.on.disable", Boolean, "false", [], Rule::Bool, "Whether remote data is deleted when tiered storage is disabled for the topic."),
    def!("remote.storage.enable", Boolean, "false", [], Rule::Bool, "Whether tiered storage is enabled for the topic."),
    def!("retention.bytes", Long, "-1", ["log.retention.bytes"], Rule::AtLeast(-1), "The maximum size a partition can grow to before old segments are discarded (-1: no limit)."),
    def!("retention.ms", Long, "604800000", ["log.retention.ms", "log.retention.minutes", "log.retention.hours"], Rule::AtLeast(-1), "How long a log is retained before old segments are discarded (-1: no time limit)."),
    def!("segment.bytes", Int, "1073741824", ["log.segment.bytes"], Rule::AtLeast(1_048_576), "The segment file size for the log."),
    def!("segment.index.bytes", Int, "10485760", ["log.index.size.max.bytes"], Rule::AtLeast(4), "The size of the index that maps offsets to file positions."),
    def!("segment.jitter.ms", Long, "0", ["log.roll.jitter.ms", "log.roll.jitter.hours"], Rule::AtLeast(0), "The maximum random jitter subtracted from the scheduled segment roll time."),
    def!("segment.ms", Long, "604800000", ["log.roll.ms", "log.roll.hours"], Rule::AtLeast(1), "The period after which a segment is rolled even if it is not full."),
    def!("unclean.leader.election.enable", Boolean, "false", ["unclean.leader.election.enable"], Rule::Bool, "Whether replicas not in the ISR may be elected leader as a last resort."),
];

/// Topic configs whose broker key has no default of its own in Kafka (or that have no broker key):
/// Kafka lists no DEFAULT_CONFIG synonym for them.
const NO_DEFAULT_SYNONYM: &[&str] = &[
    "flush.ms",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.ms",
    "segment.jitter.ms",
    "segment.ms",
];

impl TopicConfigDef {
    /// Whether DescribeConfigs lists Kafka's default among the synonyms.
    pub fn default_synonym(&self) -> bool {
        !NO_DEFAULT_SYNONYM.contains(&self.name)
    }
}

/// A new Kafka 4.x cluster stores `min.insync.replicas=1` as a cluster-wide dynamic default
/// (with eligible leader replicas); gregor reports the same.
pub const CLUSTER_DYNAMIC_DEFAULTS: &[(&str, &str)] = &[("min.insync.replicas", "1")];

pub fn find(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks one topic config value; the message names the key and the value, as Kafka's does.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    let def = find(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
    let bad = |why: String| {
        Err(format!(
            "Invalid value {value} for configuration {name}: {why}"
        ))
    };
    let v = value.trim();
    match def.ty {
        ConfigType::Int | ConfigType::Long => {
            let Ok(n) = v.parse::<i64>() else {
                return bad("Not a number of type ".to_string()
                    + if def.ty == ConfigType::Int {
                        "INT"
                    } else {
                        "LONG"
                    });
            };
            if def.ty == ConfigType::Int && i32::try_from(n).is_err() {
                return bad("Not a number of type INT".into());
            }
            match def.rule {
                Rule::AtLeast(min) if n < min => bad(format!("Value must be at least {min}")),
                Rule::Between(lo, hi) if n < lo || n > hi => {
                    bad(format!("Value must be between {lo} and {hi}"))
                }
                _ => Ok(()),
            }
        }
        ConfigType::Double => match v.parse::<f64>() {
            Ok(x) if matches!(def.rule, Rule::Ratio) && !(0.0..=1.0).contains(&x) => {
                bad("Value must be between 0 and 1".into())
            }
            Ok(_) => Ok(()),
            Err(_) => bad("Not a number of type DOUBLE".into()),
        },
        ConfigType::Boolean => match v.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => bad("Expected value to be either true or false".into()),
        },
        ConfigType::String => match def.rule {
            Rule::OneOf(allowed) if !allowed.contains(&v) => {
                bad(format!("String must be one of: {}", allowed.join(", ")))
            }
            _ => Ok(()),
        },
        ConfigType::List => match def.rule {
            Rule::ListOf(allowed) => {
                let items: Vec<&str> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                match items.iter().find(|i| !allowed.contains(i)) {
                    Some(_) => bad(format!("String must be one of: {}", allowed.join(", "))),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        },
        ConfigType::Unknown | ConfigType::Short | ConfigType::Class | ConfigType::Password => {
            Ok(())
        }
    }
}

/// The value a broker key gives a topic config (hours/minutes synonyms converted to millis).
fn broker_value(key: &str, broker: &BTreeMap<String, String>) -> Option<String> {
    let v = broker.get(key)?.trim().to_string();
    let scale = if key.ends_with(".hours") {
        3_600_000
    } else if key.ends_with(".minutes") {
        60_000
    } else {
        return Some(v);
    };
    v.parse::<i64>()
        .ok()
        .map(|n| (n.saturating_mul(scale)).to_string())
}

/// One config's effective value and where it comes from, with the synonyms that lead to it
/// (topic override, then broker keys set in the config file, then Kafka's default).
pub fn resolve(
    def: &TopicConfigDef,
    topic: &BTreeMap<String, String>,
    broker: &BTreeMap<String, String>,
) -> Vec<(String, String, ConfigSource)> {
    let mut chain = Vec::new();
    if let Some(v) = topic.get(def.name) {
        chain.push((def.name.to_string(), v.clone(), ConfigSource::DynamicTopic));
    }
    for (k, v) in CLUSTER_DYNAMIC_DEFAULTS
        .iter()
        .filter(|(k, _)| *k == def.name)
    {
        chain.push((
            k.to_string(),
            v.to_string(),
            ConfigSource::DynamicDefaultBroker,
        ));
    }
    for syn in def.synonyms {
        if let Some(v) = broker_value(syn, broker) {
            chain.push((syn.to_string(), v, ConfigSource::StaticBroker));
        }
    }
    chain.push((
        def.synonyms
            .first()
            .copied()
            .unwrap_or(def.name)
            .to_string(),
        def.default.to_string(),
        ConfigSource::Default,
    ));
    chain
}

/// The log settings of a topic: the broker's, overridden by the topic's configs.
pub fn log_config(base: &LogConfig, topic: &BTreeMap<String, String>) -> LogConfig {
    let num = |k: &str| topic.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    let mut c = base.clone();
    if let Some(v) = num("segment.bytes") {
        c.segment_bytes = v as u64;
    }
    if let Some(v) = num("segment.ms") {
        c.roll_ms = v;
    }
    if let Some(v) = num("index.interval.bytes") {
        c.index_interval_bytes = v as u64;
    }
    if let Some(v) = num("flush.messages") {
        c.flush_interval_messages = v as u64;
    }
    if let Some(v) = num("flush.ms") {
        c.flush_interval_ms = v;
    }
    if let Some(v) = num("max.message.bytes") {
        c.max_message_bytes = v as usize;
    }
    if let Some(v) = num("message.timestamp.after.max.ms") {
        c.timestamp_after_max_ms = v;
    }
    if let Some(v) = num("message.timestamp.before.max.ms") {
        c.timestamp_before_max_ms = v;
    }
    if let Some(v) = topic
        .get("compression.type")
        .and_then(|v| TopicCompression::parse(v))
    {
        c.compression = v;
    }
    if let Some(v) = topic.get("preallocate") {
        c.preallocate = v.trim().eq_ignore_ascii_case("true");
    }
    if let Some(v) = topic.get("message.timestamp.type") {
        c.log_append_time = v.trim() == "LogAppendTime";
    }
    super::retention::apply_topic(&mut c, topic);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_follows_kafka() {
        assert!(validate("segment.bytes", "1048576").is_ok());
        assert!(validate("segment.bytes", "1000")
            .unwrap_err()
            .contains("at least 1048576"));
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "forever").is_err());
        assert!(validate("message.timestamp.type", "LogAppendTime").is_ok());
        assert!(validate("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate("preallocate", "yes").is_err());
        assert!(validate("no.such.config", "1")
            .unwrap_err()
            .contains("Unknown"));
        assert!(validate("max.message.bytes", "99999999999").is_err());
    }

    #[test]
    fn resolution_prefers_topic_then_broker_then_default() {
        let def = find("retention.ms").unwrap();
        let broker: BTreeMap<String, String> =
            [("log.retention.hours".to_string(), "2".to_string())].into();
        let chain = resolve(def, &BTreeMap::new(), &broker);
        assert_eq!(
            chain[0],
            (
                "log.retention.hours".into(),
                "7200000".into(),
                ConfigSource::StaticBroker
            )
        );
        assert_eq!(chain.last().unwrap().2, ConfigSource::Default);
        let topic: BTreeMap<String, String> =
            [("retention.ms".to_string(), "5".to_string())].into();
        assert_eq!(
            resolve(def, &topic, &broker)[0].2,
            ConfigSource::DynamicTopic
        );
    }
}
