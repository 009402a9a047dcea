//! Metadata: the broker, the cluster id, the controller (ourselves) and topics with their
//! partitions; auto-creates requested topics when `auto.create.topics.enable` allows it.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::authorize::{self, TOPIC_OPERATIONS};
use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::Ctx;
use crate::security::acl::{Operation, ResourceType};
use crate::topics::Topic;

/// Whether the principal may have topic `name` created: CREATE on the cluster or on the topic.
pub(crate) fn may_create(broker: &Broker, ctx: &Ctx, name: &str) -> bool {
    authorize::cluster(broker, ctx, Operation::Create)
        || authorize::allowed(broker, ctx, Operation::Create, ResourceType::Topic, name)
}

pub(crate) fn topic_entry(broker: &Broker, topic: &Topic, ops: i32) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(str_bytes(&topic.name)));
    t.topic_id = topic.id;
    t.topic_authorized_operations = ops;
    t.partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let mut mp = MetadataResponsePartition::default();
            mp.partition_index = p.key.partition;
            mp.leader_id = node;
            mp.leader_epoch = 0;
            mp.replica_nodes = vec![node];
            mp.isr_nodes = vec![node];
            if p.is_offline() {
                // Its only replica is in an offline log dir: no leader, as Kafka reports it.
                mp.error_code = ResponseError::LeaderNotAvailable.code();
                mp.leader_id = BrokerId(-1);
                mp.offline_replicas = vec![node];
            }
            mp
        })
        .collect();
    t
}

fn error_entry(name: Option<&str>, id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = name.map(|n| TopicName(str_bytes(n)));
    t.topic_id = id;
    t.error_code = error.code();
    t
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: MetadataRequest,
) -> Option<MetadataResponse> {
    let version = ctx.header.request_api_version;
    let include_ops = req.include_topic_authorized_operations;
    let ops = |name: &str| {
        if include_ops {
            authorize::operations(broker, ctx, ResourceType::Topic, name, TOPIC_OPERATIONS)
        } else {
            i32::MIN
        }
    };
    let may_describe = |name: &str| {
        authorize::allowed(broker, ctx, Operation::Describe, ResourceType::Topic, name)
    };
    let mut resp = MetadataResponse::default();
    resp.brokers = broker
        .live_brokers(&ctx.listener)
        .into_iter()
        .map(|info| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(info.id);
            b.host = str_bytes(&info.host);
            b.port = i32::from(info.port);
            b.rack = info.rack.as_deref().map(str_bytes);
            b
        })
        .collect();
    resp.cluster_id = Some(str_bytes(&broker.cluster_id));
    resp.controller_id = BrokerId(broker.controller_id());
    // As Kafka: v8-v10 carry the cluster's authorized operations when asked (0 without DESCRIBE).
    resp.cluster_authorized_operations =
        if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
            authorize::cluster_operations(broker, ctx)
        } else {
            i32::MIN
        };
    let requested = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let Some(requested) = requested else {
        // Every topic the principal may describe; the others are not mentioned.
        resp.topics = broker
            .topics
            .all()
            .iter()
            .filter(|t| may_describe(&t.name))
            .map(|t| topic_entry(broker, t, ops(&t.name)))
            .collect();
        return Some(resp);
    };
    // A cluster cannot place topics yet (see `cluster::TOPICS_NOT_PLACED`): none are auto-created.
    let auto_create = broker.config.auto_create_topics
        && broker.cluster.is_none()
        && (version < 4 || req.allow_auto_topic_creation);
    // As Kafka (a set of topics): a topic named more than once is described once.
    let mut seen = std::collections::HashSet::new();
    let requested = requested
        .into_iter()
        .filter(|t| seen.insert((t.name.clone(), t.topic_id)));
    for wanted in requested {
        let entry = match wanted.name {
            Some(name) => {
                let name = name.0.as_str();
                // As Kafka: whether a topic the principal may not describe exists is not told.
                if !may_describe(name) {
                    resp.topics.push(error_entry(
                        Some(name),
                        Uuid::nil(),
                        ResponseError::TopicAuthorizationFailed,
                    ));
                    continue;
                }
                match broker.topics.get(name) {
                    Some(t) => topic_entry(broker, &t, ops(name)),
                    None if auto_create && !may_create(broker, ctx, name) => error_entry(
                        Some(name),
                        Uuid::nil(),
                        ResponseError::TopicAuthorizationFailed,
                    ),
                    None if auto_create => {
                        match broker
                            .topics
                            .create(name, broker.config.num_partitions, BTreeMap::new(), false)
                            .await
                        {
                            Ok(t) => topic_entry(broker, &t, ops(name)),
                            // Lost a race with another creator: describe what exists.
                            Err(e) if e.error == ResponseError::TopicAlreadyExists => {
                                match broker.topics.get(name) {
                                    Some(t) => topic_entry(broker, &t, ops(name)),
                                    None => error_entry(
                                        Some(name),
                                        Uuid::nil(),
                                        ResponseError::LeaderNotAvailable,
                                    ),
                                }
                            }
                            Err(e) => error_entry(Some(name), Uuid::nil(), e.error),
                        }
                    }
                    None => error_entry(
                        Some(name),
                        Uuid::nil(),
                        ResponseError::UnknownTopicOrPartition,
                    ),
                }
            }
            None => match broker.topics.get_by_id(&wanted.topic_id) {
                // Ids are not secret (Kafka): the id is answered TOPIC_AUTHORIZATION_FAILED.
                Some(t) if !may_describe(&t.name) => error_entry(
                    None,
                    wanted.topic_id,
                    ResponseError::TopicAuthorizationFailed,
                ),
                Some(t) => topic_entry(broker, &t, ops(&t.name)),
                None => error_entry(None, wanted.topic_id, ResponseError::UnknownTopicId),
            },
        };
        resp.topics.push(entry);
    }
    Some(resp)
}
