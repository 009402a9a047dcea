//! Replica placement and leadership: ElectLeaders, AlterPartitionReassignments and
//! ListPartitionReassignments, answered as Kafka's controller answers them for a cluster of one
//! broker (every partition has its only replica as leader; no reassignment is ever in progress).

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorize;
use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::Ctx;
use crate::security::acl::Operation;

/// Kafka's `ElectionType`: PREFERRED (0) and UNCLEAN (1).
const ELECTION_TYPES: std::ops::RangeInclusive<i8> = 0..=1;

/// Kafka's `Errors.ELECTION_NOT_NEEDED.message()`, which its controller sends with the code.
const ELECTION_NOT_NEEDED_MESSAGE: &str = "Leader election not needed for topic partition.";

fn partition_result(partition: i32, error: ResponseError, message: String) -> PartitionResult {
    let mut r = PartitionResult::default();
    r.partition_id = partition;
    r.error_code = error.code();
    r.error_message = Some(str_bytes(&message));
    r
}

pub async fn elect_leaders(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: ElectLeadersRequest,
) -> Option<ElectLeadersResponse> {
    let mut resp = ElectLeadersResponse::default();
    let refusal = if !authorize::cluster(broker, ctx, Operation::Alter) {
        Some((
            ResponseError::ClusterAuthorizationFailed,
            authorize::needs(ctx, Operation::Alter),
        ))
    } else if !ELECTION_TYPES.contains(&req.election_type) {
        Some((
            ResponseError::InvalidRequest,
            format!("Unknown election type {}", req.election_type),
        ))
    } else {
        None
    };
    if let Some((error, message)) = refusal {
        // Kafka's exception, answered through the request's error response: the code at the top
        // (v1+) and on every named partition.
        if ctx.header.request_api_version >= 1 {
            resp.error_code = error.code();
        }
        for t in req.topic_partitions.unwrap_or_default() {
            let mut r = ReplicaElectionResult::default();
            r.topic = t.topic;
            r.partition_result = t
                .partitions
                .into_iter()
                .map(|p| partition_result(p, error, message.clone()))
                .collect();
            resp.replica_election_results.push(r);
        }
        return Some(resp);
    }
    match req.topic_partitions {
        // Every partition: those that already have their leader (all of them, with one broker)
        // are left out, so each topic comes back with no partitions, as from Kafka.
        None => {
            // By name, as `all` lists them.
            for t in broker.topics.all() {
                let mut r = ReplicaElectionResult::default();
                r.topic = TopicName(str_bytes(&t.name));
                resp.replica_election_results.push(r);
            }
        }
        Some(topics) => {
            for t in topics {
                let topic = broker.topics.get(&t.topic.0);
                let mut r = ReplicaElectionResult::default();
                for p in t.partitions {
                    r.partition_result.push(match &topic {
                        None => partition_result(
                            p,
                            ResponseError::UnknownTopicOrPartition,
                            format!("No such topic as {}", t.topic.0),
                        ),
                        Some(topic) if topic.partition(p).is_none() => partition_result(
                            p,
                            ResponseError::UnknownTopicOrPartition,
                            format!("No such partition as {}-{p}", t.topic.0),
                        ),
                        // The only replica is the preferred one and the leader: for PREFERRED
                        // and UNCLEAN alike there is nothing to elect.
                        Some(_) => partition_result(
                            p,
                            ResponseError::ElectionNotNeeded,
                            ELECTION_NOT_NEEDED_MESSAGE.to_string(),
                        ),
                    });
                }
                r.topic = t.topic;
                resp.replica_election_results.push(r);
            }
        }
    }
    Some(resp)
}

/// Why a reassignment of one partition is refused, as Kafka's controller words it.
fn check_reassignment(
    broker: &Broker,
    topic: &str,
    partition: i32,
    replicas: Option<&[BrokerId]>,
    allow_rf_change: bool,
) -> Result<(), (ResponseError, String)> {
    let node = broker.config.node_id;
    let Some(t) = broker.topics.get(topic) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Unable to find a topic named {topic}."),
        ));
    };
    if t.partition(partition).is_none() {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Unable to find partition {topic}:{partition}."),
        ));
    }
    // A null replica list cancels a reassignment; none is ever in progress here. (Kafka 4.1
    // answers this one with a null message.)
    let Some(replicas) = replicas else {
        return Err((ResponseError::NoReassignmentInProgress, String::new()));
    };
    // Every partition has one replica (this broker).
    if !allow_rf_change && replicas.len() != 1 {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!(
                "The replication factor is changed from 1 to {}",
                replicas.len()
            ),
        ));
    }
    if replicas.is_empty() {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "The manual partition assignment includes an empty replica list.".to_string(),
        ));
    }
    let mut sorted: Vec<i32> = replicas.iter().map(|b| b.0).collect();
    sorted.sort_unstable();
    let mut previous = None;
    for id in sorted {
        if id != node {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "The manual partition assignment includes broker {id}, but no such broker \
                     is registered."
                ),
            ));
        }
        if previous == Some(id) {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!("The manual partition assignment includes the broker {id} more than once."),
            ));
        }
        previous = Some(id);
    }
    // The replicas are already [this broker]: the reassignment is complete as soon as made.
    Ok(())
}

pub async fn alter_partition_reassignments(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: AlterPartitionReassignmentsRequest,
) -> Option<AlterPartitionReassignmentsResponse> {
    let mut resp = AlterPartitionReassignmentsResponse::default();
    if !authorize::cluster(broker, ctx, Operation::Alter) {
        // As Kafka: the error at the top and on every partition.
        let e = ResponseError::ClusterAuthorizationFailed;
        let message = authorize::needs(ctx, Operation::Alter);
        resp.error_code = e.code();
        resp.error_message = Some(str_bytes(&message));
        resp.allow_replication_factor_change = req.allow_replication_factor_change;
        for t in req.topics {
            let mut rt = ReassignableTopicResponse::default();
            rt.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut rp = ReassignablePartitionResponse::default();
                    rp.partition_index = p.partition_index;
                    rp.error_code = e.code();
                    rp.error_message = Some(str_bytes(&message));
                    rp
                })
                .collect();
            rt.name = t.name;
            resp.responses.push(rt);
        }
        return Some(resp);
    }
    // Kafka answers a request naming no topic with an empty message, any other with null.
    resp.error_message = req.topics.is_empty().then(StrBytes::default);
    resp.allow_replication_factor_change = req.allow_replication_factor_change;
    for t in req.topics {
        let mut rt = ReassignableTopicResponse::default();
        for p in t.partitions {
            let mut rp = ReassignablePartitionResponse::default();
            rp.partition_index = p.partition_index;
            rp.error_message = None;
            let checked = check_reassignment(
                broker,
                &t.name.0,
                p.partition_index,
                p.replicas.as_deref(),
                req.allow_replication_factor_change,
            );
            if let Err((e, m)) = checked {
                tracing::info!(topic = %t.name.0, partition = p.partition_index, error = ?e, "reassignment refused: {m}");
                rp.error_code = e.code();
                rp.error_message = (!m.is_empty()).then(|| str_bytes(&m));
            }
            rt.partitions.push(rp);
        }
        rt.name = t.name;
        resp.responses.push(rt);
    }
    Some(resp)
}

pub async fn list_partition_reassignments(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    _req: ListPartitionReassignmentsRequest,
) -> Option<ListPartitionReassignmentsResponse> {
    // Reassignments complete as soon as they are made: none is ever in progress.
    let mut resp = ListPartitionReassignmentsResponse::default();
    resp.error_message = None;
    if !authorize::cluster(broker, ctx, Operation::Describe) {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        resp.error_message = Some(str_bytes(&authorize::needs(ctx, Operation::Describe)));
    }
    Some(resp)
}
