//! Produce: sorts partitions into unknown / invalid / appended, appends each partition's single
//! batch (validated, offset patched, stored as sent), fsyncs per the flush policy (group-committed)
//! before acknowledging, and answers per partition. acks=0 sends nothing back, except that, as in
//! Kafka, an error closes the connection so the producer notices.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::str_bytes;
use crate::broker::Broker;
use crate::condition::{storage_error, STORAGE_WRITES};
use crate::dispatch::{Ctx, Outcome, Reply};
use crate::log::batch::{self, BatchView, Compression};
use crate::log::{now_ms, AppendError, Partition};

/// Every error a produce can answer per partition, each counted in `gregor_produce_errors_total`
/// (registered at zero for each, so dashboards have a series before the first error).
pub const COUNTED_ERRORS: &[ResponseError] = &[
    ResponseError::CorruptMessage,
    ResponseError::InvalidProducerEpoch,
    ResponseError::InvalidRecord,
    ResponseError::InvalidRequiredAcks,
    ResponseError::InvalidTimestamp,
    ResponseError::InvalidTxnState,
    ResponseError::KafkaStorageError,
    ResponseError::MessageTooLarge,
    ResponseError::OutOfOrderSequenceNumber,
    ResponseError::UnknownTopicId,
    ResponseError::UnknownTopicOrPartition,
    ResponseError::UnsupportedCompressionType,
];

struct Pending {
    topic: usize,
    index: usize,
    partition: Arc<Partition>,
    last_offset: i64,
}

fn error_response(
    index: i32,
    error: ResponseError,
    message: Option<String>,
) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.error_code = error.code();
    r.base_offset = -1;
    r.log_append_time_ms = -1;
    r.log_start_offset = -1;
    r.error_message = message.map(|m| str_bytes(&m));
    r
}

/// Kafka's request-level rule for v3+: exactly one v2 batch per partition (zstd needs v7+).
fn check_single_batch(
    records: &Option<Bytes>,
    version: i16,
) -> Result<(), (ResponseError, String)> {
    let Some(records) = records.as_ref().filter(|r| !r.is_empty()) else {
        return Err((
            ResponseError::InvalidRecord,
            "produce requests must have at least one record batch per partition".into(),
        ));
    };
    match batch::framed_size(records) {
        Some(size) if size == records.len() => {}
        Some(size) if size < records.len() && size >= batch::HEADER_LEN => {
            return Err((ResponseError::InvalidRecord, format!("produce requests with version {version} are only allowed to contain exactly one record batch")));
        }
        _ => {
            return Err((
                ResponseError::CorruptMessage,
                "record batch length does not match the bytes sent".into(),
            ))
        }
    }
    if version < 7 && records.len() > batch::HEADER_LEN {
        if let Ok(view) = BatchView::new(records) {
            if view.compression() == Some(Compression::Zstd) {
                return Err((
                    ResponseError::UnsupportedCompressionType,
                    "zstd compression needs produce version 7 or later".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Kafka reads a produce request into a map from partition to records: a topic named twice is one
/// topic, and a partition named twice is appended once, with the records of its last mention.
fn merge_duplicates(topics: Vec<TopicProduceData>, version: i16) -> Vec<TopicProduceData> {
    // The common request (one partition of one topic) has nothing to merge: no maps built.
    if topics.len() <= 1 && topics.iter().all(|t| t.partition_data.len() <= 1) {
        return topics;
    }
    let mut out: Vec<TopicProduceData> = Vec::with_capacity(topics.len());
    let mut by_topic: HashMap<(TopicName, Uuid), usize> = HashMap::new();
    let mut by_partition: HashMap<(usize, i32), usize> = HashMap::new();
    for t in topics {
        let key = if version >= 13 {
            (TopicName::default(), t.topic_id)
        } else {
            (t.name.clone(), Uuid::nil())
        };
        let i = *by_topic.entry(key).or_insert_with(|| {
            let mut first = TopicProduceData::default();
            first.name = t.name.clone();
            first.topic_id = t.topic_id;
            out.push(first);
            out.len() - 1
        });
        for p in t.partition_data {
            let merged = &mut out[i].partition_data;
            match by_partition.entry((i, p.index)) {
                Entry::Occupied(e) => merged[*e.get()] = p,
                Entry::Vacant(e) => {
                    e.insert(merged.len());
                    merged.push(p);
                }
            }
        }
    }
    out
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: ProduceRequest,
) -> Reply<ProduceResponse> {
    let version = ctx.header.request_api_version;
    let now = now_ms();
    let acks_ok = matches!(req.acks, -1..=1);
    let mut resp = ProduceResponse::default();
    let mut pending = Vec::new();
    let mut any_error = false;
    // A nearly full log dir refuses appends before the disk is actually full (see disk_space).
    let disk_low = broker.disk.low();
    for (ti, t) in merge_duplicates(req.topic_data, version)
        .into_iter()
        .enumerate()
    {
        // v13+ names topics by id (KIP-516); an unknown id is UNKNOWN_TOPIC_ID, as in Kafka.
        let by_id = version >= 13;
        let topic = if by_id {
            broker.topics.get_by_id(&t.topic_id)
        } else {
            broker.topics.get(t.name.0.as_str())
        };
        let topic_name = topic
            .as_ref()
            .map_or_else(|| t.name.0.to_string(), |t| t.name.to_string());
        let mut tr = TopicProduceResponse::default();
        if by_id {
            tr.topic_id = t.topic_id;
        } else {
            tr.name = t.name.clone();
        }
        for p in t.partition_data {
            let part = topic.as_ref().and_then(|t| t.partition(p.index)).cloned();
            let result = if !acks_ok {
                Err((ResponseError::InvalidRequiredAcks, None, Vec::new()))
            } else if let Some(dir) = part
                .as_ref()
                .filter(|_| disk_low)
                .map(|p| p.dir())
                .filter(|d| broker.disk.low_at(d))
            {
                Err((
                    ResponseError::KafkaStorageError,
                    Some(broker.disk.refusal(&dir)),
                    Vec::new(),
                ))
            } else if let Some(part) = part {
                match check_single_batch(&p.records, version) {
                    Err((e, m)) => Err((e, Some(m), Vec::new())),
                    Ok(()) => {
                        let records = p.records.as_ref().expect("checked");
                        match part.append(records, now) {
                            Ok(a) => {
                                STORAGE_WRITES.cleared();
                                if let Some(t) = &topic {
                                    t.metrics.bytes_in.increment(records.len() as u64);
                                    if !a.duplicate {
                                        t.metrics
                                            .messages_in
                                            .increment((a.last_offset - a.base_offset + 1) as u64);
                                    }
                                }
                                if a.sync_needed {
                                    pending.push(Pending {
                                        topic: ti,
                                        index: tr.partition_responses.len(),
                                        partition: part.clone(),
                                        last_offset: a.last_offset,
                                    });
                                }
                                Ok(a)
                            }
                            Err(AppendError::Rejected {
                                error,
                                message,
                                record_errors,
                            }) => Err((error, Some(message), record_errors)),
                            Err(AppendError::Storage(e)) => {
                                storage_error(&STORAGE_WRITES, "append", || {
                                    format!("append to {}-{} failed: {e}", part.topic, p.index)
                                });
                                Err((
                                    ResponseError::KafkaStorageError,
                                    Some(e.to_string()),
                                    Vec::new(),
                                ))
                            }
                        }
                    }
                }
            } else if by_id && topic.is_none() {
                Err((ResponseError::UnknownTopicId, None, Vec::new()))
            } else {
                Err((ResponseError::UnknownTopicOrPartition, None, Vec::new()))
            };
            let pr = match result {
                Ok(a) => {
                    let mut r = PartitionProduceResponse::default();
                    r.index = p.index;
                    r.base_offset = a.base_offset;
                    r.log_append_time_ms = a.log_append_time.unwrap_or(-1);
                    r.log_start_offset = a.log_start_offset;
                    r
                }
                Err((error, message, record_errors)) => {
                    any_error = true;
                    tracing::debug!(topic = %topic_name, partition = p.index, ?error, message = message.as_deref().unwrap_or(""), "produce refused");
                    metrics::counter!("gregor_produce_errors_total", "error" => format!("{error:?}")).increment(1);
                    let mut r = error_response(p.index, error, message);
                    r.record_errors = record_errors
                        .into_iter()
                        .map(|(i, m)| {
                            let mut e = BatchIndexAndErrorMessage::default();
                            e.batch_index = i;
                            e.batch_index_error_message = Some(str_bytes(&m));
                            e
                        })
                        .collect();
                    r
                }
            };
            tr.partition_responses.push(pr);
        }
        resp.responses.push(tr);
    }
    for p in pending {
        if let Err(e) = p.partition.sync_to(p.last_offset).await {
            storage_error(&STORAGE_WRITES, "fsync", || {
                format!(
                    "fsync of {}-{} failed: {e}",
                    p.partition.topic, p.partition.key.partition
                )
            });
            any_error = true;
            let index = resp.responses[p.topic].partition_responses[p.index].index;
            resp.responses[p.topic].partition_responses[p.index] =
                error_response(index, ResponseError::KafkaStorageError, Some(e.to_string()));
        }
    }
    if req.acks == 0 {
        return if any_error {
            Reply::Close(
                "a produce with acks=0 failed; closing the connection as Kafka does".into(),
            )
        } else {
            Reply::Silent
        };
    }
    Reply::Send(resp)
}

/// Produce v0–v2: parsed (their layout is v3 without `transactional_id`) and answered with
/// UNSUPPORTED_VERSION per partition in the response layout of the request's version.
pub fn refuse_legacy(ctx: &Ctx, body: Bytes) -> Outcome {
    let version = ctx.header.request_api_version;
    let mut v3 = BytesMut::with_capacity(body.len() + 2);
    v3.put_i16(-1);
    v3.put_slice(&body);
    let mut v3 = v3.freeze();
    let Ok(req) = ProduceRequest::decode(&mut v3, 3) else {
        return Outcome::Close(format!("malformed Produce v{version} request"));
    };
    tracing::warn!(version, "refusing Produce below v3 (removed in Kafka 4.0)");
    let mut out = BytesMut::new();
    out.put_i32(0); // length, patched below
    out.put_i32(ctx.header.correlation_id);
    out.put_i32(req.topic_data.len() as i32);
    for t in &req.topic_data {
        out.put_i16(t.name.0.len() as i16);
        out.put_slice(t.name.0.as_bytes());
        out.put_i32(t.partition_data.len() as i32);
        for p in &t.partition_data {
            out.put_i32(p.index);
            out.put_i16(ResponseError::UnsupportedVersion.code());
            out.put_i64(-1);
            if version >= 2 {
                out.put_i64(-1);
            }
        }
    }
    if version >= 1 {
        out.put_i32(0);
    }
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    if req.acks == 0 {
        return Outcome::Close(format!("Produce v{version} is not supported"));
    }
    Outcome::Respond(vec![crate::wire::Chunk::Memory(out.freeze())])
}
