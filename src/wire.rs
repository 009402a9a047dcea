//! Zero-copy response encoding: record sets read from segment files are not copied into the
//! response buffer. The encoder writes everything else into a contiguous tail; when it reaches a
//! record set registered beforehand (recognised by address and length), the set's `Bytes` is
//! referenced as its own chunk. The connection then sends all chunks with one vectored write.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Record sets smaller than this are copied (a chunk costs an iovec and a refcount).
const MIN_REFERENCED: usize = 4096;

pub struct ChunkedBuf {
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    done: usize,
    tail: BytesMut,
    payloads: Vec<Bytes>,
}

impl ChunkedBuf {
    /// A buffer that will reference, not copy, any of `payloads` the encoder writes.
    pub fn new(capacity: usize, payloads: Vec<Bytes>) -> Self {
        let payloads = payloads
            .into_iter()
            .filter(|p| p.len() >= MIN_REFERENCED)
            .collect();
        ChunkedBuf {
            chunks: Vec::new(),
            done: 0,
            tail: BytesMut::with_capacity(capacity),
            payloads,
        }
    }

    fn payload_for(&self, src: &[u8]) -> Option<Bytes> {
        self.payloads
            .iter()
            .find(|p| p.as_ptr() == src.as_ptr() && p.len() == src.len())
            .cloned()
    }

    /// The encoded frame as chunks, in order.
    pub fn into_chunks(mut self) -> Vec<Bytes> {
        if !self.tail.is_empty() {
            self.chunks.push(self.tail.freeze());
        }
        self.chunks
    }
}

// SAFETY: every method delegates to the `BytesMut` tail, which upholds `BufMut`'s contract;
// `put_slice` only adds already-initialised `Bytes` chunks besides that.
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
            if let Some(payload) = self.payload_for(src) {
                if !self.tail.is_empty() {
                    let head = self.tail.split().freeze();
                    self.done += head.len();
                    self.chunks.push(head);
                }
                self.done += payload.len();
                self.chunks.push(payload);
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
    use super::*;

    #[test]
    fn registered_payloads_are_referenced_and_the_rest_copied() {
        let payload = Bytes::from(vec![7u8; 10_000]);
        let small = Bytes::from(vec![1u8; 10]);
        let mut buf = ChunkedBuf::new(64, vec![payload.clone(), small.clone()]);
        buf.put_i32(42);
        buf.put_slice(&payload);
        buf.put_slice(&small);
        buf.put_slice(&payload.slice(..5000)); // not registered as such: copied
        assert_eq!(buf.offset(), 4 + 10_000 + 10 + 5000);
        let chunks = buf.into_chunks();
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks[1].as_ptr(),
            payload.as_ptr(),
            "referenced, not copied"
        );
        let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let mut expected = 42i32.to_be_bytes().to_vec();
        expected.extend_from_slice(&payload);
        expected.extend_from_slice(&small);
        expected.extend_from_slice(&payload[..5000]);
        assert_eq!(all, expected);
    }
}
