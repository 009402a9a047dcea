//! The partition store: each partition is a commit log of record batches in append-only segment
//! files (Kafka's on-disk batch format), with its sparse indexes, recovery checkpoint and producer
//! state kept in the meta store (sled) through [`LogMetaStore`].
//!
//! # Invariants (checked by the conformance tests in `tests/log_conformance.rs`)
//! - Offsets are dense and increasing: a batch appended at the log end offset `n` with `k` records
//!   occupies offsets `n..n+k`, and the next append starts at `n+k`.
//! - Nothing acknowledged is lost: [`Partition::append`] returns only after the batch bytes are in
//!   the segment file (page cache), which survives a kill of the process; with a flush policy the
//!   caller also awaits [`Partition::sync_to`] (fdatasync, group-committed) before acknowledging.
//! - No torn batch is ever served: readers see only whole batches below the high watermark, and
//!   recovery truncates a torn tail (CRC or length check failing) before anything is served.
//! - The bytes served are the bytes the producer sent, except `baseOffset` and
//!   `partitionLeaderEpoch`, which the CRC does not cover.
//! - Segment indexes are persisted only after their segment is fsynced, so the meta store never
//!   claims bytes a power loss could take; recovery rescans every byte beyond what it indexes.
//! - Retention (`retention`) removes whole segments from the head only, after the new log start
//!   offset is durable; reads below the log start fail with OFFSET_OUT_OF_RANGE.
//! - Compaction (`cleaner`) rewrites sealed segments only and never moves a record: offsets stay
//!   increasing but may have gaps, the latest record of every key below the cleaner checkpoint
//!   survives, and a crash leaves each cleaned group either wholly old or wholly new.

pub mod batch;
pub mod cleaner;
pub mod descriptors;
pub mod dir_failure;
mod flush;
pub mod nowait;
mod partition;
pub mod preallocate;
pub mod producer_state;
mod read;
pub mod records;
mod recovery;
pub mod relocate;
mod retention;
pub mod rewrite;
pub mod segment;
pub mod sync;
mod validate;

use std::io;

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use partition::{Appended, Partition};
pub use read::{FetchData, FileRegion, OpenRegion, RegionData};
pub use relocate::Moved;
pub use retention::RetentionOutcome;
pub use segment::SegmentIndex;

use producer_state::ProducerStates;

/// Per-log settings (Kafka's topic-level configs with the broker's defaults applied).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `segment.bytes` / `log.segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms` / `log.roll.ms`.
    pub roll_ms: i64,
    /// `index.interval.bytes` / `log.index.interval.bytes`.
    pub index_interval_bytes: u64,
    /// `flush.messages` / `log.flush.interval.messages`: fsync after this many messages.
    pub flush_interval_messages: u64,
    /// `flush.ms` / `log.flush.interval.ms`: fsync when the oldest unflushed append is this old.
    pub flush_interval_ms: i64,
    /// `max.message.bytes` / `message.max.bytes`: the largest batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.after.max.ms`: how far in the future a record's timestamp may be.
    pub timestamp_after_max_ms: i64,
    /// `message.timestamp.before.max.ms`: how far in the past a record's timestamp may be.
    pub timestamp_before_max_ms: i64,
    /// `gregor.produce.validate.compressed`: decompress compressed batches to walk their records.
    pub validate_compressed: bool,
    /// `producer.id.expiration.ms`.
    pub producer_id_expiration_ms: i64,
    /// `compression.type`: keep the producer's codec, or recompress to this one.
    pub compression: rewrite::TopicCompression,
    /// `message.timestamp.type=LogAppendTime`: stamp batches with the broker's time.
    pub log_append_time: bool,
    /// `retention.ms` / `log.retention.{ms,minutes,hours}`; negative: no time limit.
    pub retention_ms: i64,
    /// `retention.bytes` / `log.retention.bytes` per partition; negative: no size limit.
    pub retention_bytes: i64,
    /// `cleanup.policy` contains `delete`: retention deletes old segments.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: the cleaner keeps the latest record per key.
    pub cleanup_compact: bool,
    /// `delete.retention.ms`: how long a tombstone survives after its first cleaning.
    pub delete_retention_ms: i64,
    /// `file.delete.delay.ms` / `log.segment.delete.delay.ms`.
    pub file_delete_delay_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: records older than this make the log due for cleaning.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_ratio: f64,
    /// `preallocate` / `log.preallocate`: reserve a new segment's whole `segment.bytes` on disk.
    pub preallocate: bool,
    /// `gregor.log.preallocate.max.bytes`: the largest disk reservation made ahead of appends
    /// (0: none beyond what `preallocate` asks).
    pub preallocate_max_bytes: u64,
    /// `gregor.log.preallocate.total.max.bytes`: all reservations ahead of appends together, across
    /// every partition of the broker (beyond it, appends go on without reserving).
    pub preallocate_total_max_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            roll_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            flush_interval_messages: u64::MAX,
            flush_interval_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            timestamp_after_max_ms: 3_600_000,
            timestamp_before_max_ms: i64::MAX,
            validate_compressed: true,
            producer_id_expiration_ms: 86_400_000,
            compression: rewrite::TopicCompression::Producer,
            log_append_time: false,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            cleanup_delete: true,
            cleanup_compact: false,
            delete_retention_ms: 86_400_000,
            file_delete_delay_ms: 60_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_ratio: 0.5,
            preallocate: false,
            preallocate_max_bytes: 256 << 20,
            preallocate_total_max_bytes: 2 << 30,
        }
    }
}

/// Identifies a partition in the meta store: the topic id and the partition index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub topic_id: Uuid,
    pub partition: i32,
}

/// The producer-state snapshot persisted with the segment indexes it matches.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Offset up to which `producers` is accurate (the end of the persisted indexes).
    pub snapshot_offset: i64,
    pub producers: ProducerStates,
}

/// Everything persisted about one partition's log.
#[derive(Debug, Default)]
pub struct PersistedLog {
    pub checkpoint: Option<Checkpoint>,
    pub log_start_offset: Option<i64>,
    /// Segment base offset → its index, for segments fsynced and indexed so far.
    pub segments: Vec<(i64, SegmentIndex)>,
    /// Offset below which the log is compacted (Kafka's cleaner-offset-checkpoint).
    pub cleaner_checkpoint: Option<i64>,
}

/// The durable metadata side of the store (implemented on sled by `meta::Meta`).
pub trait LogMetaStore: Send + Sync {
    fn load_log(&self, key: PartitionKey) -> io::Result<PersistedLog>;
    /// Atomically records fsynced segment indexes and the checkpoint that goes with them.
    fn save_log(
        &self,
        key: PartitionKey,
        segments: &[(i64, &SegmentIndex)],
        checkpoint: &Checkpoint,
    ) -> io::Result<()>;
    /// Forgets one segment's index (not flushed: recovery rescans a segment it has no index for).
    fn remove_segment(&self, key: PartitionKey, base_offset: i64) -> io::Result<()>;
    /// Removes the indexes of `removed`, records those of `added` and, if given, the log start
    /// offset, in one atomic step that is durable when this returns (deletion relies on the log
    /// start being durable before files go; the cleaner's swap on no stale index surviving a crash).
    /// `cleaned_to`, if given, raises the cleaner checkpoint to at least that offset in the same
    /// step: a swap's segments are unindexed until it completes, and recovery must take the gaps
    /// compaction leaves in them for compaction's, not for the end of what reached the disk.
    fn replace_segments(
        &self,
        key: PartitionKey,
        removed: &[i64],
        added: &[(i64, &SegmentIndex)],
        log_start: Option<i64>,
        cleaned_to: Option<i64>,
    ) -> io::Result<()>;
    /// Records the cleaner's checkpoint (not flushed: losing it only means cleaning again).
    fn save_cleaner_checkpoint(&self, key: PartitionKey, offset: i64) -> io::Result<()>;
    fn remove_log(&self, key: PartitionKey) -> io::Result<()>;
}

/// Why an append was refused; the partition's response carries the Kafka error.
#[derive(Debug)]
pub enum AppendError {
    Rejected {
        error: ResponseError,
        message: String,
        /// (record index, message) pairs for INVALID_RECORD.
        record_errors: Vec<(i32, String)>,
    },
    Storage(io::Error),
}

impl AppendError {
    pub fn rejected(error: ResponseError, message: impl Into<String>) -> Self {
        AppendError::Rejected {
            error,
            message: message.into(),
            record_errors: Vec::new(),
        }
    }
    pub fn code(&self) -> ResponseError {
        match self {
            AppendError::Rejected { error, .. } => *error,
            AppendError::Storage(_) => ResponseError::KafkaStorageError,
        }
    }
}

/// Why a read was refused.
#[derive(Debug)]
pub enum ReadError {
    OffsetOutOfRange,
    Storage(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Storage(e)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
