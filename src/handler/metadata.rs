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

use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::Ctx;
use crate::topics::Topic;

/// Kafka's bit set of every topic operation (READ..ALTER_CONFIGS), as reported with no authorizer.
pub(crate) const ALL_TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);

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
    let ops = if req.include_topic_authorized_operations {
        ALL_TOPIC_OPERATIONS
    } else {
        i32::MIN
    };
    let mut resp = MetadataResponse::default();
    let mut b = MetadataResponseBroker::default();
    b.node_id = BrokerId(broker.config.node_id);
    b.host = str_bytes(&ctx.listener.advertised.host);
    b.port = i32::from(ctx.listener.advertised.port);
    resp.brokers = vec![b];
    resp.cluster_id = Some(str_bytes(&broker.cluster_id));
    resp.controller_id = BrokerId(broker.config.node_id);
    resp.cluster_authorized_operations = i32::MIN;
    let requested = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let Some(requested) = requested else {
        resp.topics = broker
            .topics
            .all()
            .iter()
            .map(|t| topic_entry(broker, t, ops))
            .collect();
        return Some(resp);
    };
    let auto_create =
        broker.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    // As Kafka (a set of topics): a topic named more than once is described once.
    let mut seen = std::collections::HashSet::new();
    let requested = requested
        .into_iter()
        .filter(|t| seen.insert((t.name.clone(), t.topic_id)));
    for wanted in requested {
        let entry = match wanted.name {
            Some(name) => {
                let name = name.0.as_str();
                match broker.topics.get(name) {
                    Some(t) => topic_entry(broker, &t, ops),
                    None if auto_create => {
                        match broker
                            .topics
                            .create(name, broker.config.num_partitions, BTreeMap::new(), false)
                            .await
                        {
                            Ok(t) => topic_entry(broker, &t, ops),
                            // Lost a race with another creator: describe what exists.
                            Err(e) if e.error == ResponseError::TopicAlreadyExists => {
                                match broker.topics.get(name) {
                                    Some(t) => topic_entry(broker, &t, ops),
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
                Some(t) => topic_entry(broker, &t, ops),
                None => error_entry(None, wanted.topic_id, ResponseError::UnknownTopicId),
            },
        };
        resp.topics.push(entry);
    }
    Some(resp)
}
