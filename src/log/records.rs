//! Walks the records inside a batch without copying them, checking the framing Kafka's
//! `DefaultRecord.readFrom` and `LogValidator` check: every length and varint consistent with the
//! record's own size, inner offsets 0..count-1, as many records as the header says, nothing left
//! over. Compressed batches are decompressed (bounded) into a scratch buffer first.

use std::io::Read;

use super::batch::{BatchView, Compression};

/// A record-level validation failure; Kafka answers these with INVALID_RECORD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Index of the offending record within the batch (Kafka's `batch_index`), if known.
    pub record_index: Option<i32>,
    pub message: String,
}

impl RecordError {
    fn at(index: usize, message: impl Into<String>) -> Self {
        RecordError {
            record_index: Some(index as i32),
            message: message.into(),
        }
    }
    pub(crate) fn batch(message: impl Into<String>) -> Self {
        RecordError {
            record_index: None,
            message: message.into(),
        }
    }
}

/// What a caller learns about each record while walking.
#[derive(Debug, Clone, Copy)]
pub struct RecordInfo {
    pub timestamp: i64,
    pub offset_delta: i32,
    pub has_key: bool,
}

/// Reads zigzag varints from a slice, failing (not panicking) on truncation or overlong encoding.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn varlong(&mut self) -> Option<i64> {
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return None;
            }
            raw |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        None
    }
    fn varint(&mut self) -> Option<i32> {
        i32::try_from(self.varlong()?).ok()
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.buf.len() {
            return None;
        }
        self.pos = end;
        Some(())
    }
    /// Reads a length-prefixed byte field; `-1` is null, other negatives are invalid.
    fn bytes_slice(&mut self) -> Option<Option<&'a [u8]>> {
        match self.varint()? {
            -1 => Some(None),
            n if n >= 0 => {
                let start = self.pos;
                self.skip(n as usize)?;
                Some(Some(&self.buf[start..self.pos]))
            }
            _ => None,
        }
    }
    /// Skips a length-prefixed byte field; `-1` is null, other negatives are invalid.
    fn bytes_field(&mut self, allow_null: bool) -> Option<bool> {
        match self.varint()? {
            -1 if allow_null => Some(false),
            n if n >= 0 => self.skip(n as usize).map(|_| true),
            _ => None,
        }
    }
}

/// Walks every record of `batch`, calling `each` per record. `max_decompressed` bounds the memory a
/// compressed batch may expand to; `decompress` false accepts compressed batches on their header alone.
pub fn walk(
    batch: &BatchView<'_>,
    decompress: bool,
    max_decompressed: usize,
    mut each: impl FnMut(RecordInfo),
) -> Result<(), RecordError> {
    let count = batch.record_count();
    if count <= 0 {
        return Err(RecordError::batch(format!("invalid record count {count}")));
    }
    if i64::from(batch.last_offset_delta()) != i64::from(count) - 1 {
        return Err(RecordError::batch(format!(
            "inconsistent batch offset range: lastOffsetDelta {} with {count} records",
            batch.last_offset_delta()
        )));
    }
    let scratch;
    let body: &[u8] = match batch.compression() {
        Some(Compression::None) => batch.records(),
        Some(codec) if decompress => {
            scratch = decompress_records(codec, batch.records(), max_decompressed)?;
            &scratch
        }
        Some(_) => return Ok(()),
        None => return Err(RecordError::batch("unknown compression codec")),
    };
    let base_ts = batch.base_timestamp();
    let mut cur = Cursor { buf: body, pos: 0 };
    for i in 0..count as usize {
        let framing = || RecordError::at(i, "found invalid record structure");
        let len = cur.varint().ok_or_else(framing)?;
        if len < 0 {
            return Err(framing());
        }
        let start = cur.pos;
        let end = start.checked_add(len as usize).ok_or_else(framing)?;
        if end > body.len() {
            return Err(framing());
        }
        let mut rec = Cursor {
            buf: &body[..end],
            pos: start,
        };
        rec.skip(1).ok_or_else(framing)?; // attributes
        let ts_delta = rec.varlong().ok_or_else(framing)?;
        let offset_delta = rec.varint().ok_or_else(framing)?;
        if offset_delta != i as i32 {
            return Err(RecordError::at(
                i,
                format!("inner record offset delta {offset_delta}, expected {i}"),
            ));
        }
        let has_key = rec.bytes_field(true).ok_or_else(framing)?;
        rec.bytes_field(true).ok_or_else(framing)?;
        let headers = rec.varint().ok_or_else(framing)?;
        if headers < 0 {
            return Err(framing());
        }
        for _ in 0..headers {
            rec.bytes_field(false)
                .ok_or_else(|| RecordError::at(i, "invalid header key"))?;
            rec.bytes_field(true).ok_or_else(framing)?;
        }
        if rec.pos != end {
            return Err(RecordError::at(
                i,
                format!(
                    "invalid record size: expected to read {len} bytes but read {}",
                    rec.pos - start
                ),
            ));
        }
        cur.pos = end;
        each(RecordInfo {
            timestamp: base_ts.wrapping_add(ts_delta),
            offset_delta,
            has_key,
        });
    }
    if cur.pos != body.len() {
        return Err(RecordError::batch(format!(
            "{} bytes left over after the last of {count} records",
            body.len() - cur.pos
        )));
    }
    Ok(())
}

/// Appends `v` as a zigzag varint (Kafka's `ByteUtils.writeVarlong`).
pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends a length-prefixed byte field, `-1` for null.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// One record of a stored batch, borrowed from its uncompressed records section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub attributes: u8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The header count and the headers, exactly as stored.
    pub headers: &'a [u8],
}

/// Parses the `count` records of an uncompressed records section as stored in the log, where
/// compaction may have left gaps between offset deltas (they only have to increase). `None` when
/// the framing is broken.
pub fn parse_stored(body: &[u8], count: usize) -> Option<Vec<RecordRef<'_>>> {
    let mut out = Vec::with_capacity(count.min(body.len()));
    let mut cur = Cursor { buf: body, pos: 0 };
    let mut last_delta = -1i64;
    for _ in 0..count {
        let len = usize::try_from(cur.varint()?).ok()?;
        let end = cur.pos.checked_add(len).filter(|&e| e <= body.len())?;
        let mut rec = Cursor {
            buf: &body[..end],
            pos: cur.pos,
        };
        let attributes = *rec.buf.get(rec.pos)?;
        rec.pos += 1;
        let timestamp_delta = rec.varlong()?;
        let offset_delta = rec.varint()?;
        if i64::from(offset_delta) <= last_delta {
            return None;
        }
        last_delta = i64::from(offset_delta);
        let key = rec.bytes_slice()?;
        let value = rec.bytes_slice()?;
        let headers_at = rec.pos;
        let headers = rec.varint()?;
        for _ in 0..headers.max(0) {
            rec.bytes_field(false)?;
            rec.bytes_field(true)?;
        }
        if headers < 0 || rec.pos != end {
            return None;
        }
        out.push(RecordRef {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers: &body[headers_at..end],
        });
        cur.pos = end;
    }
    (cur.pos == body.len()).then_some(out)
}

/// Walks the records of a stored batch (see [`parse_stored`]); compressed batches are
/// decompressed within `max_decompressed`.
pub fn walk_stored(
    batch: &BatchView<'_>,
    max_decompressed: usize,
    mut each: impl FnMut(RecordInfo),
) -> Result<(), RecordError> {
    let body = decompressed(batch, max_decompressed)?;
    let count = usize::try_from(batch.record_count())
        .map_err(|_| RecordError::batch("negative record count"))?;
    let records =
        parse_stored(&body, count).ok_or_else(|| RecordError::batch("invalid record structure"))?;
    let base_ts = batch.base_timestamp();
    for r in records {
        each(RecordInfo {
            timestamp: base_ts.wrapping_add(r.timestamp_delta),
            offset_delta: r.offset_delta,
            has_key: r.key.is_some(),
        });
    }
    Ok(())
}

/// The records of a batch, uncompressed (borrowed when the batch is not compressed).
pub fn decompressed<'a>(
    batch: &BatchView<'a>,
    max_decompressed: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, RecordError> {
    match batch.compression() {
        Some(Compression::None) => Ok(std::borrow::Cow::Borrowed(batch.records())),
        Some(codec) => decompress_records(codec, batch.records(), max_decompressed)
            .map(std::borrow::Cow::Owned),
        None => Err(RecordError::batch("unknown compression codec")),
    }
}

thread_local! {
    /// Bytes the batches being validated on this thread may still decompress to, if bounded.
    static BUDGET: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with every batch decompressed on this thread drawing from one budget of `bytes`: a
/// produce request's batches together cost bounded CPU, however many partitions it names (one
/// 2 KB batch can inflate to the whole per-batch limit, and a request may list it for every
/// partition). A batch beyond the budget is refused like one beyond the per-batch limit.
pub fn with_decompression_budget<T>(bytes: usize, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<usize>);
    impl Drop for Reset {
        fn drop(&mut self) {
            BUDGET.with(|b| b.set(self.0));
        }
    }
    let _reset = Reset(BUDGET.with(|b| b.replace(Some(bytes))));
    f()
}

fn decompress_records(
    codec: Compression,
    data: &[u8],
    batch_limit: usize,
) -> Result<Vec<u8>, RecordError> {
    let budget = BUDGET.with(std::cell::Cell::get);
    let limit = budget.map_or(batch_limit, |b| b.min(batch_limit));
    let out = decompress_within(codec, data, limit);
    if let Some(b) = budget {
        let used = out.as_ref().map_or(limit, Vec::len);
        BUDGET.with(|cell| cell.set(Some(b.saturating_sub(used))));
        if limit < batch_limit
            && matches!(&out, Err(e) if e.message.starts_with("batch decompresses"))
        {
            return Err(RecordError::batch(format!(
                "the request's compressed batches decompress to more than it may ({b} bytes were left for this batch)"
            )));
        }
    }
    out
}

fn decompress_within(
    codec: Compression,
    data: &[u8],
    limit: usize,
) -> Result<Vec<u8>, RecordError> {
    let corrupt =
        |e: std::io::Error| RecordError::batch(format!("cannot decompress {codec:?}: {e}"));
    let mut out = Vec::new();
    let cap = limit as u64 + 1;
    match codec {
        Compression::Gzip => flate2::read::GzDecoder::new(data)
            .take(cap)
            .read_to_end(&mut out)
            .map_err(corrupt)?,
        Compression::Lz4 => lz4::Decoder::new(data)
            .map_err(corrupt)?
            .take(cap)
            .read_to_end(&mut out)
            .map_err(corrupt)?,
        Compression::Zstd => zstd::stream::read::Decoder::new(data)
            .map_err(corrupt)?
            .take(cap)
            .read_to_end(&mut out)
            .map_err(corrupt)?,
        Compression::Snappy => {
            out = snappy_xerial(data, limit)?;
            out.len()
        }
        Compression::None => unreachable!("uncompressed batches are walked in place"),
    };
    if out.len() > limit {
        return Err(RecordError::batch(format!(
            "batch decompresses to more than {limit} bytes"
        )));
    }
    Ok(out)
}

/// Snappy as the Java client writes it: xerial framing (a magic header, then length-prefixed raw
/// blocks), or one raw snappy block when the magic is absent (what xerial's reader also accepts).
fn snappy_xerial(data: &[u8], limit: usize) -> Result<Vec<u8>, RecordError> {
    const MAGIC: &[u8] = b"\x82SNAPPY\x00";
    let err = |m: &str| RecordError::batch(format!("cannot decompress Snappy: {m}"));
    let raw = |block: &[u8], out: &mut Vec<u8>| -> Result<(), RecordError> {
        let n = snap::raw::decompress_len(block).map_err(|e| err(&e.to_string()))?;
        if out.len() + n > limit {
            return Err(err("too large"));
        }
        let at = out.len();
        out.resize(at + n, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[at..])
            .map_err(|e| err(&e.to_string()))?;
        Ok(())
    };
    let mut out = Vec::new();
    if !data.starts_with(MAGIC) {
        raw(data, &mut out)?;
        return Ok(out);
    }
    let mut rest = data.get(16..).ok_or_else(|| err("short header"))?;
    while !rest.is_empty() {
        let len = rest.get(..4).ok_or_else(|| err("short block length"))?;
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let block = rest.get(4..4 + len).ok_or_else(|| err("short block"))?;
        raw(block, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::batch::tests::{build_batch, fix_crc};
    use super::*;

    fn walk_all(b: &[u8]) -> Result<Vec<RecordInfo>, RecordError> {
        let view = BatchView::new(b).unwrap();
        let mut seen = Vec::new();
        walk(&view, true, 1 << 20, |r| seen.push(r)).map(|_| seen)
    }

    #[test]
    fn walks_well_formed_records() {
        let b = build_batch(
            0,
            &[(Some(b"k"), Some(b"v")), (None, None), (None, Some(b"zz"))],
        );
        let recs = walk_all(&b).unwrap();
        assert_eq!(recs.len(), 3);
        assert!(recs[0].has_key && !recs[1].has_key);
        assert_eq!(recs[2].offset_delta, 2);
    }

    #[test]
    fn rejects_count_mismatch_and_trailing_bytes() {
        let mut b = build_batch(0, &[(None, Some(b"v")), (None, Some(b"w"))]);
        // Header claims 3 records (and lastOffsetDelta 2): the walk runs out of bytes.
        b[57..61].copy_from_slice(&3i32.to_be_bytes());
        b[23..27].copy_from_slice(&2i32.to_be_bytes());
        fix_crc(&mut b);
        assert!(walk_all(&b).unwrap_err().message.contains("invalid record"));
        let mut c = build_batch(0, &[(None, Some(b"v")), (None, Some(b"w"))]);
        c[57..61].copy_from_slice(&1i32.to_be_bytes());
        c[23..27].copy_from_slice(&0i32.to_be_bytes());
        fix_crc(&mut c);
        assert!(walk_all(&c).unwrap_err().message.contains("left over"));
    }

    #[test]
    fn rejects_length_lying_inside_record() {
        let mut b = build_batch(0, &[(None, Some(b"abc"))]);
        // The value length varint (zigzag 3 = 6) becomes 5 = 10: reads past the record's own end.
        let pos = b.iter().rposition(|&x| x == 6).unwrap();
        b[pos] = 10;
        fix_crc(&mut b);
        assert!(walk_all(&b).is_err());
    }
}
