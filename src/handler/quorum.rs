//! DescribeQuorum: the metadata quorum as Kafka's KRaft leader describes it, with a static quorum
//! (kraft.version 0, so voters have no directory id) and no observers. On a cluster a node that
//! does not lead asks the leader (as Kafka's brokers forward it to the active controller); a single
//! gregor is the only voter and the leader of `__cluster_metadata`.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;

use super::authorize;
use super::str_bytes;
use crate::broker::Broker;
use crate::cluster::rpc::{QuorumState, VoterState};
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
    let Some((state, endpoints)) = quorum_state(broker, ctx).await else {
        // No leader answered (an election, or no majority): Kafka's NOT_LEADER_OR_FOLLOWER.
        let mut part = PartitionData::default();
        part.error_code = ResponseError::NotLeaderOrFollower.code();
        part.error_message = (version >= 2)
            .then(|| str_bytes(super::default_message(ResponseError::NotLeaderOrFollower)));
        let mut topic = TopicData::default();
        topic.topic_name = TopicName(str_bytes(METADATA_TOPIC));
        topic.partitions = vec![part];
        resp.topics = vec![topic];
        return Some(resp);
    };
    let mut part = PartitionData::default();
    part.leader_id = BrokerId(state.leader);
    part.leader_epoch = state.epoch;
    part.high_watermark = state.high_watermark;
    part.current_voters = state
        .voters
        .iter()
        .map(|v| {
            let mut r = ReplicaState::default();
            r.replica_id = BrokerId(v.id);
            r.log_end_offset = v.log_end_offset;
            if version >= 1 {
                r.last_fetch_timestamp = v.last_fetch_timestamp;
                r.last_caught_up_timestamp = v.last_caught_up_timestamp;
            }
            r
        })
        .collect();
    let mut topic = TopicData::default();
    topic.topic_name = TopicName(str_bytes(METADATA_TOPIC));
    topic.partitions = vec![part];
    resp.topics = vec![topic];
    if version >= 2 {
        resp.nodes = endpoints
            .into_iter()
            .map(|(id, name, host, port)| {
                let mut listener = Listener::default();
                listener.name = str_bytes(&name);
                listener.host = str_bytes(&host);
                listener.port = port;
                let mut n = Node::default();
                n.node_id = BrokerId(id);
                n.listeners = vec![listener];
                n
            })
            .collect();
    }
    Some(resp)
}

/// A voter's endpoint as DescribeQuorum v2 lists it: id, listener name, host, port.
type VoterEndpoint = (i32, String, String, u16);

/// The quorum and its voters' endpoints: on a cluster as the leader describes it (`None` when
/// none answers); a single gregor is the only voter, the leader of a log it has always had
/// whole, reached on the listener the client used.
async fn quorum_state(broker: &Broker, ctx: &Ctx) -> Option<(QuorumState, Vec<VoterEndpoint>)> {
    if let Some(cluster) = &broker.cluster {
        let state = cluster.describe_quorum().await?;
        let name = &cluster.config.controller_listener;
        let endpoints = cluster
            .config
            .voters
            .iter()
            .map(|v| (v.id, name.clone(), v.endpoint.host.clone(), v.endpoint.port))
            .collect();
        return Some((state, endpoints));
    }
    let now = crate::cluster::now_ms();
    let id = broker.config.node_id;
    let state = QuorumState {
        leader: id,
        epoch: 1,
        high_watermark: 0,
        voters: vec![VoterState {
            id,
            log_end_offset: 0,
            last_fetch_timestamp: now,
            last_caught_up_timestamp: now,
        }],
    };
    let l = &ctx.listener;
    Some((
        state,
        vec![(
            id,
            l.name.clone(),
            l.advertised.host.clone(),
            l.advertised.port,
        )],
    ))
}
