//! Fetch: resolves the partitions (incremental sessions, KIP-227, via `fetch_session`), has the
//! store read them (waiting in its purgatory for `min_bytes` up to `max_wait_ms`) and answers with
//! the batches as stored.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::authorize;
use super::fetch_session::{PartitionList, Resolved, SessionPartition, TopicRef};
use super::str_bytes;
use crate::broker::Broker;
use crate::condition::{storage_error, STORAGE_READS};
use crate::dispatch::{Ctx, Reply};
use crate::security::acl::{Operation, ResourceType};
use crate::store::{FetchOutcome, FetchParams, FetchTarget, Records};
use crate::topics::Topic;
use crate::wire::Attached;

/// Topic ids appear in Fetch from this version on (names before it).
const TOPIC_ID_VERSION: i16 = 13;

fn resolve_topic(broker: &Broker, topic: &TopicRef) -> Option<Arc<Topic>> {
    match topic {
        TopicRef::Name(n) => broker.topics.get(n),
        TopicRef::Id(id) => broker.topics.get_by_id(id),
    }
}

/// The response's bytes for a partition's records: a stand-in for its file region, sent from the
/// page cache, or bytes in memory (small sets, read by the store, or a region too large for a
/// stand-in, read here on the blocking pool).
async fn records_bytes(attached: &mut Attached, o: &mut FetchOutcome) -> Bytes {
    let region = match std::mem::replace(&mut o.records, Records::None) {
        Records::None => return Bytes::new(),
        Records::Memory(bytes) => {
            attached.memory(&bytes);
            return bytes;
        }
        Records::File(region) => region,
    };
    if let Some(stand_in) = attached.file(region.clone()) {
        return stand_in;
    }
    match tokio::task::spawn_blocking(move || region.read()).await {
        Ok(Ok(bytes)) => {
            attached.memory(&bytes);
            bytes
        }
        Ok(Err(e)) => {
            storage_error(&STORAGE_READS, "read", || {
                format!("read of a fetched region failed: {e}")
            });
            o.error = Some(ResponseError::KafkaStorageError);
            Bytes::new()
        }
        Err(e) => {
            tracing::error!(error = %e, "a fetch's read task failed");
            o.error = Some(ResponseError::KafkaStorageError);
            Bytes::new()
        }
    }
}

pub async fn handle(broker: &Arc<Broker>, ctx: &Ctx, req: FetchRequest) -> Reply<FetchResponse> {
    let version = ctx.header.request_api_version;
    let by_id = version >= TOPIC_ID_VERSION;
    let topic_ref = |name: &TopicName, id: Uuid| {
        if by_id {
            TopicRef::Id(id)
        } else {
            TopicRef::Name(name.0.to_string())
        }
    };
    let mut leader_epochs = std::collections::HashMap::new();
    // Each partition once, as Kafka reads the request into a map (the last mention's fields).
    let listed = PartitionList::from_listed(
        req.topics
            .iter()
            .flat_map(|t| {
                let tr = topic_ref(&t.topic, t.topic_id);
                t.partitions.iter().map(move |p| (tr.clone(), p))
            })
            .map(|(tr, p)| {
                leader_epochs.insert((tr.clone(), p.partition), p.current_leader_epoch);
                SessionPartition::new(tr, p.partition, p.fetch_offset, p.partition_max_bytes)
            }),
    );
    let forgotten = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            let tr = topic_ref(&t.topic, t.topic_id);
            t.partitions.iter().map(move |p| (tr.clone(), *p))
        })
        .collect();
    let mut resp = FetchResponse::default();
    let (session_id, specs, incremental) = if version >= 7 {
        match broker
            .fetch_sessions
            .resolve(req.session_id, req.session_epoch, listed, forgotten)
        {
            Resolved::Full {
                session_id,
                partitions,
            } => (session_id, partitions, false),
            Resolved::Incremental {
                session_id,
                partitions,
            } => (session_id, partitions, true),
            Resolved::Error(e) => {
                resp.error_code = e.code();
                return Reply::Send(resp);
            }
        }
    } else {
        (0, listed.into_vec(), false)
    };
    resp.session_id = session_id;
    let topics: Vec<Option<Arc<Topic>>> = specs
        .iter()
        .map(|spec| resolve_topic(broker, &spec.topic))
        .collect();
    // As Kafka: a follower's fetch (a replica id set) needs CLUSTER_ACTION on the cluster and
    // no READ; a consumer's needs READ on each topic, decided before whether it exists (once per
    // topic).
    let replica = if ctx.header.request_api_version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let follower =
        (replica >= 0).then(|| authorize::cluster(broker, ctx, Operation::ClusterAction));
    let mut readable = authorize::Memo::new(broker, ctx, Operation::Read, ResourceType::Topic);
    let mut may_read = |name: &str| follower.unwrap_or_else(|| readable.allowed(name));
    let targets: Vec<FetchTarget> = specs
        .iter()
        .zip(&topics)
        .map(|(spec, topic)| FetchTarget {
            partition: match (&spec.topic, topic) {
                (TopicRef::Id(_), None) => Err(ResponseError::UnknownTopicId),
                (_, Some(t)) if !may_read(&t.name) => Err(ResponseError::TopicAuthorizationFailed),
                (TopicRef::Name(n), None) if !may_read(n) => {
                    Err(ResponseError::TopicAuthorizationFailed)
                }
                (_, t) => match t.as_ref().and_then(|t| t.partition(spec.partition)) {
                    Some(p) => Ok(p.clone()),
                    None => Err(ResponseError::UnknownTopicOrPartition),
                },
            },
            fetch_offset: spec.fetch_offset,
            max_bytes: spec.max_bytes,
            current_leader_epoch: leader_epochs
                .get(&(spec.topic.clone(), spec.partition))
                .copied()
                .unwrap_or(-1),
        })
        .collect();
    let params = FetchParams {
        // As Kafka: the broker's `fetch.max.bytes` caps what a client asks for.
        max_bytes: if req.max_bytes <= 0 {
            i32::MAX as u64
        } else {
            req.max_bytes as u64
        }
        .min(broker.config.fetch_max_bytes),
        // As Kafka: never wait for more than the answer may carry.
        min_bytes: (req.min_bytes.max(0) as u64).min(broker.config.fetch_max_bytes),
        max_wait: Duration::from_millis(req.max_wait_ms.max(0) as u64),
    };
    let outcomes = broker.store.fetch_records(params, targets, &ctx.gone).await;
    let mut sent = Vec::new();
    let mut attached = Attached::default();
    for ((spec, topic), mut o) in specs.iter().zip(&topics).zip(outcomes) {
        let records = records_bytes(&mut attached, &mut o).await;
        let changed = !records.is_empty()
            || o.error.is_some()
            || o.high_watermark != spec.last_hw
            || o.log_start_offset != spec.last_log_start;
        if incremental && !changed {
            continue;
        }
        sent.push((
            spec.topic.clone(),
            spec.partition,
            o.high_watermark,
            o.log_start_offset,
            !records.is_empty(),
        ));
        if let Some(topic) = topic {
            if !records.is_empty() {
                topic.metrics.bytes_out.increment(records.len() as u64);
            }
        }
        let mut pd = PartitionData::default();
        pd.partition_index = spec.partition;
        pd.error_code = o.error.map_or(0, |e| e.code());
        if let Some(e) = o.error {
            metrics::counter!("gregor_fetch_errors_total", "error" => format!("{e:?}"))
                .increment(1);
        }
        pd.high_watermark = o.high_watermark;
        pd.last_stable_offset = o.high_watermark;
        pd.log_start_offset = o.log_start_offset;
        pd.preferred_read_replica = BrokerId(-1);
        pd.aborted_transactions = if req.isolation_level == 1 {
            Some(Vec::new())
        } else {
            None
        };
        pd.records = Some(records);
        let (name, id) = match &spec.topic {
            TopicRef::Name(n) => (n.clone(), topic.as_ref().map_or(Uuid::nil(), |t| t.id)),
            TopicRef::Id(id) => (
                topic.as_ref().map_or(String::new(), |t| t.name.to_string()),
                *id,
            ),
        };
        match resp
            .responses
            .last_mut()
            .filter(|r| r.topic_id == id && r.topic.0.as_str() == name)
        {
            Some(r) => r.partitions.push(pd),
            None => {
                let mut r = FetchableTopicResponse::default();
                r.topic = TopicName(str_bytes(&name));
                r.topic_id = id;
                r.partitions.push(pd);
                resp.responses.push(r);
            }
        }
    }
    broker.fetch_sessions.record_sent(session_id, &sent);
    Reply::SendAttached(resp, attached)
}
