//! The data directory's free space. Produce is refused with KAFKA_STORAGE_ERROR while less than
//! `gregor.log.dir.min.free.bytes` is free, so a filling disk stops log appends before it is
//! actually full: the meta store (sled) stops writing for good after a single failed write, and
//! the room kept free lets topic, group and offset updates go on. Reads are never refused; writes
//! resume as soon as space comes back (retention, compaction or the operator freeing it).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::condition::{storage_error, STORAGE_WRITES};

/// How old a measurement may be before a produce measures again (one statvfs).
const FRESH: Duration = Duration::from_millis(10);

pub struct DiskSpace {
    dir: PathBuf,
    min_free: u64,
    low: AtomicBool,
    free: AtomicU64,
    measured: Mutex<Option<Instant>>,
}

impl DiskSpace {
    pub fn new(dir: PathBuf, min_free: u64) -> DiskSpace {
        DiskSpace {
            dir,
            min_free,
            low: AtomicBool::new(false),
            free: AtomicU64::new(u64::MAX),
            measured: Mutex::new(None),
        }
    }

    /// Whether produce must be refused now (re-measured when the last measurement is stale).
    pub fn low(&self) -> bool {
        if self.min_free == 0 {
            return false;
        }
        let stale = {
            let mut m = self.measured.lock().unwrap_or_else(|p| p.into_inner());
            let stale = m.is_none_or(|t| t.elapsed() >= FRESH);
            if stale {
                *m = Some(Instant::now());
            }
            stale
        };
        if stale {
            self.measure();
        }
        self.low.load(Ordering::Acquire)
    }

    /// Measures the free space (also sampled into `gregor_log_dir_free_bytes`).
    pub fn measure(&self) -> u64 {
        let free = fs2::available_space(&self.dir).unwrap_or(u64::MAX);
        self.free.store(free, Ordering::Release);
        self.low
            .store(self.min_free > 0 && free < self.min_free, Ordering::Release);
        free
    }

    /// The refusal a produce gets while space is low, counted and reported once.
    pub fn refusal(&self) -> String {
        let free = self.free.load(Ordering::Acquire);
        let message = format!(
            "the data directory has {free} bytes free, less than gregor.log.dir.min.free.bytes ({}): produce is refused until space is freed",
            self.min_free
        );
        storage_error(&STORAGE_WRITES, "disk_low", || message.clone());
        message
    }
}
