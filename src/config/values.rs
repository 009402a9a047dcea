//! Config values as Kafka's broker parses them: integers in range, booleans; an
//! error names the key and the value (hidden for sensitive keys).

use std::collections::BTreeMap;

use super::raw::HIDDEN;
use super::{describe, ConfigError};

pub(crate) fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: if describe::is_sensitive(key) {
            HIDDEN.into()
        } else {
            value.into()
        },
        reason: reason.into(),
    }
}

pub(super) fn int(
    _raw: &BTreeMap<String, String>,
    key: &str,
    v: &str,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| invalid(key, v, "not an integer"))?;
    if n < min || n > max {
        return Err(invalid(key, v, &format!("must be between {min} and {max}")));
    }
    Ok(n)
}

pub(super) fn opt_int(
    raw: &BTreeMap<String, String>,
    key: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    match raw.get(key) {
        Some(v) => int(raw, key, v, min, max),
        None => Ok(default),
    }
}

pub(super) fn opt_bool(
    raw: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match raw.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(invalid(key, &v, "expected true or false")),
    }
}
