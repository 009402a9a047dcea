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
use super::{int, invalid, ConfigError};

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

/// The broker keys read here: (key, Kafka's default, min, max). All are INTs.
#[rustfmt::skip]
const BROKER_KEYS: &[(&str, i32, i32, i32)] = &[
    ("group.consumer.session.timeout.ms", 45_000, 1, i32::MAX),
    ("group.consumer.min.session.timeout.ms", 45_000, 1, i32::MAX),
    ("group.consumer.max.session.timeout.ms", 60_000, 1, i32::MAX),
    ("group.consumer.heartbeat.interval.ms", 5_000, 1, i32::MAX),
    ("group.consumer.min.heartbeat.interval.ms", 5_000, 1, i32::MAX),
    ("group.consumer.max.heartbeat.interval.ms", 15_000, 1, i32::MAX),
    ("group.share.session.timeout.ms", 45_000, 1, i32::MAX),
    ("group.share.min.session.timeout.ms", 45_000, 1, i32::MAX),
    ("group.share.max.session.timeout.ms", 60_000, 1, i32::MAX),
    ("group.share.heartbeat.interval.ms", 5_000, 1, i32::MAX),
    ("group.share.min.heartbeat.interval.ms", 5_000, 1, i32::MAX),
    ("group.share.max.heartbeat.interval.ms", 15_000, 1, i32::MAX),
    ("group.share.record.lock.duration.ms", 30_000, 1_000, 3_600_000),
    ("group.share.min.record.lock.duration.ms", 15_000, 1_000, 30_000),
    ("group.share.max.record.lock.duration.ms", 60_000, 30_000, 3_600_000),
    ("group.streams.session.timeout.ms", 45_000, 1, i32::MAX),
    ("group.streams.min.session.timeout.ms", 45_000, 1, i32::MAX),
    ("group.streams.max.session.timeout.ms", 60_000, 1, i32::MAX),
    ("group.streams.heartbeat.interval.ms", 5_000, 1, i32::MAX),
    ("group.streams.min.heartbeat.interval.ms", 5_000, 1, i32::MAX),
    ("group.streams.max.heartbeat.interval.ms", 15_000, 1, i32::MAX),
    ("group.streams.num.standby.replicas", 0, 0, i32::MAX),
    ("group.streams.max.standby.replicas", 2, 0, i32::MAX),
];

/// Broker keys honoured here (as group configs' defaults and bounds).
pub fn honoured(key: &str) -> bool {
    BROKER_KEYS.iter().any(|(k, ..)| *k == key)
}

/// The broker's group coordinator settings that give group configs their defaults and bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfigDefaults(BTreeMap<&'static str, i32>);

impl Default for GroupConfigDefaults {
    fn default() -> Self {
        GroupConfigDefaults(BROKER_KEYS.iter().map(|(k, d, ..)| (*k, *d)).collect())
    }
}

/// The three kinds of KIP-848 groups, as they appear in key names.
const KINDS: [&str; 3] = ["consumer", "share", "streams"];

impl GroupConfigDefaults {
    /// Reads the broker keys, validated as Kafka validates them at start-up.
    pub fn from_raw(raw: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut values = BTreeMap::new();
        for (key, default, min, max) in BROKER_KEYS {
            let v = match raw.get(*key) {
                Some(v) => int(raw, key, v, i64::from(*min), i64::from(*max))? as i32,
                None => *default,
            };
            values.insert(*key, v);
        }
        let d = GroupConfigDefaults(values);
        d.startup_checks()
            .map_err(|(key, why)| invalid(&key, &d.get(&key).to_string(), &why))?;
        Ok(d)
    }

    /// What Kafka's `GroupCoordinatorConfig` and `ShareGroupConfig` require, in their order;
    /// the error names the key and gives Kafka's message.
    fn startup_checks(&self) -> Result<(), (String, String)> {
        const GE: &str = "greater than or equal to";
        const LE: &str = "less than or equal to";
        const LT: &str = "less than";
        let check = |a: &str, rel: &str, b: &str| {
            let (x, y) = (self.get(a), self.get(b));
            let ok = match rel {
                GE => x >= y,
                LE => x <= y,
                _ => x < y,
            };
            if ok {
                Ok(())
            } else {
                Err((a.to_string(), format!("{a} must be {rel} {b}")))
            }
        };
        for kind in KINDS {
            let k = |s: &str| format!("group.{kind}.{s}");
            let (hb, min_hb, max_hb) = (
                k("heartbeat.interval.ms"),
                k("min.heartbeat.interval.ms"),
                k("max.heartbeat.interval.ms"),
            );
            let (st, min_st, max_st) = (
                k("session.timeout.ms"),
                k("min.session.timeout.ms"),
                k("max.session.timeout.ms"),
            );
            check(&max_hb, GE, &min_hb)?;
            check(&hb, GE, &min_hb)?;
            check(&hb, LE, &max_hb)?;
            check(&max_st, GE, &min_st)?;
            check(&st, GE, &min_st)?;
            check(&st, LE, &max_st)?;
            if kind == "streams" {
                check(
                    "group.streams.num.standby.replicas",
                    LE,
                    "group.streams.max.standby.replicas",
                )?;
            }
            check(&hb, LT, &st)?;
        }
        let lock = "group.share.record.lock.duration.ms";
        check(lock, GE, "group.share.min.record.lock.duration.ms")?;
        check("group.share.max.record.lock.duration.ms", GE, lock)
    }

    /// A broker key's value (0 for a key not read here).
    pub fn get(&self, key: &str) -> i32 {
        self.0.get(key).copied().unwrap_or(0)
    }

    /// The default of a group config: its broker key's value, else `GroupConfig`'s default.
    fn default_of(&self, def: &GroupConfigDef) -> String {
        def.broker_key
            .map_or_else(|| def.default.to_string(), |k| self.get(k).to_string())
    }
}

/// Java's `String.trim()`.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
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

/// `ShareGroupAutoOffsetResetStrategy.fromString` succeeds.
fn valid_auto_offset_reset(v: &str) -> bool {
    match v {
        "earliest" | "latest" => true,
        _ => v
            .strip_prefix("by_duration:")
            .and_then(java_duration_nanos)
            .is_some_and(|n| n >= 0),
    }
}

/// `java.time.Duration.parse` (`[-+]PnDTnHnMn.nS`, case-insensitive) in nanoseconds; `None`
/// where Java throws.
fn java_duration_nanos(s: &str) -> Option<i128> {
    fn number(s: &str) -> Option<(i64, &str)> {
        let end = s
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
            .map_or(s.len(), |(i, _)| i);
        let digits = &s[..end];
        if !digits.bytes().any(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((digits.parse().ok()?, &s[end..]))
    }
    let upper = s.to_ascii_uppercase();
    let (negate, rest) = match upper.as_bytes().first()? {
        b'-' => (true, &upper[1..]),
        b'+' => (false, &upper[1..]),
        _ => (false, &upper[..]),
    };
    let mut rest = rest.strip_prefix('P')?;
    let mut seconds: i64 = 0;
    let mut nanos: i64 = 0;
    let mut any = false;
    if let Some((n, r)) = number(rest).filter(|(_, r)| r.starts_with('D')) {
        seconds = n.checked_mul(86_400)?;
        rest = &r[1..];
        any = true;
    }
    if let Some(r) = rest.strip_prefix('T') {
        rest = r;
        let mut any_time = false;
        for (unit, scale) in [('H', 3_600i64), ('M', 60)] {
            if let Some((n, r)) = number(rest).filter(|(_, r)| r.starts_with(unit)) {
                seconds = seconds.checked_add(n.checked_mul(scale)?)?;
                rest = &r[1..];
                any_time = true;
            }
        }
        if let Some((n, r)) = number(rest) {
            let (frac, r) = match r.strip_prefix(['.', ',']) {
                Some(f) => {
                    let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                    if end > 9 {
                        return None;
                    }
                    (&f[..end], &f[end..])
                }
                None => ("", r),
            };
            let r = r.strip_prefix('S')?;
            seconds = seconds.checked_add(n)?;
            if !frac.is_empty() {
                let f: i64 = format!("{frac:0<9}").parse().ok()?;
                nanos = if rest.starts_with('-') { -f } else { f };
            }
            rest = r;
            any_time = true;
        }
        if !any_time {
            return None;
        }
        any = true;
    }
    if !any || !rest.is_empty() {
        return None;
    }
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    Some(if negate { -total } else { total })
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
        for (k, default, ..) in BROKER_KEYS {
            let def = super::super::describe::kafka_def(k).unwrap_or_else(|| panic!("{k}"));
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
    fn auto_offset_reset_follows_java() {
        for ok in [
            "latest",
            "earliest",
            "by_duration:PT1H",
            "by_duration:P1D",
            "by_duration:pt1.5s",
            "by_duration:P1DT2H3M4.000000001S",
            "by_duration:PT0S",
            "by_duration:-PT-1H",
        ] {
            assert!(valid_auto_offset_reset(ok), "{ok}");
        }
        for bad in [
            "none",
            "LATEST",
            "by_duration",
            "by_duration:",
            "by_duration:-PT1H",
            "by_duration:P",
            "by_duration:PT",
            "by_duration:PT1",
            "by_duration:1H",
            "by_duration:PT1.0000000001S",
            "by_duration:P99999999999999999D",
        ] {
            assert!(!valid_auto_offset_reset(bad), "{bad}");
        }
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

    #[test]
    fn broker_keys_are_checked_at_startup() {
        let e =
            GroupConfigDefaults::from_raw(&map(&[("group.consumer.session.timeout.ms", "70000")]))
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("group.consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms"),
            "{e}"
        );
        assert!(GroupConfigDefaults::from_raw(&map(&[(
            "group.share.record.lock.duration.ms",
            "999"
        )]))
        .is_err());
    }
}
