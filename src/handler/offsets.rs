//! OffsetCommit, OffsetFetch and OffsetDelete: committed consumer offsets, durable (flushed)
//! before a commit is acknowledged.

use std::sync::Arc;

use bytes::Buf;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;

use super::authorize::{self, Memo};
use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::Ctx;
use crate::group::offsets::Committed;
use crate::group::state::Group;
use crate::log::now_ms;
use crate::security::acl::{Operation, ResourceType};

/// Whether the request's principal may do `op` on the group `id`.
fn group_allowed(broker: &Broker, ctx: &Ctx, op: Operation, id: &str) -> bool {
    authorize::allowed(broker, ctx, op, ResourceType::Group, id)
}

fn partition_exists(broker: &Broker, topic: &str, partition: i32) -> bool {
    broker
        .topics
        .get(topic)
        .is_some_and(|t| t.partition(partition).is_some())
}

pub async fn commit(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: OffsetCommitRequest,
) -> Option<OffsetCommitResponse> {
    let version = ctx.header.request_api_version;
    let now = now_ms();
    let max_meta = broker.groups.config.offset_metadata_max_bytes;
    // As Kafka: READ on the group decides for every partition, then READ on each topic, before
    // anything else is looked at.
    let group_refused = !group_allowed(broker, ctx, Operation::Read, &req.group_id.0);
    let mut readable = Memo::new(broker, ctx, Operation::Read, ResourceType::Topic);
    let mut errors: Vec<Vec<Option<ResponseError>>> = Vec::new();
    let mut valid = Vec::new();
    for (ti, t) in req.topics.iter().enumerate() {
        errors.push(Vec::new());
        let topic_refused = !group_refused && !readable.allowed(&t.name.0);
        for p in &t.partitions {
            let e = if group_refused {
                Some(ResponseError::GroupAuthorizationFailed)
            } else if topic_refused {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if let Err(e) = crate::group::coordinator::valid_group_id(&req.group_id.0) {
                Some(e)
            } else if !partition_exists(broker, &t.name.0, p.partition_index) {
                Some(ResponseError::UnknownTopicOrPartition)
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > max_meta)
            {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else {
                valid.push((
                    (ti, errors[ti].len()),
                    (t.name.0.to_string(), p.partition_index),
                    Committed {
                        offset: p.committed_offset,
                        leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        commit_timestamp: now,
                        expire_timestamp: (version <= 4 && req.retention_time_ms >= 0)
                            .then(|| now + req.retention_time_ms),
                    },
                ));
                None
            };
            errors[ti].push(e);
        }
    }
    if !valid.is_empty() {
        let instance = req.group_instance_id.as_ref().map(|s| s.to_string());
        let offsets = valid
            .iter()
            .map(|(_, k, c)| (k.clone(), c.clone()))
            .collect();
        if let Err(e) = broker
            .groups
            .commit(
                &req.group_id.0,
                &req.member_id,
                instance.as_deref(),
                req.generation_id_or_member_epoch,
                offsets,
            )
            .await
        {
            for ((ti, pi), _, _) in &valid {
                errors[*ti][*pi] = Some(e);
            }
        }
    }
    let mut resp = OffsetCommitResponse::default();
    for (t, errs) in req.topics.iter().zip(errors) {
        let mut rt = OffsetCommitResponseTopic::default();
        rt.name = t.name.clone();
        rt.partitions = t
            .partitions
            .iter()
            .zip(errs)
            .map(|(p, e)| {
                let mut rp = OffsetCommitResponsePartition::default();
                rp.partition_index = p.partition_index;
                rp.error_code = e.map_or(0, |e| e.code());
                rp
            })
            .collect();
        resp.topics.push(rt);
    }
    Some(resp)
}

/// A partition's committed offset, `None` when nothing is committed, or why it is not told.
type Answer = Result<Option<Committed>, ResponseError>;

/// Offsets of one group, grouped by topic, in request order (or all the group has). As Kafka:
/// topics the principal may not describe are answered TOPIC_AUTHORIZATION_FAILED after the
/// others when named, and left out when all are asked for.
async fn fetch_group(
    broker: &Broker,
    ctx: &Ctx,
    group: &str,
    topics: Option<Vec<(TopicName, Vec<i32>)>>,
) -> Vec<(TopicName, Vec<(i32, Answer)>)> {
    let mut describable = Memo::new(broker, ctx, Operation::Describe, ResourceType::Topic);
    let (topics, refused) = match topics {
        None => (None, Vec::new()),
        Some(ts) => {
            let (allowed, refused): (Vec<_>, Vec<_>) =
                ts.into_iter().partition(|(t, _)| describable.allowed(&t.0));
            (Some(allowed), refused)
        }
    };
    let wanted: Option<Vec<(String, i32)>> = topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.0.to_string(), *p)))
            .collect()
    });
    let found = broker.groups.committed(group, wanted.as_deref()).await;
    let mut out: Vec<(TopicName, Vec<(i32, Answer)>)> = Vec::new();
    for ((topic, partition), c) in found {
        match out.last_mut().filter(|(t, _)| t.0.as_str() == topic) {
            Some((_, ps)) => ps.push((partition, Ok(c))),
            None if wanted.is_none() && !describable.allowed(&topic) => {}
            None => out.push((TopicName(str_bytes(&topic)), vec![(partition, Ok(c))])),
        }
    }
    for (name, parts) in refused {
        let refused = |p: &i32| (*p, Err(ResponseError::TopicAuthorizationFailed));
        out.push((name, parts.iter().map(refused).collect()));
    }
    out
}

/// Offset, leader epoch, metadata and error of a partition's answer (Kafka leaves the metadata
/// empty on a refused partition as on one with nothing committed).
fn offset_fields(a: &Answer) -> (i64, i32, String, i16) {
    match a {
        Ok(Some(c)) => (
            c.offset,
            c.leader_epoch,
            c.metadata.clone().unwrap_or_default(),
            0,
        ),
        Ok(None) => (-1, -1, String::new(), 0),
        Err(e) => (-1, -1, String::new(), e.code()),
    }
}

pub async fn fetch(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: OffsetFetchRequest,
) -> Option<OffsetFetchResponse> {
    let version = ctx.header.request_api_version;
    let mut resp = OffsetFetchResponse::default();
    if version < 8 {
        // As Kafka: DESCRIBE on the group; refused, v1 answers each partition and later
        // versions the whole request.
        if !group_allowed(broker, ctx, Operation::Describe, &req.group_id.0) {
            let refused = ResponseError::GroupAuthorizationFailed.code();
            if version >= 2 {
                resp.error_code = refused;
                return Some(resp);
            }
            for t in req.topics.unwrap_or_default() {
                let mut rt = OffsetFetchResponseTopic::default();
                rt.name = t.name;
                rt.partitions = t
                    .partition_indexes
                    .iter()
                    .map(|p| {
                        let mut rp = OffsetFetchResponsePartition::default();
                        rp.partition_index = *p;
                        rp.committed_offset = -1;
                        rp.metadata = Some(StrBytes::default());
                        rp.error_code = refused;
                        rp
                    })
                    .collect();
                resp.topics.push(rt);
            }
            return Some(resp);
        }
        let topics = req.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name, t.partition_indexes))
                .collect()
        });
        for (name, parts) in fetch_group(broker, ctx, &req.group_id.0, topics).await {
            let mut rt = OffsetFetchResponseTopic::default();
            rt.name = name;
            rt.partitions = parts
                .iter()
                .map(|(p, c)| {
                    let (offset, epoch, meta, error) = offset_fields(c);
                    let mut rp = OffsetFetchResponsePartition::default();
                    rp.partition_index = *p;
                    rp.committed_offset = offset;
                    rp.committed_leader_epoch = epoch;
                    rp.metadata = Some(str_bytes(&meta));
                    rp.error_code = error;
                    rp
                })
                .collect();
            resp.topics.push(rt);
        }
        return Some(resp);
    }
    for g in req.groups {
        let topics = g.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name, t.partition_indexes))
                .collect()
        });
        let mut rg = OffsetFetchResponseGroup::default();
        rg.group_id = g.group_id.clone();
        if !group_allowed(broker, ctx, Operation::Describe, &g.group_id.0) {
            rg.error_code = ResponseError::GroupAuthorizationFailed.code();
            resp.groups.push(rg);
            continue;
        }
        for (name, parts) in fetch_group(broker, ctx, &g.group_id.0, topics).await {
            let mut rt = OffsetFetchResponseTopics::default();
            rt.name = name;
            rt.partitions = parts
                .iter()
                .map(|(p, c)| {
                    let (offset, epoch, meta, error) = offset_fields(c);
                    let mut rp = OffsetFetchResponsePartitions::default();
                    rp.partition_index = *p;
                    rp.committed_offset = offset;
                    rp.committed_leader_epoch = epoch;
                    rp.metadata = Some(str_bytes(&meta));
                    rp.error_code = error;
                    rp
                })
                .collect();
            rg.topics.push(rt);
        }
        resp.groups.push(rg);
    }
    Some(resp)
}

/// Whether an active member of a "consumer" group subscribes to `topic` (from its subscription).
fn subscribes(group: &Group, topic: &str) -> bool {
    if group.protocol_type.as_deref() != Some("consumer") {
        return false;
    }
    let protocol = group.protocol_name.clone().unwrap_or_default();
    group.members.values().any(|m| {
        m.protocols.iter().filter(|p| p.name == protocol).any(|p| {
            let mut b = p.metadata.clone();
            if b.remaining() < 2 {
                return false;
            }
            let version = b.get_i16();
            ConsumerProtocolSubscription::decode(&mut b, version.clamp(0, 3))
                .is_ok_and(|s| s.topics.iter().any(|t| t.as_str() == topic))
        })
    })
}

pub async fn delete(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: OffsetDeleteRequest,
) -> Option<OffsetDeleteResponse> {
    let mut resp = OffsetDeleteResponse::default();
    // As Kafka: DELETE on the group decides the whole request, READ on each topic its partitions.
    if !group_allowed(broker, ctx, Operation::Delete, &req.group_id.0) {
        resp.error_code = ResponseError::GroupAuthorizationFailed.code();
        return Some(resp);
    }
    let mut readable = Memo::new(broker, ctx, Operation::Read, ResourceType::Topic);
    let mut keys = Vec::new();
    let mut unknown = Vec::new();
    let mut refused = std::collections::HashSet::new();
    for t in &req.topics {
        for p in &t.partitions {
            if !readable.allowed(&t.name.0) {
                refused.insert((t.name.0.to_string(), p.partition_index));
            } else if partition_exists(broker, &t.name.0, p.partition_index) {
                keys.push((t.name.0.to_string(), p.partition_index));
            } else {
                unknown.push((t.name.0.to_string(), p.partition_index));
            }
        }
    }
    let results = match broker
        .groups
        .delete_offsets(&req.group_id.0, &keys, subscribes)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            resp.error_code = e.code();
            return Some(resp);
        }
    };
    for t in &req.topics {
        let mut rt = OffsetDeleteResponseTopic::default();
        rt.name = t.name.clone();
        for p in &t.partitions {
            let key = (t.name.0.to_string(), p.partition_index);
            let err = if refused.contains(&key) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if unknown.contains(&key) {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                keys.iter()
                    .position(|k| *k == key)
                    .and_then(|i| results[i].err())
            };
            let mut rp = OffsetDeleteResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = err.map_or(0, |e| e.code());
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    Some(resp)
}
