//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (every Kafka topic config,
//! with source, synonyms and documentation), for the broker (every config Kafka's broker lists,
//! sensitive values hidden; its configs are static: altering them is refused) and for groups
//! (KIP-848 group configs, see `config::group`); ListConfigResources.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorize::{self, config_refusal};
use super::config_checks::{preprocess, KNOWN_TYPES};
use super::str_bytes;
use crate::broker::Broker;
use crate::config::describe;
use crate::config::group::{AlterError, Change, OP_APPEND, OP_DELETE, OP_SET, OP_SUBTRACT};
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
    for res in req.resources {
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

/// Validates and applies a topic's new override set (or only validates).
async fn apply_topic(
    broker: &Broker,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    for (k, v) in &configs {
        topic::validate(k, v).map_err(|m| (ResponseError::InvalidConfig, m))?;
    }
    if validate_only {
        return Ok(());
    }
    broker
        .topics
        .set_configs(name, configs)
        .await
        .map_err(|e| (e.error, e.message))
}

fn alter_response(
    resource_type: i8,
    name: &StrBytes,
    r: Result<(), AlterError>,
) -> alter_configs_response::AlterConfigsResourceResponse {
    let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
    out.resource_type = resource_type;
    out.resource_name = name.clone();
    // Kafka answers a success with a null message (the codec's default is "").
    out.error_message = None;
    if let Err((e, m)) = r {
        out.error_code = e.code();
        out.error_message = m.as_deref().map(str_bytes);
    }
    out
}

/// The topic an AlterConfigs resource names, or Kafka's refusal: an empty name is the default
/// topic resource, which Kafka does not allow; a missing topic is named.
fn topic_to_alter(
    broker: &Broker,
    name: &str,
) -> Result<Arc<crate::topics::Topic>, (ResponseError, String)> {
    if name.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            "Default topic resources are not allowed.".into(),
        ));
    }
    broker.topics.get(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("The topic '{name}' does not exist."),
        )
    })
}

/// An error with a message.
fn with_message((e, m): (ResponseError, String)) -> AlterError {
    (e, Some(m))
}

/// A known resource type gregor has no configs for (broker loggers, client metrics).
fn unsupported(ty: i8) -> Result<(), AlterError> {
    let message = format!("Unsupported resource type {ty}");
    Err((ResponseError::InvalidRequest, Some(message)))
}

/// Why an alteration of broker `name`'s configs is refused: a name that is not this broker's id
/// (Kafka's messages), or any change at all (gregor's broker configs are static).
fn broker_refusal(broker: &Broker, name: &str) -> (ResponseError, String) {
    let node = broker.config.node_id;
    if !name.is_empty() {
        match name.parse::<i32>() {
            Err(_) => {
                return (
                    ResponseError::InvalidRequest,
                    format!("Node id must be an integer, but it is: {name}"),
                )
            }
            Ok(id) if id != node => {
                return (
                    ResponseError::InvalidRequest,
                    format!("Unexpected broker id, expected {node}, but received {name}"),
                )
            }
            Ok(_) => {}
        }
    }
    (
        ResponseError::InvalidRequest,
        "Cannot update these configs dynamically: gregor's broker configs are static".into(),
    )
}

/// Broker configs have no dynamic values in gregor, so deleting them (as
/// kafka-reassign-partitions.sh does with its throttles) changes nothing and succeeds, as deleting
/// an unset dynamic config does in Kafka (read-only keys included); setting one is refused.
fn broker_deletes(
    broker: &Broker,
    name: &str,
    ops: &[(&str, i8)],
) -> Result<(), (ResponseError, String)> {
    let refusal = broker_refusal(broker, name);
    if refusal.1.starts_with("Cannot update") && ops.iter().all(|(_, op)| *op == OP_DELETE) {
        Ok(())
    } else {
        Err(refusal)
    }
}

pub async fn alter(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: AlterConfigsRequest,
) -> Option<AlterConfigsResponse> {
    let mut resp = AlterConfigsResponse::default();
    let mut refusals = preprocess(&req.resources);
    for (i, res) in req.resources.iter().enumerate() {
        let op = Operation::AlterConfigs;
        let denied = config_refusal(broker, ctx, op, res.resource_type, &res.resource_name);
        let result = match refusals[i].take() {
            Some(refused) => Err(refused),
            None => match res.resource_type {
                _ if denied.is_some() => Err(denial(denied)),
                RESOURCE_TOPIC => match topic_to_alter(broker, &res.resource_name) {
                    Err(refused) => Err(refused),
                    Ok(_) => {
                        let configs = res
                            .configs
                            .iter()
                            .filter_map(|c| {
                                Some((c.name.to_string(), c.value.as_ref()?.to_string()))
                            })
                            .collect();
                        apply_topic(broker, &res.resource_name, configs, req.validate_only).await
                    }
                }
                .map_err(with_message),
                RESOURCE_BROKER => Err(with_message(broker_refusal(broker, &res.resource_name))),
                RESOURCE_GROUP => {
                    let set: Vec<(&str, Option<&str>)> = res
                        .configs
                        .iter()
                        .map(|c| (c.name.as_str(), c.value.as_deref()))
                        .collect();
                    broker
                        .group_configs
                        .alter(
                            &res.resource_name,
                            &Change::Replace(&set),
                            req.validate_only,
                        )
                        .await
                }
                other => unsupported(other),
            },
        };
        resp.responses.push(alter_response(
            res.resource_type,
            &res.resource_name,
            result,
        ));
    }
    Some(resp)
}

/// ALTER_CONFIGS refused: Kafka's error for the resource type, with its default message.
fn denial(denied: Option<ResponseError>) -> AlterError {
    let e = denied.unwrap_or(ResponseError::UnknownServerError);
    (e, Some(super::default_message(e).to_string()))
}

fn list_of(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

pub async fn incremental_alter(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: IncrementalAlterConfigsRequest,
) -> Option<IncrementalAlterConfigsResponse> {
    let mut resp = IncrementalAlterConfigsResponse::default();
    let mut refusals = preprocess(&req.resources);
    for (i, res) in req.resources.iter().enumerate() {
        let op = Operation::AlterConfigs;
        let denied = config_refusal(broker, ctx, op, res.resource_type, &res.resource_name);
        let result = match refusals[i].take() {
            Some(refused) => Err(refused),
            None => match res.resource_type {
                _ if denied.is_some() => Err(denial(denied)),
                RESOURCE_TOPIC => match topic_to_alter(broker, &res.resource_name) {
                    Err(refused) => Err(with_message(refused)),
                    Ok(t) => {
                        let mut configs = t.configs.clone();
                        let mut failed: Option<AlterError> = None;
                        for c in &res.configs {
                            let name = c.name.to_string();
                            let Some(def) = topic::find(&name) else {
                                // Deleting a key that does not exist changes nothing (as in Kafka).
                                if c.config_operation == OP_DELETE {
                                    continue;
                                }
                                failed = Some((
                                    ResponseError::InvalidConfig,
                                    Some(format!("Unknown topic config name: {name}")),
                                ));
                                break;
                            };
                            let value = c.value.as_ref().map(|v| v.to_string());
                            let current = || {
                                configs.get(&name).cloned().unwrap_or_else(|| {
                                    topic::resolve(def, &BTreeMap::new(), &broker.config.raw)[0]
                                        .1
                                        .clone()
                                })
                            };
                            match (c.config_operation, value) {
                                (OP_SET, Some(v)) => {
                                    configs.insert(name, v);
                                }
                                (OP_DELETE, _) => {
                                    configs.remove(&name);
                                }
                                (OP_APPEND | OP_SUBTRACT, Some(v))
                                    if def.ty == ConfigType::List =>
                                {
                                    let mut items = list_of(&current());
                                    for item in list_of(&v) {
                                        if c.config_operation == OP_APPEND && !items.contains(&item)
                                        {
                                            items.push(item);
                                        } else if c.config_operation == OP_SUBTRACT {
                                            items.retain(|i| *i != item);
                                        }
                                    }
                                    configs.insert(name, items.join(","));
                                }
                                (OP_APPEND | OP_SUBTRACT, _) => {
                                    let op = if c.config_operation == OP_APPEND {
                                        "APPEND"
                                    } else {
                                        "SUBTRACT"
                                    };
                                    let m = format!(
                                        "Can't {op} to key {name} because its type is not LIST."
                                    );
                                    failed = Some((ResponseError::InvalidConfig, Some(m)));
                                    break;
                                }
                                // An operation Kafka does not know: its `OpType.forId` fails, and the
                                // request with it (UNKNOWN_SERVER_ERROR, no message).
                                _ => {
                                    failed = Some((ResponseError::UnknownServerError, None));
                                    break;
                                }
                            }
                        }
                        match failed {
                            Some(f) => Err(f),
                            None => {
                                apply_topic(broker, &res.resource_name, configs, req.validate_only)
                                    .await
                                    .map_err(with_message)
                            }
                        }
                    }
                },
                RESOURCE_BROKER => {
                    let keys: Vec<(&str, i8)> = res
                        .configs
                        .iter()
                        .map(|c| (c.name.as_str(), c.config_operation))
                        .collect();
                    broker_deletes(broker, &res.resource_name, &keys).map_err(with_message)
                }
                RESOURCE_GROUP => {
                    let ops: Vec<(&str, i8, Option<&str>)> = res
                        .configs
                        .iter()
                        .map(|c| (c.name.as_str(), c.config_operation, c.value.as_deref()))
                        .collect();
                    broker
                        .group_configs
                        .alter(
                            &res.resource_name,
                            &Change::Incremental(&ops),
                            req.validate_only,
                        )
                        .await
                }
                other => unsupported(other),
            },
        };
        let r = alter_response(res.resource_type, &res.resource_name, result);
        let mut out = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = r.resource_type;
        out.resource_name = r.resource_name;
        out.error_code = r.error_code;
        out.error_message = r.error_message;
        resp.responses.push(out);
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
