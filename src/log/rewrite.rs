//! The only places a stored batch differs from what the producer sent beyond its offset: a topic
//! with `message.timestamp.type=LogAppendTime` (the broker's time goes into the header) and a topic
//! whose `compression.type` names a codec other than the batch's (the records are recompressed).
//! Both rebuild the header fields they touch and recompute the CRC, as Kafka's LogValidator does.

use bytes::{BufMut, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use super::batch::{BatchView, Compression, HEADER_LEN};
use super::records;

/// What a topic asks of the batches appended to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCompression {
    /// `producer`: keep the batch as the producer compressed it.
    Producer,
    /// A codec (`uncompressed` is `Compression::None`).
    Codec(Compression),
}

impl TopicCompression {
    pub fn parse(v: &str) -> Option<TopicCompression> {
        Some(match v.trim() {
            "producer" => TopicCompression::Producer,
            "uncompressed" | "none" => TopicCompression::Codec(Compression::None),
            "gzip" => TopicCompression::Codec(Compression::Gzip),
            "snappy" => TopicCompression::Codec(Compression::Snappy),
            "lz4" => TopicCompression::Codec(Compression::Lz4),
            "zstd" => TopicCompression::Codec(Compression::Zstd),
            _ => return None,
        })
    }
}

fn codec_bits(c: Compression) -> i16 {
    match c {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

/// Appends `records` compressed with `codec` to `out`.
pub(super) fn compress(
    codec: Compression,
    records: &[u8],
    out: &mut BytesMut,
) -> anyhow::Result<()> {
    let put = |b: &mut BytesMut| -> anyhow::Result<()> {
        b.put_slice(records);
        Ok(())
    };
    match codec {
        Compression::None => {
            out.put_slice(records);
            Ok(())
        }
        Compression::Gzip => Gzip::compress(out, put),
        Compression::Snappy => Snappy::compress(out, put),
        Compression::Lz4 => Lz4::compress(out, put),
        Compression::Zstd => Zstd::compress(out, put),
    }
}

/// Whether `batch` must be rewritten for this topic.
pub fn needed(batch: &BatchView<'_>, compression: TopicCompression, append_time: bool) -> bool {
    append_time
        || matches!(compression, TopicCompression::Codec(c) if Some(c) != batch.compression())
}

/// Rebuilds `batch` with the topic's codec and/or the append time `now_ms`; returns the new bytes.
pub fn rewrite(
    batch: &BatchView<'_>,
    compression: TopicCompression,
    append_time: Option<i64>,
    max_decompressed: usize,
) -> Result<Vec<u8>, String> {
    let old = batch.bytes();
    let mut attributes = batch.attributes();
    let mut out = BytesMut::with_capacity(old.len());
    out.put_slice(&old[..HEADER_LEN]);
    match compression {
        TopicCompression::Codec(codec) if Some(codec) != batch.compression() => {
            let plain = records::decompressed(batch, max_decompressed).map_err(|e| e.message)?;
            compress(codec, &plain, &mut out)
                .map_err(|e| format!("cannot compress with {codec:?}: {e}"))?;
            attributes = (attributes & !0x07) | codec_bits(codec);
        }
        _ => out.put_slice(batch.records()),
    }
    if let Some(now) = append_time {
        attributes |= 0x08;
        out[35..43].copy_from_slice(&now.to_be_bytes());
    }
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    seal(&mut out);
    Ok(out.to_vec())
}

/// Sets `batchLength` and the CRC of a rebuilt batch (after its other fields are final).
pub(super) fn seal(out: &mut [u8]) {
    let batch_length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::super::batch::tests::build_batch;
    use super::*;

    #[test]
    fn recompression_round_trips_every_record() {
        let b = build_batch(
            0,
            &[
                (Some(b"k1"), Some(b"value one")),
                (None, Some(b"value two")),
            ],
        );
        let view = BatchView::checked(&b).unwrap();
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let out = rewrite(&view, TopicCompression::Codec(codec), None, 1 << 20).unwrap();
            let v = BatchView::checked(&out).unwrap();
            assert_eq!(v.compression(), Some(codec));
            assert_eq!(
                records::decompressed(&v, 1 << 20).unwrap().as_ref(),
                view.records()
            );
            // And back to uncompressed.
            let plain = rewrite(
                &v,
                TopicCompression::Codec(Compression::None),
                None,
                1 << 20,
            )
            .unwrap();
            assert_eq!(&plain[..], &b[..]);
        }
    }

    #[test]
    fn log_append_time_sets_the_type_bit_and_max_timestamp() {
        let b = build_batch(0, &[(None, Some(b"v"))]);
        let view = BatchView::checked(&b).unwrap();
        assert!(needed(&view, TopicCompression::Producer, true));
        assert!(!needed(&view, TopicCompression::Producer, false));
        let out = rewrite(&view, TopicCompression::Producer, Some(777), 1 << 20).unwrap();
        let v = BatchView::checked(&out).unwrap();
        assert!(v.is_log_append_time());
        assert_eq!(v.max_timestamp(), 777);
    }
}
