//! CreateTopics and DeleteTopics (enough for clients to manage topics; the full admin surface
//! lives with the admin APIs).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::authorize;
use super::str_bytes;
use crate::broker::Broker;
use crate::config::topic as topic_config;
use crate::dispatch::Ctx;
use crate::security::acl::{Operation, ResourceType};

pub async fn create(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: CreateTopicsRequest,
) -> Option<CreateTopicsResponse> {
    let mut resp = CreateTopicsResponse::default();
    // As Kafka's controller: CREATE on the cluster allows every topic, else CREATE on each.
    let may_create_all = authorize::cluster(broker, ctx, Operation::Create);
    let may_create = |name: &str| {
        may_create_all
            || authorize::allowed(broker, ctx, Operation::Create, ResourceType::Topic, name)
    };
    let (req_topics, refused): (Vec<_>, Vec<_>) =
        req.topics.into_iter().partition(|t| may_create(&t.name));
    // Answered after the others, as Kafka's controller answers them.
    let refusals = refused.into_iter().map(|t| {
        let mut r = CreatableTopicResult::default();
        r.name = t.name;
        r.num_partitions = -1;
        r.replication_factor = -1;
        r.error_code = ResponseError::TopicAuthorizationFailed.code();
        r.error_message = Some(str_bytes("Authorization failed."));
        r
    });
    // Kafka's controller writes the whole request as one batch of records, refused whole when too
    // large: a topic record per topic and a partition record per partition.
    let records: i64 = req_topics
        .iter()
        .map(|t| {
            let partitions = if !t.assignments.is_empty() {
                t.assignments.len() as i64
            } else if t.num_partitions == -1 {
                i64::from(broker.config.num_partitions)
            } else {
                i64::from(t.num_partitions.max(0))
            };
            1 + partitions
        })
        .sum();
    if let Err(e) = crate::topics::room::check_operation(records) {
        for t in req_topics {
            let mut r = CreatableTopicResult::default();
            r.name = t.name;
            r.num_partitions = -1;
            r.replication_factor = -1;
            r.error_code = e.error.code();
            r.error_message = Some(str_bytes(&e.message));
            resp.topics.push(r);
        }
        resp.topics.extend(refusals);
        return Some(resp);
    }
    let mut seen = std::collections::HashSet::new();
    for t in req_topics {
        let name = t.name.0.to_string();
        let mut r = CreatableTopicResult::default();
        r.name = t.name.clone();
        r.num_partitions = -1;
        r.replication_factor = -1;
        if !seen.insert(name.clone()) {
            r.error_code = ResponseError::InvalidRequest.code();
            r.error_message = Some(str_bytes(&format!(
                "duplicate topic name '{name}' in request"
            )));
            resp.topics.push(r);
            continue;
        }
        let fail = |r: &mut CreatableTopicResult, e: ResponseError, m: String| {
            r.error_code = e.code();
            r.error_message = Some(str_bytes(&m));
        };
        let partitions = if !t.assignments.is_empty() {
            if t.num_partitions != -1 || t.replication_factor != -1 {
                fail(&mut r, ResponseError::InvalidRequest, "both numPartitions or replicationFactor and replicasAssignments were set; both cannot be used at the same time".into());
                resp.topics.push(r);
                continue;
            }
            let bad = t.assignments.iter().enumerate().find(|(i, a)| {
                a.partition_index != *i as i32
                    || a.broker_ids != [kafka_protocol::messages::BrokerId(broker.config.node_id)]
            });
            if let Some((_, a)) = bad {
                fail(
                    &mut r,
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "invalid replica assignment for partition {}",
                        a.partition_index
                    ),
                );
                resp.topics.push(r);
                continue;
            }
            t.assignments.len() as i32
        } else if t.num_partitions == -1 {
            broker.config.num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            broker.config.default_replication_factor
        } else {
            t.replication_factor
        };
        if t.assignments.is_empty() && partitions < 1 {
            fail(
                &mut r,
                ResponseError::InvalidPartitions,
                "Number of partitions was set to an invalid non-positive value.".into(),
            );
        } else if rf < 1 {
            fail(
                &mut r,
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            );
        } else if broker.cluster.is_some() {
            fail(
                &mut r,
                ResponseError::PolicyViolation,
                crate::cluster::TOPICS_NOT_PLACED.into(),
            );
        } else if rf > 1 {
            fail(
                &mut r,
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered."
                ),
            );
        } else {
            let configs: BTreeMap<String, String> = t
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            if let Some(c) = t.configs.iter().find(|c| c.value.is_none()) {
                fail(
                    &mut r,
                    ResponseError::InvalidRequest,
                    format!("Null value not supported for topic configs: {}", &*c.name),
                );
                resp.topics.push(r);
                continue;
            }
            if let Some(m) = configs
                .iter()
                .find_map(|(k, v)| topic_config::validate(k, v).err())
            {
                fail(&mut r, ResponseError::InvalidConfig, m);
                resp.topics.push(r);
                continue;
            }
            match broker
                .topics
                .create(&name, partitions, configs, req.validate_only)
                .await
            {
                // As Kafka: the configs are told only with DESCRIBE_CONFIGS on the topic.
                Ok(_)
                    if !authorize::allowed(
                        broker,
                        ctx,
                        Operation::DescribeConfigs,
                        ResourceType::Topic,
                        &name,
                    ) =>
                {
                    r.error_message = None;
                    r.topic_config_error_code = ResponseError::TopicAuthorizationFailed.code();
                    r.configs = Some(Vec::new());
                }
                Ok(topic) => {
                    r.error_message = None;
                    r.topic_id = topic.id;
                    r.num_partitions = partitions;
                    r.replication_factor = rf;
                    r.configs = Some(
                        topic_config::TOPIC_CONFIGS
                            .iter()
                            .map(|d| {
                                let (_, value, source) =
                                    topic_config::resolve(d, &topic.configs, &broker.config.raw)
                                        .swap_remove(0);
                                let mut c = CreatableTopicConfigs::default();
                                c.name = str_bytes(d.name);
                                c.value = Some(str_bytes(&value));
                                c.config_source = source as i8;
                                c
                            })
                            .collect(),
                    );
                }
                Err(e) => fail(&mut r, e.error, e.message),
            }
        }
        resp.topics.push(r);
    }
    resp.topics.extend(refusals);
    Some(resp)
}

pub async fn delete(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DeleteTopicsRequest,
) -> Option<DeleteTopicsResponse> {
    let wanted: Vec<(Option<String>, Uuid)> = if ctx.header.request_api_version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut resp = DeleteTopicsResponse::default();
    // As Kafka's controller: DELETE on the cluster allows every topic; else a topic the principal
    // may not describe is refused whether or not it exists, and one it may describe needs DELETE.
    let may_delete_all = authorize::cluster(broker, ctx, Operation::Delete);
    let may = |op: Operation, name: &str| {
        may_delete_all || authorize::allowed(broker, ctx, op, ResourceType::Topic, name)
    };
    let refuse = |r: &mut DeletableTopicResult| {
        let e = ResponseError::TopicAuthorizationFailed;
        r.error_code = e.code();
        r.error_message = Some(str_bytes(super::default_message(e)));
    };
    for (name, id) in wanted {
        let mut r = DeletableTopicResult::default();
        r.error_message = None;
        r.name = name.as_deref().map(|n| TopicName(str_bytes(n)));
        r.topic_id = id;
        if name
            .as_deref()
            .is_some_and(|n| !may(Operation::Describe, n))
        {
            r.topic_id = Uuid::nil();
            refuse(&mut r);
            resp.responses.push(r);
            continue;
        }
        let topic = match &name {
            Some(n) => broker.topics.get(n),
            None => broker.topics.get_by_id(&id),
        };
        match topic {
            Some(t) if !may(Operation::Delete, &t.name) => {
                if may(Operation::Describe, &t.name) {
                    r.name = Some(TopicName(str_bytes(&t.name)));
                }
                refuse(&mut r);
            }
            Some(t) => {
                r.name = Some(TopicName(str_bytes(&t.name)));
                r.topic_id = t.id;
                let deleted = broker.topics.delete(&t).await;
                // Fetches parked on its partitions answer now, not at their max_wait_ms.
                broker.store.partitions_stopped(&t.partitions);
                if let Err(e) = deleted {
                    r.error_code = e.error.code();
                    r.error_message = Some(str_bytes(&e.message));
                }
            }
            None => {
                let e = if name.is_some() {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::UnknownTopicId
                };
                r.error_code = e.code();
                r.error_message = Some(str_bytes(super::default_message(e)));
            }
        }
        resp.responses.push(r);
    }
    Some(resp)
}
