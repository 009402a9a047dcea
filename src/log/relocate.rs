//! Moving a partition's files to another directory (AlterReplicaLogDirs), as Kafka's future
//! replica does on one node:
//! 1. under `maintenance` (no retention, cleaner or delete-records swaps meanwhile), copy every
//!    segment into a fresh `future` directory and fsync the copies — appends and reads go on;
//! 2. under `persist` and the state lock (appends wait, briefly): copy what was appended since,
//!    fsync what changed and the `future` directory, then `record(true)` durably records the new
//!    location (the switch point: before it the source is the only copy start-up uses, after it
//!    the copy is; `record(false)` gives it back if what follows fails);
//! 3. rename `future` to `target`, fsync its parent, reopen every segment there and switch the
//!    partition to it; offsets and bytes are the same, so nothing acknowledged is lost;
//! 4. `finish` (still under `maintenance`) removes the old copy and records that the move is done.
//!
//! A crash before `commit` leaves the source authoritative and a `future` copy start-up removes;
//! a crash after it leaves the recorded target (a `future` not yet renamed is renamed at start-up)
//! and a stale source start-up removes.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::segment::file_name;
use super::sync::sync_dir;
use super::Partition;

/// What a move copied, and how long appends waited for the switch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Moved {
    pub bytes: u64,
    pub segments: usize,
    pub paused: Duration,
}

/// Copies `from[start..end)` to the same positions of `to`.
fn copy_range(from: &File, to: &File, start: u64, end: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = start;
    while pos < end {
        let want = ((end - pos) as usize).min(buf.len());
        let n = from.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment shorter than its size",
            ));
        }
        to.write_all_at(&buf[..n], pos)?;
        pos += n as u64;
    }
    Ok(end.saturating_sub(start))
}

fn create_copy(future: &Path, base: i64) -> io::Result<File> {
    OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(future.join(file_name(base)))
}

impl Partition {
    /// Moves the partition's files into `target` by way of `future` (see the module docs).
    /// Returns `None` when the partition already lives in `target`. Blocking.
    pub fn move_dir(
        &self,
        future: &Path,
        target: &Path,
        record: impl Fn(bool) -> io::Result<()>,
        finish: impl FnOnce(&Path) -> io::Result<()>,
    ) -> io::Result<Option<Moved>> {
        let _maintenance = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_retired() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "partition deleted"));
        }
        let source = self.dir();
        if source == target {
            return Ok(None);
        }
        if target.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", target.display()),
            ));
        }
        if future.exists() {
            std::fs::remove_dir_all(future)?;
        }
        std::fs::create_dir(future)?;
        let parent = target.parent().unwrap_or(Path::new("."));
        let result = self.copy_and_switch(future, target, parent, &record);
        let moved = match result {
            Ok(m) => m,
            Err(e) => {
                if future.exists() {
                    if let Err(r) = std::fs::remove_dir_all(future) {
                        tracing::warn!(dir = %future.display(), error = %r, "cannot remove an abandoned move's copy; start-up will");
                    }
                }
                return Err(e);
            }
        };
        finish(&source)?;
        Ok(Some(moved))
    }

    fn copy_and_switch(
        &self,
        future: &Path,
        target: &Path,
        parent: &Path,
        record: &impl Fn(bool) -> io::Result<()>,
    ) -> io::Result<Moved> {
        sync_dir(parent)?;
        let mut moved = Moved::default();
        // 1. Bulk copy while appends go on (sealed segments don't change under `maintenance`).
        let snapshot: Vec<_> = {
            let st = self.lock();
            st.segments
                .values()
                .map(|s| (s.base_offset, s.handle(), s.size()))
                .collect()
        };
        let mut copies: BTreeMap<i64, (File, u64)> = BTreeMap::new();
        for (base, file, size) in snapshot {
            let out = create_copy(future, base)?;
            moved.bytes += copy_range(&*file.get()?, &out, 0, size)?;
            out.sync_data()?;
            copies.insert(base, (out, size));
        }
        // 2. Catch up and switch with appends paused.
        let _persist = self.persist.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.lock();
        let paused = Instant::now();
        let mut dirty = Vec::new();
        for seg in st.segments.values() {
            let base = seg.base_offset;
            let (out, done) = match copies.remove(&base) {
                Some(c) => c,
                None => (create_copy(future, base)?, 0),
            };
            if seg.size() > done {
                moved.bytes += copy_range(&*seg.file()?, &out, done, seg.size())?;
                dirty.push(out);
            } else if seg.size() < done {
                out.set_len(seg.size())?;
                dirty.push(out);
            }
        }
        // Copies of segments no longer in the log (none while `maintenance` is held).
        for base in copies.keys() {
            std::fs::remove_file(future.join(file_name(*base)))?;
        }
        for f in &dirty {
            f.sync_data()?;
        }
        sync_dir(future)?;
        record(true)?;
        let reopened = std::fs::rename(future, target)
            .and_then(|_| sync_dir(parent))
            .and_then(|_| {
                st.segments
                    .keys()
                    .map(|base| {
                        let path = target.join(file_name(*base));
                        let file = OpenOptions::new().read(true).write(true).open(&path)?;
                        Ok((path, file))
                    })
                    .collect::<io::Result<Vec<_>>>()
            });
        let files = match reopened {
            Ok(files) => files,
            Err(e) => {
                // Still on the source: give the switch back (start-up also falls back to the
                // source when the recorded target holds no copy).
                if target.exists() {
                    let _ = std::fs::remove_dir_all(target);
                }
                if let Err(r) = record(false) {
                    tracing::error!(error = %r, "cannot record a failed move's source back");
                }
                return Err(e);
            }
        };
        for (seg, (path, file)) in st.segments.values_mut().zip(files) {
            seg.relocate(path, file);
        }
        let config = self.config();
        if let Some(active) = st.segments.values_mut().next_back() {
            active.reserve_ahead(&config, None);
        }
        moved.segments = st.segments.len();
        self.set_dir(target.to_path_buf());
        moved.paused = paused.elapsed();
        Ok(moved)
    }
}
