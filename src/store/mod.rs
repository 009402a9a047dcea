//! The store layer, in the shape of Kafka's `ReplicaManager`: the only place the API handlers reach
//! partition logs through for data, and the only place durability, blocking I/O and waiting are
//! decided.
//!
//! - [`Store::append_records`] (Kafka's `appendRecords`): refuses partitions whose log dir is
//!   offline or nearly full, appends on the blocking pool, then waits (a delayed produce) until
//!   each batch is as durable as its topic's flush policy promises.
//! - [`Store::fetch_records`] (Kafka's `fetchMessages`): reads on the blocking pool; a fetch that
//!   finds fewer than `min_bytes` parks in the fetch purgatory until an append completes it or
//!   `max_wait_ms` passes.
//! - [`Store::list_offset`] and [`Store::delete_records`]: timestamp lookups and log-start moves,
//!   also off the async workers.
//!
//! Handlers stay thin: they resolve names, check request-level protocol rules and build responses.
//! File and meta-store I/O never runs on a tokio worker thread here: a 2-core machine has two.
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

pub use append::{AppendEntry, AppendFailure};
pub use fetch::{FetchOutcome, FetchParams, FetchTarget, Records};
pub use offsets::ListedOffset;

use crate::disk_space::DiskSpace;
use crate::log::dir_failure::LogDirFailures;
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

/// Runs blocking file or meta-store work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(std::io::Error::other)
}
