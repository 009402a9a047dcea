//! One append-only segment file of record batches (Kafka's `.log` format: batches back to back),
//! with its sparse offset and time indexes held in memory and persisted through the meta store.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::batch::{self, HEADER_LEN};
use super::descriptors::SegmentFile;
use super::nowait;
use super::preallocate::Reservation;
use super::LogConfig;

/// One sparse index entry: a batch starting at `position` whose base offset is `base + rel_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OffsetEntry {
    pub rel_offset: u32,
    pub position: u32,
}

/// One time index entry: every batch before `position` has timestamps `<= max_timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimeEntry {
    pub max_timestamp: i64,
    pub position: u32,
}

/// The persisted form of a segment's indexes (see `meta`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SegmentIndex {
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
    /// Bytes of the file the indexes cover.
    pub indexed_size: u64,
    pub max_timestamp: i64,
    /// Offset of the record carrying `max_timestamp`.
    pub max_timestamp_offset: i64,
    /// Offset after the last indexed batch.
    pub next_offset: i64,
}

pub fn file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// Parses a segment file name back to its base offset.
pub fn parse_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub struct Segment {
    pub base_offset: i64,
    /// Its path, and its descriptor: opened on use, closed by the descriptor cache when unused (see `descriptors`).
    file: SegmentFile,
    /// Bytes written (and visible to readers).
    size: u64,
    pub index: SegmentIndex,
    bytes_since_index: u64,
    /// Wall-clock millis of creation (or of opening), for `segment.ms` when no timestamp is known.
    pub created_ms: i64,
    /// Largest timestamp of the first batch, for `segment.ms` (Kafka's `rollingBasedTimestamp`).
    pub first_batch_timestamp: Option<i64>,
    /// Disk space reserved ahead of appends (the active segment only).
    reservation: Option<Reservation>,
}

impl Segment {
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64) -> io::Result<Self> {
        Self::create_at(dir.join(file_name(base_offset)), base_offset, now_ms)
    }

    /// Creates a new, empty segment file at `path` (a cleaner's copy before it is swapped in).
    pub fn create_at(path: PathBuf, base_offset: i64, now_ms: i64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)?;
        super::sync::created(&path);
        Ok(Segment {
            base_offset,
            file: SegmentFile::opened(path, file),
            size: 0,
            index: SegmentIndex {
                max_timestamp: -1,
                max_timestamp_offset: -1,
                next_offset: base_offset,
                ..SegmentIndex::default()
            },
            bytes_since_index: 0,
            created_ms: now_ms,
            first_batch_timestamp: None,
            reservation: None,
        })
    }

    /// Opens an existing file; `index` describes a prefix of it (recovery extends it).
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index: SegmentIndex,
        now_ms: i64,
    ) -> io::Result<Self> {
        let path = dir.join(file_name(base_offset));
        // Not O_APPEND: every write is positioned at the segment's logical end (`size`), so bytes
        // a failed append left beyond it (when undoing it failed too) are overwritten, never
        // appended after while the index points elsewhere.
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let size = file.metadata()?.len();
        let mut seg = Segment {
            base_offset,
            file: SegmentFile::opened(path, file),
            size,
            index,
            bytes_since_index: 0,
            created_ms: now_ms,
            first_batch_timestamp: None,
            reservation: None,
        };
        seg.first_batch_timestamp = seg.slice().header_at(0)?.map(|h| h.max_timestamp());
        Ok(seg)
    }

    pub fn size(&self) -> u64 {
        self.size
    }
    /// The file's handle, to open it later (see `descriptors`).
    pub fn handle(&self) -> SegmentFile {
        self.file.clone()
    }
    /// The open file (opened again if the descriptor cache closed it).
    pub fn file(&self) -> io::Result<Arc<File>> {
        self.file.get()
    }
    pub fn path(&self) -> PathBuf {
        self.file.path()
    }
    /// Records that the file was renamed to `path` (the open handle follows the file).
    pub fn renamed(&mut self, path: PathBuf) {
        self.file.renamed(path);
    }
    /// Renames the file to `path` (a reader opening it meanwhile waits and finds it there).
    pub fn rename(&self, path: PathBuf) -> io::Result<()> {
        self.file.rename(path)
    }
    /// The segment left the log, and its file is about to be renamed or unlinked: readers
    /// holding a slice of it keep reading the file they had.
    pub fn retire(&self) {
        self.file.retire()
    }
    /// Switches to a copy of this segment's file at `path` (a move to another log dir): appends
    /// go to `file` from now on. Readers holding the old handle keep reading the old file. The
    /// space reservation is dropped (the caller reserves again for the active segment).
    pub fn relocate(&mut self, path: PathBuf, file: File) {
        self.file.replace(path, file);
        self.reservation = None;
    }
    /// A read-only handle on everything written so far.
    pub fn slice(&self) -> SegmentSlice {
        SegmentSlice {
            base_offset: self.base_offset,
            file: self.file.clone(),
            limit: self.size,
        }
    }

    /// Makes this the active segment: appends from now on reserve disk space ahead of themselves
    /// as `config` says (see [`super::preallocate`]), at the pace `previous` (the segment this one
    /// follows, if any) was written.
    pub fn reserve_ahead(&mut self, config: &LogConfig, previous: Option<&Segment>) {
        self.reservation = Reservation::new(config, self.size).map(|mut r| {
            if let Some((p, size)) = previous.and_then(|p| Some((p.reservation.as_ref()?, p.size)))
            {
                r.follow(p, size);
            }
            r
        });
    }

    /// Appends already-validated batch pieces in one vectored write at the segment's end (`size`).
    /// Called with the partition lock held; the bytes are in the page cache (surviving a process
    /// kill) when this returns. The write is positioned: it lands where the index will say it is,
    /// and skips the file-position lock that every `writev` on a shared file takes.
    pub fn append(&mut self, pieces: &mut [IoSlice<'_>]) -> io::Result<u64> {
        let file = self.file.get()?;
        self.append_to(&file, pieces)
    }

    /// [`Segment::append`] to `file`, this segment's file already open (so that failing to open
    /// it is told apart from a failed write, which may leave part of the batch behind).
    pub fn append_to(&mut self, file: &File, pieces: &mut [IoSlice<'_>]) -> io::Result<u64> {
        let start = self.size;
        if let Some(r) = &mut self.reservation {
            let want = pieces.iter().map(|p| p.len() as u64).sum();
            r.before_append(file, start, want);
        }
        let mut slices = pieces;
        let mut written = 0u64;
        while !slices.is_empty() {
            let n = rustix::io::pwritev(file, slices, start + written)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            written += n as u64;
            IoSlice::advance_slices(&mut slices, n);
        }
        self.size = start + written;
        Ok(start)
    }

    /// Records a batch that now lives at `position` in the index (sparse, every `interval` bytes).
    #[allow(clippy::too_many_arguments)]
    pub fn index_batch(
        &mut self,
        position: u64,
        base_offset: i64,
        last_offset: i64,
        max_ts: i64,
        max_ts_offset: i64,
        len: u64,
        interval: u64,
    ) {
        self.first_batch_timestamp.get_or_insert(max_ts);
        if self.index.offsets.is_empty() || self.bytes_since_index >= interval {
            self.index.offsets.push(OffsetEntry {
                rel_offset: (base_offset - self.base_offset) as u32,
                position: position as u32,
            });
            let grew = self
                .index
                .times
                .last()
                .is_none_or(|t| t.max_timestamp < self.index.max_timestamp);
            if self.index.max_timestamp >= 0 && grew {
                self.index.times.push(TimeEntry {
                    max_timestamp: self.index.max_timestamp,
                    position: position as u32,
                });
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += len;
        if max_ts > self.index.max_timestamp {
            self.index.max_timestamp = max_ts;
            self.index.max_timestamp_offset = max_ts_offset;
        }
        self.index.next_offset = last_offset + 1;
        self.index.indexed_size = position + len;
    }

    /// Position of the last indexed batch whose base offset is `<= offset`.
    pub fn lookup(&self, offset: i64) -> u64 {
        let rel = (offset - self.base_offset).max(0) as u64;
        self.last_offset_entry(|e| u64::from(e.rel_offset) <= rel)
    }

    /// The position of the last indexed batch starting at or before `position` (0 if none): a
    /// batch boundary for reads to extend to without walking every header.
    pub fn batch_start_at_or_before(&self, position: u64) -> u64 {
        self.last_offset_entry(|e| u64::from(e.position) <= position)
    }

    /// The position of the last offset-index entry for which `before` holds (entries are sorted
    /// by both offset and position), or 0.
    fn last_offset_entry(&self, before: impl Fn(&OffsetEntry) -> bool) -> u64 {
        let idx = self.index.offsets.partition_point(before);
        idx.checked_sub(1)
            .map_or(0, |i| u64::from(self.index.offsets[i].position))
    }

    /// Position from which to scan for the first record with timestamp `>= ts`.
    pub fn lookup_time(&self, ts: i64) -> u64 {
        let idx = self.index.times.partition_point(|e| e.max_timestamp < ts);
        idx.checked_sub(1)
            .map_or(0, |i| u64::from(self.index.times[i].position))
    }

    pub fn sync(&self) -> io::Result<()> {
        super::sync::sync_file(&*self.file.get()?, &self.path())
    }

    /// Cuts the file back to `len` bytes (recovery of a torn tail, never under readers).
    pub fn truncate(&mut self, len: u64) -> io::Result<()> {
        let file = self.file.get()?;
        self.truncate_file(&file, len)
    }

    /// [`Segment::truncate`] of this segment's file, already open.
    pub fn truncate_file(&mut self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)?;
        self.size = len;
        if let Some(r) = &mut self.reservation {
            r.truncated(len);
        }
        Ok(())
    }
}

/// A read-only handle on a prefix of a segment, taken under the partition lock and used after it.
#[derive(Clone)]
pub struct SegmentSlice {
    pub base_offset: i64,
    pub file: SegmentFile,
    /// Readable bytes (everything below the high watermark).
    pub limit: u64,
}

/// The header of the batch at a position, read from the file.
pub struct HeaderAt {
    pub position: u64,
    pub bytes: [u8; HEADER_LEN],
}

impl HeaderAt {
    pub fn size(&self) -> u64 {
        batch::framed_size(&self.bytes).unwrap_or(0) as u64
    }
    pub fn base_offset(&self) -> i64 {
        batch::base_offset_of(&self.bytes)
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            + i64::from(i32::from_be_bytes(
                self.bytes[23..27].try_into().expect("4"),
            ))
    }
    pub fn max_timestamp(&self) -> i64 {
        i64::from_be_bytes(self.bytes[35..43].try_into().expect("8"))
    }
}

impl SegmentSlice {
    /// Reads the batch header at `position`, or `None` at the end of the readable prefix.
    pub fn header_at(&self, position: u64) -> io::Result<Option<HeaderAt>> {
        if position + HEADER_LEN as u64 > self.limit {
            return Ok(None);
        }
        let mut bytes = [0u8; HEADER_LEN];
        nowait::read_exact_at(&*self.file.get()?, &mut bytes, position)?;
        let h = HeaderAt { position, bytes };
        if h.size() < HEADER_LEN as u64 || position + h.size() > self.limit {
            return Ok(None);
        }
        Ok(Some(h))
    }

    /// Position of the first batch at or after `from` whose last offset is `>= offset`.
    pub fn seek(&self, from: u64, offset: i64) -> io::Result<Option<HeaderAt>> {
        let mut pos = from;
        while let Some(h) = self.header_at(pos)? {
            if h.last_offset() >= offset {
                return Ok(Some(h));
            }
            pos += h.size();
        }
        Ok(None)
    }

    /// The end of the whole batches from `first` that fit in `max_bytes` (at least `first` itself
    /// when `min_one`): jumps to `hint` (a batch start within the budget, from the index) and
    /// walks the headers after it.
    pub fn extent(
        &self,
        first: &HeaderAt,
        hint: u64,
        max_bytes: u64,
        min_one: bool,
    ) -> io::Result<u64> {
        let budget_end = first.position.saturating_add(max_bytes);
        let mut end = first.position + first.size();
        if end > budget_end {
            return Ok(if min_one { end } else { first.position });
        }
        if hint > end && hint <= budget_end && hint <= self.limit {
            end = hint;
        }
        while let Some(h) = self.header_at(end)? {
            if end + h.size() > budget_end {
                break;
            }
            end += h.size();
        }
        Ok(end)
    }

    /// Reads whole batches starting at `position`, up to `max_bytes` in total, but always at least
    /// the first batch (Kafka's rule, so a consumer can always make progress) when `min_one`.
    pub fn read_batches(&self, position: u64, max_bytes: u64, min_one: bool) -> io::Result<Bytes> {
        let available = self.limit.saturating_sub(position);
        let want = available.min(max_bytes);
        let mut buf = read_uninit(&*self.file.get()?, want as usize, position)?;
        let whole: usize = batch::frames(&buf).map(<[u8]>::len).sum();
        if whole > 0 || !min_one {
            buf.truncate(whole);
            return Ok(buf.freeze());
        }
        match self.header_at(position)? {
            Some(h) => Ok(read_uninit(&*self.file.get()?, h.size() as usize, position)?.freeze()),
            None => Ok(Bytes::new()),
        }
    }

    /// Reads the whole batch at `position` (for record-level scans such as timestamp lookup).
    pub fn read_batch(&self, h: &HeaderAt) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; h.size() as usize];
        nowait::read_exact_at(&*self.file.get()?, &mut buf, h.position)?;
        Ok(buf)
    }
}

/// Reads `len` bytes at `position` into a fresh buffer without zeroing it first (zeroing cost
/// ~9% of the broker's CPU when serving fetches).
pub(super) fn read_uninit(file: &File, len: usize, position: u64) -> io::Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(len);
    while buf.len() < len {
        let filled = buf.len();
        let spare = buf.spare_capacity_mut();
        // SAFETY: pread writes at most `len - filled` bytes, which fit in the spare capacity
        // (`with_capacity(len)`), through a pointer to that capacity; nothing reads it before the
        // bytes pread reports written are marked initialised by `set_len` below.
        #[allow(unsafe_code)]
        let n = unsafe {
            nowait::pread(
                file,
                spare.as_mut_ptr().cast(),
                len - filled,
                position + filled as u64,
            )
        }?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // SAFETY: pread initialised `n` more bytes right after the `filled` ones.
        #[allow(unsafe_code)]
        unsafe {
            buf.set_len(filled + n)
        };
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::super::batch::tests::build_batch;
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(42), "00000000000000000042.log");
        assert_eq!(parse_file_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_file_name("42.log"), None);
        assert_eq!(parse_file_name("00000000000000000042.index"), None);
    }

    #[test]
    fn append_index_and_read_whole_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 0, 0).unwrap();
        let mut pos = Vec::new();
        for i in 0..10i64 {
            let b = build_batch(i * 2, &[(None, Some(b"aaaaaaaaaa")), (None, Some(b"b"))]);
            let p = seg.append(&mut [IoSlice::new(&b)]).unwrap();
            seg.index_batch(
                p,
                i * 2,
                i * 2 + 1,
                1000 + i,
                i * 2 + 1,
                b.len() as u64,
                100,
            );
            pos.push((p, b.len() as u64));
        }
        assert!(seg.index.offsets.len() > 1 && seg.index.offsets.len() < 10);
        let slice = seg.slice();
        let from = seg.lookup(13);
        let h = slice.seek(from, 13).unwrap().unwrap();
        assert_eq!(h.base_offset(), 12);
        let data = slice
            .read_batches(h.position, pos[6].1 * 2 + 5, true)
            .unwrap();
        assert_eq!(batch::frames(&data).count(), 2);
        // Budget smaller than one batch: still one whole batch.
        let one = slice.read_batches(h.position, 10, true).unwrap();
        assert_eq!(one.len() as u64, pos[6].1);
        assert!(batch::BatchView::checked(&one).is_ok());
        assert!(slice
            .read_batches(h.position, 10, false)
            .unwrap()
            .is_empty());
    }

    /// Bytes beyond the segment's end (a failed append whose undo failed too) are overwritten by
    /// the next append, which lands where its position says (with O_APPEND it landed after them).
    #[test]
    fn an_append_lands_at_the_logical_end_over_leftover_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 0, 0).unwrap();
        let first = build_batch(0, &[(None, Some(b"first"))]);
        seg.append(&mut [IoSlice::new(&first)]).unwrap();
        std::os::unix::fs::FileExt::write_all_at(
            &*seg.file().unwrap(),
            &[0xee; 37],
            first.len() as u64,
        )
        .unwrap();
        let second = build_batch(1, &[(None, Some(b"second"))]);
        let at = seg.append(&mut [IoSlice::new(&second)]).unwrap();
        assert_eq!(at, first.len() as u64);
        let on_disk = std::fs::read(seg.path()).unwrap();
        assert_eq!(
            &on_disk[at as usize..at as usize + second.len()],
            &second[..]
        );
        drop(seg);
        // Reopened, appends still go to the logical end it is given.
        let index = SegmentIndex {
            next_offset: 2,
            indexed_size: (first.len() + second.len()) as u64,
            ..SegmentIndex::default()
        };
        let mut seg = Segment::open(dir.path(), 0, index, 0).unwrap();
        seg.truncate((first.len() + second.len()) as u64).unwrap();
        let third = build_batch(2, &[(None, Some(b"third"))]);
        let at = seg.append(&mut [IoSlice::new(&third)]).unwrap();
        assert_eq!(at, (first.len() + second.len()) as u64);
    }
}
