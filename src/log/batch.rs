//! A read-only view of one record batch header (magic v2), Kafka's on-disk and on-wire format.
//!
//! ```text
//!  0 baseOffset i64        8 batchLength i32     12 partitionLeaderEpoch i32
//! 16 magic i8             17 crc u32 (CRC32C of bytes 21..end)
//! 21 attributes i16       23 lastOffsetDelta i32 27 baseTimestamp i64
//! 35 maxTimestamp i64     43 producerId i64      51 producerEpoch i16
//! 53 baseSequence i32     57 recordCount i32     61 records...
//! ```
//! The CRC covers `attributes..end`, so `baseOffset` and `partitionLeaderEpoch` can be patched
//! without recomputing it.

/// Bytes before the records of a v2 batch.
pub const HEADER_LEN: usize = 61;
/// Bytes of `baseOffset` + `batchLength`: the prefix that frames every batch in a log.
pub const LOG_OVERHEAD: usize = 12;

const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
/// The attributes bit of a transactional batch.
const TRANSACTIONAL: i16 = 0x10;

/// Why a batch header is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer bytes than a header, or `batchLength` disagrees with the bytes present.
    Size,
    /// A magic other than 2.
    Magic(i8),
    /// The stored CRC does not match the bytes.
    Crc,
}

/// Compression codec from the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// A borrowed batch whose framing (length and magic) has been checked.
#[derive(Clone, Copy)]
pub struct BatchView<'a> {
    bytes: &'a [u8],
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The total size (`batchLength` + 12) announced by the framing prefix at the start of `bytes`,
/// or `None` when fewer than 12 bytes are present or the length is negative.
pub fn framed_size(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < LOG_OVERHEAD {
        return None;
    }
    let len = be_i32(bytes, 8);
    usize::try_from(len).ok().map(|l| l + LOG_OVERHEAD)
}

/// Whether any batch framed in `records` (a produce's record set, read as far as its framing
/// goes) is transactional, as Kafka's `hasTransactionalRecords` asks before authorizing.
pub fn any_transactional(mut records: &[u8]) -> bool {
    while let Some(size) = framed_size(records) {
        if records.len() > ATTRIBUTES_OFFSET + 1
            && be_i16(records, ATTRIBUTES_OFFSET) & TRANSACTIONAL != 0
        {
            return true;
        }
        records = records.get(size..).unwrap_or_default();
    }
    false
}

/// Base offset of the batch framed at the start of `bytes` (at least 8 bytes).
pub fn base_offset_of(bytes: &[u8]) -> i64 {
    be_i64(bytes, 0)
}

impl<'a> BatchView<'a> {
    /// Checks that `bytes` is exactly one v2 batch (length and magic); does not check the CRC.
    pub fn new(bytes: &'a [u8]) -> Result<Self, HeaderError> {
        if bytes.len() < HEADER_LEN || framed_size(bytes) != Some(bytes.len()) {
            return Err(HeaderError::Size);
        }
        let magic = bytes[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(HeaderError::Magic(magic));
        }
        Ok(BatchView { bytes })
    }

    /// A view of a header alone (as read from a file during a scan): only the header accessors
    /// are meaningful; `records` is empty and `crc_ok` is false.
    pub fn header_only(header: &'a [u8; HEADER_LEN]) -> Self {
        BatchView { bytes: header }
    }

    /// Like [`BatchView::new`] and also verifies the CRC32C.
    pub fn checked(bytes: &'a [u8]) -> Result<Self, HeaderError> {
        let view = Self::new(bytes)?;
        if !view.crc_ok() {
            return Err(HeaderError::Crc);
        }
        Ok(view)
    }

    pub fn crc_ok(&self) -> bool {
        framed_size(self.bytes) == Some(self.bytes.len())
            && crc32c::crc32c(&self.bytes[ATTRIBUTES_OFFSET..])
                == be_i32(self.bytes, CRC_OFFSET) as u32
    }
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, 0)
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, ATTRIBUTES_OFFSET)
    }
    pub fn compression(&self) -> Option<Compression> {
        match self.attributes() & 0x07 {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & 0x08 != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & 0x20 != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, 23)
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(self.last_offset_delta())
    }
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, 27)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, 35)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, 43)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, 51)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, 53)
    }
    /// The sequence of the last record, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        let seq = self.base_sequence();
        if seq < 0 {
            return seq;
        }
        let last = i64::from(seq) + i64::from(self.last_offset_delta());
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }
    pub fn record_count(&self) -> i32 {
        be_i32(self.bytes, 57)
    }
    /// The bytes after the header: records, possibly compressed.
    pub fn records(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// Iterates over the batches framed back to back in `bytes`, stopping at the first incomplete one.
/// Yields each batch's bytes; framing is only the 12-byte prefix (see [`BatchView`] for the rest).
pub fn frames(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let size = framed_size(rest)?;
        if size < HEADER_LEN || size > rest.len() {
            return None;
        }
        let (batch, tail) = rest.split_at(size);
        rest = tail;
        Some(batch)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// (key, value) of a record built by the test helpers.
    pub(crate) type TestRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

    /// Builds an uncompressed batch with the given record (key, value) pairs.
    pub(crate) fn build_batch(base_offset: i64, records: &[TestRecord<'_>]) -> Vec<u8> {
        build_batch_with(base_offset, 1_000, -1, -1, -1, records)
    }

    pub(crate) fn build_batch_with(
        base_offset: i64,
        timestamp: i64,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        records: &[TestRecord<'_>],
    ) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, (k, v)) in records.iter().enumerate() {
            let mut rec = Vec::new();
            rec.push(0u8); // attributes
            put_varlong(&mut rec, 0); // timestamp delta
            put_varlong(&mut rec, i as i64); // offset delta
            for field in [k, v] {
                match field {
                    Some(b) => {
                        put_varlong(&mut rec, b.len() as i64);
                        rec.extend_from_slice(b);
                    }
                    None => put_varlong(&mut rec, -1),
                }
            }
            put_varlong(&mut rec, 0); // headers
            put_varlong(&mut body, rec.len() as i64);
            body.extend_from_slice(&rec);
        }
        let mut b = Vec::new();
        b.extend_from_slice(&base_offset.to_be_bytes());
        b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.push(2);
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes());
        b.extend_from_slice(&timestamp.to_be_bytes());
        b.extend_from_slice(&timestamp.to_be_bytes());
        b.extend_from_slice(&producer_id.to_be_bytes());
        b.extend_from_slice(&producer_epoch.to_be_bytes());
        b.extend_from_slice(&base_sequence.to_be_bytes());
        b.extend_from_slice(&(records.len() as i32).to_be_bytes());
        b.extend_from_slice(&body);
        fix_crc(&mut b);
        b
    }

    pub(crate) fn fix_crc(b: &mut [u8]) {
        let crc = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }

    pub(crate) use super::super::records::put_varlong;

    #[test]
    fn a_transactional_batch_is_found_wherever_it_is_in_a_record_set() {
        let plain = build_batch(0, &[(None, Some(b"a"))]);
        let mut transactional = build_batch(1, &[(None, Some(b"b"))]);
        transactional[ATTRIBUTES_OFFSET + 1] |= TRANSACTIONAL as u8;
        assert!(!any_transactional(&plain));
        assert!(any_transactional(
            &[plain.clone(), transactional.clone()].concat()
        ));
        // A truncated or lying tail ends the walk without reading past the bytes.
        assert!(!any_transactional(&[plain.clone(), vec![0, 0, 0]].concat()));
        assert!(!any_transactional(&plain[..30]));
        assert!(!any_transactional(&[]));
    }

    #[test]
    fn reads_header_fields_and_checks_crc() {
        let b = build_batch_with(7, 42, 9, 1, 5, &[(Some(b"k"), Some(b"v")), (None, None)]);
        let v = BatchView::checked(&b).unwrap();
        assert_eq!(v.base_offset(), 7);
        assert_eq!(v.last_offset(), 8);
        assert_eq!(v.record_count(), 2);
        assert_eq!(v.max_timestamp(), 42);
        assert_eq!(
            (v.producer_id(), v.producer_epoch(), v.base_sequence()),
            (9, 1, 5)
        );
        assert_eq!(v.last_sequence(), 6);
        assert_eq!(v.compression(), Some(Compression::None));
    }

    #[test]
    fn base_offset_patch_keeps_crc_valid() {
        let mut b = build_batch(0, &[(None, Some(b"x"))]);
        b[0..8].copy_from_slice(&1234i64.to_be_bytes());
        b[12..16].copy_from_slice(&0i32.to_be_bytes());
        assert_eq!(BatchView::checked(&b).unwrap().base_offset(), 1234);
    }

    #[test]
    fn rejects_bad_crc_size_and_magic() {
        let mut b = build_batch(0, &[(None, Some(b"x"))]);
        let last = b.len() - 1;
        b[last] ^= 1;
        assert_eq!(BatchView::checked(&b).err(), Some(HeaderError::Crc));
        assert_eq!(
            BatchView::new(&b[..b.len() - 1]).err(),
            Some(HeaderError::Size)
        );
        let mut m = build_batch(0, &[(None, Some(b"x"))]);
        m[16] = 1;
        assert_eq!(BatchView::new(&m).err(), Some(HeaderError::Magic(1)));
    }

    #[test]
    fn last_sequence_wraps() {
        let b = build_batch_with(0, 0, 1, 0, i32::MAX, &[(None, None), (None, None)]);
        assert_eq!(BatchView::new(&b).unwrap().last_sequence(), 0);
    }

    #[test]
    fn frames_stop_at_partial_batch() {
        let mut two = build_batch(0, &[(None, Some(b"a"))]);
        two.extend(build_batch(1, &[(None, Some(b"b"))]));
        assert_eq!(frames(&two).count(), 2);
        assert_eq!(frames(&two[..two.len() - 3]).count(), 1);
    }
}
