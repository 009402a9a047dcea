//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), and by
//! timestamp through each segment's sparse time index.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::condition::{storage_error, STORAGE_READS};
use crate::dispatch::Ctx;
use crate::log::Partition;

pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL: i64 = -4;

/// (offset, timestamp) for one lookup, or the error to answer with.
pub fn lookup(p: &Partition, timestamp: i64) -> Result<(i64, i64), ResponseError> {
    match timestamp {
        LATEST => Ok((p.high_watermark(), -1)),
        EARLIEST | EARLIEST_LOCAL => Ok((p.log_start_offset(), -1)),
        MAX_TIMESTAMP => Ok(p.max_timestamp().unwrap_or((-1, -1))),
        ts if ts >= 0 => match p.offset_for_timestamp(ts) {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Ok((-1, -1)),
            Err(e) => {
                storage_error(&STORAGE_READS, "read", || {
                    format!(
                        "timestamp lookup in {}-{} failed: {e}",
                        p.topic, p.key.partition
                    )
                });
                Err(ResponseError::KafkaStorageError)
            }
        },
        _ => Err(ResponseError::InvalidRequest),
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: ListOffsetsRequest,
) -> Option<ListOffsetsResponse> {
    let version = ctx.header.request_api_version;
    let mut resp = ListOffsetsResponse::default();
    for t in req.topics {
        let topic = broker.topics.get(t.name.0.as_str());
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = t.name.clone();
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            if version >= 4 {
                // The field exists from v4; setting it below makes the answer unencodable.
                pr.leader_epoch = 0;
            }
            match topic.as_ref().and_then(|t| t.partition(p.partition_index)) {
                None => pr.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(part) => match lookup(part, p.timestamp) {
                    Ok((offset, ts)) => {
                        pr.offset = offset;
                        pr.timestamp = ts;
                    }
                    Err(e) => pr.error_code = e.code(),
                },
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    Some(resp)
}
