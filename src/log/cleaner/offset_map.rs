//! The cleaner's map from key to the latest offset written with it, built over the dirty part of a
//! log and bounded by the thread's share of `log.cleaner.dedupe.buffer.size` (Kafka's
//! `SkimpyOffsetMap`, but keyed by the whole key: no hash collision can ever drop a live record).

use std::collections::HashMap;

/// Approximate bookkeeping bytes per entry beyond the key itself.
const ENTRY_OVERHEAD: usize = 48;

pub(super) struct OffsetMap {
    map: HashMap<Box<[u8]>, i64>,
    bytes: usize,
    limit: usize,
    /// The last offset of the range mapped so far (Kafka's `latestOffset`): records above it were
    /// not seen by the map and are kept.
    latest: i64,
}

impl OffsetMap {
    pub(super) fn new(limit: usize) -> Self {
        OffsetMap {
            map: HashMap::new(),
            bytes: 0,
            limit,
            latest: -1,
        }
    }

    /// Records that `key` was written at `offset` (offsets arrive in increasing order); `false`,
    /// recording nothing, when `key` is new and the budget is used up.
    pub(super) fn try_put(&mut self, key: &[u8], offset: i64) -> bool {
        match self.map.get_mut(key) {
            Some(latest) => *latest = (*latest).max(offset),
            None if self.bytes >= self.limit => return false,
            None => {
                self.bytes += key.len() + ENTRY_OVERHEAD;
                self.map.insert(key.into(), offset);
            }
        }
        true
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(key).copied()
    }

    /// Extends the mapped range to `offset`.
    pub(super) fn update_latest(&mut self, offset: i64) {
        self.latest = self.latest.max(offset);
    }

    pub(super) fn latest_offset(&self) -> i64 {
        self.latest
    }

    /// Fraction of the budget in use (Kafka's `max-buffer-utilization-percent` / 100).
    pub(super) fn utilization(&self) -> f64 {
        self.bytes as f64 / self.limit.max(1) as f64
    }
}
