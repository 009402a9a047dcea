//! The broker's configs as DescribeConfigs reports them: every key Kafka 4.1.1's broker lists
//! ([`BROKER_CONFIGS`]), with the value gregor applies, its source, Kafka's synonyms, type,
//! documentation and read-only flag, and sensitive values hidden as Kafka hides them.
//!
//! Kafka's rules (kafka.server.ConfigHelper / DynamicBrokerConfig), followed here:
//! - every non-internal key of its ConfigDef is listed, plus every key set in the config file
//!   (internal ones with their type; ones it does not define with type UNKNOWN);
//! - a key is sensitive when its type is PASSWORD or unknown: its value (and its synonyms'
//!   values) are null;
//! - the synonyms are the key's synonym group (`log.retention.ms` / `.minutes` / `.hours`, ...)
//!   looked up in the dynamic cluster defaults, then the static config, then the defaults, with
//!   the entries before the described key's own first one dropped; the source is the first
//!   synonym's (DEFAULT_CONFIG when there is none).

use std::collections::BTreeMap;

use super::broker_configs::{BrokerConfigDef, BROKER_CONFIGS};
use super::topic::{ConfigSource, ConfigType, CLUSTER_DYNAMIC_DEFAULTS};
use super::Config;

/// One DescribeConfigs entry for the broker resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
    pub ty: ConfigType,
    pub doc: &'static str,
    pub read_only: bool,
    pub sensitive: bool,
}

/// gregor's own keys (not Kafka's): listed when set, never sensitive.
const GREGOR_KEYS: &[(&str, ConfigType, &str)] = &[
    (
        "gregor.request.receive.timeout.ms",
        ConfigType::Long,
        "A request must arrive whole within this long of its size prefix, plus one second per 16 KiB received, or its connection is closed.",
    ),
    (
        "gregor.log.dir.min.free.bytes",
        ConfigType::Long,
        "Produce is refused with KAFKA_STORAGE_ERROR while the data directory has less free space (0: never).",
    ),
    (
        "gregor.log.preallocate.max.bytes",
        ConfigType::Long,
        "The largest disk reservation made ahead of a partition's appends (0: none).",
    ),
    (
        "gregor.log.preallocate.total.max.bytes",
        ConfigType::Long,
        "All disk reservations made ahead of appends together, across every partition; beyond it appends go on without reserving.",
    ),
    (
        "gregor.produce.validate.compressed",
        ConfigType::Boolean,
        "Whether the records inside compressed batches are validated on produce.",
    ),
    (
        "metrics.address",
        ConfigType::String,
        "Where /metrics is served (HOST:PORT); empty disables it.",
    ),
];

/// Keys whose default in gregor differs from Kafka's (gregor's effective value when unset).
const GREGOR_DEFAULTS: &[(&str, &str)] = &[
    ("listeners", "PLAINTEXT://127.0.0.1:9092"),
    ("log.dir", "./data"),
    ("queued.max.request.bytes", "536870912"),
];

/// Kafka's definition of `name` (binary search: the table is sorted by name).
pub fn kafka_def(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS
        .binary_search_by(|d| d.name.cmp(name))
        .ok()
        .map(|i| &BROKER_CONFIGS[i])
}

/// `listener.name.<listener>.<base>` -> `<base>`.
fn listener_base(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("listener.name.")?;
    let (_, base) = rest.split_once('.')?;
    Some(base)
}

/// The keys Kafka reports as synonyms of `name`, in its order (DynamicBrokerConfig
/// .brokerConfigSynonyms with listener overrides matched).
fn synonym_group(name: &str) -> Vec<String> {
    let group: &[&str] = match name {
        "log.roll.ms" | "log.roll.hours" => &["log.roll.ms", "log.roll.hours"],
        "log.roll.jitter.ms" | "log.roll.jitter.hours" => {
            &["log.roll.jitter.ms", "log.roll.jitter.hours"]
        }
        "log.flush.interval.ms" => &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        _ => {
            let mut out = vec![name.to_string()];
            if let Some(base) = listener_base(name) {
                // listener.name.l.<mechanism>.<config> also has <config> as a synonym.
                let mechanism = base.split_once('.').map_or(base, |(_, c)| c);
                for k in [base, mechanism] {
                    if !out.iter().any(|o| o == k) {
                        out.push(k.to_string());
                    }
                }
            }
            return out;
        }
    };
    group.iter().map(|s| s.to_string()).collect()
}

/// The config type Kafka reports for `name` (a listener override takes its base key's type);
/// `None` for keys neither Kafka nor gregor defines.
pub fn key_type(name: &str) -> Option<ConfigType> {
    if let Some((_, ty, _)) = GREGOR_KEYS.iter().find(|(k, _, _)| *k == name) {
        return Some(*ty);
    }
    kafka_def(name)
        .or_else(|| synonym_group(name).iter().find_map(|k| kafka_def(k)))
        .map(|d| d.ty)
}

/// Whether `name`'s value must never be shown (DescribeConfigs, logs): type PASSWORD, or a key
/// of unknown type (which may hold anything), as Kafka decides.
pub fn is_sensitive(name: &str) -> bool {
    matches!(key_type(name), None | Some(ConfigType::Password))
}

/// gregor's default for `name` when it is not set: its own where it differs, else Kafka's.
fn default_value(name: &str) -> Option<String> {
    if let Some((_, v)) = GREGOR_DEFAULTS.iter().find(|(k, _)| *k == name) {
        return Some(v.to_string());
    }
    kafka_def(name).and_then(|d| d.default).map(str::to_string)
}

/// A configured value as Kafka's ConfigDef parses and prints it back (numbers and booleans
/// normalised, lists without blanks around commas).
fn normalise(ty: ConfigType, v: &str) -> String {
    let v = v.trim();
    match ty {
        ConfigType::Int | ConfigType::Short | ConfigType::Long => v
            .parse::<i64>()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| v.to_string()),
        ConfigType::Boolean => v.to_ascii_lowercase(),
        ConfigType::List => v.split(',').map(str::trim).collect::<Vec<_>>().join(","),
        _ => v.to_string(),
    }
}

/// Every broker config, sorted by name (`Config::raw` holds the static config).
pub fn broker_entries(config: &Config) -> Vec<BrokerEntry> {
    let mut static_configs: BTreeMap<String, String> = config.raw.0.clone();
    // Kafka derives broker.id from node.id (and reports it as statically configured).
    static_configs
        .entry("broker.id".into())
        .or_insert_with(|| config.node_id.to_string());
    let dynamic_defaults: BTreeMap<&str, &str> = CLUSTER_DYNAMIC_DEFAULTS.iter().copied().collect();

    let mut names: Vec<String> = BROKER_CONFIGS
        .iter()
        .filter(|d| !d.internal)
        .map(|d| d.name.to_string())
        .collect();
    names.extend(static_configs.keys().cloned());
    names.sort();
    names.dedup();

    names
        .into_iter()
        .map(|name| {
            let def = kafka_def(&name);
            let ty = key_type(&name).unwrap_or(ConfigType::Unknown);
            let sensitive = is_sensitive(&name);
            let hide = |v: String| if sensitive { None } else { Some(v) };
            let group = synonym_group(&name);
            let mut synonyms = Vec::new();
            for k in &group {
                if let Some(v) = dynamic_defaults.get(k.as_str()) {
                    synonyms.push((
                        k.clone(),
                        hide(v.to_string()),
                        ConfigSource::DynamicDefaultBroker,
                    ));
                }
            }
            for k in &group {
                if let Some(v) = static_configs.get(k) {
                    synonyms.push((k.clone(), hide(v.clone()), ConfigSource::StaticBroker));
                }
            }
            for k in &group {
                if let Some(v) = default_value(k) {
                    synonyms.push((k.clone(), hide(v), ConfigSource::Default));
                }
            }
            let first_own = synonyms
                .iter()
                .position(|(k, _, _)| *k == name)
                .unwrap_or(synonyms.len());
            synonyms.drain(..first_own);
            let source = synonyms
                .first()
                .map_or(ConfigSource::Default, |(_, _, s)| *s);
            let value = dynamic_defaults
                .get(name.as_str())
                .map(|v| v.to_string())
                .or_else(|| static_configs.get(&name).map(|v| normalise(ty, v)))
                .or_else(|| default_value(&name))
                // Kafka requires node.id (no default); gregor's unset node.id is 1.
                .or_else(|| (name == "node.id").then(|| config.node_id.to_string()))
                .and_then(hide);
            BrokerEntry {
                doc: def.map_or_else(
                    || {
                        GREGOR_KEYS
                            .iter()
                            .find(|(k, _, _)| *k == name)
                            .map_or("", |(_, _, d)| d)
                    },
                    |d| d.doc,
                ),
                read_only: def.is_none_or(|d| d.read_only),
                name,
                value,
                source,
                synonyms,
                ty,
                sensitive,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> BTreeMap<String, BrokerEntry> {
        let c = Config::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap();
        broker_entries(&c)
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect()
    }

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(BROKER_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(BROKER_CONFIGS.iter().filter(|d| !d.internal).count(), 316);
        assert_eq!(entries(&[]).len(), 316);
    }

    #[test]
    fn synonyms_follow_kafka() {
        let e = entries(&[("log.retention.hours", "100"), ("node.id", "3")]);
        let h = &e["log.retention.hours"];
        assert_eq!(h.value.as_deref(), Some("100"));
        assert_eq!(h.source, ConfigSource::StaticBroker);
        assert_eq!(
            h.synonyms,
            vec![
                (
                    "log.retention.hours".into(),
                    Some("100".into()),
                    ConfigSource::StaticBroker
                ),
                (
                    "log.retention.hours".into(),
                    Some("168".into()),
                    ConfigSource::Default
                ),
            ]
        );
        let ms = &e["log.retention.ms"];
        assert_eq!(
            (ms.value.as_deref(), ms.source, ms.synonyms.len()),
            (None, ConfigSource::Default, 0)
        );
        assert_eq!(e["log.retention.ms"].ty, ConfigType::Long);
        assert_eq!(e["log.retention.hours"].ty, ConfigType::Int);
        assert_eq!(e["broker.id"].value.as_deref(), Some("3"));
        assert_eq!(e["node.id"].synonyms.len(), 1);
        assert_eq!(entries(&[])["node.id"].value.as_deref(), Some("1"));
        assert_eq!(e["broker.id"].source, ConfigSource::StaticBroker);
        assert_eq!(
            e["min.insync.replicas"].source,
            ConfigSource::DynamicDefaultBroker
        );
        assert_eq!(
            e["listeners"].value.as_deref(),
            Some("PLAINTEXT://127.0.0.1:9092")
        );
        assert_eq!(
            e["queued.max.request.bytes"].value.as_deref(),
            Some("536870912")
        );
        assert!(!e["listeners"].read_only && e["log.retention.hours"].read_only);
    }

    #[test]
    fn sensitive_and_unknown_keys_are_hidden() {
        let e = entries(&[
            ("ssl.keystore.password", "hunter2"),
            ("listener.name.plaintext.ssl.key.password", "hunter3"),
            ("listener.name.plaintext.ssl.client.auth", "required"),
            ("no.such.key", "hunter4"),
            ("gregor.log.dir.min.free.bytes", "0"),
        ]);
        let p = &e["ssl.keystore.password"];
        assert!(p.sensitive && p.value.is_none() && p.ty == ConfigType::Password);
        assert_eq!(
            p.synonyms,
            vec![(
                "ssl.keystore.password".into(),
                None,
                ConfigSource::StaticBroker
            )]
        );
        let l = &e["listener.name.plaintext.ssl.key.password"];
        assert!(l.sensitive && l.value.is_none());
        let u = &e["no.such.key"];
        assert!(u.sensitive && u.value.is_none() && u.ty == ConfigType::Unknown);
        let a = &e["listener.name.plaintext.ssl.client.auth"];
        assert_eq!(a.value.as_deref(), Some("required"));
        assert_eq!(
            a.synonyms.last().unwrap(),
            &(
                "ssl.client.auth".to_string(),
                Some("none".to_string()),
                ConfigSource::Default
            )
        );
        assert!(!e["gregor.log.dir.min.free.bytes"].sensitive);
        assert!(e["ssl.truststore.password"].sensitive);
        assert!(!is_sensitive("log.dirs") && is_sensitive("sasl.jaas.config"));
        let text = format!("{:?}", e.values().collect::<Vec<_>>());
        assert!(!text.contains("hunter"), "{text}");
    }
}
