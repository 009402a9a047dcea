//! `append_records`: one produce request's batches, appended (without stalling other tasks) and acknowledged
//! once each is as durable as its topic's flush policy promises (fsyncs group-committed across
//! requests by `Partition::sync_to`).

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::{blocking, Store};
use crate::condition::{storage_error, STORAGE_WRITES};
use crate::log::dir_failure::LogDirFailures;
use crate::log::{records, AppendError, Appended, Partition};
use crate::topics::Topic;

/// One partition's batch (already checked to be a single v2 batch).
pub struct AppendEntry {
    pub topic: Arc<Topic>,
    pub partition: Arc<Partition>,
    pub records: Bytes,
}

/// Why a partition's batch was not appended (or not made durable).
#[derive(Debug)]
pub struct AppendFailure {
    pub error: ResponseError,
    pub message: Option<String>,
    /// (record index, message) pairs for INVALID_RECORD.
    pub record_errors: Vec<(i32, String)>,
}

impl AppendFailure {
    fn storage(message: String) -> AppendFailure {
        AppendFailure {
            error: ResponseError::KafkaStorageError,
            message: Some(message),
            record_errors: Vec::new(),
        }
    }
}

type Result1 = Result<Appended, AppendFailure>;

/// Appends one batch (may block), counting it in the topic's metrics.
fn append_one(e: &AppendEntry, now_ms: i64) -> Result1 {
    let p = &e.partition;
    match p.append(&e.records, now_ms) {
        Ok(a) => {
            STORAGE_WRITES.cleared();
            e.topic.metrics.bytes_in.increment(e.records.len() as u64);
            if !a.duplicate {
                e.topic
                    .metrics
                    .messages_in
                    .increment((a.last_offset - a.base_offset + 1) as u64);
            }
            Ok(a)
        }
        Err(AppendError::Rejected {
            error,
            message,
            record_errors,
        }) => Err(AppendFailure {
            error,
            message: Some(message),
            record_errors,
        }),
        Err(AppendError::Storage(err)) => {
            storage_error(&STORAGE_WRITES, "append", || {
                format!("append to {}-{} failed: {err}", p.topic, p.key.partition)
            });
            Err(AppendFailure::storage(err.to_string()))
        }
    }
}

/// What one produce request's compressed batches may decompress to in all while being validated:
/// 64 times their size, and at least 64 MiB (what one batch of the default `max.message.bytes`
/// may inflate to), so that a request's CPU cost is bounded by its size.
fn decompression_budget(entries: &[AppendEntry]) -> usize {
    let size: usize = entries.iter().map(|e| e.records.len()).sum();
    size.saturating_mul(64).max(64 << 20)
}

impl Store {
    /// Appends each entry's batch and returns, in order, its offsets or why it failed; returns
    /// once every appended batch is durable as its flush policy asks.
    pub async fn append_records(&self, entries: Vec<AppendEntry>, now_ms: i64) -> Vec<Result1> {
        // Refused before any I/O: an offline log dir, or one nearly full (see `disk_space`).
        let disk_low = self.disk.low();
        let refusals: Vec<Option<AppendFailure>> = entries
            .iter()
            .map(|e| {
                if e.partition.is_offline() {
                    return Some(AppendFailure::storage(LogDirFailures::message(
                        &e.partition.dir(),
                    )));
                }
                if !disk_low {
                    return None;
                }
                let dir = e.partition.dir();
                self.disk
                    .low_at(&dir)
                    .then(|| AppendFailure::storage(self.disk.refusal(&dir)))
            })
            .collect();
        let budget = decompression_budget(&entries);
        let mut results: Vec<Result1> = blocking(|| {
            records::with_decompression_budget(budget, || {
                entries
                    .iter()
                    .zip(refusals)
                    .map(|(e, refused)| match refused {
                        Some(f) => Err(f),
                        None => append_one(e, now_ms),
                    })
                    .collect()
            })
        })
        .unwrap_or_else(|_| {
            (0..entries.len())
                .map(|_| Err(AppendFailure::storage("the append failed".into())))
                .collect()
        });
        for (e, r) in entries.iter().zip(&results) {
            if matches!(r, Ok(a) if !a.duplicate) {
                self.fetches.check(e.partition.key);
            }
        }
        // The delayed part of a produce: acknowledged only once durable per the flush policy.
        for (e, r) in entries.iter().zip(results.iter_mut()) {
            let Ok(a) = r else { continue };
            if !a.sync_needed {
                continue;
            }
            if let Err(err) = e.partition.sync_to(a.last_offset).await {
                storage_error(&STORAGE_WRITES, "fsync", || {
                    format!(
                        "fsync of {}-{} failed: {err}",
                        e.partition.topic, e.partition.key.partition
                    )
                });
                *r = Err(AppendFailure::storage(err.to_string()));
            }
        }
        results
    }
}
