//! Kafka's `LogDirFailureChannel`: a failed fsync (or a failed write that could not be undone)
//! means the log dir may have lost bytes gregor already counted as written (after a failed fsync
//! Linux drops the dirty pages and a second fsync "succeeds"), so the whole log dir goes offline
//! until the broker restarts. Its partitions then answer KAFKA_STORAGE_ERROR to produce, fetch and
//! ListOffsets, DescribeLogDirs reports the dir with that error, Metadata lists the replicas as
//! offline, and background work (flushes, retention, the cleaner) skips them. A restart runs
//! recovery over the dir and serves what is really on disk.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

#[derive(Default)]
pub struct LogDirFailures {
    /// Whether any dir is offline (the only check on the hot path while none is).
    any: AtomicBool,
    /// The offline log dirs (roots, as configured in `log.dirs`).
    offline: RwLock<Vec<PathBuf>>,
}

/// The log dir holding a partition directory.
fn log_dir_of(partition_dir: &Path) -> &Path {
    partition_dir.parent().unwrap_or(partition_dir)
}

impl LogDirFailures {
    pub fn new() -> LogDirFailures {
        LogDirFailures::default()
    }

    /// Takes the log dir holding `partition_dir` offline after `what` failed with `error`: logged
    /// once per dir (at ERROR), counted in `kafka_log_logmanager_offlinelogdirectorycount`.
    pub fn fail(&self, partition_dir: &Path, what: &str, error: &io::Error) {
        let dir = log_dir_of(partition_dir);
        let mut offline = self.offline.write().unwrap_or_else(|p| p.into_inner());
        if offline.iter().any(|d| d == dir) {
            return;
        }
        offline.push(dir.to_path_buf());
        self.any.store(true, Ordering::Release);
        metrics::gauge!("kafka_log_logmanager_offlinelogdirectorycount").set(offline.len() as f64);
        metrics::gauge!("kafka_log_logmanager_logdirectoryoffline", "logDirectory" => dir.display().to_string()).set(1.0);
        tracing::error!(
            log_dir = %dir.display(),
            partition_dir = %partition_dir.display(),
            error = %error,
            "{what} failed: log dir {} is offline until restart; its partitions answer KAFKA_STORAGE_ERROR",
            dir.display()
        );
    }

    /// Whether any log dir is offline.
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Whether the log dir holding `partition_dir` is offline.
    pub fn is_offline(&self, partition_dir: &Path) -> bool {
        self.any.load(Ordering::Acquire) && self.is_dir_offline(log_dir_of(partition_dir))
    }

    /// Whether `log_dir` (a root of `log.dirs`) is offline.
    pub fn is_dir_offline(&self, log_dir: &Path) -> bool {
        self.any.load(Ordering::Acquire)
            && self
                .offline
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|d| d == log_dir)
    }

    /// What a client is told about a partition in an offline log dir.
    pub fn message(partition_dir: &Path) -> String {
        format!(
            "log dir {} is offline after a storage failure",
            log_dir_of(partition_dir).display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_takes_the_whole_log_dir_offline_and_no_other() {
        let f = LogDirFailures::new();
        let a = Path::new("/data/a/orders-0");
        assert!(!f.is_offline(a));
        f.fail(a, "fsync", &io::Error::other("EIO"));
        assert!(f.is_offline(a));
        assert!(f.is_offline(Path::new("/data/a/payments-3")));
        assert!(!f.is_offline(Path::new("/data/b/orders-1")));
        assert!(f.is_dir_offline(Path::new("/data/a")));
        f.fail(Path::new("/data/a/x-0"), "fsync", &io::Error::other("EIO"));
        assert_eq!(f.offline.read().unwrap().len(), 1);
    }
}
