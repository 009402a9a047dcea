//! Produce: checks the request-level rules (acks, one batch per partition, topic names or ids),
//! hands the batches to the store (which appends them and waits for the durability the flush
//! policy promises) and answers per partition. acks=0 sends nothing back, except that, as in
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

use super::authorize;
use super::str_bytes;
use crate::broker::Broker;
use crate::condition::Condition;
use crate::dispatch::{Ctx, Outcome, Reply};
use crate::log::batch::{self, BatchView, Compression};
use crate::log::now_ms;
use crate::security::acl::{Operation, ResourceType};
use crate::store::AppendEntry;

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
    ResponseError::TopicAuthorizationFailed,
    ResponseError::TransactionalIdAuthorizationFailed,
    ResponseError::UnknownTopicId,
    ResponseError::UnknownTopicOrPartition,
    ResponseError::UnsupportedCompressionType,
];

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

/// The size of the batch framed at the start of `bytes`, as Kafka's `ByteBufferLogInputStream`
/// reads it: `None` when fewer bytes than a batch's framing and magic remain (they are ignored),
/// CORRUPT_MESSAGE for a size below the smallest record or an unknown magic.
fn next_batch_size(bytes: &[u8]) -> Result<Option<usize>, (ResponseError, Option<String>)> {
    const SIZE_UP_TO_MAGIC: usize = 17;
    const MIN_RECORD_OVERHEAD: i32 = 14;
    if bytes.len() < batch::LOG_OVERHEAD {
        return Ok(None);
    }
    let size = i32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if size < MIN_RECORD_OVERHEAD {
        return Err((
            ResponseError::CorruptMessage,
            Some(format!(
                "Record size {size} is less than the minimum record overhead ({MIN_RECORD_OVERHEAD})"
            )),
        ));
    }
    if bytes.len() < SIZE_UP_TO_MAGIC {
        return Ok(None);
    }
    let magic = bytes[16] as i8;
    if !(0..=2).contains(&magic) {
        return Err((
            ResponseError::CorruptMessage,
            Some(format!("Invalid magic found in record: {magic}")),
        ));
    }
    Ok(Some(size as usize + batch::LOG_OVERHEAD))
}

/// Kafka's request-level rule for v3+ (`ProduceRequest.validateRecords`, over Kafka's batch
/// iterator): exactly one whole v2 batch per partition (zstd needs v7+), bytes after it too few
/// to frame another being ignored; the batch's bytes when it holds. As in Kafka, the rule's own
/// refusals carry no message.
fn check_single_batch(
    records: &Option<Bytes>,
    version: i16,
) -> Result<Bytes, (ResponseError, Option<String>)> {
    let records = records.clone().unwrap_or_default();
    // At least one whole batch.
    let size = match next_batch_size(&records)? {
        Some(size) if size <= records.len() => size,
        _ => return Err((ResponseError::InvalidRecord, None)),
    };
    if records[16] != 2 {
        return Err((ResponseError::InvalidRecord, None));
    }
    // No second whole batch.
    if matches!(next_batch_size(&records[size..])?, Some(next) if next <= records.len() - size) {
        return Err((ResponseError::InvalidRecord, None));
    }
    let records = records.slice(..size);
    if version < 7 && records.len() > batch::HEADER_LEN {
        if let Ok(view) = BatchView::new(&records) {
            if view.compression() == Some(Compression::Zstd) {
                return Err((ResponseError::UnsupportedCompressionType, None));
            }
        }
    }
    Ok(records)
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

fn refused(
    index: i32,
    error: ResponseError,
    message: Option<String>,
    record_errors: Vec<(i32, String)>,
    topic: &str,
) -> PartitionProduceResponse {
    tracing::debug!(
        topic,
        partition = index,
        ?error,
        message = message.as_deref().unwrap_or(""),
        "produce refused"
    );
    metrics::counter!("gregor_produce_errors_total", "error" => format!("{error:?}")).increment(1);
    let mut r = error_response(index, error, message);
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

/// As Kafka: a request carrying transactional batches needs WRITE on its transactional id, or
/// every partition is answered TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
fn transactional_refusal(
    broker: &Broker,
    ctx: &Ctx,
    req: &ProduceRequest,
) -> Option<Reply<ProduceResponse>> {
    broker.authorizer.as_ref()?;
    let transactional = req.topic_data.iter().any(|t| {
        t.partition_data
            .iter()
            .any(|p| p.records.as_deref().is_some_and(batch::any_transactional))
    });
    if !transactional
        || req.transactional_id.as_ref().is_some_and(|id| {
            authorize::allowed(
                broker,
                ctx,
                Operation::Write,
                ResourceType::TransactionalId,
                id,
            )
        })
    {
        return None;
    }
    let mut resp = ProduceResponse::default();
    for t in &req.topic_data {
        let mut tr = TopicProduceResponse::default();
        tr.name = t.name.clone();
        tr.topic_id = t.topic_id;
        tr.partition_responses = t
            .partition_data
            .iter()
            .map(|p| {
                error_response(
                    p.index,
                    ResponseError::TransactionalIdAuthorizationFailed,
                    None,
                )
            })
            .collect();
        resp.responses.push(tr);
    }
    Some(if req.acks == 0 {
        Reply::Close("a produce with acks=0 failed; closing the connection as Kafka does".into())
    } else {
        Reply::Send(resp)
    })
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: ProduceRequest,
) -> Reply<ProduceResponse> {
    let version = ctx.header.request_api_version;
    let acks_ok = matches!(req.acks, -1..=1);
    let mut resp = ProduceResponse::default();
    // (topic, partition) positions in `resp` of the batches handed to the store, in its order.
    let mut slots = Vec::new();
    let mut entries = Vec::new();
    let mut any_error = false;
    if let Some(refused) = transactional_refusal(broker, ctx, &req) {
        return refused;
    }
    for t in merge_duplicates(req.topic_data, version) {
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
        // As Kafka: WRITE on the topic decides before whether it exists (an id must resolve).
        let allowed = (by_id && topic.is_none())
            || authorize::allowed(
                broker,
                ctx,
                Operation::Write,
                ResourceType::Topic,
                &topic_name,
            );
        for p in t.partition_data {
            let part = topic
                .as_ref()
                .and_then(|t| Some((t.clone(), t.partition(p.index)?.clone())));
            let checked = match part {
                None if by_id && topic.is_none() => Err((ResponseError::UnknownTopicId, None)),
                _ if !allowed => Err((ResponseError::TopicAuthorizationFailed, None)),
                _ if !acks_ok => Err((ResponseError::InvalidRequiredAcks, None)),
                None => Err((ResponseError::UnknownTopicOrPartition, None)),
                Some((topic, partition)) => match check_single_batch(&p.records, version) {
                    Ok(records) => Ok(AppendEntry {
                        topic,
                        partition,
                        records,
                    }),
                    Err(refused) => Err(refused),
                },
            };
            match checked {
                Ok(entry) => {
                    slots.push((resp.responses.len(), tr.partition_responses.len()));
                    entries.push(entry);
                    // Filled in with the store's answer below.
                    tr.partition_responses.push(error_response(
                        p.index,
                        ResponseError::UnknownServerError,
                        None,
                    ));
                }
                Err((error, message)) => {
                    any_error = true;
                    tr.partition_responses.push(refused(
                        p.index,
                        error,
                        message,
                        Vec::new(),
                        &topic_name,
                    ));
                }
            }
        }
        resp.responses.push(tr);
    }
    let results = if entries.is_empty() {
        Vec::new()
    } else {
        broker.store.append_records(entries, now_ms()).await
    };
    for ((ti, pi), result) in slots.into_iter().zip(results) {
        let tr = &mut resp.responses[ti];
        let r = &mut tr.partition_responses[pi];
        *r = match result {
            Ok(a) => {
                let mut ok = PartitionProduceResponse::default();
                ok.index = r.index;
                ok.base_offset = a.base_offset;
                ok.log_append_time_ms = a.log_append_time.unwrap_or(-1);
                ok.log_start_offset = a.log_start_offset;
                ok
            }
            Err(f) => {
                any_error = true;
                let topic = tr.name.0.to_string();
                refused(r.index, f.error, f.message, f.record_errors, &topic)
            }
        };
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

/// Produce requests below v3 refused.
static LEGACY_PRODUCE: Condition = Condition::new("Produce below v3 refused");

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
    // Old clients retry: logged once, then counted (`condition`).
    LEGACY_PRODUCE.occurred(|| {
        format!(
            "refusing Produce v{version} from {} (below v3, removed in Kafka 4.0)",
            ctx.peer
        )
    });
    metrics::counter!("gregor_produce_legacy_refused_total").increment(1);
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
