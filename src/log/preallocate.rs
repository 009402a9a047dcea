//! Disk space reserved ahead of the active segment's appends: `fallocate` with `KEEP_SIZE`, so the
//! file's length stays the length of its data and nothing that reads or recovers a segment sees it.
//!
//! Why: a buffered append into space the file system has not allocated defers the allocation to
//! writeback (ext4's delayed allocation), and while writeback allocates it holds the inode's
//! block-map lock and waits for bitmap I/O queued behind the writeback itself. An append arriving
//! then waits with it: tens to hundreds of milliseconds, once the kernel writes back steadily.
//! Appends into reserved blocks find them mapped and take no such lock.
//!
//! A reservation is sized to about [`HORIZON`] of the partition's recent write rate (carried over
//! when a segment rolls), never more than [`GROWTH`] times the data already in the segment or the
//! one before it (a slow or new partition reserves little), nor `gregor.log.preallocate.max.bytes`,
//! and never past `segment.bytes`. Few reservations matter as much as small ones: each one can wait
//! for bitmap I/O while it holds the file's lock. All reservations together stay within
//! `gregor.log.preallocate.total.max.bytes` ([`OUTSTANDING`]); beyond it appends go on without
//! reserving. `preallocate=true` (a topic config any client may set) asks for nothing more: Kafka's
//! preallocation sets a sparse file length and costs no disk, so reserving a whole segment per
//! partition (gigabytes for a few one-record produces) would not be what it asks for. Sealed
//! segments give their reservation back ([`release_beyond_eof`]).

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::{fallocate, FallocateFlags};

use super::LogConfig;
use crate::condition::Condition;

/// The smallest reservation, and the granularity of all of them.
pub const MIN_CHUNK: u64 = 64 << 10;
/// Allocated space beyond a file's end that is not worth giving back (extent-tree blocks count in
/// a file's blocks too).
const SLACK: u64 = 256 << 10;
/// How much of the write rate one reservation covers.
pub const HORIZON: Duration = Duration::from_secs(10);
/// A reservation is at most this many times the data in the segment (or in the one before it).
pub const GROWTH: u64 = 8;

static RESERVE_FAILING: Condition = Condition::new("disk space reservation failing");

/// Bytes reserved ahead of appends across every partition of the process, as of each
/// reservation's last renewal (an upper bound: appends fill reserved space between renewals).
pub static OUTSTANDING: AtomicU64 = AtomicU64::new(0);

/// The reservation ahead of one active segment.
#[derive(Debug)]
pub struct Reservation {
    /// File offset up to which space is reserved (or was asked for).
    end: u64,
    /// The largest reservation (`gregor.log.preallocate.max.bytes`).
    max_chunk: u64,
    /// Where the segment rolls (`segment.bytes`): nothing is reserved beyond it.
    limit: u64,
    /// `gregor.log.preallocate.total.max.bytes`: the bound on [`OUTSTANDING`].
    budget: u64,
    /// What this reservation adds to [`OUTSTANDING`] (space reserved beyond the data).
    counted: u64,
    /// When the last reservation was made, and the segment's size then (the write-rate estimate).
    last: Option<(Instant, u64)>,
    /// Until then: the write rate (bytes/s) at the end of the segment before this one.
    inherited_rate: Option<f64>,
    /// The size of the segment before this one.
    history: u64,
    /// The file system does not support it: stop asking.
    unsupported: bool,
}

impl Reservation {
    /// A reservation for a segment of `size` bytes, or `None` when the config turns it off.
    pub fn new(config: &LogConfig, size: u64) -> Option<Reservation> {
        (config.preallocate || config.preallocate_max_bytes > 0).then(|| Reservation {
            end: size,
            max_chunk: config.preallocate_max_bytes.max(MIN_CHUNK),
            limit: config.segment_bytes,
            budget: config.preallocate_total_max_bytes,
            counted: 0,
            last: None,
            inherited_rate: None,
            history: 0,
            unsupported: false,
        })
    }

    /// This reservation's segment follows one of `previous_size` bytes that `previous` reserved
    /// for: start from its write rate instead of from nothing.
    pub fn follow(&mut self, previous: &Reservation, previous_size: u64) {
        self.inherited_rate = previous.rate(previous_size);
        self.history = previous_size;
    }

    /// The write rate (bytes/s) since the last reservation, with the segment now `size` bytes.
    fn rate(&self, size: u64) -> Option<f64> {
        match self.last {
            Some((at, at_size)) => {
                let secs = at.elapsed().as_secs_f64().max(1e-3);
                Some(size.saturating_sub(at_size) as f64 / secs)
            }
            None => self.inherited_rate,
        }
    }

    /// Called before `want` bytes are appended at `start`: reserves more when they would pass the
    /// reserved end. Failures are reported, never returned: the write itself decides.
    pub fn before_append(&mut self, file: &File, start: u64, want: u64) {
        if start + want <= self.end || self.unsupported {
            return;
        }
        let from = self.end.max(start);
        // What was reserved before is being filled: it no longer counts as ahead.
        self.uncount();
        let len = self.next_len(start, want, from);
        let ahead = (from + len).saturating_sub(start + want);
        let outstanding = OUTSTANDING.load(Ordering::Relaxed);
        if outstanding.saturating_add(ahead) > self.budget {
            metrics::counter!("gregor_log_preallocate_budget_exhausted_total").increment(1);
            tracing::debug!(
                outstanding,
                budget = self.budget,
                "reservations at their total bound: appending without reserving"
            );
            self.end = start + want;
            self.last = Some((Instant::now(), start));
            return;
        }
        let began = Instant::now();
        match fallocate(file, FallocateFlags::KEEP_SIZE, from, len) {
            Ok(()) => {
                RESERVE_FAILING.cleared();
                self.counted = ahead;
                OUTSTANDING.fetch_add(ahead, Ordering::Relaxed);
                metrics::counter!("gregor_log_preallocated_bytes_total").increment(len);
                metrics::histogram!("gregor_log_preallocate_seconds")
                    .record(began.elapsed().as_secs_f64());
            }
            Err(rustix::io::Errno::OPNOTSUPP) => {
                tracing::debug!("the file system cannot reserve space ahead of appends");
                self.unsupported = true;
            }
            Err(e) => {
                metrics::counter!("gregor_log_preallocate_errors_total").increment(1);
                RESERVE_FAILING
                    .occurred(|| format!("cannot reserve {len} bytes ahead of appends: {e}"));
            }
        }
        // Even after a failure: the next attempt waits for the next chunk, not the next append.
        self.end = from + len;
        self.last = Some((Instant::now(), start));
    }

    /// The segment was cut back to `len` bytes (which also drops what was reserved beyond it).
    pub fn truncated(&mut self, len: u64) {
        self.end = self.end.min(len);
        self.uncount();
    }

    fn uncount(&mut self) {
        OUTSTANDING.fetch_sub(std::mem::take(&mut self.counted), Ordering::Relaxed);
    }

    fn next_len(&self, start: u64, want: u64, from: u64) -> u64 {
        let by_rate = self
            .rate(start)
            .map_or(MIN_CHUNK, |r| (r * HORIZON.as_secs_f64()) as u64);
        let cap = GROWTH.saturating_mul(start.max(self.history));
        let chunk = by_rate.min(cap).clamp(MIN_CHUNK, self.max_chunk);
        let chunk = chunk.min(self.limit.saturating_sub(from));
        let needed = start + want - from;
        chunk.max(needed).next_multiple_of(MIN_CHUNK)
    }
}

impl Drop for Reservation {
    /// The segment sealed (its space beyond the data is given back) or closed.
    fn drop(&mut self) {
        self.uncount();
    }
}

/// Gives back space reserved beyond the end of a segment that no longer grows (sealed, or found
/// after a crash). Truncating to the same length frees blocks past it (ext4, XFS); nothing happens
/// when little is allocated beyond the data. Returns whether it truncated.
pub fn release_beyond_eof(file: &File) -> io::Result<bool> {
    let meta = file.metadata()?;
    let allocated = meta.blocks() * 512;
    if allocated <= meta.len().next_multiple_of(4096) + SLACK {
        return Ok(false);
    }
    file.set_len(meta.len())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max: u64, whole: bool, segment: u64) -> LogConfig {
        LogConfig {
            preallocate_max_bytes: max,
            preallocate: whole,
            segment_bytes: segment,
            ..LogConfig::default()
        }
    }

    #[test]
    fn off_when_both_settings_are_off() {
        assert!(Reservation::new(&config(0, false, 1 << 30), 0).is_none());
        assert!(Reservation::new(&config(0, true, 1 << 30), 0).is_some());
    }

    #[test]
    fn sizes_follow_the_data_written_and_the_caps() {
        let r = Reservation::new(&config(256 << 20, false, 1 << 30), 0).unwrap();
        // First reservation: the minimum, or the write if larger.
        assert_eq!(r.next_len(0, 100, 0), MIN_CHUNK);
        assert_eq!(r.next_len(0, 3 << 20, 0), 3 << 20);
        // A fast partition: never more than GROWTH times the data already written ...
        let fast = Reservation {
            last: Some((Instant::now() - Duration::from_millis(10), 0)),
            ..Reservation::new(&config(256 << 20, false, 1 << 30), 0).unwrap()
        };
        assert_eq!(fast.next_len(1 << 20, 1, 1 << 20), 8 << 20);
        assert_eq!(fast.next_len(8 << 20, 1, 8 << 20), 64 << 20);
        // ... nor the cap, nor past segment.bytes.
        assert_eq!(fast.next_len(500 << 20, 1, 500 << 20), 256 << 20);
        assert_eq!(fast.next_len(1000 << 20, 1, 1000 << 20), 24 << 20);
        // The segment after it starts at the rate it left off, bounded by its size.
        let mut next = Reservation::new(&config(256 << 20, false, 1 << 30), 0).unwrap();
        next.follow(&fast, 10 << 20);
        assert_eq!(next.next_len(0, 100, 0), 80 << 20);
        // A slow one: the minimum.
        let slow = Reservation {
            last: Some((Instant::now() - Duration::from_secs(100), 0)),
            ..Reservation::new(&config(256 << 20, false, 1 << 30), 0).unwrap()
        };
        assert_eq!(
            slow.next_len(2 << 20, 1, 2 << 20),
            256 << 10,
            "10 s of 20 KiB/s, rounded"
        );
        // preallocate=true asks for no more (Kafka's costs no disk).
        let whole = Reservation::new(&config(256 << 20, true, 64 << 20), 0).unwrap();
        assert_eq!(whole.next_len(0, 100, 0), MIN_CHUNK);
    }

    #[test]
    fn reserves_beyond_eof_and_gives_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let file = File::options()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .unwrap();
        // A reservation for 8 MiB of appends of which only 10 bytes came.
        let mut r = Reservation::new(&config(256 << 20, false, 8 << 20), 0).unwrap();
        r.before_append(&file, 0, 8 << 20);
        std::io::Write::write_all(&mut &file, &[7u8; 10]).unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), 10, "the length stays the data's");
        if r.unsupported {
            return; // this file system cannot reserve (the broker then simply does not)
        }
        assert!(meta.blocks() * 512 >= 8 << 20, "8 MiB reserved");
        assert!(release_beyond_eof(&file).unwrap());
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), 10);
        assert!(meta.blocks() * 512 <= 64 << 10, "reservation given back");
        assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 10]);
        assert!(
            !release_beyond_eof(&file).unwrap(),
            "nothing more to give back"
        );
    }
}
