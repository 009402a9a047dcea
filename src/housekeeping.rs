//! Background log maintenance: a retention pass over every partition each
//! `log.retention.check.interval.ms`, the log cleaner's threads (`log.cleaner.threads`, sleeping
//! `log.cleaner.backoff.ms` when no log is due), and unlinking deleted segment files once their
//! `file.delete.delay.ms` has passed. All file work runs on blocking threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::log::cleaner::Cleaner;
use crate::log::{now_ms, Partition};

/// How often deleted segment files are checked for their delay having passed.
const DELETE_CHECK: Duration = Duration::from_secs(1);
/// Granularity of a cleaner thread's backoff sleep, so shutdown is never kept waiting.
const SLEEP_SLICE: Duration = Duration::from_millis(100);

pub fn partitions(broker: &Broker) -> Vec<Arc<Partition>> {
    broker
        .topics
        .all()
        .iter()
        .flat_map(|t| t.partitions.iter().cloned())
        // Nothing touches a log dir gone offline after a storage failure.
        .filter(|p| !p.is_offline())
        .collect()
}

/// Tells the cleaner threads to stop when dropped (also when the runtime drops `run` unfinished).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs until `stop`, then waits for the cleaner threads to finish their current batch.
pub async fn run(broker: Arc<Broker>, stop: CancellationToken) {
    let cleaner = Arc::new(Cleaner::new(broker.config.cleaner.clone()));
    let stopping = Arc::new(AtomicBool::new(false));
    let guard = StopOnDrop(stopping.clone());
    let threads: Vec<_> = (0..cleaner.threads())
        .map(|id| {
            let (broker, cleaner, stopping) = (broker.clone(), cleaner.clone(), stopping.clone());
            tokio::task::spawn_blocking(move || cleaner_thread(id, &broker, &cleaner, &stopping))
        })
        .collect();
    let interval = Duration::from_millis(broker.config.cleaner.retention_check_interval_ms);
    let first = Duration::from_millis(broker.config.cleaner.initial_task_delay_ms);
    let mut retention = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut deletes = tokio::time::interval(DELETE_CHECK);
    loop {
        tokio::select! {
            _ = retention.tick() => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || retention_pass(&b)).await;
            }
            _ = deletes.tick() => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let now = now_ms();
                    for p in partitions(&b) {
                        p.delete_due_files(now);
                    }
                })
                .await;
            }
            _ = stop.cancelled() => break,
        }
    }
    drop(guard);
    for t in threads {
        let _ = t.await;
    }
}

/// One retention pass over every partition.
fn retention_pass(broker: &Broker) {
    let now = now_ms();
    let (mut segments, mut bytes) = (0, 0);
    for p in partitions(broker) {
        match p.enforce_retention(now) {
            Ok(o) => {
                segments += o.segments;
                bytes += o.bytes;
            }
            Err(e) => {
                metrics::counter!("gregor_log_retention_errors_total").increment(1);
                tracing::error!(topic = %p.topic, partition = p.key.partition, error = %e, "retention pass failed");
            }
        }
    }
    metrics::counter!("gregor_log_retention_passes_total").increment(1);
    if segments > 0 {
        tracing::debug!(segments, bytes, "retention pass deleted segments");
    }
}

/// A cleaner thread: cleans the dirtiest due log, or sleeps the backoff when none is due.
fn cleaner_thread(id: usize, broker: &Broker, cleaner: &Cleaner, stopping: &AtomicBool) {
    tracing::debug!(thread = id, "log cleaner thread started");
    let stopped = || stopping.load(Ordering::Acquire);
    while !stopped() {
        let now = now_ms();
        // Cleaned copies need room beside the segments they replace.
        let grabbed = if broker.store.disk.low() {
            None
        } else {
            cleaner.grab(&partitions(broker), now)
        };
        let cleaned = match grabbed {
            Some((p, _)) => {
                let aborted = || stopped() || p.is_retired();
                let cleaned = matches!(cleaner.clean(&p, now, &aborted), Ok(Some(_)));
                // As Kafka's cleaner threads do: retention for the log just cleaned (for
                // `compact,delete`, and DeleteRecords), which a pass in progress made wait.
                if let Err(e) = p.enforce_retention(now_ms()) {
                    tracing::error!(topic = %p.topic, partition = p.key.partition, error = %e, "retention after cleaning failed");
                }
                cleaned
            }
            None => false,
        };
        if !cleaned {
            let mut left = cleaner.backoff();
            while !left.is_zero() && !stopped() {
                let nap = left.min(SLEEP_SLICE);
                std::thread::sleep(nap);
                left -= nap;
            }
        }
    }
}
