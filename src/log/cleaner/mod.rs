//! Log compaction (Kafka's `LogCleaner`): for logs with `cleanup.policy` containing `compact`,
//! background threads keep the latest record of every key. Offsets never change (gaps are legal);
//! tombstones survive `delete.retention.ms` after their first cleaning; records without a key are
//! dropped (and refused on produce); control and transactional batches are kept as they are.
//!
//! - [`plan`]: the cleanable range and dirty ratio of a log (pure, time injected);
//! - [`Cleaner::grab`] picks the dirtiest log that is due (ratio above `min.cleanable.dirty.ratio`,
//!   or `max.compaction.lag.ms` passed);
//! - `pass`: one cleaning — map keys to latest offsets, copy segment groups through `filter`,
//!   swap them in crash-safely (`swap`);
//! - `throttle`: `log.cleaner.io.max.bytes.per.second` across all cleaner threads.

mod filter;
mod offset_map;
mod pass;
pub mod plan;
mod swap;
mod throttle;

use std::collections::HashSet;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use pass::CleanStats;
pub(super) use swap::finish_interrupted as finish_interrupted_swaps;

use super::{Partition, PartitionKey};
use crate::config::CleanerConfig;
use plan::{Cleanable, LogFacts, SegmentFacts};
use throttle::Throttle;

/// The cleaner shared by its threads.
pub struct Cleaner {
    config: CleanerConfig,
    throttle: Throttle,
    in_progress: Mutex<HashSet<PartitionKey>>,
    /// Partitions whose cleaning failed (corrupt data, I/O error): skipped until restart.
    uncleanable: Mutex<HashSet<PartitionKey>>,
}

impl Cleaner {
    pub fn new(config: CleanerConfig) -> Cleaner {
        Cleaner {
            throttle: Throttle::new(config.io_max_bytes_per_second),
            config,
            in_progress: Mutex::new(HashSet::new()),
            uncleanable: Mutex::new(HashSet::new()),
        }
    }

    /// How many cleaner threads to run (`log.cleaner.enable`, `log.cleaner.threads`).
    pub fn threads(&self) -> usize {
        if self.config.enable {
            self.config.threads
        } else {
            0
        }
    }

    /// `log.cleaner.backoff.ms`.
    pub fn backoff(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.config.backoff_ms)
    }

    /// Picks the dirtiest compacted partition that is due for cleaning and not being cleaned,
    /// and marks it in progress.
    pub fn grab(
        &self,
        partitions: &[Arc<Partition>],
        now_ms: i64,
    ) -> Option<(Arc<Partition>, Cleanable)> {
        let uncleanable = self.uncleanable.lock().unwrap_or_else(|p| p.into_inner());
        let mut in_progress = self.in_progress.lock().unwrap_or_else(|p| p.into_inner());
        let mut dirtiest: Option<(Arc<Partition>, Cleanable)> = None;
        let mut max_ratio = 0f64;
        for p in partitions {
            let config = p.config();
            if !config.cleanup_compact
                || p.is_retired()
                || in_progress.contains(&p.key)
                || uncleanable.contains(&p.key)
            {
                continue;
            }
            let facts = p.log_facts(config.max_compaction_lag_ms != i64::MAX);
            let c = plan::cleanable(&facts, &config, now_ms);
            if c.clean_bytes + c.cleanable_bytes == 0 {
                continue;
            }
            max_ratio = max_ratio.max(c.ratio());
            if c.due(&config) && dirtiest.as_ref().is_none_or(|(_, d)| c.ratio() > d.ratio()) {
                dirtiest = Some((p.clone(), c));
            }
        }
        metrics::gauge!("kafka_log_logcleanermanager_max_dirty_percent").set(100.0 * max_ratio);
        metrics::gauge!("kafka_log_logcleanermanager_uncleanable_partitions_count")
            .set(uncleanable.len() as f64);
        if let Some((p, _)) = &dirtiest {
            in_progress.insert(p.key);
        }
        dirtiest
    }

    /// Cleans `p` (grabbed by [`Cleaner::grab`]) at `now_ms`; `aborted` is polled between batches.
    /// Blocking: runs on a cleaner thread.
    pub fn clean(
        &self,
        p: &Partition,
        now_ms: i64,
        aborted: &dyn Fn() -> bool,
    ) -> io::Result<Option<CleanStats>> {
        let result = self.clean_locked(p, now_ms, aborted);
        self.in_progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&p.key);
        match &result {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                tracing::info!(topic = %p.topic, partition = p.key.partition, "log cleaning aborted");
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::error!(topic = %p.topic, partition = p.key.partition, error = %e, "log cleaning failed on corrupt data; the partition is left uncleaned until restart");
                self.uncleanable
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(p.key);
            }
            Err(e) => {
                crate::condition::storage_error(&crate::condition::STORAGE_WRITES, "clean", || {
                    format!(
                        "cleaning {}-{} failed (retried after log.cleaner.backoff.ms): {e}",
                        p.topic, p.key.partition
                    )
                });
            }
            Ok(_) => {}
        }
        result
    }

    fn clean_locked(
        &self,
        p: &Partition,
        now_ms: i64,
        aborted: &dyn Fn() -> bool,
    ) -> io::Result<Option<CleanStats>> {
        let _maintenance = p.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let config = p.config();
        if p.is_retired() || !config.cleanup_compact {
            return Ok(None);
        }
        // Planned again under the lock: retention may have moved the log start meanwhile.
        let c = plan::cleanable(
            &p.log_facts(config.max_compaction_lag_ms != i64::MAX),
            &config,
            now_ms,
        );
        if c.checkpoint_reset {
            tracing::warn!(topic = %p.topic, partition = p.key.partition, first_dirty = c.first_dirty, "cleaner checkpoint outside the log; cleaning from the log start");
        }
        let started = Instant::now();
        let env = pass::PassEnv {
            now_ms,
            map_bytes: self.config.dedupe_buffer_size / self.config.threads.max(1),
            throttle: &self.throttle,
            aborted,
        };
        let stats = pass::clean(p, &c, &env)?;
        if let Some(s) = &stats {
            record(p, s, started.elapsed().as_secs_f64());
        }
        Ok(stats)
    }
}

fn record(p: &Partition, s: &CleanStats, secs: f64) {
    let reclaimed = s.bytes_before.saturating_sub(s.bytes_after);
    metrics::counter!("gregor_log_cleaner_passes_total").increment(1);
    metrics::histogram!("gregor_log_cleaner_pass_seconds").record(secs);
    metrics::counter!("gregor_log_cleaner_read_bytes_total").increment(s.bytes_read);
    metrics::counter!("gregor_log_cleaner_written_bytes_total").increment(s.bytes_written);
    metrics::counter!("gregor_log_cleaner_records_removed_total").increment(s.records_removed);
    metrics::counter!("gregor_log_reclaimed_bytes_total", "reason" => "compaction")
        .increment(reclaimed);
    metrics::gauge!("kafka_log_logcleaner_max_clean_time_secs").set(secs);
    metrics::gauge!("kafka_log_logcleaner_max_buffer_utilization_percent")
        .set(100.0 * s.map_utilization);
    if s.bytes_read > 0 {
        metrics::gauge!("kafka_log_logcleaner_cleaner_recopy_percent")
            .set(100.0 * s.bytes_written as f64 / s.bytes_read as f64);
    }
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    tracing::info!(
        topic = %p.topic,
        partition = p.key.partition,
        checkpoint = s.end_offset,
        segments_before = s.segments_before,
        segments_after = s.segments_after,
        mb_before = format!("{:.2}", mb(s.bytes_before)),
        mb_after = format!("{:.2}", mb(s.bytes_after)),
        records_removed = s.records_removed,
        mb_per_s = format!("{:.1}", mb(s.bytes_read) / secs.max(1e-9)),
        seconds = format!("{secs:.3}"),
        "cleaned log"
    );
}

impl Partition {
    /// What the planner needs, with each dirty segment's first batch timestamp when `first_batches`
    /// (for `max.compaction.lag.ms`; read from the files outside the lock).
    fn log_facts(&self, first_batches: bool) -> LogFacts {
        let (mut segments, slices) = {
            let st = self.lock();
            let facts: Vec<SegmentFacts> = st
                .segments
                .values()
                .map(|s| SegmentFacts {
                    base_offset: s.base_offset,
                    size: s.size(),
                    largest_timestamp: super::retention::largest_timestamp(s),
                    first_batch_timestamp: None,
                })
                .collect();
            let slices: Vec<_> = if first_batches {
                st.segments.values().map(|s| s.slice()).collect()
            } else {
                Vec::new()
            };
            (facts, slices)
        };
        let checkpoint = self.cleaner_checkpoint.load(Ordering::Acquire);
        let checkpoint = (checkpoint >= 0).then_some(checkpoint);
        let nexts: Vec<i64> = segments.iter().skip(1).map(|f| f.base_offset).collect();
        for ((f, slice), next) in segments.iter_mut().zip(&slices).zip(nexts) {
            // Dirty segments are those ending above the checkpoint.
            if checkpoint.is_some_and(|c| next <= c) {
                continue;
            }
            f.first_batch_timestamp = slice.header_at(0).ok().flatten().map(|h| h.max_timestamp());
        }
        LogFacts {
            log_start: self.log_start_offset(),
            log_end: self.log_end_offset(),
            checkpoint,
            segments,
        }
    }

    /// The cleaner checkpoint (`None` before the first cleaning).
    pub fn cleaner_checkpoint(&self) -> Option<i64> {
        let c = self.cleaner_checkpoint.load(Ordering::Acquire);
        (c >= 0).then_some(c)
    }

    fn record_cleaner_checkpoint(&self, offset: i64) -> io::Result<()> {
        self.cleaner_checkpoint.store(offset, Ordering::Release);
        self.meta.save_cleaner_checkpoint(self.key, offset)
    }
}
