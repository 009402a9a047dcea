//! Retention and compaction settings: the topic-level values (`retention.ms`, `cleanup.policy`, ...)
//! with the broker keys that default them (`log.retention.hours`, `log.cleanup.policy`,
//! `log.cleaner.*`), and the cleaner's own broker settings.

use std::collections::BTreeMap;

use super::{invalid, opt_bool, opt_int, topic, ConfigError};
use crate::log::LogConfig;

/// Broker keys honoured here (the topic keys' broker synonyms and the cleaner's settings).
pub const HONOURED: &[&str] = &[
    "log.retention.ms",
    "log.retention.minutes",
    "log.retention.hours",
    "log.retention.bytes",
    "log.retention.check.interval.ms",
    "log.initial.task.delay.ms",
    "log.cleanup.policy",
    "log.segment.delete.delay.ms",
    "log.cleaner.enable",
    "log.cleaner.threads",
    "log.cleaner.backoff.ms",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
];

/// The topic configs this module turns into [`LogConfig`] fields.
const TOPIC_KEYS: &[&str] = &[
    "retention.ms",
    "retention.bytes",
    "cleanup.policy",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "min.compaction.lag.ms",
    "max.compaction.lag.ms",
    "min.cleanable.dirty.ratio",
];

/// The log cleaner and retention checker (broker-wide).
#[derive(Debug, Clone)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.threads`: partitions compacted at the same time.
    pub threads: usize,
    /// `log.cleaner.backoff.ms`: sleep when no log needs cleaning.
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: memory for the key → offset map, across all threads.
    pub dedupe_buffer_size: usize,
    /// `log.cleaner.io.max.bytes.per.second`: read + write throughput cap of all cleaner threads.
    pub io_max_bytes_per_second: f64,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `log.initial.task.delay.ms` (a Kafka internal setting): when the first retention pass runs.
    pub initial_task_delay_ms: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enable: true,
            threads: 1,
            backoff_ms: 15_000,
            dedupe_buffer_size: 128 << 20,
            io_max_bytes_per_second: f64::MAX,
            retention_check_interval_ms: 300_000,
            initial_task_delay_ms: 30_000,
        }
    }
}

/// Reads the cleaner's broker settings.
pub fn cleaner(raw: &BTreeMap<String, String>) -> Result<CleanerConfig, ConfigError> {
    let d = CleanerConfig::default();
    let io = match raw.get("log.cleaner.io.max.bytes.per.second") {
        None => d.io_max_bytes_per_second,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(x) if x > 0.0 => x,
            _ => {
                return Err(invalid(
                    "log.cleaner.io.max.bytes.per.second",
                    v,
                    "must be a positive number",
                ))
            }
        },
    };
    Ok(CleanerConfig {
        enable: opt_bool(raw, "log.cleaner.enable", d.enable)?,
        threads: opt_int(raw, "log.cleaner.threads", 1, 0, 64)? as usize,
        backoff_ms: opt_int(raw, "log.cleaner.backoff.ms", 15_000, 0, i64::MAX)? as u64,
        dedupe_buffer_size: opt_int(
            raw,
            "log.cleaner.dedupe.buffer.size",
            d.dedupe_buffer_size as i64,
            1 << 20,
            i64::MAX,
        )? as usize,
        io_max_bytes_per_second: io,
        retention_check_interval_ms: opt_int(
            raw,
            "log.retention.check.interval.ms",
            300_000,
            1,
            i64::MAX,
        )? as u64,
        initial_task_delay_ms: opt_int(raw, "log.initial.task.delay.ms", 30_000, 0, i64::MAX)?
            as u64,
    })
}

/// Sets the retention fields of the broker's default [`LogConfig`] from its keys, validating them
/// as the topic configs they default (an invalid value names the broker key).
pub fn apply_broker(
    raw: &BTreeMap<String, String>,
    log: &mut LogConfig,
) -> Result<(), ConfigError> {
    let empty = BTreeMap::new();
    let mut values = BTreeMap::new();
    for name in TOPIC_KEYS {
        let def = topic::find(name).expect("a Kafka topic config");
        let chain = topic::resolve(def, &empty, raw);
        let (key, value, _) = &chain[0];
        topic::validate(name, value).map_err(|e| invalid(key, value, &e))?;
        values.insert(name.to_string(), value.clone());
    }
    apply_topic(log, &values);
    Ok(())
}

/// Applies the retention configs a topic (or the broker's defaults) sets; values were validated.
pub fn apply_topic(c: &mut LogConfig, configs: &BTreeMap<String, String>) {
    let num = |k: &str| configs.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    if let Some(v) = num("retention.ms") {
        c.retention_ms = v;
    }
    if let Some(v) = num("retention.bytes") {
        c.retention_bytes = v;
    }
    if let Some(v) = configs.get("cleanup.policy") {
        let items: Vec<&str> = v.split(',').map(str::trim).collect();
        c.cleanup_delete = items.contains(&"delete");
        c.cleanup_compact = items.contains(&"compact");
    }
    if let Some(v) = num("delete.retention.ms") {
        c.delete_retention_ms = v;
    }
    if let Some(v) = num("file.delete.delay.ms") {
        c.file_delete_delay_ms = v;
    }
    if let Some(v) = num("min.compaction.lag.ms") {
        c.min_compaction_lag_ms = v;
    }
    if let Some(v) = num("max.compaction.lag.ms") {
        c.max_compaction_lag_ms = v;
    }
    if let Some(v) = configs
        .get("min.cleanable.dirty.ratio")
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        c.min_cleanable_ratio = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(pairs: &[(&str, &str)]) -> Result<LogConfig, ConfigError> {
        let raw = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut log = LogConfig::default();
        apply_broker(&raw, &mut log).map(|_| log)
    }

    #[test]
    fn retention_synonyms_take_kafkas_precedence() {
        assert_eq!(broker(&[]).unwrap().retention_ms, 168 * 3_600_000);
        assert_eq!(
            broker(&[("log.retention.hours", "1")])
                .unwrap()
                .retention_ms,
            3_600_000
        );
        let both = broker(&[("log.retention.hours", "1"), ("log.retention.minutes", "2")]);
        assert_eq!(both.unwrap().retention_ms, 120_000);
        let all = broker(&[("log.retention.ms", "-1"), ("log.retention.minutes", "2")]);
        assert_eq!(all.unwrap().retention_ms, -1);
    }

    #[test]
    fn policies_and_invalid_values() {
        let c = broker(&[("log.cleanup.policy", "compact,delete")]).unwrap();
        assert!(c.cleanup_compact && c.cleanup_delete);
        let c = broker(&[("log.cleanup.policy", "compact")]).unwrap();
        assert!(c.cleanup_compact && !c.cleanup_delete);
        let e = broker(&[("log.cleaner.min.cleanable.ratio", "2")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.cleaner.min.cleanable.ratio"), "{e}");
        let e = broker(&[("log.retention.bytes", "-5")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.retention.bytes") && e.contains("-5"), "{e}");
    }
}
