//! AlterConfigs and IncrementalAlterConfigs for topics, the broker (its configs are static:
//! altering them is refused, as Kafka refuses read-only ones) and groups (KIP-848 group configs,
//! see `config::group`).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorize::config_refusal;
use super::config_checks::preprocess;
use super::configs::{RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::str_bytes;
use crate::broker::Broker;
use crate::config::group::{AlterError, Change, OP_APPEND, OP_DELETE, OP_SET, OP_SUBTRACT};
use crate::config::topic::{self, ConfigType};
use crate::dispatch::Ctx;
use crate::security::acl::Operation;

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
