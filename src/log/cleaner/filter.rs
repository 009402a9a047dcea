//! Filtering one stored batch for compaction, as Kafka's `MemoryRecords.filterTo` does for magic v2:
//! a record survives when it carries a key and is the latest record for that key; a tombstone (null
//! value) survives until the batch's delete horizon has passed. A batch keeps its base offset,
//! last offset delta, producer fields and codec; records keep their offsets (gaps are legal). A
//! batch that loses no record is copied byte for byte; one that loses some is re-encoded with a new
//! record count and CRC. The first cleaning of a batch that keeps tombstones stamps it with a delete
//! horizon (KIP-534: attribute bit 6, `baseTimestamp` = horizon, timestamp deltas re-based so every
//! record keeps its timestamp). Control and transactional batches are kept untouched.

use std::collections::HashMap;

use bytes::BytesMut;

use super::super::batch::{BatchView, HEADER_LEN};
use super::super::records::{self, put_bytes, put_varlong, RecordError, RecordRef};
use super::super::rewrite;
use super::offset_map::OffsetMap;

/// Attribute bit of a batch whose `baseTimestamp` is its delete horizon.
const DELETE_HORIZON_FLAG: i16 = 0x40;
/// Attribute bits of the compression codec.
const CODEC_BITS: i16 = 0x07;

/// What becomes of a batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Keep,
    Drop,
    Rewrite(Vec<u8>),
}

#[derive(Debug)]
pub(super) struct Filtered {
    pub(super) outcome: Outcome,
    pub(super) records_read: u64,
    pub(super) records_removed: u64,
    /// Largest retained timestamp and its offset (for the segment's time index).
    pub(super) max_timestamp: i64,
    pub(super) max_timestamp_offset: i64,
}

/// What a cleaning pass filters against.
pub(super) struct FilterContext<'a> {
    pub(super) map: &'a OffsetMap,
    /// The pass's time: tombstones whose horizon is at or before it go.
    pub(super) now_ms: i64,
    pub(super) delete_retention_ms: i64,
    pub(super) max_decompressed: usize,
    /// Producer id → offset of its last appended batch: such a batch is kept, emptied if it has
    /// to be, so the producer's sequence survives a restart (Kafka's `RETAIN_EMPTY`).
    pub(super) last_batch_of_producer: &'a HashMap<i64, i64>,
}

/// The delete horizon a batch carries, if any.
pub(super) fn delete_horizon(view: &BatchView<'_>) -> Option<i64> {
    (view.attributes() & DELETE_HORIZON_FLAG != 0).then(|| view.base_timestamp())
}

/// Filters `view` (as Kafka's `shouldRetainRecord`): a record past the map's range is kept; one
/// without a key is dropped; one with a key is kept if no later record has that key, unless it is a
/// tombstone whose batch's delete horizon has passed.
pub(super) fn filter_batch(
    view: &BatchView<'_>,
    ctx: &FilterContext<'_>,
) -> Result<Filtered, RecordError> {
    let keep_all = |records_read| Filtered {
        outcome: Outcome::Keep,
        records_read,
        records_removed: 0,
        max_timestamp: view.max_timestamp(),
        max_timestamp_offset: view.last_offset(),
    };
    let producer_last = view.producer_id() >= 0
        && ctx.last_batch_of_producer.get(&view.producer_id()) == Some(&view.last_offset());
    if view.is_control() || view.is_transactional() {
        return Ok(keep_all(0));
    }
    if view.record_count() == 0 {
        // An emptied batch stays while its producer's sequence may still be needed.
        let mut f = keep_all(0);
        if !producer_last {
            f.outcome = Outcome::Drop;
        }
        return Ok(f);
    }
    let body = records::decompressed(view, ctx.max_decompressed)?;
    let count = usize::try_from(view.record_count()).unwrap_or(0);
    let all = records::parse_stored(&body, count)
        .ok_or_else(|| RecordError::batch("invalid record structure in a stored batch"))?;
    let horizon = delete_horizon(view);
    let base = view.base_offset();
    let base_ts = view.base_timestamp();
    let latest_mapped = ctx.map.latest_offset();
    let mut kept: Vec<RecordRef<'_>> = Vec::with_capacity(all.len());
    let mut tombstones = false;
    for r in &all {
        let offset = base + i64::from(r.offset_delta);
        if offset > latest_mapped {
            tombstones |= r.value.is_none();
            kept.push(*r);
            continue;
        }
        let Some(key) = r.key else { continue };
        if ctx.map.get(key).is_some_and(|latest| offset < latest) {
            continue;
        }
        if r.value.is_none() {
            if horizon.is_some_and(|h| ctx.now_ms >= h) {
                continue;
            }
            tombstones = true;
        }
        kept.push(*r);
    }
    let removed = (all.len() - kept.len()) as u64;
    let new_horizon = match horizon {
        Some(h) => tombstones.then_some(h),
        None => tombstones.then(|| ctx.now_ms.saturating_add(ctx.delete_retention_ms)),
    };
    let (mut max_ts, mut max_ts_offset) = (-1, view.last_offset());
    for r in &kept {
        let ts = base_ts.wrapping_add(r.timestamp_delta);
        if ts > max_ts {
            max_ts = ts;
            max_ts_offset = base + i64::from(r.offset_delta);
        }
    }
    if view.is_log_append_time() {
        max_ts = view.max_timestamp();
    }
    let outcome = if kept.is_empty() && producer_last {
        Outcome::Rewrite(empty_batch(view))
    } else if kept.is_empty() {
        Outcome::Drop
    } else if removed == 0 && new_horizon == horizon {
        Outcome::Keep
    } else {
        Outcome::Rewrite(rebuild(view, &kept, new_horizon, max_ts).map_err(RecordError::batch)?)
    };
    Ok(Filtered {
        outcome,
        records_read: all.len() as u64,
        records_removed: removed,
        max_timestamp: max_ts,
        max_timestamp_offset: max_ts_offset,
    })
}

/// The batch with its header only: no records, no compression, its offsets, producer fields and
/// largest timestamp kept (Kafka's `writeEmptyHeader`).
fn empty_batch(view: &BatchView<'_>) -> Vec<u8> {
    let mut out = view.bytes()[..HEADER_LEN].to_vec();
    let attributes = view.attributes() & !(CODEC_BITS | DELETE_HORIZON_FLAG);
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    out[27..35].copy_from_slice(&view.max_timestamp().to_be_bytes());
    out[57..61].copy_from_slice(&0i32.to_be_bytes());
    rewrite::seal(&mut out);
    out
}

/// Re-encodes `view` with only `kept`, stamped with `horizon` when it has one.
fn rebuild(
    view: &BatchView<'_>,
    kept: &[RecordRef<'_>],
    horizon: Option<i64>,
    max_ts: i64,
) -> Result<Vec<u8>, String> {
    let old_base_ts = view.base_timestamp();
    let base_ts = horizon.unwrap_or(old_base_ts);
    let mut body = Vec::with_capacity(view.records().len());
    for r in kept {
        let ts = old_base_ts.wrapping_add(r.timestamp_delta);
        encode_record(&mut body, r, ts.wrapping_sub(base_ts));
    }
    let codec = view.compression().ok_or("unknown compression codec")?;
    let mut out = BytesMut::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&view.bytes()[..HEADER_LEN]);
    rewrite::compress(codec, &body, &mut out)
        .map_err(|e| format!("cannot compress with {codec:?}: {e}"))?;
    let mut attributes = view.attributes();
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_FLAG;
    }
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    out[27..35].copy_from_slice(&base_ts.to_be_bytes());
    out[35..43].copy_from_slice(&max_ts.to_be_bytes());
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    rewrite::seal(&mut out);
    Ok(out.to_vec())
}

/// Appends one record (Kafka's `DefaultRecord` layout) with the given timestamp delta.
fn encode_record(out: &mut Vec<u8>, r: &RecordRef<'_>, timestamp_delta: i64) {
    let mut rec = Vec::with_capacity(
        16 + r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len) + r.headers.len(),
    );
    rec.push(r.attributes);
    put_varlong(&mut rec, timestamp_delta);
    put_varlong(&mut rec, i64::from(r.offset_delta));
    put_bytes(&mut rec, r.key);
    put_bytes(&mut rec, r.value);
    rec.extend_from_slice(r.headers);
    put_varlong(out, rec.len() as i64);
    out.extend_from_slice(&rec);
}

#[cfg(test)]
mod tests {
    use super::super::super::batch::tests::build_batch_with;
    use super::super::super::batch::Compression;
    use super::super::super::rewrite::{rewrite, TopicCompression};
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    /// A map of `entries` covering offsets up to 1000.
    fn map(entries: &[(&[u8], i64)]) -> OffsetMap {
        let mut m = OffsetMap::new(1 << 20);
        for (k, o) in entries {
            assert!(m.try_put(k, *o));
        }
        m.update_latest(1000);
        m
    }

    fn run(view: &BatchView<'_>, map: &OffsetMap, now_ms: i64, retention: i64) -> Filtered {
        run_with(view, map, now_ms, retention, &HashMap::new())
    }

    fn run_with(
        view: &BatchView<'_>,
        map: &OffsetMap,
        now_ms: i64,
        delete_retention_ms: i64,
        producers: &HashMap<i64, i64>,
    ) -> Filtered {
        let ctx = FilterContext {
            map,
            now_ms,
            delete_retention_ms,
            max_decompressed: 1 << 20,
            last_batch_of_producer: producers,
        };
        filter_batch(view, &ctx).unwrap()
    }

    /// Offset, key, value, timestamp.
    type Stored = (i64, Option<Vec<u8>>, Option<Vec<u8>>, i64);

    fn stored(bytes: &[u8]) -> Vec<Stored> {
        let v = BatchView::checked(bytes).unwrap();
        let body = records::decompressed(&v, 1 << 20).unwrap();
        records::parse_stored(&body, v.record_count() as usize)
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    v.base_offset() + i64::from(r.offset_delta),
                    r.key.map(<[u8]>::to_vec),
                    r.value.map(<[u8]>::to_vec),
                    v.base_timestamp() + r.timestamp_delta,
                )
            })
            .collect()
    }

    #[test]
    fn keeps_latest_per_key_with_offsets_and_timestamps() {
        let b = build_batch_with(
            100,
            T0,
            -1,
            -1,
            -1,
            &[
                (Some(b"a"), Some(b"1")),
                (Some(b"b"), Some(b"2")),
                (Some(b"a"), Some(b"3")),
                (None, Some(b"keyless")),
            ],
        );
        let view = BatchView::checked(&b).unwrap();
        let f = run(&view, &map(&[(b"a", 102), (b"b", 101)]), T0, 1000);
        assert_eq!((f.records_read, f.records_removed), (4, 2));
        let Outcome::Rewrite(out) = f.outcome else {
            panic!("expected a rewrite")
        };
        let v = BatchView::checked(&out).expect("CRC and framing valid");
        assert_eq!(v.base_offset(), 100);
        assert_eq!(v.last_offset(), 103, "last offset delta kept");
        assert_eq!(v.record_count(), 2);
        let recs = stored(&out);
        assert_eq!(
            recs,
            vec![
                (101, Some(b"b".to_vec()), Some(b"2".to_vec()), T0),
                (102, Some(b"a".to_vec()), Some(b"3".to_vec()), T0),
            ]
        );
    }

    #[test]
    fn untouched_batch_is_kept_and_superseded_batch_dropped() {
        let b = build_batch_with(0, T0, -1, -1, -1, &[(Some(b"k"), Some(b"v"))]);
        let view = BatchView::checked(&b).unwrap();
        assert_eq!(
            run(&view, &map(&[(b"k", 0)]), T0, 1000).outcome,
            Outcome::Keep
        );
        let unknown = run(&view, &map(&[]), T0, 1000);
        assert_eq!(
            unknown.outcome,
            Outcome::Keep,
            "keys not in the map are clean"
        );
        assert_eq!(
            run(&view, &map(&[(b"k", 5)]), T0, 1000).outcome,
            Outcome::Drop
        );
    }

    #[test]
    fn records_past_the_mapped_range_are_kept() {
        let b = build_batch_with(
            2000,
            T0,
            -1,
            -1,
            -1,
            &[(Some(b"k"), Some(b"v")), (None, Some(b"x"))],
        );
        let view = BatchView::checked(&b).unwrap();
        let f = run(&view, &map(&[(b"k", 5000)]), T0, 1000);
        assert_eq!(f.outcome, Outcome::Keep);
    }

    #[test]
    fn a_producers_last_batch_is_kept_empty() {
        let b = build_batch_with(
            10,
            T0,
            77,
            0,
            5,
            &[(Some(b"k"), Some(b"v")), (Some(b"k"), Some(b"w"))],
        );
        let view = BatchView::checked(&b).unwrap();
        let m = map(&[(b"k", 500)]);
        assert_eq!(run(&view, &m, T0, 0).outcome, Outcome::Drop);
        let last = HashMap::from([(77, 11)]);
        let Outcome::Rewrite(empty) = run_with(&view, &m, T0, 0, &last).outcome else {
            panic!("expected an empty batch")
        };
        let v = BatchView::checked(&empty).unwrap();
        assert_eq!(v.record_count(), 0);
        assert_eq!((v.base_offset(), v.last_offset()), (10, 11));
        assert_eq!(
            (v.producer_id(), v.base_sequence(), v.last_sequence()),
            (77, 5, 6)
        );
        assert_eq!(v.compression(), Some(Compression::None));
        assert_eq!(v.size(), HEADER_LEN);
        // It stays while it is the producer's last batch, and goes once it is not.
        assert_eq!(run_with(&v, &m, T0, 0, &last).outcome, Outcome::Keep);
        assert_eq!(run(&v, &m, T0, 0).outcome, Outcome::Drop);
    }

    #[test]
    fn tombstones_get_a_horizon_then_vanish_after_it() {
        let b = build_batch_with(0, T0, -1, -1, -1, &[(Some(b"k"), None)]);
        let view = BatchView::checked(&b).unwrap();
        let m = map(&[(b"k", 0)]);
        let Outcome::Rewrite(stamped) = run(&view, &m, T0 + 10, 5000).outcome else {
            panic!("expected the horizon to be stamped")
        };
        let v = BatchView::checked(&stamped).unwrap();
        assert_eq!(delete_horizon(&v), Some(T0 + 5010));
        assert_eq!(stored(&stamped)[0].3, T0, "record timestamp unchanged");
        assert_eq!(v.max_timestamp(), T0);
        assert_eq!(run(&v, &m, T0 + 5009, 5000).outcome, Outcome::Keep);
        assert_eq!(run(&v, &m, T0 + 5010, 5000).outcome, Outcome::Drop);
    }

    #[test]
    fn compressed_batches_keep_their_codec() {
        let plain = build_batch_with(
            7,
            T0,
            -1,
            -1,
            -1,
            &[(Some(b"x"), Some(b"old")), (Some(b"x"), Some(b"new"))],
        );
        for codec in [
            Compression::Gzip,
            Compression::Lz4,
            Compression::Zstd,
            Compression::Snappy,
        ] {
            let z = rewrite(
                &BatchView::checked(&plain).unwrap(),
                TopicCompression::Codec(codec),
                None,
                1 << 20,
            )
            .unwrap();
            let view = BatchView::checked(&z).unwrap();
            let Outcome::Rewrite(out) = run(&view, &map(&[(b"x", 8)]), T0, 0).outcome else {
                panic!("expected a rewrite")
            };
            let v = BatchView::checked(&out).unwrap();
            assert_eq!(v.compression(), Some(codec));
            let recs = stored(&out);
            assert_eq!(recs.len(), 1);
            assert_eq!((recs[0].0, recs[0].2.as_deref()), (8, Some(&b"new"[..])));
        }
    }
}
