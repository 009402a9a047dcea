//! Dynamic group configs (config resource type GROUP), Kafka's GroupConfigManager: each group's
//! configs, persisted in the meta store and durable before an alteration is acknowledged.
//! Definitions, validation and describing live in [`crate::config::group`].
//!
//! As in Kafka 4.1.1, a group whose configs were all removed stays listed (ListConfigResources)
//! until the broker restarts: Kafka's manager keeps an entry for every group it was told about.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use kafka_protocol::ResponseError;

use crate::config::group::{altered, AlterError, Change, GroupConfigDefaults};
use crate::meta::Meta;

pub struct GroupConfigs {
    meta: Arc<Meta>,
    defaults: GroupConfigDefaults,
    /// Group id -> its dynamic configs (possibly none, see the module docs).
    configs: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// Serialises alterations (read, check, persist, publish).
    changes: tokio::sync::Mutex<()>,
}

impl GroupConfigs {
    pub fn open(meta: Arc<Meta>, defaults: GroupConfigDefaults) -> io::Result<GroupConfigs> {
        let configs = meta.group_configs()?.into_iter().collect();
        Ok(GroupConfigs {
            meta,
            defaults,
            configs: Mutex::new(configs),
            changes: tokio::sync::Mutex::new(()),
        })
    }

    pub fn defaults(&self) -> &GroupConfigDefaults {
        &self.defaults
    }

    /// A group's dynamic configs (none for a group never configured; it need not exist).
    pub fn get(&self, group: &str) -> BTreeMap<String, String> {
        self.lock().get(group).cloned().unwrap_or_default()
    }

    /// The groups Kafka's ListConfigResources lists, sorted.
    pub fn group_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Checks and (unless `validate_only`) applies a change to a group's configs, durable when
    /// this returns. A change that alters nothing is not recorded.
    pub async fn alter(
        &self,
        group: &str,
        change: &Change<'_>,
        validate_only: bool,
    ) -> Result<(), AlterError> {
        let _guard = self.changes.lock().await;
        let current = self.get(group);
        let next = altered(group, &current, change, &self.defaults)?;
        if validate_only || next == current {
            return Ok(());
        }
        let storage = |e: io::Error| {
            tracing::error!(group, error = %e, "cannot store group configs");
            (ResponseError::KafkaStorageError, Some(e.to_string()))
        };
        self.meta.put_group_configs(group, &next).map_err(storage)?;
        self.meta.flush().await.map_err(storage)?;
        tracing::info!(group, configs = ?next, "group configs changed");
        self.lock().insert(group.to_string(), next);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<String, String>>> {
        self.configs.lock().unwrap_or_else(|e| e.into_inner())
    }
}
