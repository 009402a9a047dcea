//! DescribeQuorum: the metadata quorum as Kafka's KRaft leader describes it. A single gregor is
//! the only voter and the leader of `__cluster_metadata`, with a static quorum (kraft.version 0,
//! so voters have no directory id) and no observers.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;

use super::authorize;
use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::Ctx;
use crate::security::acl::Operation;

/// The topic of Kafka's metadata log.
const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn describe(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DescribeQuorumRequest,
) -> Option<DescribeQuorumResponse> {
    let version = ctx.header.request_api_version;
    // Kafka 4.1.1 sends empty (not null) messages on success.
    let mut resp = DescribeQuorumResponse::default();
    if !authorize::cluster(broker, ctx, Operation::Describe) {
        // Kafka's top-level error response, with the error's default message from v2.
        let e = ResponseError::ClusterAuthorizationFailed;
        resp.error_code = e.code();
        resp.error_message = (version >= 2).then(|| str_bytes(super::default_message(e)));
        return Some(resp);
    }
    let is_metadata_partition = match req.topics.as_slice() {
        [t] => {
            t.topic_name.0.as_str() == METADATA_TOPIC
                && matches!(t.partitions.as_slice(), [p] if p.partition_index == 0)
        }
        _ => false,
    };
    if !is_metadata_partition {
        // Kafka's partition-level error response: every named partition, with the error's message.
        for t in req.topics {
            let mut rt = TopicData::default();
            rt.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut rp = PartitionData::default();
                    rp.partition_index = p.partition_index;
                    rp.error_code = ResponseError::UnknownTopicOrPartition.code();
                    rp.error_message = (version >= 2)
                        .then(|| str_bytes("This server does not host this topic-partition."));
                    rp
                })
                .collect();
            rt.topic_name = t.topic_name;
            resp.topics.push(rt);
        }
        return Some(resp);
    }
    let node = BrokerId(broker.config.node_id);
    let mut voter = ReplicaState::default();
    voter.replica_id = node;
    voter.log_end_offset = 0;
    if version >= 1 {
        // The leader has always fetched from itself and is always caught up.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        voter.last_fetch_timestamp = now;
        voter.last_caught_up_timestamp = now;
    }
    let mut part = PartitionData::default();
    part.leader_id = node;
    part.leader_epoch = 1;
    part.high_watermark = 0;
    part.current_voters = vec![voter];
    let mut topic = TopicData::default();
    topic.topic_name = TopicName(str_bytes(METADATA_TOPIC));
    topic.partitions = vec![part];
    resp.topics = vec![topic];
    if version >= 2 {
        let mut listener = Listener::default();
        listener.name = str_bytes(&ctx.listener.name);
        listener.host = str_bytes(&ctx.listener.advertised.host);
        listener.port = ctx.listener.advertised.port;
        let mut n = Node::default();
        n.node_id = node;
        n.listeners = vec![listener];
        resp.nodes = vec![n];
    }
    Some(resp)
}
