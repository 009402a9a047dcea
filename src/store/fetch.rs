//! `fetch_records`: reads every partition of a fetch up to its byte budgets (from the page cache
//! inline, else without stalling other tasks, see `cached_first`);
//! when fewer than `min_bytes` are ready, the fetch parks in the fetch purgatory (registered once
//! on all its partitions) until an append to one of them or `max_wait_ms`, then reads again.
//! Batches are served as stored: as file regions sent from the page cache, or read into memory
//! when small.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio_util::sync::CancellationToken;

use super::{cached_first, Store};
use crate::condition::{storage_error, STORAGE_READS};
use crate::log::nowait::{self, WouldWait};
use crate::log::{FileRegion, Partition, ReadError};

/// The request-wide limits of a fetch.
pub struct FetchParams {
    pub max_bytes: u64,
    pub min_bytes: u64,
    pub max_wait: Duration,
}

/// One partition of a fetch: the partition (or the error its name or id resolves to), where to
/// read from and its own byte limit.
pub struct FetchTarget {
    pub partition: Result<Arc<Partition>, ResponseError>,
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
}

/// A partition's batches: none, a file region (sent without copying), or bytes in memory.
pub enum Records {
    None,
    File(FileRegion),
    Memory(Bytes),
}

pub struct FetchOutcome {
    pub error: Option<ResponseError>,
    pub records: Records,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

impl FetchOutcome {
    fn failed(error: ResponseError, high_watermark: i64, log_start_offset: i64) -> Self {
        FetchOutcome {
            error: Some(error),
            records: Records::None,
            high_watermark,
            log_start_offset,
        }
    }

    /// Bytes of records found.
    fn bytes(&self) -> u64 {
        match &self.records {
            Records::None => 0,
            Records::File(r) => r.len,
            Records::Memory(b) => b.len() as u64,
        }
    }
}

fn read_failed(p: &Partition, e: &dyn std::fmt::Display) {
    storage_error(&STORAGE_READS, "read", || {
        format!("read of {}-{} failed: {e}", p.topic, p.key.partition)
    });
}

/// Reads one partition within `budget`; `WouldWait` only inside `nowait::without_waiting`.
fn read_one(t: &FetchTarget, budget: u64, min_one: bool) -> Result<FetchOutcome, WouldWait> {
    let p = match &t.partition {
        Ok(p) => p,
        Err(e) => return Ok(FetchOutcome::failed(*e, -1, -1)),
    };
    let storage_failure = |e: &std::io::Error| {
        if nowait::would_wait(e) {
            return Err(WouldWait);
        }
        read_failed(p, e);
        Ok(FetchOutcome::failed(
            ResponseError::KafkaStorageError,
            -1,
            -1,
        ))
    };
    // Our only leader epoch is 0: a client that knows a later one is ahead of this broker.
    if t.current_leader_epoch > 0 {
        return Ok(FetchOutcome::failed(
            ResponseError::UnknownLeaderEpoch,
            -1,
            -1,
        ));
    }
    if p.is_retired() {
        // Its topic was deleted while the fetch waited.
        return Ok(FetchOutcome::failed(
            ResponseError::UnknownTopicOrPartition,
            -1,
            -1,
        ));
    }
    if p.is_offline() {
        return Ok(FetchOutcome::failed(
            ResponseError::KafkaStorageError,
            -1,
            -1,
        ));
    }
    let budget = budget.min(t.max_bytes.max(0) as u64);
    match p.read_region(t.fetch_offset, budget, min_one) {
        Ok(d) => {
            let records = match d.region {
                None => Records::None,
                Some(r) if r.len >= crate::wire::MIN_REFERENCED as u64 => Records::File(r),
                Some(r) => match r.read() {
                    Ok(bytes) => Records::Memory(bytes),
                    Err(e) => return storage_failure(&e),
                },
            };
            Ok(FetchOutcome {
                error: None,
                records,
                high_watermark: d.high_watermark,
                log_start_offset: d.log_start_offset,
            })
        }
        Err(ReadError::OffsetOutOfRange) => Ok(FetchOutcome::failed(
            ResponseError::OffsetOutOfRange,
            p.high_watermark(),
            p.log_start_offset(),
        )),
        Err(ReadError::Storage(e)) => storage_failure(&e),
    }
}

/// What a read pass found: the outcomes, their bytes, and whether any failed.
type Pass = (Vec<FetchOutcome>, u64, bool);

/// One pass over every partition, sharing the request's `max_bytes` in order.
fn read_pass(targets: &[FetchTarget], max_bytes: u64) -> Result<Pass, WouldWait> {
    let mut remaining = max_bytes;
    let mut total = 0u64;
    let mut any_error = false;
    let outcomes = targets
        .iter()
        .map(|t| {
            let o = read_one(t, remaining, total == 0)?;
            total += o.bytes();
            remaining = remaining.saturating_sub(o.bytes());
            any_error |= o.error.is_some();
            Ok(o)
        })
        .collect::<Result<_, _>>()?;
    Ok((outcomes, total, any_error))
}

/// Counts a parked fetch in `gregor_fetch_waiting` for as long as it lives (also when its future
/// is dropped mid-wait).
struct Waiting;

impl Waiting {
    fn new() -> Waiting {
        metrics::gauge!("gregor_fetch_waiting").increment(1.0);
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::gauge!("gregor_fetch_waiting").decrement(1.0);
    }
}

impl Store {
    /// Wakes the fetches waiting on `partitions` (their topic was deleted: they answer at once).
    pub fn partitions_stopped(&self, partitions: &[Arc<Partition>]) {
        for p in partitions {
            self.fetches.check(p.key);
        }
    }

    /// Reads `targets`, waiting up to `max_wait` for `min_bytes` (or until the client is `gone`);
    /// outcomes in the targets' order.
    pub async fn fetch_records(
        &self,
        params: FetchParams,
        targets: Vec<FetchTarget>,
        gone: &CancellationToken,
    ) -> Vec<FetchOutcome> {
        let deadline = tokio::time::Instant::now() + params.max_wait;
        // Registered only once a read comes up short, and that read is then repeated, so an append
        // between the two is never missed; a fetch that finds data registers nothing.
        let mut watch = None;
        loop {
            let Ok((outcomes, total, any_error)) =
                cached_first(|| read_pass(&targets, params.max_bytes))
            else {
                return targets
                    .iter()
                    .map(|_| FetchOutcome::failed(ResponseError::KafkaStorageError, -1, -1))
                    .collect();
            };
            if params.min_bytes == 0
                || total >= params.min_bytes
                || any_error
                || tokio::time::Instant::now() >= deadline
                || gone.is_cancelled()
            {
                return outcomes;
            }
            let Some(w) = &watch else {
                let keys = targets
                    .iter()
                    .filter_map(|t| t.partition.as_ref().ok().map(|p| p.key));
                watch = Some(self.fetches.watch(keys));
                continue;
            };
            let _waiting = Waiting::new();
            // Woken, timed out or abandoned, read again: data that arrived at the deadline is not
            // missed.
            tokio::select! {
                _ = tokio::time::timeout_at(deadline, w.op.notified()) => {}
                _ = gone.cancelled() => {}
            }
        }
    }
}
