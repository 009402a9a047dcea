//! Deleting whole segments from the head of a log, as Kafka's `UnifiedLog.deleteOldSegments` does:
//! segments below the log start offset (after DeleteRecords), then, with `cleanup.policy=delete`,
//! the oldest segments while the log is larger than `retention.bytes`, then those whose largest
//! timestamp is older than `retention.ms`. Deletion always takes a prefix of the log and never an
//! empty last segment; when every segment goes, an empty one is rolled at the log end first.
//!
//! Order of a deletion, so a crash at any point leaves a consistent log: the new log start offset
//! is raised (reads below it fail from then on) and made durable together with the removal of the
//! segments' indexes; then the segments leave the in-memory log (a reader holding one keeps
//! reading it: the file stays open); then each file is renamed to `<base>.log.deleted` and
//! unlinked after `file.delete.delay.ms`. Start-up removes
//! segments wholly below the log start and any `.deleted` file left over.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::partition::{SealJob, State};
use super::segment::Segment;
use super::{Checkpoint, LogConfig, Partition};

/// Suffix of a segment file waiting to be unlinked.
pub(super) const DELETED_SUFFIX: &str = ".deleted";

/// A segment file renamed away from the log, unlinked once `due_ms` has passed.
#[derive(Debug)]
pub(super) struct PendingDelete {
    path: PathBuf,
    due_ms: i64,
    bytes: u64,
}

/// Why a segment is deleted (the `reason` label of `gregor_log_segments_deleted_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    /// Wholly below the log start offset (DeleteRecords).
    LogStart,
    /// `retention.bytes` exceeded.
    Size,
    /// Largest timestamp older than `retention.ms`.
    Time,
}

impl Reason {
    fn label(self) -> &'static str {
        match self {
            Reason::LogStart => "log_start_offset",
            Reason::Size => "retention_bytes",
            Reason::Time => "retention_ms",
        }
    }
}

/// What one retention pass removed from a partition.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments: usize,
    pub bytes: u64,
}

/// What the planner needs to know about a segment.
#[derive(Debug, Clone, Copy)]
pub(super) struct SegmentFacts {
    pub(super) base_offset: i64,
    pub(super) size: u64,
    /// The largest record timestamp, or the file's modification time when it has none.
    pub(super) largest_timestamp: i64,
}

/// How many of the oldest segments to delete, and why each (pure; time injected). With
/// `log_start_only`, only segments below the log start offset qualify.
pub(super) fn plan(
    segments: &[SegmentFacts],
    log_start: i64,
    config: &LogConfig,
    now_ms: i64,
    log_start_only: bool,
) -> Vec<Reason> {
    let n = segments.len();
    // Kafka never deletes an empty last segment (it would only be re-created).
    let eligible = |i: usize| i < n && !(i + 1 == n && segments[i].size == 0);
    let mut out = Vec::new();
    let mut i = 0;
    while eligible(i)
        && segments
            .get(i + 1)
            .is_some_and(|s| s.base_offset <= log_start)
    {
        out.push(Reason::LogStart);
        i += 1;
    }
    if log_start_only || !config.cleanup_delete {
        return out;
    }
    if let Ok(limit) = u64::try_from(config.retention_bytes) {
        let size: u64 = segments[i..].iter().map(|s| s.size).sum();
        if size >= limit {
            let mut excess = size - limit;
            while eligible(i) && excess >= segments[i].size {
                excess -= segments[i].size;
                out.push(Reason::Size);
                i += 1;
            }
        }
    }
    if config.retention_ms >= 0 {
        while eligible(i)
            && now_ms.saturating_sub(segments[i].largest_timestamp) > config.retention_ms
        {
            out.push(Reason::Time);
            i += 1;
        }
    }
    out
}

/// The segment's largest timestamp, falling back to its file's modification time as Kafka does.
pub(super) fn largest_timestamp(seg: &Segment) -> i64 {
    if seg.index.max_timestamp >= 0 {
        return seg.index.max_timestamp;
    }
    std::fs::metadata(seg.path())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

fn facts(st: &State) -> Vec<SegmentFacts> {
    st.segments
        .values()
        .map(|s| SegmentFacts {
            base_offset: s.base_offset,
            size: s.size(),
            largest_timestamp: largest_timestamp(s),
        })
        .collect()
}

impl Partition {
    /// One retention pass (`log.retention.check.interval.ms`): deletes what [`plan`] selects. A
    /// partition busy with other maintenance (the cleaner) is skipped until the next pass.
    pub fn enforce_retention(&self, now_ms: i64) -> io::Result<RetentionOutcome> {
        let Ok(_busy) = self.maintenance.try_lock() else {
            return Ok(RetentionOutcome::default());
        };
        if self.is_retired() {
            return Ok(RetentionOutcome::default());
        }
        self.delete_old_segments(&self.config(), now_ms, false)
    }

    /// Makes `offset` the new log start (DeleteRecords): earlier offsets become unreadable at once,
    /// durably; the whole segments below it are deleted now, or by the next retention pass if the
    /// cleaner is working on the partition.
    pub fn delete_before(&self, offset: i64) -> io::Result<()> {
        if self.is_retired() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "partition deleted"));
        }
        let target = offset.min(self.lock().next_offset);
        if target <= self.log_start_offset() {
            return Ok(());
        }
        self.advance_log_start(target, &[], None)?;
        if let Ok(_busy) = self.maintenance.try_lock() {
            self.delete_old_segments(&self.config(), super::now_ms(), true)?;
        }
        Ok(())
    }

    /// Raises the log start offset to at least `to` and durably records it together with the
    /// removal of the `removed` segments' indexes.
    fn advance_log_start(
        &self,
        to: i64,
        removed: &[i64],
        cleaned_to: Option<i64>,
    ) -> io::Result<()> {
        let _writer = self.start_writer.lock().unwrap_or_else(|p| p.into_inner());
        self.log_start.fetch_max(to, Ordering::AcqRel);
        self.meta.replace_segments(
            self.key,
            removed,
            &[],
            Some(self.log_start_offset()),
            cleaned_to,
        )
    }

    /// Durably forgets the indexes of the segments at `bases` (recording the log start with them),
    /// before the cleaner replaces their files by a copy compacted up to `cleaned_to`.
    pub(super) fn forget_segments(&self, bases: &[i64], cleaned_to: i64) -> io::Result<()> {
        self.advance_log_start(i64::MIN, bases, Some(cleaned_to))
    }

    /// Deletes the planned prefix of the log (the caller holds `maintenance`).
    fn delete_old_segments(
        &self,
        config: &LogConfig,
        now_ms: i64,
        log_start_only: bool,
    ) -> io::Result<RetentionOutcome> {
        if self.is_retired() {
            return Ok(RetentionOutcome::default());
        }
        // Planned under the state lock so no append can land in a segment judged deletable.
        let (doomed, new_start, rolled) = {
            let mut st = self.lock();
            let reasons = plan(
                &facts(&st),
                self.log_start_offset(),
                config,
                now_ms,
                log_start_only,
            );
            if reasons.is_empty() {
                return Ok(RetentionOutcome::default());
            }
            let rolled = if reasons.len() == st.segments.len() {
                let next = st.next_offset;
                let old = st.segments.values().next_back().map(|s| SealJob {
                    base: s.base_offset,
                    file: s.handle(),
                    index: s.index.clone(),
                    checkpoint: Checkpoint {
                        snapshot_offset: next,
                        producers: st.producers.clone(),
                    },
                });
                let mut active = Segment::create(&self.dir(), next, now_ms)?;
                active.reserve_ahead(config, st.segments.values().next_back());
                st.segments.insert(next, active);
                if let Some(job) = old {
                    self.queue_seal(job);
                }
                true
            } else {
                false
            };
            let doomed: Vec<(i64, Reason)> = st
                .segments
                .keys()
                .copied()
                .zip(reasons.iter().copied())
                .collect();
            let new_start = *st
                .segments
                .keys()
                .nth(doomed.len())
                .expect("a segment is always kept");
            (doomed, new_start, rolled)
        };
        // The old active segment is sealed like any other (its fsync, index and checkpoint).
        if rolled {
            self.persist_sealed();
        }
        let bases: Vec<i64> = doomed.iter().map(|(b, _)| *b).collect();
        self.advance_log_start(new_start, &bases, None)?;
        let removed: Vec<Segment> = {
            let mut st = self.lock();
            bases.iter().filter_map(|b| st.segments.remove(b)).collect()
        };
        let mut outcome = RetentionOutcome::default();
        for (seg, (_, reason)) in removed.iter().zip(&doomed) {
            outcome.segments += 1;
            outcome.bytes += seg.size();
            metrics::counter!("gregor_log_segments_deleted_total", "reason" => reason.label())
                .increment(1);
            self.schedule_delete(seg, now_ms.saturating_add(config.file_delete_delay_ms))?;
        }
        tracing::info!(
            topic = %self.topic,
            partition = self.key.partition,
            segments = outcome.segments,
            bytes = outcome.bytes,
            log_start_offset = new_start,
            reason = doomed[0].1.label(),
            "deleted old log segments"
        );
        Ok(outcome)
    }

    /// Renames a segment removed from the log to `.deleted`, to be unlinked at `due_ms`.
    fn schedule_delete(&self, seg: &Segment, due_ms: i64) -> io::Result<()> {
        let mut name = seg.path().as_os_str().to_owned();
        name.push(DELETED_SUFFIX);
        let path = PathBuf::from(name);
        seg.retire();
        seg.rename(path.clone())?;
        self.pending_deletes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PendingDelete {
                path,
                due_ms,
                bytes: seg.size(),
            });
        Ok(())
    }

    /// Unlinks the deleted segment files whose `file.delete.delay.ms` has passed; returns the bytes
    /// reclaimed.
    pub fn delete_due_files(&self, now_ms: i64) -> u64 {
        let due: Vec<PendingDelete> = {
            let mut pending = self
                .pending_deletes
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if pending.is_empty() {
                return 0;
            }
            let (due, wait) = std::mem::take(&mut *pending)
                .into_iter()
                .partition(|d| d.due_ms <= now_ms);
            *pending = wait;
            due
        };
        let mut reclaimed = 0;
        for d in due {
            match std::fs::remove_file(&d.path) {
                Ok(()) => reclaimed += d.bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %d.path.display(), error = %e, "cannot unlink a deleted segment")
                }
            }
        }
        if reclaimed > 0 {
            metrics::counter!("gregor_log_reclaimed_bytes_total", "reason" => "retention")
                .increment(reclaimed);
        }
        reclaimed
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Stops all work on the partition (its topic is being deleted): appends are refused and
    /// background work stops. Returns once no maintenance pass, persisting job or append that
    /// started before is still running, so its files and metadata can go. Blocking.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        let _maintenance = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let _persist = self.persist.lock().unwrap_or_else(|p| p.into_inner());
        drop(self.lock());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(spec: &[(i64, u64, i64)]) -> Vec<SegmentFacts> {
        spec.iter()
            .map(|&(base_offset, size, largest_timestamp)| SegmentFacts {
                base_offset,
                size,
                largest_timestamp,
            })
            .collect()
    }

    fn config(retention_ms: i64, retention_bytes: i64) -> LogConfig {
        LogConfig {
            retention_ms,
            retention_bytes,
            ..LogConfig::default()
        }
    }

    #[test]
    fn time_retention_takes_the_expired_prefix_only() {
        let s = segs(&[
            (0, 100, 1_000),
            (10, 100, 5_000),
            (20, 100, 2_000),
            (30, 50, 9_000),
        ]);
        // now 10_000, retention 6_000: segment 0 (age 9_000) goes; segment 10 (age 5_000) stays,
        // and so does segment 20 behind it although it is older.
        assert_eq!(
            plan(&s, 0, &config(6_000, -1), 10_000, false),
            vec![Reason::Time]
        );
        assert!(plan(&s, 0, &config(-1, -1), 10_000, false).is_empty());
        // Age must exceed retention.ms strictly.
        assert!(plan(&s, 0, &config(9_000, -1), 10_000, false).is_empty());
        // Everything expired: all four, the active one included (the caller rolls first).
        assert_eq!(plan(&s, 0, &config(100, -1), 10_000, false).len(), 4);
    }

    #[test]
    fn size_retention_deletes_only_what_keeps_the_log_at_the_cap() {
        let s = segs(&[(0, 100, 0), (10, 100, 0), (20, 100, 0), (30, 40, 0)]);
        // 340 bytes, cap 150: as in Kafka a segment goes only if the log stays at or above the
        // cap without it: segment 0 (leaving 240), not segment 10 (it would leave 140).
        let p = plan(&s, 0, &config(-1, 150), 0, false);
        assert_eq!(p, vec![Reason::Size]);
        assert_eq!(plan(&s, 0, &config(-1, 140), 0, false).len(), 2);
        assert!(plan(&s, 0, &config(-1, 340), 0, false).is_empty());
        assert_eq!(plan(&s, 0, &config(-1, 0), 0, false).len(), 4);
    }

    #[test]
    fn log_start_breach_and_policy() {
        let s = segs(&[(0, 100, 0), (10, 100, 0), (20, 0, 0)]);
        let compact = LogConfig {
            cleanup_delete: false,
            ..config(1, 1)
        };
        // Segment 0 ends before log start 15; segment 10 holds it.
        assert_eq!(plan(&s, 15, &compact, 1_000, false), vec![Reason::LogStart]);
        // An empty last segment is never deleted, even when everything before it is.
        assert_eq!(plan(&s, 20, &compact, 1_000, false).len(), 2);
        assert_eq!(plan(&s, 20, &config(1, -1), 1_000, false).len(), 2);
        assert_eq!(plan(&s, 0, &config(1, -1), 1_000, true), vec![]);
    }
}
