//! The store layer, in the shape of Kafka's `ReplicaManager`: the only place the API handlers reach
//! partition logs through for data, and the only place durability, blocking I/O and waiting are
//! decided.
//!
//! - [`Store::append_records`] (Kafka's `appendRecords`): refuses partitions whose log dir is
//!   offline or nearly full, appends (see [`blocking`]), then waits (a delayed produce) until
//!   each batch is as durable as its topic's flush policy promises.
//! - [`Store::fetch_records`] (Kafka's `fetchMessages`): reads (from the page cache inline, see
//!   [`cached_first`], else see [`blocking`]); a fetch that
//!   finds fewer than `min_bytes` parks in the fetch purgatory until an append completes it or
//!   `max_wait_ms` passes.
//! - [`Store::list_offset`] and [`Store::delete_records`]: timestamp lookups and log-start moves,
//!   the same way.
//!
//! Handlers stay thin: they resolve names, check request-level protocol rules and build responses.
//! File and meta-store I/O here never stalls a tokio worker's other tasks (see [`blocking`]): a
//! 2-core machine has two workers.
//!
//! Lock order, from outermost: `Topics::changes` (create/delete) → a partition's `maintenance`
//! (retention, cleaner, delete-records, moves) → its `persist` (checkpoint writer) → its `state`
//! (segments, offsets, producers) → its `synced` (taken alone, by `sync_to`); purgatory shards
//! are leaves (never held while taking another lock).

mod append;
mod fetch;
mod offsets;
pub mod purgatory;

use std::sync::Arc;

use kafka_protocol::ResponseError;

pub use append::{AppendEntry, AppendFailure};
pub use fetch::{FetchOutcome, FetchParams, FetchTarget, Records};
pub use offsets::ListedOffset;

use crate::disk_space::DiskSpace;
use crate::log::dir_failure::LogDirFailures;
use crate::log::nowait::{self, WouldWait};
use purgatory::Purgatory;

pub struct Store {
    /// Free space of each log dir (`gregor.log.dir.min.free.bytes`).
    pub disk: DiskSpace,
    /// Log dirs taken offline by a storage failure.
    pub failures: Arc<LogDirFailures>,
    /// Fetches waiting for `min_bytes` (produces waiting for followers will join with replication).
    fetches: Purgatory,
}

impl Store {
    pub fn new(disk: DiskSpace, failures: Arc<LogDirFailures>) -> Store {
        Store {
            disk,
            failures,
            fetches: Purgatory::new("Fetch"),
        }
    }
}

/// Runs file or meta-store work that may block (a write throttled by the kernel's writeback, a
/// read missing the page cache, a segment file created on a roll) without stalling the other
/// tasks of the worker thread it runs on: tokio's `block_in_place` hands them to another thread
/// first, and the request's own task goes on at once, with no hand-off to wait for (a hand-off per
/// request, through the blocking pool, halved produce and fetch throughput on 2 cores). On a
/// current-thread runtime (some tests) the work simply runs.
fn blocking<T>(work: impl FnOnce() -> T) -> Result<T, ResponseError> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| guarded(work))
        }
        _ => guarded(work),
    }
}

/// Runs a read on the worker itself with every segment read refusing to wait for the disk
/// (`log::nowait`): served from the page cache, as nearly every fetch of recent data is, it costs
/// no hand-off at all. A read that would have waited is run again under [`blocking`] (counted in
/// `gregor_fetch_reads_waited_total`).
fn cached_first<T>(work: impl Fn() -> Result<T, WouldWait>) -> Result<T, ResponseError> {
    match guarded(|| nowait::without_waiting(&work))? {
        Ok(done) => Ok(done),
        Err(WouldWait) => {
            metrics::counter!("gregor_fetch_reads_waited_total").increment(1);
            blocking(work)?.map_err(|WouldWait| ResponseError::KafkaStorageError)
        }
    }
}

/// Runs storage work so that a bug in the log code costs this request (KAFKA_STORAGE_ERROR), not
/// the connection.
fn guarded<T>(work: impl FnOnce() -> T) -> Result<T, ResponseError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic = %what, "storage work panicked; answering KAFKA_STORAGE_ERROR");
        metrics::counter!("gregor_storage_panics_total").increment(1);
        ResponseError::KafkaStorageError
    })
}
