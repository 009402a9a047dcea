//! The log dirs' free space. Produce to a partition is refused with KAFKA_STORAGE_ERROR while its
//! log dir has less than `gregor.log.dir.min.free.bytes` free, so a filling disk stops log appends
//! before it is actually full: the meta store (sled, in the first log dir) stops writing for good
//! after a single failed write, and the room kept free lets topic, group and offset updates go on.
//! Reads are never refused; writes resume as soon as space comes back (retention, compaction or
//! the operator freeing it).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::condition::{storage_error, STORAGE_WRITES};

/// How old a measurement may be before a produce measures again (one statvfs per log dir).
const FRESH: Duration = Duration::from_millis(10);

struct Dir {
    path: PathBuf,
    low: AtomicBool,
    free: AtomicU64,
}

pub struct DiskSpace {
    dirs: Vec<Dir>,
    min_free: u64,
    /// Whether any log dir is low (the produce path's one check while all are fine).
    any_low: AtomicBool,
    measured: Mutex<Option<Instant>>,
}

impl DiskSpace {
    pub fn new(dirs: Vec<PathBuf>, min_free: u64) -> DiskSpace {
        DiskSpace {
            dirs: dirs
                .into_iter()
                .map(|path| Dir {
                    path,
                    low: AtomicBool::new(false),
                    free: AtomicU64::new(u64::MAX),
                })
                .collect(),
            min_free,
            any_low: AtomicBool::new(false),
            measured: Mutex::new(None),
        }
    }

    /// Whether any log dir is low now (re-measured when the last measurement is stale).
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
        self.any_low.load(Ordering::Acquire)
    }

    fn dir_of(&self, path: &Path) -> Option<&Dir> {
        self.dirs.iter().find(|d| path.starts_with(&d.path))
    }

    /// Whether the log dir holding `path` (a partition's directory) is low, as last measured by
    /// [`DiskSpace::low`]; produce is refused there.
    pub fn low_at(&self, path: &Path) -> bool {
        self.dir_of(path)
            .is_some_and(|d| d.low.load(Ordering::Acquire))
    }

    /// Measures every log dir; returns the least free space (sampled into
    /// `gregor_log_dir_free_bytes`).
    pub fn measure(&self) -> u64 {
        let mut least = u64::MAX;
        let mut any = false;
        for d in &self.dirs {
            let free = fs2::available_space(&d.path).unwrap_or(u64::MAX);
            d.free.store(free, Ordering::Release);
            let low = self.min_free > 0 && free < self.min_free;
            d.low.store(low, Ordering::Release);
            any |= low;
            least = least.min(free);
        }
        self.any_low.store(any, Ordering::Release);
        least
    }

    /// The refusal a produce to a partition in `path` gets while its log dir is low, counted and
    /// reported once.
    pub fn refusal(&self, path: &Path) -> String {
        let (dir, free) = self.dir_of(path).map_or((String::new(), 0), |d| {
            (d.path.display().to_string(), d.free.load(Ordering::Acquire))
        });
        let message = format!(
            "the log dir {dir} has {free} bytes free, less than gregor.log.dir.min.free.bytes ({}): produce is refused until space is freed",
            self.min_free
        );
        storage_error(&STORAGE_WRITES, "disk_low", || message.clone());
        message
    }
}
