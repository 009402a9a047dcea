//! Offsets of a partition's log: ListOffsets lookups (Kafka's `fetchOffsetForTimestamp`; the
//! timestamp ones read indexes and batches) and DeleteRecords (Kafka's `deleteRecords`), without
//! stalling other tasks, and refused on an offline log dir.

use std::sync::Arc;

use kafka_protocol::ResponseError;

use super::{blocking, Store};
use crate::condition::{storage_error, STORAGE_READS};
use crate::log::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// What ListOffsets answers for one partition.
pub struct ListedOffset {
    pub offset: i64,
    pub timestamp: i64,
    pub leader_epoch: i32,
}

/// (offset, timestamp) for one lookup (blocking for the timestamp ones).
fn lookup(p: &Partition, timestamp: i64) -> Result<(i64, i64), ResponseError> {
    let found = match timestamp {
        MAX_TIMESTAMP => Ok(p.max_timestamp()),
        ts => p.offset_for_timestamp(ts),
    };
    found.map(|f| f.unwrap_or((-1, -1))).map_err(|e| {
        storage_error(&STORAGE_READS, "read", || {
            format!(
                "timestamp lookup in {}-{} failed: {e}",
                p.topic, p.key.partition
            )
        });
        ResponseError::KafkaStorageError
    })
}

impl Store {
    /// The offset ListOffsets answers for `timestamp` (a time, or one of Kafka's special values;
    /// the caller has checked the version may use it).
    pub async fn list_offset(
        &self,
        p: &Arc<Partition>,
        timestamp: i64,
    ) -> Result<ListedOffset, ResponseError> {
        if p.is_offline() {
            return Err(ResponseError::KafkaStorageError);
        }
        let at = |(offset, timestamp)| ListedOffset {
            offset,
            timestamp,
            leader_epoch: 0,
        };
        match timestamp {
            LATEST => Ok(at((p.high_watermark(), -1))),
            EARLIEST | EARLIEST_LOCAL => Ok(at((p.log_start_offset(), -1))),
            // No tiered storage: nothing was ever uploaded (Kafka's answer without remote logs).
            LATEST_TIERED => Ok(ListedOffset {
                offset: -1,
                timestamp: -1,
                leader_epoch: -1,
            }),
            ts if ts >= 0 || ts == MAX_TIMESTAMP => blocking(|| lookup(p, ts)).and_then(|found| {
                // Nothing found: offset and timestamp -1, and no leader epoch either (as Kafka).
                found.map(|(offset, timestamp)| ListedOffset {
                    offset,
                    timestamp,
                    leader_epoch: if offset < 0 { -1 } else { 0 },
                })
            }),
            _ => Err(ResponseError::UnsupportedVersion),
        }
    }

    /// DeleteRecords: moves the log start to `offset` (-1: the high watermark) and returns it.
    pub async fn delete_records(
        &self,
        p: &Arc<Partition>,
        offset: i64,
    ) -> Result<i64, ResponseError> {
        if p.is_offline() {
            return Err(ResponseError::KafkaStorageError);
        }
        let hw = p.high_watermark();
        let target = if offset == -1 { hw } else { offset };
        if target < 0 || target > hw {
            return Err(ResponseError::OffsetOutOfRange);
        }
        let moved = blocking(|| p.delete_before(target).map(|_| p.log_start_offset()))?;
        match moved {
            Ok(start) => Ok(start),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ResponseError::UnknownTopicOrPartition)
            }
            Err(e) => {
                tracing::error!(topic = %p.topic, partition = p.key.partition, error = %e, "delete records failed");
                Err(ResponseError::KafkaStorageError)
            }
        }
    }
}
