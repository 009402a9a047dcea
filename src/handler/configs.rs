//! DescribeConfigs for topics (every Kafka topic config, with source, synonyms and documentation),
//! for the broker (every config Kafka's broker lists, sensitive values hidden) and for groups
//! (KIP-848 group configs, see `config::group`); ListConfigResources. Altering them is in
//! `configs_alter`.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorize::{self, config_refusal};
use super::config_checks::KNOWN_TYPES;
use super::str_bytes;
use crate::broker::Broker;
use crate::config::describe;
use crate::config::topic::{self, ConfigSource, ConfigType, TOPIC_CONFIGS};
use crate::dispatch::Ctx;
use crate::security::acl::Operation;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_GROUP: i8 = 32;
pub(super) const RESOURCE_BROKER_LOGGER: i8 = 8;
pub(super) const RESOURCE_CLIENT_METRICS: i8 = 16;

struct Entry {
    name: String,
    value: Option<String>,
    source: ConfigSource,
    synonyms: Vec<(String, Option<String>, ConfigSource)>,
    ty: ConfigType,
    doc: &'static str,
    read_only: bool,
    sensitive: bool,
}

fn topic_entries(broker: &Broker, configs: &BTreeMap<String, String>) -> Vec<Entry> {
    TOPIC_CONFIGS
        .iter()
        .map(|d| {
            let mut chain = topic::resolve(d, configs, &broker.config.raw);
            let (_, value, source) = chain[0].clone();
            // Kafka lists its default as a synonym only where the broker key has one.
            if !d.default_synonym()
                && chain
                    .last()
                    .is_some_and(|(_, _, s)| *s == ConfigSource::Default)
            {
                chain.pop();
            }
            Entry {
                name: d.name.to_string(),
                value: Some(value),
                source,
                synonyms: chain.into_iter().map(|(n, v, s)| (n, Some(v), s)).collect(),
                ty: d.ty,
                doc: d.doc,
                read_only: false,
                sensitive: false,
            }
        })
        .collect()
}

/// The broker's configs: every config Kafka 4.1.1's broker lists, with gregor's values
/// (see `config::describe`). `entity_default` is the cluster-wide dynamic default resource
/// (name ""), which holds only what a new Kafka 4.x cluster stores there.
fn broker_entries(broker: &Broker, entity_default: bool) -> Vec<Entry> {
    if entity_default {
        return topic::CLUSTER_DYNAMIC_DEFAULTS
            .iter()
            .map(|(k, v)| {
                let def = describe::kafka_def(k);
                Entry {
                    name: k.to_string(),
                    value: Some(v.to_string()),
                    source: ConfigSource::DynamicDefaultBroker,
                    synonyms: vec![(
                        k.to_string(),
                        Some(v.to_string()),
                        ConfigSource::DynamicDefaultBroker,
                    )],
                    ty: def.map_or(ConfigType::String, |d| d.ty),
                    doc: def.map_or("", |d| d.doc),
                    read_only: def.is_none_or(|d| d.read_only),
                    sensitive: false,
                }
            })
            .collect();
    }
    describe::broker_entries(&broker.config)
        .into_iter()
        .map(|e| Entry {
            name: e.name,
            value: e.value,
            source: e.source,
            synonyms: e.synonyms,
            ty: e.ty,
            doc: e.doc,
            read_only: e.read_only,
            sensitive: e.sensitive,
        })
        .collect()
}

/// A group's configs (the group need not exist, as in Kafka).
fn group_entries(broker: &Broker, group: &str) -> Vec<Entry> {
    let dynamic = broker.group_configs.get(group);
    crate::config::group::entries(
        &dynamic,
        broker.group_configs.defaults(),
        &broker.config.raw,
    )
    .into_iter()
    .map(|e| Entry {
        name: e.name.to_string(),
        value: Some(e.value),
        source: e.source,
        synonyms: e
            .synonyms
            .into_iter()
            .map(|(n, v, s)| (n, Some(v), s))
            .collect(),
        ty: e.ty,
        doc: e.doc,
        read_only: false,
        sensitive: false,
    })
    .collect()
}

fn describe_entry(e: Entry, synonyms: bool, docs: bool) -> DescribeConfigsResourceResult {
    let mut r = DescribeConfigsResourceResult::default();
    r.name = str_bytes(&e.name);
    r.value = if e.sensitive {
        None
    } else {
        e.value.as_deref().map(str_bytes)
    };
    r.read_only = e.read_only;
    r.config_source = e.source as i8;
    r.is_sensitive = e.sensitive;
    r.config_type = e.ty as i8;
    r.documentation = if docs && !e.doc.is_empty() {
        Some(str_bytes(e.doc))
    } else {
        None
    };
    if synonyms {
        r.synonyms = e
            .synonyms
            .into_iter()
            .map(|(n, v, s)| {
                let mut syn = DescribeConfigsSynonym::default();
                syn.name = str_bytes(&n);
                syn.value = if e.sensitive {
                    None
                } else {
                    v.as_deref().map(str_bytes)
                };
                syn.source = s as i8;
                syn
            })
            .collect();
    }
    r
}

pub async fn describe(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DescribeConfigsRequest,
) -> Option<DescribeConfigsResponse> {
    let mut resp = DescribeConfigsResponse::default();
    // A resource asked for twice (with the same keys) is described once: a client cannot ask
    // for copies (Kafka's admin client keys resources by name), and copies would multiply the
    // answer's size by the request's length.
    let mut seen = std::collections::HashSet::new();
    for res in req.resources {
        let keys = res
            .configuration_keys
            .as_ref()
            .map(|k| k.iter().map(|k| k.to_string()).collect::<Vec<_>>());
        if !seen.insert((res.resource_type, res.resource_name.to_string(), keys)) {
            continue;
        }
        let mut r = DescribeConfigsResult::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        // Checked before whether the resource exists, as Kafka does.
        let op = Operation::DescribeConfigs;
        if let Some(e) = config_refusal(broker, ctx, op, res.resource_type, &res.resource_name) {
            r.error_code = e.code();
            r.error_message = Some(str_bytes(super::default_message(e)));
            resp.results.push(r);
            continue;
        }
        let entries = match res.resource_type {
            RESOURCE_TOPIC => match broker.topics.get(&res.resource_name) {
                Some(t) => Ok(topic_entries(broker, &t.configs)),
                None => Err((ResponseError::UnknownTopicOrPartition, String::new())),
            },
            RESOURCE_BROKER
                if res.resource_name.is_empty()
                    || *res.resource_name == broker.config.node_id.to_string() =>
            {
                Ok(broker_entries(broker, res.resource_name.is_empty()))
            }
            RESOURCE_BROKER => Err((
                ResponseError::InvalidRequest,
                format!("Unexpected broker id, expected {}", broker.config.node_id),
            )),
            RESOURCE_GROUP if res.resource_name.is_empty() => Err((
                ResponseError::InvalidRequest,
                "Group name must not be empty".to_string(),
            )),
            RESOURCE_GROUP => Ok(group_entries(broker, &res.resource_name)),
            other => Err((
                ResponseError::InvalidRequest,
                format!("Unsupported resource type {other}"),
            )),
        };
        match entries {
            Ok(entries) => {
                // Kafka: null or an empty list both mean every config.
                let wanted = res.configuration_keys.as_ref().filter(|k| !k.is_empty());
                r.configs = entries
                    .into_iter()
                    .filter(|e| wanted.is_none_or(|keys| keys.iter().any(|k| **k == *e.name)))
                    .map(|e| describe_entry(e, req.include_synonyms, req.include_documentation))
                    .collect();
            }
            Err((e, m)) => {
                r.error_code = e.code();
                r.error_message = Some(str_bytes(&m));
            }
        }
        resp.results.push(r);
    }
    Some(resp)
}

/// Kafka's `ConfigResource.Type` ids that ListConfigResources (KIP-1142) lists.
const LISTABLE: [i8; 5] = KNOWN_TYPES;

pub async fn list_resources(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: ListConfigResourcesRequest,
) -> Option<ListConfigResourcesResponse> {
    let mut resp = ListConfigResourcesResponse::default();
    if !authorize::cluster(broker, ctx, Operation::DescribeConfigs) {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return Some(resp);
    }
    // v0 (ListClientMetricsResources) lists client-metrics subscriptions only; gregor has none.
    if ctx.header.request_api_version == 0 {
        return Some(resp);
    }
    if let Some(t) = req.resource_types.iter().find(|t| !LISTABLE.contains(t)) {
        tracing::debug!(
            resource_type = t,
            "ListConfigResources: unsupported resource type"
        );
        resp.error_code = ResponseError::UnsupportedVersion.code();
        return Some(resp);
    }
    let mut add = |ty: i8, name: String| {
        let mut r = list_config_resources_response::ConfigResource::default();
        r.resource_type = ty;
        r.resource_name = StrBytes::from_string(name);
        resp.config_resources.push(r);
    };
    // The requested types are a set (as in Kafka): each listed once, however often it is named.
    let types = LISTABLE
        .into_iter()
        .filter(|t| req.resource_types.is_empty() || req.resource_types.contains(t));
    for ty in types {
        match ty {
            // By name, as `all` lists them.
            RESOURCE_TOPIC => broker
                .topics
                .all()
                .iter()
                .for_each(|t| add(ty, t.name.to_string())),
            RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => add(ty, broker.config.node_id.to_string()),
            // Groups that have (or had, since start-up) dynamic configs, as Kafka lists them.
            RESOURCE_GROUP => broker
                .group_configs
                .group_ids()
                .into_iter()
                .for_each(|g| add(ty, g)),
            // No client-metrics subscriptions exist in gregor.
            _ => {}
        }
    }
    Some(resp)
}
