//! Which part of a compacted log a cleaning may touch and how dirty it is, as Kafka's
//! `LogCleanerManager.cleanableOffsets` / `calculateCleanableBytes` / `maxCompactionDelay` compute it
//! (pure; time injected). The log is `[log start, first dirty)` clean (compacted before) and
//! `[first dirty, first uncleanable)` dirty; the active segment, anything at or above the log end
//! and segments younger than `min.compaction.lag.ms` are uncleanable.

use super::super::LogConfig;

/// A segment as the planner sees it; the last one given is the active segment.
#[derive(Debug, Clone, Copy)]
pub struct SegmentFacts {
    pub base_offset: i64,
    pub size: u64,
    /// Largest record timestamp (file modification time when it has none).
    pub largest_timestamp: i64,
    /// Largest timestamp of its first batch (for `max.compaction.lag.ms`); `None` when not read.
    pub first_batch_timestamp: Option<i64>,
}

/// A log's state for planning.
#[derive(Debug, Clone)]
pub struct LogFacts {
    pub log_start: i64,
    pub log_end: i64,
    pub checkpoint: Option<i64>,
    pub segments: Vec<SegmentFacts>,
}

/// The cleanable range of a log and its dirtiness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    pub first_dirty: i64,
    pub first_uncleanable: i64,
    /// Bytes of the segments below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the segments a cleaning would map.
    pub cleanable_bytes: u64,
    /// `max.compaction.lag.ms` has passed for the oldest dirty record: clean whatever the ratio.
    pub overdue: bool,
    /// The checkpoint was outside the log and has been reset to the log start.
    pub checkpoint_reset: bool,
}

impl Cleanable {
    /// Kafka's `cleanableRatio`: cleanable bytes over all bytes considered.
    pub fn ratio(&self) -> f64 {
        let total = self.clean_bytes + self.cleanable_bytes;
        if total == 0 {
            0.0
        } else {
            self.cleanable_bytes as f64 / total as f64
        }
    }

    /// Whether the log should be cleaned now (Kafka's `grabFilthiestCompactedLog` filter).
    pub fn due(&self, config: &LogConfig) -> bool {
        (self.overdue && self.cleanable_bytes > 0) || self.ratio() > config.min_cleanable_ratio
    }
}

/// Segments overlapping `[from, to)`: the one holding `from` and every later one below `to`.
fn overlapping(
    segments: &[SegmentFacts],
    from: i64,
    to: i64,
) -> impl Iterator<Item = &SegmentFacts> {
    let first = segments
        .iter()
        .rposition(|s| s.base_offset <= from)
        .unwrap_or(0);
    segments[first..]
        .iter()
        .take_while(move |s| s.base_offset < to)
}

/// Computes the cleanable range of `log` at `now_ms`.
pub fn cleanable(log: &LogFacts, config: &LogConfig, now_ms: i64) -> Cleanable {
    let checkpoint = log.checkpoint.unwrap_or(log.log_start);
    let (first_dirty, checkpoint_reset) = if checkpoint < log.log_start || checkpoint > log.log_end
    {
        (log.log_start, log.checkpoint.is_some())
    } else {
        (checkpoint, false)
    };
    let Some((active, sealed)) = log.segments.split_last() else {
        return Cleanable {
            first_dirty,
            first_uncleanable: first_dirty,
            clean_bytes: 0,
            cleanable_bytes: 0,
            overdue: false,
            checkpoint_reset,
        };
    };
    let dirty_sealed = || {
        sealed
            .iter()
            .enumerate()
            .filter(move |(i, s)| {
                sealed
                    .get(i + 1)
                    .map_or(active.base_offset, |n| n.base_offset)
                    > first_dirty
                    && s.base_offset < active.base_offset
            })
            .map(|(_, s)| s)
    };
    let min_lag = config.min_compaction_lag_ms.max(0);
    let too_young = (min_lag > 0)
        .then(|| {
            dirty_sealed()
                .find(|s| s.largest_timestamp > now_ms.saturating_sub(min_lag))
                .map(|s| s.base_offset)
        })
        .flatten();
    let uncleanable = [Some(log.log_end), Some(active.base_offset), too_young]
        .into_iter()
        .flatten()
        .min()
        .expect("non-empty")
        .max(first_dirty);
    // Round the uncleanable offset down to the base of the segment holding it.
    let first_uncleanable = sealed
        .iter()
        .rev()
        .find(|s| s.base_offset <= uncleanable)
        .filter(|_| uncleanable < active.base_offset)
        .map_or(active.base_offset, |s| s.base_offset);
    let cleanable_bytes = overlapping(
        &log.segments,
        first_dirty.min(first_uncleanable),
        first_uncleanable,
    )
    .map(|s| s.size)
    .sum();
    let clean_bytes = log
        .segments
        .iter()
        .take_while(|s| s.base_offset < first_dirty)
        .map(|s| s.size)
        .sum();
    let max_lag = config.max_compaction_lag_ms.max(0);
    let earliest_dirty = dirty_sealed()
        .filter_map(|s| s.first_batch_timestamp)
        .filter(|&t| t > 0)
        .min();
    let overdue = earliest_dirty.is_some_and(|t| t < now_ms.saturating_sub(max_lag));
    Cleanable {
        first_dirty,
        first_uncleanable,
        clean_bytes,
        cleanable_bytes,
        overdue,
        checkpoint_reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn log(checkpoint: Option<i64>, segs: &[(i64, u64, i64)], log_end: i64) -> LogFacts {
        LogFacts {
            log_start: segs[0].0,
            log_end,
            checkpoint,
            segments: segs
                .iter()
                .map(|&(base_offset, size, ts)| SegmentFacts {
                    base_offset,
                    size,
                    largest_timestamp: ts,
                    first_batch_timestamp: Some(ts - 10),
                })
                .collect(),
        }
    }

    fn compact(min_ratio: f64, min_lag: i64, max_lag: i64) -> LogConfig {
        LogConfig {
            cleanup_compact: true,
            cleanup_delete: false,
            min_cleanable_ratio: min_ratio,
            min_compaction_lag_ms: min_lag,
            max_compaction_lag_ms: max_lag,
            ..LogConfig::default()
        }
    }

    #[test]
    fn never_cleaned_log_is_all_dirty_up_to_the_active_segment() {
        let l = log(None, &[(0, 100, 10), (10, 100, 20), (20, 30, 30)], 25);
        let c = cleanable(&l, &compact(0.5, 0, i64::MAX), NOW);
        assert_eq!((c.first_dirty, c.first_uncleanable), (0, 20));
        assert_eq!((c.clean_bytes, c.cleanable_bytes), (0, 200));
        assert_eq!(c.ratio(), 1.0);
        assert!(c.due(&compact(0.5, 0, i64::MAX)));
        assert!(
            !c.due(&compact(1.0, 0, i64::MAX)),
            "the ratio must exceed the minimum"
        );
    }

    #[test]
    fn checkpoint_splits_clean_from_dirty() {
        let l = log(
            Some(20),
            &[(0, 100, 10), (10, 100, 20), (20, 100, 30), (30, 5, 40)],
            31,
        );
        let c = cleanable(&l, &compact(0.5, 0, i64::MAX), NOW);
        assert_eq!((c.first_dirty, c.first_uncleanable), (20, 30));
        assert_eq!((c.clean_bytes, c.cleanable_bytes), (200, 100));
        assert!(!c.due(&compact(0.5, 0, i64::MAX)), "1/3 dirty");
        assert!(c.due(&compact(0.3, 0, i64::MAX)));
        // Out-of-range checkpoints reset to the log start.
        let c = cleanable(
            &log(Some(99), &[(0, 1, 1), (5, 1, 1)], 6),
            &compact(0.5, 0, i64::MAX),
            NOW,
        );
        assert!(c.checkpoint_reset);
        assert_eq!(c.first_dirty, 0);
    }

    #[test]
    fn compaction_lags() {
        let segs = [(0, 100, NOW - 5_000), (10, 100, NOW - 1_000), (20, 1, NOW)];
        // min lag 2 s: segment 10 is too young, so only segment 0 is cleanable.
        let c = cleanable(&log(None, &segs, 21), &compact(0.5, 2_000, i64::MAX), NOW);
        assert_eq!(c.first_uncleanable, 10);
        assert_eq!(c.cleanable_bytes, 100);
        // min lag 10 s: nothing is old enough.
        let c = cleanable(&log(None, &segs, 21), &compact(0.5, 10_000, i64::MAX), NOW);
        assert_eq!((c.first_uncleanable, c.cleanable_bytes), (0, 0));
        // max lag: the oldest dirty batch (segment 10's first, at NOW-1010) is older than 0.5 s,
        // so the log is overdue although only half of it is dirty.
        let l = log(Some(10), &segs, 21);
        let c = cleanable(&l, &compact(0.9, 0, 500), NOW);
        assert!(c.overdue && c.due(&compact(0.9, 0, 500)));
        let c = cleanable(&l, &compact(0.9, 0, 60_000), NOW);
        assert!(!c.overdue && !c.due(&compact(0.9, 0, 60_000)));
    }
}
