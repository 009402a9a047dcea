//! The durability pipeline of a partition: sealed segments persisted in offset order (file and
//! directory fsynced, then indexed), and `sync_to`, the group-committed fsync a flush policy asks
//! for before an acknowledgement. A failed fsync takes the log dir offline (`dir_failure`).

use std::io;
use std::sync::atomic::Ordering;

use super::dir_failure::LogDirFailures;
use crate::condition::Condition;

/// A sealed segment's file could not be opened to persist it (logged once, then counted).
static SEAL_OPEN_FAILED: Condition = Condition::new("sealed segments not opened");
/// A flush could not open a segment's file (logged once, then counted).
static FLUSH_OPEN_FAILED: Condition = Condition::new("segments not opened for a flush");
use super::partition::SealJob;
use super::Partition;

impl Partition {
    /// Queues a segment just sealed for persisting, in the order segments are sealed (called with
    /// the state lock held, so the queue's order is the log's).
    pub(super) fn queue_seal(&self, job: SealJob) {
        self.seals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(job);
    }

    /// Persists the queued sealed segments in offset order (off the append path): each is fsynced
    /// with its directory, then its index and the checkpoint of its roll are recorded. A segment is
    /// never indexed before the ones sealed before it are durable, so recovery can trust that the
    /// indexed segments are a durable prefix of the log.
    pub(super) fn persist_sealed(&self) {
        let meta = self.meta.clone();
        let key = self.key;
        let persist = self.persist.clone();
        let seals = self.seals.clone();
        let retired = self.retired.clone();
        let failures = self.failures.clone();
        let current_dir = self.dir.clone();
        let job = move || {
            let mut last = persist.lock().unwrap_or_else(|p| p.into_inner());
            // Read under `persist`, which a move to another log dir holds while it switches: the
            // partition's directory now, not when the job was queued (a moved segment's copy was
            // fsynced by the move; syncing the old, removed directory would fail).
            let dir = current_dir
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let queued: Vec<SealJob> = seals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain(..)
                .collect();
            if retired.load(Ordering::Acquire) || failures.is_offline(&dir) {
                return;
            }
            let mut queued = queued.into_iter();
            while let Some(job) = queued.next() {
                let opened = job
                    .file
                    .get()
                    .and_then(|f| Ok((f, super::sync::open_dir(&dir)?)));
                let (file, dir_handle) = match opened {
                    Ok(opened) => opened,
                    Err(e) => {
                        // Out of descriptors, most likely: nothing failed on disk. This job and
                        // those after it wait for the next try (`retry_sealed`, every second);
                        // recovery rescans whatever is left unindexed meanwhile.
                        SEAL_OPEN_FAILED.occurred(|| {
                            format!("cannot open a sealed segment to persist it (will retry): {e}")
                        });
                        let mut seals = seals.lock().unwrap_or_else(|p| p.into_inner());
                        for later in queued.rev() {
                            seals.push_front(later);
                        }
                        seals.push_front(job);
                        return;
                    }
                };
                let SealJob {
                    base,
                    index,
                    checkpoint,
                    ..
                } = job;
                if let Err(e) = super::preallocate::release_beyond_eof(&file) {
                    tracing::warn!(error = %e, base_offset = base, "cannot give back the space reserved beyond a sealed segment");
                }
                // The file's bytes and its directory entry (and the new active segment's): the
                // index saved next claims them, so both must survive a power cut first.
                let path = dir.join(super::segment::file_name(base));
                let synced = super::sync::sync_file(&file, &path).and_then(|_| dir_handle.sync());
                if let Err(e) = synced {
                    // Its pages may be gone while the file reads as written: the dir goes offline.
                    failures.fail(&dir, "fsync of a sealed segment", &e);
                    return;
                }
                let saved = if *last < checkpoint.snapshot_offset {
                    meta.save_log(key, &[(base, &index)], &checkpoint)
                        .map(|_| *last = checkpoint.snapshot_offset)
                } else {
                    meta.replace_segments(key, &[], &[(base, &index)], None, None)
                };
                if let Err(e) = saved {
                    tracing::warn!(error = %e, base_offset = base, "cannot persist a sealed segment's index; recovery will rescan it");
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(job);
            }
            Err(_) => job(),
        }
    }

    /// Persists sealed segments still waiting (their file or directory could not be opened, out
    /// of descriptors): called every second by the broker's maintenance.
    pub fn retry_sealed(&self) {
        let waiting = !self
            .seals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        if waiting {
            self.persist_sealed();
        }
    }

    /// Whether unflushed appends are older than `flush_ms` (`log.flush.interval.ms`).
    pub fn flush_due(&self, now_ms: i64, flush_ms: i64) -> bool {
        self.lock()
            .first_unflushed_ms
            .is_some_and(|first| now_ms.saturating_sub(first) >= flush_ms)
    }

    /// Fsyncs the log up to at least `offset`; concurrent callers share one fsync.
    pub async fn sync_to(&self, offset: i64) -> io::Result<()> {
        let mut synced = self.synced.lock().await;
        if *synced > offset {
            return Ok(());
        }
        let durable = *synced;
        if self.is_offline() {
            // Never report a later fsync's success after one failed: the pages may be gone.
            return Err(io::Error::other(LogDirFailures::message(&self.dir())));
        }
        let (files, dir, target) = {
            let mut st = self.lock();
            st.unflushed_messages = 0;
            st.first_unflushed_ms = None;
            // Every segment holding offsets not yet durable (a roll, or several, since the last
            // fsync leaves more than the active one), and the directory if a file was created.
            // From the segment holding the durable end on: earlier ones end below it.
            let first = st
                .segments
                .range(..=durable)
                .next_back()
                .map_or(i64::MIN, |(base, _)| *base);
            let files: Vec<_> = st
                .segments
                .range(first..)
                .map(|(_, s)| s)
                .filter(|s| s.index.next_offset > durable)
                .map(|s| (s.handle(), s.path().to_path_buf()))
                .collect();
            let dir = std::mem::take(&mut st.dir_unsynced).then(|| self.dir());
            (files, dir, st.next_offset)
        };
        let dir_then = self.dir();
        let started = std::time::Instant::now();
        let dir_for_retry = dir.clone();
        let synced_all = tokio::task::spawn_blocking(move || {
            // Opened first: failing to open a file (out of descriptors) is no failed fsync.
            let opened = files
                .iter()
                .map(|(f, path)| Ok((f.get()?, path)))
                .collect::<io::Result<Vec<_>>>()
                .and_then(|files| {
                    let dir = dir.as_deref().map(super::sync::open_dir).transpose()?;
                    Ok((files, dir))
                })
                .map_err(|e| (false, e))?;
            let (files, dir) = opened;
            files
                .iter()
                .try_for_each(|(f, path)| super::sync::sync_file(f, path))
                .and_then(|_| dir.as_ref().map_or(Ok(()), |d| d.sync()))
                .map_err(|e| (true, e))
        })
        .await
        .map_err(|e| (true, io::Error::other(e)))
        .and_then(|r| r);
        if let Err((synced_some, e)) = synced_all {
            if dir_for_retry.is_some() {
                self.lock().dir_unsynced = true;
            }
            if !synced_some {
                FLUSH_OPEN_FAILED.occurred(|| format!("cannot open a segment to flush it: {e}"));
                return Err(e);
            }
            if self.dir() != dir_then {
                // Moved to another log dir meanwhile: the move copied and fsynced everything up
                // to `target` (appends were held), and the old directory may already be gone.
                *synced = target;
                return Ok(());
            }
            self.dir_failed("fsync", &e);
            return Err(e);
        }
        metrics::histogram!("gregor_log_flush_seconds").record(started.elapsed().as_secs_f64());
        // Group commit: how many messages this one fsync made durable.
        metrics::histogram!("gregor_log_flush_messages").record((target - *synced).max(0) as f64);
        *synced = target;
        Ok(())
    }
}
