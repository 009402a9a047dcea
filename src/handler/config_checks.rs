//! The checks Kafka's `ConfigAdminManager.preprocess` makes on an AlterConfigs or
//! IncrementalAlterConfigs request before it looks at any resource.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::{alter_configs_request, incremental_alter_configs_request};
use kafka_protocol::ResponseError;

use super::configs::{
    RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_CLIENT_METRICS, RESOURCE_GROUP,
    RESOURCE_TOPIC,
};
use crate::config::group::{AlterError, OP_DELETE};

/// A resource of an AlterConfigs or IncrementalAlterConfigs request, as `preprocess` sees it.
pub(super) trait AlterResource {
    /// The resource types the API knows (Kafka's legacy AlterConfigs has no broker loggers).
    const KNOWN_TYPES: &'static [i8];
    fn key(&self) -> (i8, &str);
    /// Each config's name and whether its value is a null the API refuses.
    fn configs(&self) -> Vec<(&str, bool)>;
}

impl AlterResource for alter_configs_request::AlterConfigsResource {
    const KNOWN_TYPES: &'static [i8] = &[
        RESOURCE_TOPIC,
        RESOURCE_BROKER,
        RESOURCE_CLIENT_METRICS,
        RESOURCE_GROUP,
    ];
    fn key(&self) -> (i8, &str) {
        (self.resource_type, self.resource_name.as_str())
    }
    fn configs(&self) -> Vec<(&str, bool)> {
        let each = self.configs.iter();
        each.map(|c| (c.name.as_str(), c.value.is_none())).collect()
    }
}

impl AlterResource for incremental_alter_configs_request::AlterConfigsResource {
    const KNOWN_TYPES: &'static [i8] = &KNOWN_TYPES;
    fn key(&self) -> (i8, &str) {
        (self.resource_type, self.resource_name.as_str())
    }
    fn configs(&self) -> Vec<(&str, bool)> {
        let null = |c: &incremental_alter_configs_request::AlterableConfig| {
            c.config_operation != OP_DELETE && c.value.is_none()
        };
        let each = self.configs.iter();
        each.map(|c| (c.name.as_str(), null(c))).collect()
    }
}

/// What Kafka's `ConfigAdminManager.preprocess` refuses before any resource is looked at, per
/// resource in order: a resource named twice (every occurrence), a config named twice in one
/// resource, null values, and an unknown resource type; all INVALID_REQUEST.
pub(super) fn preprocess<R: AlterResource>(resources: &[R]) -> Vec<Option<AlterError>> {
    let mut seen = BTreeMap::new();
    let mut repeated = BTreeSet::new();
    for (i, r) in resources.iter().enumerate() {
        if let Some(first) = seen.insert(r.key(), i) {
            repeated.insert(first);
            repeated.insert(i);
        }
    }
    let invalid = |m: String| Some((ResponseError::InvalidRequest, Some(m)));
    resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if repeated.contains(&i) {
                return invalid(REPEATED.into());
            }
            let configs = r.configs();
            let mut keys = BTreeSet::new();
            if configs.iter().any(|(k, _)| !keys.insert(*k)) {
                return invalid("Error due to duplicate config keys".into());
            }
            let nulls: Vec<&str> = configs
                .iter()
                .filter(|(_, null)| *null)
                .map(|(k, _)| *k)
                .collect();
            if !nulls.is_empty() {
                return invalid(format!(
                    "Null value not supported for : {}",
                    nulls.join(", ")
                ));
            }
            let (ty, _) = r.key();
            if !R::KNOWN_TYPES.contains(&ty) {
                return invalid(format!("Unknown resource type {ty}"));
            }
            None
        })
        .collect()
}

/// Kafka's `ConfigResource.Type` ids.
pub(super) const KNOWN_TYPES: [i8; 5] = [
    RESOURCE_TOPIC,
    RESOURCE_BROKER,
    RESOURCE_BROKER_LOGGER,
    RESOURCE_CLIENT_METRICS,
    RESOURCE_GROUP,
];

pub(super) const REPEATED: &str = "Each resource must appear at most once.";
