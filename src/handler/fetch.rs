//! Fetch: reads each partition up to its byte budget; if fewer than `min_bytes` are ready, parks on
//! the partitions' append signal until `max_wait_ms` (woken by appends, never a sleep loop), then
//! reads again. Batches are served as stored. Incremental sessions (KIP-227) via `fetch_session`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::ResponseError;
use tokio::sync::Notify;
use uuid::Uuid;

use super::fetch_session::{Resolved, SessionPartition, TopicRef};
use super::str_bytes;
use crate::broker::Broker;
use crate::condition::{storage_error, STORAGE_READS};
use crate::dispatch::{Ctx, Reply};
use crate::log::{FileRegion, Partition, ReadError};
use crate::topics::Topic;
use crate::wire::Attached;

/// Topic ids appear in Fetch from this version on (names before it).
const TOPIC_ID_VERSION: i16 = 13;

struct Target {
    spec: SessionPartition,
    topic: Option<Arc<Topic>>,
    partition: Option<Arc<Partition>>,
}

struct Outcome {
    error: Option<ResponseError>,
    records: Option<FileRegion>,
    hw: i64,
    log_start: i64,
}

impl Outcome {
    fn failed(error: ResponseError, hw: i64, log_start: i64) -> Self {
        Outcome {
            error: Some(error),
            records: None,
            hw,
            log_start,
        }
    }

    fn len(&self) -> u64 {
        self.records.as_ref().map_or(0, |r| r.len)
    }
}

fn resolve_topic(broker: &Broker, topic: &TopicRef) -> Option<Arc<Topic>> {
    match topic {
        TopicRef::Name(n) => broker.topics.get(n),
        TopicRef::Id(id) => broker.topics.get_by_id(id),
    }
}

fn read_one(t: &Target, budget: u64, min_one: bool, leader_epoch: i32, version: i16) -> Outcome {
    let Some(p) = &t.partition else {
        let error = if version >= TOPIC_ID_VERSION && t.topic.is_none() {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        return Outcome::failed(error, -1, -1);
    };
    if leader_epoch > 0 {
        return Outcome::failed(ResponseError::UnknownLeaderEpoch, -1, -1);
    }
    let budget = budget.min(t.spec.max_bytes.max(0) as u64);
    match p.read_region(t.spec.fetch_offset, budget, min_one) {
        Ok(d) => Outcome {
            error: None,
            records: d.region,
            hw: d.high_watermark,
            log_start: d.log_start_offset,
        },
        Err(ReadError::OffsetOutOfRange) => Outcome::failed(
            ResponseError::OffsetOutOfRange,
            p.high_watermark(),
            p.log_start_offset(),
        ),
        Err(ReadError::Storage(e)) => {
            read_failed(p, &e);
            Outcome::failed(ResponseError::KafkaStorageError, -1, -1)
        }
    }
}

fn read_failed(p: &Partition, e: &dyn std::fmt::Display) {
    storage_error(&STORAGE_READS, "read", || {
        format!("read of {}-{} failed: {e}", p.topic, p.key.partition)
    });
}

/// The response's bytes for a partition's records: a stand-in for its file region, sent from the
/// page cache, or the region read into memory when it is small (or too large for a stand-in).
fn records_bytes(attached: &mut Attached, p: Option<&Arc<Partition>>, o: &mut Outcome) -> Bytes {
    let Some(region) = o.records.take() else {
        return Bytes::new();
    };
    if let Some(stand_in) = attached.file(region.clone()) {
        return stand_in;
    }
    match region.read() {
        Ok(bytes) => {
            attached.memory(&bytes);
            bytes
        }
        Err(e) => {
            if let Some(p) = p {
                read_failed(p, &e);
            }
            *o = Outcome::failed(ResponseError::KafkaStorageError, -1, -1);
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
    let listed: Vec<SessionPartition> = req
        .topics
        .iter()
        .flat_map(|t| {
            let tr = topic_ref(&t.topic, t.topic_id);
            t.partitions.iter().map(move |p| (tr.clone(), p))
        })
        .map(|(tr, p)| {
            leader_epochs.insert((tr.clone(), p.partition), p.current_leader_epoch);
            SessionPartition::new(tr, p.partition, p.fetch_offset, p.partition_max_bytes)
        })
        .collect();
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
        (0, listed, false)
    };
    resp.session_id = session_id;
    let targets: Vec<Target> = specs
        .into_iter()
        .map(|spec| {
            let topic = resolve_topic(broker, &spec.topic);
            let partition = topic
                .as_ref()
                .and_then(|t| t.partition(spec.partition))
                .cloned();
            Target {
                spec,
                topic,
                partition,
            }
        })
        .collect();
    let max_bytes = if req.max_bytes <= 0 {
        i32::MAX as u64
    } else {
        req.max_bytes as u64
    };
    let min_bytes = req.min_bytes.max(0) as u64;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let notify = Arc::new(Notify::new());
    // Waiters are registered only once a read comes up short, and that read is then repeated, so
    // an append between the two is never missed; a fetch that finds data registers nothing.
    let mut armed = false;
    let outcomes = loop {
        if armed {
            for t in &targets {
                if let Some(p) = &t.partition {
                    p.register_waiter(&notify);
                }
            }
        }
        let mut remaining = max_bytes;
        let mut total = 0u64;
        let mut any_error = false;
        let outcomes: Vec<Outcome> = targets
            .iter()
            .map(|t| {
                let epoch = leader_epochs
                    .get(&(t.spec.topic.clone(), t.spec.partition))
                    .copied()
                    .unwrap_or(-1);
                let o = read_one(t, remaining, total == 0, epoch, version);
                total += o.len();
                remaining = remaining.saturating_sub(o.len());
                any_error |= o.error.is_some();
                o
            })
            .collect();
        if min_bytes == 0
            || total >= min_bytes
            || any_error
            || tokio::time::Instant::now() >= deadline
        {
            break outcomes;
        }
        if !armed {
            armed = true;
            continue;
        }
        metrics::gauge!("gregor_fetch_waiting").increment(1.0);
        let woke = tokio::time::timeout_at(deadline, notify.notified()).await;
        metrics::gauge!("gregor_fetch_waiting").decrement(1.0);
        if woke.is_err() {
            // Timed out: one last read so data that arrived at the deadline is not missed.
            continue;
        }
    };
    let mut sent = Vec::new();
    let mut attached = Attached::default();
    for (t, mut o) in targets.iter().zip(outcomes) {
        let records = records_bytes(&mut attached, t.partition.as_ref(), &mut o);
        let changed = !records.is_empty()
            || o.error.is_some()
            || o.hw != t.spec.last_hw
            || o.log_start != t.spec.last_log_start;
        if incremental && !changed {
            continue;
        }
        sent.push((t.spec.topic.clone(), t.spec.partition, o.hw, o.log_start));
        if let Some(topic) = &t.topic {
            if !records.is_empty() {
                topic.metrics.bytes_out.increment(records.len() as u64);
            }
        }
        let mut pd = PartitionData::default();
        pd.partition_index = t.spec.partition;
        pd.error_code = o.error.map_or(0, |e| e.code());
        if let Some(e) = o.error {
            metrics::counter!("gregor_fetch_errors_total", "error" => format!("{e:?}"))
                .increment(1);
        }
        pd.high_watermark = o.hw;
        pd.last_stable_offset = o.hw;
        pd.log_start_offset = o.log_start;
        pd.preferred_read_replica = BrokerId(-1);
        pd.aborted_transactions = if req.isolation_level == 1 {
            Some(Vec::new())
        } else {
            None
        };
        pd.records = Some(records);
        let (name, id) = match &t.spec.topic {
            TopicRef::Name(n) => (n.clone(), t.topic.as_ref().map_or(Uuid::nil(), |t| t.id)),
            TopicRef::Id(id) => (
                t.topic
                    .as_ref()
                    .map_or(String::new(), |t| t.name.to_string()),
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
