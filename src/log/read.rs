//! The read path of a partition: whole batches from an offset within a byte budget, as a region
//! of a segment file (so a fetch can send it straight from the page cache, see `wire`) or read
//! into memory; and the timestamp lookups of ListOffsets.

use std::fs::File;
use std::io;
use std::sync::Arc;

use bytes::Bytes;

use super::descriptors::{self, SegmentFile};
use super::segment::{read_uninit, SegmentSlice};
use super::{records, Partition, ReadError};

/// Whole batches: `len` bytes at `position` of a segment file (below the high watermark, so they
/// never change while the region is in use; a cleaned or deleted file stays readable: it is kept
/// open for the region's holders, see `descriptors`). Holds no descriptor until opened.
#[derive(Clone)]
pub struct FileRegion {
    pub file: SegmentFile,
    pub position: u64,
    pub len: u64,
}

impl FileRegion {
    /// The region's bytes, read into memory.
    pub fn read(&self) -> io::Result<Bytes> {
        let len = usize::try_from(self.len).map_err(io::Error::other)?;
        Ok(read_uninit(&*self.file.get()?, len, self.position)?.freeze())
    }

    /// The region with its file open, to be sent from the page cache; `None` when responses
    /// waiting to be sent already hold their share of descriptors (see
    /// [`descriptors::sending`]) or the file cannot be opened: the region is read instead.
    pub fn open(&self) -> Option<OpenRegion> {
        let sending = descriptors::sending()?;
        let file = self.file.get().ok()?;
        Some(OpenRegion {
            file,
            position: self.position,
            len: self.len,
            _sending: Arc::new(sending),
        })
    }
}

/// A [`FileRegion`] whose file is open until the response carrying it is sent.
#[derive(Clone)]
pub struct OpenRegion {
    pub file: Arc<File>,
    pub position: u64,
    pub len: u64,
    _sending: Arc<descriptors::Sending>,
}

/// Whole batches read from the log, and the partition's offsets at the time of the read.
#[derive(Debug, Clone)]
pub struct FetchData {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// What a read found: the batches (`None` when there are none) and the partition's offsets.
pub struct RegionData {
    pub region: Option<FileRegion>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// A segment to look in, with where to start and a known batch boundary near the budget's end.
struct Candidate {
    slice: SegmentSlice,
    from: u64,
    hint: u64,
}

impl Partition {
    /// Finds the whole batches from `offset` up to `max_bytes` (at least one batch when
    /// `min_one`, Kafka's rule so a consumer always progresses), without reading them.
    pub fn read_region(
        &self,
        offset: i64,
        max_bytes: u64,
        min_one: bool,
    ) -> Result<RegionData, ReadError> {
        let (candidates, hw, start) = {
            let st = self.lock();
            let hw = st.next_offset;
            let start = self.log_start_offset();
            if offset < start || offset > hw {
                return Err(ReadError::OffsetOutOfRange);
            }
            // The segment holding `offset` (compaction may have left it without any batch at or
            // after `offset`) and the first non-empty segment after it, whose first batch is then
            // the answer: every offset in it is above `offset`.
            let mut candidates = Vec::new();
            if offset < hw {
                let holding = st.segments.range(..=offset).next_back();
                let next = st.segments.range(offset + 1..).find(|(_, s)| s.size() > 0);
                for (i, (_, seg)) in holding.into_iter().chain(next).enumerate() {
                    let from = if i == 0 { seg.lookup(offset) } else { 0 };
                    candidates.push(Candidate {
                        slice: seg.slice(),
                        from,
                        hint: seg.batch_start_at_or_before(from.saturating_add(max_bytes)),
                    });
                }
            }
            (candidates, hw, start)
        };
        let mut region = None;
        for c in &candidates {
            if let Some(h) = c.slice.seek(c.from, offset)? {
                let end = c.slice.extent(&h, c.hint, max_bytes, min_one)?;
                if end > h.position {
                    region = Some(FileRegion {
                        file: c.slice.file.clone(),
                        position: h.position,
                        len: end - h.position,
                    });
                }
                break;
            }
        }
        Ok(RegionData {
            region,
            high_watermark: hw,
            log_start_offset: start,
        })
    }

    /// Reads whole batches from `offset` up to `max_bytes` (at least one batch when `min_one`).
    pub fn read(&self, offset: i64, max_bytes: u64, min_one: bool) -> Result<FetchData, ReadError> {
        let r = self.read_region(offset, max_bytes, min_one)?;
        Ok(FetchData {
            records: match &r.region {
                Some(region) => region.read()?,
                None => Bytes::new(),
            },
            high_watermark: r.high_watermark,
            log_start_offset: r.log_start_offset,
        })
    }

    /// The first offset whose record timestamp is `>= ts`, with that timestamp (ListOffsets).
    pub fn offset_for_timestamp(&self, ts: i64) -> io::Result<Option<(i64, i64)>> {
        let candidates: Vec<(SegmentSlice, u64)> = {
            let st = self.lock();
            st.segments
                .values()
                .filter(|s| s.index.max_timestamp >= ts)
                .map(|s| (s.slice(), s.lookup_time(ts)))
                .collect()
        };
        let start = self.log_start_offset();
        let config = self.config();
        for (slice, from) in candidates {
            let mut pos = from;
            while let Some(h) = slice.header_at(pos)? {
                pos += h.size();
                if h.max_timestamp() < ts || h.last_offset() < start {
                    continue;
                }
                let bytes = slice.read_batch(&h)?;
                let Ok(view) = super::batch::BatchView::new(&bytes) else {
                    continue;
                };
                let mut found = None;
                let limit = config.max_message_bytes.saturating_mul(64).max(64 << 20);
                let _ = records::walk_stored(&view, limit, |r| {
                    if found.is_none()
                        && r.timestamp >= ts
                        && view.base_offset() + i64::from(r.offset_delta) >= start
                    {
                        found = Some((view.base_offset() + i64::from(r.offset_delta), r.timestamp));
                    }
                });
                if view.is_log_append_time() {
                    found = Some((view.base_offset().max(start), view.max_timestamp()));
                }
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the record with the largest timestamp (ListOffsets -3).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let st = self.lock();
        st.segments
            .values()
            .filter(|s| s.index.max_timestamp >= 0)
            .fold(None, |best: Option<(i64, i64)>, s| match best {
                Some((_, ts)) if ts >= s.index.max_timestamp => best,
                _ => Some((s.index.max_timestamp_offset, s.index.max_timestamp)),
            })
    }
}
