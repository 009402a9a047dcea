//! The broker's group coordinator keys (`group.consumer.*`, `group.share.*`,
//! `group.streams.*`): read and checked at start-up as Kafka's `GroupCoordinatorConfig` does, they
//! give group configs their defaults and bounds.

use std::collections::BTreeMap;

use super::super::{int, invalid, ConfigError};
use super::GroupConfigDef;

/// The broker keys read here: (key, Kafka's default, min, max). All are INTs.
#[rustfmt::skip]
pub(super) const BROKER_KEYS: &[(&str, i32, i32, i32)] = &[
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
pub(super) const KINDS: [&str; 3] = ["consumer", "share", "streams"];

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
    pub(super) fn default_of(&self, def: &GroupConfigDef) -> String {
        def.broker_key
            .map_or_else(|| def.default.to_string(), |k| self.get(k).to_string())
    }
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
