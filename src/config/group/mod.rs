//! Group configs (KIP-848; config resource type GROUP, 32): Kafka 4.1.1's `GroupConfig` keys
//! with their types, defaults, validation and documentation, the broker keys
//! (`group.consumer.*`, `group.share.*`, `group.streams.*`) that default and bound them, and the
//! DescribeConfigs entries of a group (`kafka.server.ConfigHelper.createGroupConfigEntry`).
//!
//! gregor only runs classic groups: these values are stored, validated and described as Kafka
//! does, but change no group's behaviour (they apply to KIP-848 consumer, share and streams
//! groups).

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::topic::{ConfigSource, ConfigType};

mod broker_defaults;
mod java;

use broker_defaults::KINDS;
pub use broker_defaults::{honoured, GroupConfigDefaults};
use java::{java_trim, valid_auto_offset_reset};

#[derive(Debug, Clone, Copy)]
enum Rule {
    AtLeast(i64),
    OneOf(&'static [&'static str]),
    /// `ShareGroupAutoOffsetResetStrategy.Validator`.
    AutoOffsetReset,
}

/// One of Kafka's `GroupConfig` keys.
pub struct GroupConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    /// `GroupConfig`'s own default (used where no broker key gives one).
    default: &'static str,
    /// The broker key whose value is the default (`extractGroupConfigMap`).
    broker_key: Option<&'static str>,
    rule: Rule,
    pub doc: &'static str,
}

const AUTO_OFFSET_RESET_DOC: &str = "The strategy to initialize the share-partition start offset. <ul><li>earliest: automatically reset the offset to the earliest offset</li><li>latest: automatically reset the offset to the latest offset</li><li>by_duration:&lt;duration&gt;: automatically reset the offset to a configured duration from the current timestamp. &lt;duration&gt; must be specified in ISO8601 format (PnDTnHnMn.nS). Negative duration is not allowed.</li><li>anything else: throw exception to the share consumer.</li></ul>";
const ISOLATION_LEVEL_DOC: &str = "Controls how to read records written transactionally. If set to \"read_committed\", the share group will only deliver transactional records which have been committed. If set to \"read_uncommitted\", the share group will return all messages, even transactional messages which have been aborted. Non-transactional records will be returned unconditionally in either mode.";

macro_rules! def {
    ($name:expr, $ty:ident, $default:expr, $broker:expr, $rule:expr, $doc:expr) => {
        GroupConfigDef {
            name: $name,
            ty: ConfigType::$ty,
            default: $default,
            broker_key: $broker,
            rule: $rule,
            doc: $doc,
        }
    };
}

/// Kafka's `GroupConfig` definitions, in its definition order (the order it parses them in,
/// so the first invalid one is the one reported).
#[rustfmt::skip]
pub const GROUP_CONFIGS: &[GroupConfigDef] = &[
    def!("consumer.session.timeout.ms", Int, "45000", Some("group.consumer.session.timeout.ms"), Rule::AtLeast(1), "The timeout to detect client failures when using the consumer group protocol."),
    def!("consumer.heartbeat.interval.ms", Int, "5000", Some("group.consumer.heartbeat.interval.ms"), Rule::AtLeast(1), "The heartbeat interval given to the members of a consumer group."),
    def!("share.session.timeout.ms", Int, "45000", Some("group.share.session.timeout.ms"), Rule::AtLeast(1), "The timeout to detect client failures when using the share group protocol."),
    def!("share.heartbeat.interval.ms", Int, "5000", Some("group.share.heartbeat.interval.ms"), Rule::AtLeast(1), "The heartbeat interval given to the members of a share group."),
    def!("share.record.lock.duration.ms", Int, "30000", Some("group.share.record.lock.duration.ms"), Rule::AtLeast(1000), "The record acquisition lock duration in milliseconds for share groups."),
    def!("share.auto.offset.reset", String, "latest", None, Rule::AutoOffsetReset, AUTO_OFFSET_RESET_DOC),
    def!("share.isolation.level", String, "read_uncommitted", None, Rule::OneOf(&["read_committed", "read_uncommitted"]), ISOLATION_LEVEL_DOC),
    def!("streams.session.timeout.ms", Int, "45000", None, Rule::AtLeast(1), "The timeout to detect client failures when using the streams group protocol."),
    def!("streams.heartbeat.interval.ms", Int, "5000", None, Rule::AtLeast(1), "The heartbeat interval given to the members."),
    def!("streams.num.standby.replicas", Int, "0", None, Rule::AtLeast(0), "The number of standby replicas for each task."),
];

/// The order Kafka 4.1.1 lists a group's configs in (its hash map's iteration order).
const DESCRIBE_ORDER: [&str; 10] = [
    "consumer.session.timeout.ms",
    "streams.heartbeat.interval.ms",
    "share.auto.offset.reset",
    "share.record.lock.duration.ms",
    "consumer.heartbeat.interval.ms",
    "share.session.timeout.ms",
    "share.isolation.level",
    "streams.session.timeout.ms",
    "share.heartbeat.interval.ms",
    "streams.num.standby.replicas",
];

pub fn find(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|d| d.name == name)
}

/// A value as Kafka's ConfigDef parses and prints it back; the message is Kafka's.
fn parse(def: &GroupConfigDef, raw: &str) -> Result<String, String> {
    let name = def.name;
    match def.ty {
        ConfigType::Int => {
            let n: i32 = java_trim(raw).parse().map_err(|_| {
                format!("Invalid value {raw} for configuration {name}: Not a number of type INT")
            })?;
            match def.rule {
                Rule::AtLeast(min) if i64::from(n) < min => Err(format!(
                    "Invalid value {n} for configuration {name}: Value must be at least {min}"
                )),
                _ => Ok(n.to_string()),
            }
        }
        _ => {
            let v = java_trim(raw);
            match def.rule {
                Rule::OneOf(allowed) if !allowed.contains(&v) => Err(format!(
                    "Invalid value {v} for configuration {name}: String must be one of: {}",
                    allowed.join(", ")
                )),
                Rule::AutoOffsetReset if !valid_auto_offset_reset(v) => Err(format!(
                    "Invalid value {v} for configuration {name}: Invalid value `{v}` for \
                     configuration {name}. The value must be either 'earliest', 'latest' or of \
                     the format 'by_duration:<PnDTnHnMn.nS>'."
                )),
                _ => Ok(v.to_string()),
            }
        }
    }
}

/// `GroupConfigManager.validate`: a group's whole new config, on top of the broker's consumer
/// group defaults; the error is Kafka's INVALID_CONFIG message.
pub fn validate(
    configs: &BTreeMap<String, String>,
    broker: &GroupConfigDefaults,
) -> Result<(), String> {
    if let Some(k) = configs.keys().find(|k| find(k).is_none()) {
        return Err(format!("Unknown group config name: {k}"));
    }
    let mut v: BTreeMap<&str, String> = BTreeMap::new();
    for def in GROUP_CONFIGS {
        let raw = match configs.get(def.name) {
            Some(raw) => raw.clone(),
            // Kafka starts from the broker's consumer group settings only; the share and
            // streams keys default to GroupConfig's own defaults here.
            None if def.name.starts_with("consumer.") => broker.default_of(def),
            None => def.default.to_string(),
        };
        v.insert(def.name, parse(def, &raw)?);
    }
    let n = |k: &str| v[k].parse::<i32>().unwrap_or(0);
    let b = |k: &str| broker.get(k);
    for kind in KINDS {
        let mut keys = vec!["heartbeat.interval.ms", "session.timeout.ms"];
        if kind == "share" {
            keys.push("record.lock.duration.ms");
        }
        for key in keys {
            let (name, min, max) = (
                format!("{kind}.{key}"),
                format!("group.{kind}.min.{key}"),
                format!("group.{kind}.max.{key}"),
            );
            if n(&name) < b(&min) {
                return Err(format!("{name} must be greater than or equal to {min}"));
            }
            if n(&name) > b(&max) {
                return Err(format!("{name} must be less than or equal to {max}"));
            }
        }
    }
    if n("streams.num.standby.replicas") > b("group.streams.max.standby.replicas") {
        return Err(
            "streams.num.standby.replicas must be less than or equal to \
                    group.streams.max.standby.replicas"
                .into(),
        );
    }
    for kind in KINDS {
        let (session, heartbeat) = (
            format!("{kind}.session.timeout.ms"),
            format!("{kind}.heartbeat.interval.ms"),
        );
        if n(&session) <= n(&heartbeat) {
            return Err(format!("{session} must be greater than {heartbeat}"));
        }
    }
    Ok(())
}

/// IncrementalAlterConfigs operations.
pub const OP_SET: i8 = 0;
pub const OP_DELETE: i8 = 1;
pub const OP_APPEND: i8 = 2;
pub const OP_SUBTRACT: i8 = 3;

/// A change to one group's configs as the request carries it.
pub enum Change<'a> {
    /// IncrementalAlterConfigs: (key, operation, value).
    Incremental(&'a [(&'a str, i8, Option<&'a str>)]),
    /// AlterConfigs: the whole new set (key, value).
    Replace(&'a [(&'a str, Option<&'a str>)]),
}

/// An error as Kafka answers it (UNKNOWN_SERVER_ERROR carries no message).
pub type AlterError = (ResponseError, Option<String>);

fn duplicates(mut keys: Vec<&str>) -> bool {
    let n = keys.len();
    keys.sort_unstable();
    keys.dedup();
    keys.len() != n
}

/// A group's configs after `change`, checked as Kafka 4.1.1 checks them (the broker's
/// ConfigAdminManager.preprocess, the controller's ConfigurationControlManager and
/// ControllerConfigurationValidator), in the same order; the group need not exist.
pub fn altered(
    group: &str,
    current: &BTreeMap<String, String>,
    change: &Change<'_>,
    broker: &GroupConfigDefaults,
) -> Result<BTreeMap<String, String>, AlterError> {
    let bad_request = |m: String| Err((ResponseError::InvalidRequest, Some(m)));
    let keys: Vec<&str> = match change {
        Change::Incremental(ops) => ops.iter().map(|(k, ..)| *k).collect(),
        Change::Replace(set) => set.iter().map(|(k, _)| *k).collect(),
    };
    if duplicates(keys) {
        return bad_request("Error due to duplicate config keys".into());
    }
    let nulls: Vec<&str> = match change {
        Change::Incremental(ops) => ops
            .iter()
            .filter(|(_, op, v)| *op != OP_DELETE && v.is_none())
            .map(|(k, ..)| *k)
            .collect(),
        Change::Replace(set) => set
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect(),
    };
    if !nulls.is_empty() {
        return bad_request(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        ));
    }
    let mut next = match change {
        Change::Incremental(_) => current.clone(),
        Change::Replace(_) => BTreeMap::new(),
    };
    let mut changed: Vec<&str> = Vec::new();
    match change {
        Change::Incremental(ops) => {
            for (key, op, value) in ops.iter() {
                match (*op, value) {
                    (OP_SET, Some(v)) => {
                        next.insert(key.to_string(), v.to_string());
                        changed.push(v);
                    }
                    (OP_DELETE, _) => {
                        next.remove(*key);
                    }
                    // No group config is a LIST.
                    (OP_APPEND | OP_SUBTRACT, _) => {
                        let what = if *op == OP_APPEND {
                            "APPEND"
                        } else {
                            "SUBTRACT"
                        };
                        return Err((
                            ResponseError::InvalidConfig,
                            Some(format!(
                                "Can't {what} to key {key} because its type is not LIST."
                            )),
                        ));
                    }
                    // Kafka fails on an operation it does not know without a message.
                    _ => return Err((ResponseError::UnknownServerError, None)),
                }
            }
        }
        Change::Replace(set) => {
            for (key, value) in set.iter() {
                let v = value.unwrap_or_default();
                next.insert(key.to_string(), v.to_string());
                changed.push(v);
            }
        }
    }
    if changed
        .iter()
        .any(|v| v.encode_utf16().count() > i16::MAX as usize)
    {
        return Err((
            ResponseError::InvalidConfig,
            Some(
                "The configuration value cannot be added because it exceeds the maximum value \
                 size of 32767 bytes."
                    .into(),
            ),
        ));
    }
    if group.is_empty() {
        return bad_request("Default group resources are not allowed.".into());
    }
    validate(&next, broker).map_err(|m| (ResponseError::InvalidConfig, Some(m)))?;
    Ok(next)
}

/// One DescribeConfigs entry of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: &'static str,
    pub value: String,
    pub source: ConfigSource,
    pub synonyms: Vec<(String, String, ConfigSource)>,
    pub ty: ConfigType,
    pub doc: &'static str,
}

/// Every config of a group (`dynamic`: the group's own), in Kafka's order: the group's value
/// (GROUP_CONFIG) or the default (DEFAULT_CONFIG, from the broker key where there is one), as
/// the first synonym; then the broker's static config of the same name, if set.
pub fn entries(
    dynamic: &BTreeMap<String, String>,
    broker: &GroupConfigDefaults,
    static_config: &BTreeMap<String, String>,
) -> Vec<GroupEntry> {
    DESCRIBE_ORDER
        .iter()
        .filter_map(|name| find(name))
        .map(|def| {
            let (raw, source) = match dynamic.get(def.name) {
                Some(v) => (v.clone(), ConfigSource::GroupConfig),
                None => (broker.default_of(def), ConfigSource::Default),
            };
            // Stored values were validated; print them back as Kafka's ConfigDef does.
            let value = parse(def, &raw).unwrap_or(raw);
            let mut synonyms = vec![(def.name.to_string(), value.clone(), source)];
            if let Some(v) = static_config.get(def.name) {
                synonyms.push((def.name.to_string(), v.clone(), ConfigSource::StaticBroker));
            }
            GroupEntry {
                name: def.name,
                value,
                source,
                synonyms,
                ty: def.ty,
                doc: def.doc,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn table_matches_describe_order_and_kafka_broker_defaults() {
        let mut a: Vec<&str> = GROUP_CONFIGS.iter().map(|d| d.name).collect();
        let mut b = DESCRIBE_ORDER.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        for (k, default, ..) in broker_defaults::BROKER_KEYS {
            let def = crate::config::describe::kafka_def(k).unwrap_or_else(|| panic!("{k}"));
            assert_eq!(def.default, Some(default.to_string().as_str()), "{k}");
        }
    }

    #[test]
    fn validation_messages_are_kafkas() {
        let d = GroupConfigDefaults::default();
        let check = |pairs: &[(&str, &str)]| validate(&map(pairs), &d);
        assert_eq!(check(&[("consumer.session.timeout.ms", " 50000 ")]), Ok(()));
        assert_eq!(
            check(&[("nope", "1"), ("aaa", "x")]).unwrap_err(),
            "Unknown group config name: aaa"
        );
        assert_eq!(
            check(&[("consumer.session.timeout.ms", "abc")]).unwrap_err(),
            "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT"
        );
        assert_eq!(
            check(&[("consumer.session.timeout.ms", "0")]).unwrap_err(),
            "Invalid value 0 for configuration consumer.session.timeout.ms: Value must be at least 1"
        );
        assert_eq!(
            check(&[("consumer.session.timeout.ms", "1000")]).unwrap_err(),
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"
        );
        assert_eq!(
            check(&[("consumer.heartbeat.interval.ms", "16000")]).unwrap_err(),
            "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"
        );
        assert_eq!(
            check(&[("share.isolation.level", "READ_COMMITTED")]).unwrap_err(),
            "Invalid value READ_COMMITTED for configuration share.isolation.level: String must be one of: read_committed, read_uncommitted"
        );
        assert_eq!(
            check(&[("share.isolation.level", " read_committed ")]),
            Ok(())
        );
        assert_eq!(
            check(&[("streams.num.standby.replicas", "3")]).unwrap_err(),
            "streams.num.standby.replicas must be less than or equal to group.streams.max.standby.replicas"
        );
        assert_eq!(
            check(&[("share.record.lock.duration.ms", "999")]).unwrap_err(),
            "Invalid value 999 for configuration share.record.lock.duration.ms: Value must be at least 1000"
        );
        let strict = GroupConfigDefaults::from_raw(&map(&[
            ("group.consumer.max.heartbeat.interval.ms", "60000"),
            ("group.consumer.min.session.timeout.ms", "10000"),
        ]))
        .unwrap();
        assert_eq!(
            validate(
                &map(&[
                    ("consumer.heartbeat.interval.ms", "20000"),
                    ("consumer.session.timeout.ms", "20000")
                ]),
                &strict
            )
            .unwrap_err(),
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        );
    }

    #[test]
    fn alterations_are_checked_in_kafkas_order() {
        let d = GroupConfigDefaults::default();
        let cur = map(&[("consumer.session.timeout.ms", "50000")]);
        let inc =
            |ops: &[(&str, i8, Option<&str>)]| altered("g", &cur, &Change::Incremental(ops), &d);
        assert_eq!(
            inc(&[("consumer.session.timeout.ms", OP_DELETE, None)]),
            Ok(BTreeMap::new())
        );
        assert_eq!(
            inc(&[("a", OP_SET, Some("1")), ("a", OP_DELETE, None)])
                .unwrap_err()
                .1
                .unwrap(),
            "Error due to duplicate config keys"
        );
        assert_eq!(
            inc(&[("a", OP_SET, None), ("b", OP_APPEND, None)]).unwrap_err(),
            (
                ResponseError::InvalidRequest,
                Some("Null value not supported for : a, b".into())
            )
        );
        assert_eq!(
            inc(&[("consumer.session.timeout.ms", OP_SUBTRACT, Some("1"))]).unwrap_err(),
            (
                ResponseError::InvalidConfig,
                Some(
                    "Can't SUBTRACT to key consumer.session.timeout.ms because its type is not LIST."
                        .into()
                )
            )
        );
        assert_eq!(
            inc(&[("x", 7, Some("1"))]).unwrap_err(),
            (ResponseError::UnknownServerError, None)
        );
        assert_eq!(
            altered(
                "",
                &cur,
                &Change::Incremental(&[("consumer.session.timeout.ms", OP_SET, Some("1"))]),
                &d
            )
            .unwrap_err()
            .1
            .unwrap(),
            "Default group resources are not allowed."
        );
        let set = [("consumer.heartbeat.interval.ms", Some("6000"))];
        assert_eq!(
            altered("g", &cur, &Change::Replace(&set), &d),
            Ok(map(&[("consumer.heartbeat.interval.ms", "6000")]))
        );
    }

    #[test]
    fn entries_take_broker_defaults_and_print_parsed_values() {
        let d =
            GroupConfigDefaults::from_raw(&map(&[("group.consumer.session.timeout.ms", "50000")]))
                .unwrap();
        let e = entries(
            &map(&[("share.isolation.level", " read_committed ")]),
            &d,
            &map(&[("streams.num.standby.replicas", "1")]),
        );
        assert_eq!(e.len(), 10);
        assert_eq!(e[0].name, "consumer.session.timeout.ms");
        assert_eq!(
            (e[0].value.as_str(), e[0].source),
            ("50000", ConfigSource::Default)
        );
        let iso = e
            .iter()
            .find(|e| e.name == "share.isolation.level")
            .unwrap();
        assert_eq!(
            iso.synonyms,
            vec![(
                "share.isolation.level".into(),
                "read_committed".into(),
                ConfigSource::GroupConfig
            )]
        );
        let sb = e.last().unwrap();
        assert_eq!(sb.synonyms.len(), 2);
        assert_eq!(sb.source, ConfigSource::Default);
    }
}
