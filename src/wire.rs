//! Zero-copy response encoding: record sets are not copied into the response buffer. The encoder
//! writes everything else into a contiguous tail; when it reaches a record set attached
//! beforehand (recognised by address and length), the set becomes a chunk of its own: the bytes
//! already in memory, or a region of a segment file the connection sends with `sendfile` straight
//! from the page cache. A file region is put in the response as a stand-in: a slice of a static
//! zero buffer with the region's length, at an address unique within the response.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

use crate::log::{FileRegion, OpenRegion};

/// Record sets smaller than this are copied (a chunk costs an iovec or a syscall, and a refcount).
pub const MIN_REFERENCED: usize = 4096;

/// Never read (a stand-in found by the encoder is replaced by its file region) and never written:
/// zero-initialised, so it costs address space only.
static STAND_INS: [u8; 64 << 20] = [0; 64 << 20];

/// One piece of an encoded response frame.
#[derive(Clone)]
pub enum Chunk {
    Memory(Bytes),
    File(OpenRegion),
}

impl Chunk {
    pub fn len(&self) -> u64 {
        match self {
            Chunk::Memory(b) => b.len() as u64,
            Chunk::File(r) => r.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The record sets a response carries, each with the `Bytes` the response holds for it.
#[derive(Default)]
pub struct Attached {
    sets: Vec<(Bytes, Chunk)>,
    files: usize,
}

impl Attached {
    /// Record bytes in memory, to be referenced rather than copied when large enough.
    pub fn memory(&mut self, records: &Bytes) {
        if records.len() >= MIN_REFERENCED {
            self.sets
                .push((records.clone(), Chunk::Memory(records.clone())));
        }
    }

    /// The stand-in to put in the response for a region of a segment file, or `None` when the
    /// region is too small to be worth a `sendfile`, too large for a stand-in, or cannot be kept
    /// open until sent (see [`FileRegion::open`]): read it then.
    pub fn file(&mut self, region: FileRegion) -> Option<Bytes> {
        let len = usize::try_from(region.len).ok()?;
        let at = self.files;
        if len < MIN_REFERENCED || at.checked_add(len)? > STAND_INS.len() {
            return None;
        }
        let region = region.open()?;
        let stand_in = Bytes::from_static(&STAND_INS[at..at + len]);
        self.files += 1;
        self.sets.push((stand_in.clone(), Chunk::File(region)));
        Some(stand_in)
    }

    /// Bytes of the attached sets.
    fn len(&self) -> usize {
        self.sets.iter().map(|(b, _)| b.len()).sum()
    }
}

pub struct ChunkedBuf {
    chunks: Vec<Chunk>,
    /// Bytes in `chunks`.
    done: usize,
    tail: BytesMut,
    attached: Attached,
    /// File stand-ins the encoder reached (each must be, or zeros would be sent).
    files_found: usize,
}

/// The encoder wrote a file stand-in's bytes in a way `ChunkedBuf` did not recognise.
#[derive(Debug, thiserror::Error)]
#[error("{missing} of {total} file record sets were not found in the encoded response")]
pub struct UnplacedRegion {
    missing: usize,
    total: usize,
}

impl ChunkedBuf {
    /// A buffer of `size` bytes in all that will reference, not copy, the `attached` record sets
    /// the encoder writes.
    pub fn new(size: usize, attached: Attached) -> Self {
        ChunkedBuf {
            chunks: Vec::new(),
            done: 0,
            tail: BytesMut::with_capacity(size.saturating_sub(attached.len())),
            attached,
            files_found: 0,
        }
    }

    fn attached_for(&self, src: &[u8]) -> Option<Chunk> {
        self.attached
            .sets
            .iter()
            .find(|(b, _)| b.as_ptr() == src.as_ptr() && b.len() == src.len())
            .map(|(_, c)| c.clone())
    }

    /// The encoded frame as chunks, in order.
    pub fn into_chunks(mut self) -> Result<Vec<Chunk>, UnplacedRegion> {
        if self.files_found != self.attached.files {
            return Err(UnplacedRegion {
                missing: self.attached.files - self.files_found,
                total: self.attached.files,
            });
        }
        if !self.tail.is_empty() {
            self.chunks.push(Chunk::Memory(self.tail.freeze()));
        }
        Ok(self.chunks)
    }
}

// SAFETY: every method delegates to the `BytesMut` tail, which upholds `BufMut`'s contract;
// `put_slice` only adds already-initialised chunks besides that.
#[allow(unsafe_code)]
unsafe impl BufMut for ChunkedBuf {
    fn remaining_mut(&self) -> usize {
        self.tail.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: forwarded unchanged; the caller's guarantee is about the tail's chunk.
        unsafe { self.tail.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.tail.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= MIN_REFERENCED {
            if let Some(chunk) = self.attached_for(src) {
                if !self.tail.is_empty() {
                    let head = self.tail.split().freeze();
                    self.done += head.len();
                    self.chunks.push(Chunk::Memory(head));
                }
                if matches!(chunk, Chunk::File(_)) {
                    self.files_found += 1;
                }
                self.done += src.len();
                self.chunks.push(chunk);
                return;
            }
        }
        self.tail.put_slice(src);
    }
}

impl ByteBufMut for ChunkedBuf {
    fn offset(&self) -> usize {
        self.done + self.tail.len()
    }

    /// Moves within the current tail only (message encoding never seeks back across a payload).
    fn seek(&mut self, offset: usize) {
        let at = offset
            .checked_sub(self.done)
            .expect("seek before a referenced payload");
        self.tail.resize(at, 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        let (start, end) = (r.start - self.done, r.end - self.done);
        &mut self.tail[start..end]
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn region(position: u64, len: u64) -> FileRegion {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&[9u8; 8192]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // Open already, so the region stays readable once the directory is gone.
        FileRegion {
            file: crate::log::descriptors::SegmentFile::opened(path, file),
            position,
            len,
        }
    }

    fn memory(chunk: &Chunk) -> &[u8] {
        match chunk {
            Chunk::Memory(b) => b,
            Chunk::File(_) => panic!("a file chunk"),
        }
    }

    #[test]
    fn attached_sets_are_referenced_and_the_rest_copied() {
        let payload = Bytes::from(vec![7u8; 10_000]);
        let small = Bytes::from(vec![1u8; 10]);
        let mut attached = Attached::default();
        attached.memory(&payload);
        attached.memory(&small);
        let stand_in = attached.file(region(100, 5000)).expect("a stand-in");
        assert!(
            attached.file(region(0, 100)).is_none(),
            "small regions are read instead"
        );
        let mut buf = ChunkedBuf::new(4 + 10_000 + 10 + 5000 + 5000, attached);
        buf.put_i32(42);
        buf.put_slice(&payload);
        buf.put_slice(&small);
        buf.put_slice(&stand_in);
        buf.put_slice(&payload.slice(..5000)); // not attached as such: copied
        assert_eq!(buf.offset(), 4 + 10_000 + 10 + 5000 + 5000);
        let chunks = buf.into_chunks().unwrap();
        assert_eq!(chunks.len(), 5);
        assert_eq!(memory(&chunks[0]), 42i32.to_be_bytes());
        assert_eq!(
            memory(&chunks[1]).as_ptr(),
            payload.as_ptr(),
            "referenced, not copied"
        );
        assert_eq!(memory(&chunks[2]), &small[..]);
        match &chunks[3] {
            Chunk::File(r) => assert_eq!((r.position, r.len), (100, 5000)),
            Chunk::Memory(_) => panic!("the region was copied"),
        }
        assert_eq!(memory(&chunks[4]), &payload[..5000]);
    }

    #[test]
    fn stand_ins_are_distinct() {
        let mut attached = Attached::default();
        let a = attached.file(region(0, 5000)).unwrap();
        let b = attached.file(region(0, 5000)).unwrap();
        assert_ne!(a.as_ptr(), b.as_ptr());
    }

    #[test]
    fn a_stand_in_the_encoder_missed_is_an_error_not_zeros() {
        let mut attached = Attached::default();
        let stand_in = attached.file(region(0, 8192)).unwrap();
        let mut buf = ChunkedBuf::new(8192, attached);
        buf.put_slice(&stand_in[..4096]); // written in two pieces: not recognised
        buf.put_slice(&stand_in[4096..]);
        assert!(buf.into_chunks().is_err());
    }
}
