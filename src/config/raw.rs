//! The configured keys and values as read (file, then overrides), printed with secrets hidden.

use std::collections::BTreeMap;

use super::describe;

/// The configured keys and values. Its `Debug` hides sensitive values (passwords, keys of
/// unknown type), as Kafka's logs do.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RawConfig(pub BTreeMap<String, String>);

impl std::ops::Deref for RawConfig {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::fmt::Debug for RawConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let v = if describe::is_sensitive(k) {
                    HIDDEN
                } else {
                    v.as_str()
                };
                (k, v)
            }))
            .finish()
    }
}

/// What logs and errors show instead of a sensitive value (as Kafka's do).
pub(super) const HIDDEN: &str = "[hidden]";
