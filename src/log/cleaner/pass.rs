//! One cleaning of one partition (Kafka's `Cleaner.doClean`): map the keys of the dirty range to
//! their latest offsets, then copy every sealed segment below the end of the mapped range, group by
//! group, keeping what the map says survives, and swap each group's copy in (see `swap`). Readers
//! and appends go on meanwhile: the copies are written beside the log, and the partition's lock is
//! held only to exchange segments in memory.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::ops::Range;

use super::super::batch::{self, BatchView};
use super::super::records;
use super::super::segment::{Segment, SegmentSlice};
use super::super::Partition;
use super::filter::{filter_batch, FilterContext, Outcome};
use super::offset_map::OffsetMap;
use super::plan::Cleanable;
use super::swap;
use super::throttle::Throttle;

/// Bytes read from a segment at a time.
const READ_CHUNK: u64 = 1 << 20;
/// Bytes gathered before a write to the cleaned copy.
const WRITE_CHUNK: usize = 1 << 20;

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CleanStats {
    /// Bytes read while mapping and while copying.
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_removed: u64,
    /// Segment bytes before and after, for the segments that were cleaned.
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub segments_before: usize,
    pub segments_after: usize,
    /// The new cleaner checkpoint: everything below it is compacted.
    pub end_offset: i64,
    /// Fraction of the offset map's budget used.
    pub map_utilization: f64,
}

/// What the pass shares with its caller.
pub(super) struct PassEnv<'a> {
    pub(super) now_ms: i64,
    pub(super) map_bytes: usize,
    pub(super) throttle: &'a Throttle,
    /// True when the pass must stop (shutdown, topic deleted).
    pub(super) aborted: &'a dyn Fn() -> bool,
}

fn aborted_error() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "cleaning aborted")
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Calls `f` on every batch of `slice` from `from` (CRC-checked), reading in chunks under the
/// throttle, until `f` returns `false` (then returns `false`) or the slice ends.
fn for_each_batch(
    slice: &SegmentSlice,
    from: u64,
    env: &PassEnv<'_>,
    stats: &mut CleanStats,
    mut f: impl FnMut(BatchView<'_>, &mut CleanStats) -> io::Result<bool>,
) -> io::Result<bool> {
    let mut pos = from;
    while pos < slice.limit {
        if (env.aborted)() {
            return Err(aborted_error());
        }
        let chunk = slice.read_batches(pos, READ_CHUNK, true)?;
        if chunk.is_empty() {
            return Err(corrupt(format!(
                "segment {}: no whole batch at position {pos}",
                slice.base_offset
            )));
        }
        env.throttle.consume(chunk.len() as u64, env.aborted);
        stats.bytes_read += chunk.len() as u64;
        for frame in batch::frames(&chunk) {
            let view = BatchView::checked(frame).map_err(|e| {
                corrupt(format!(
                    "segment {}: bad batch at position {pos}: {e:?}",
                    slice.base_offset
                ))
            })?;
            if !f(view, stats)? {
                return Ok(false);
            }
            pos += frame.len() as u64;
        }
    }
    Ok(true)
}

/// The sealed segments as the pass found them, with the active segment's base after them.
struct Snapshot {
    sealed: Vec<SegmentSlice>,
    active_base: i64,
    /// Where mapping starts in the segment holding the first dirty offset.
    dirty_position: u64,
    last_batch_of_producer: HashMap<i64, i64>,
}

/// The segments a pass may touch: sealed ones whose sealing is persisted, so no index write for
/// them is still pending (the first segment after them stands in for the active one).
fn snapshot(p: &Partition, first_dirty: i64) -> Snapshot {
    let persisted = *p.persist.lock().unwrap_or_else(|p| p.into_inner());
    let st = p.lock();
    let active = *st.segments.keys().next_back().expect("a segment");
    let first = *st.segments.keys().next().expect("a segment");
    // No segment at or below the boundary: none is known persisted, so none is touched.
    let active_base = st
        .segments
        .range(..=persisted.min(active))
        .next_back()
        .map_or(first, |(b, _)| *b);
    Snapshot {
        sealed: st
            .segments
            .range(..active_base)
            .map(|(_, s)| s.slice())
            .collect(),
        active_base,
        dirty_position: st
            .segments
            .range(..=first_dirty)
            .next_back()
            .map_or(0, |(_, s)| s.lookup(first_dirty)),
        last_batch_of_producer: st.producers.last_batch_offsets(),
    }
}

impl Snapshot {
    /// Base offset of the segment after sealed segment `i`.
    fn next_base(&self, i: usize) -> i64 {
        self.sealed
            .get(i + 1)
            .map_or(self.active_base, |s| s.base_offset)
    }
}

/// Maps the keys of `[first_dirty, first_uncleanable)`, stopping when the map is full.
fn build_map(
    snap: &Snapshot,
    c: &Cleanable,
    max_decompressed: usize,
    map: &mut OffsetMap,
    env: &PassEnv<'_>,
    stats: &mut CleanStats,
) -> io::Result<()> {
    for (i, slice) in snap.sealed.iter().enumerate() {
        let next = snap.next_base(i).min(c.first_uncleanable);
        if next <= c.first_dirty {
            continue;
        }
        if slice.base_offset >= c.first_uncleanable {
            break;
        }
        let from = if slice.base_offset <= c.first_dirty {
            snap.dirty_position
        } else {
            0
        };
        let complete = for_each_batch(slice, from, env, stats, |view, _| {
            if view.is_control() || view.record_count() == 0 {
                return Ok(true);
            }
            let body =
                records::decompressed(&view, max_decompressed).map_err(|e| corrupt(e.message))?;
            let count = usize::try_from(view.record_count()).unwrap_or(0);
            let recs = records::parse_stored(&body, count)
                .ok_or_else(|| corrupt(format!("bad records in batch {}", view.base_offset())))?;
            for r in recs {
                let offset = view.base_offset() + i64::from(r.offset_delta);
                if let Some(key) = r.key.filter(|_| offset >= c.first_dirty) {
                    if !map.try_put(key, offset) {
                        return Ok(false);
                    }
                }
            }
            if view.last_offset() >= c.first_dirty {
                map.update_latest(view.last_offset());
            }
            Ok(true)
        })?;
        if !complete {
            break;
        }
        map.update_latest(next - 1);
    }
    Ok(())
}

/// Groups the first `count` sealed segments into runs of at most `max_bytes` whose offsets fit a
/// segment's 32-bit relative index (Kafka's `groupSegmentsBySize`).
fn group_segments(
    bases_and_sizes: &[(i64, u64)],
    end_offset: i64,
    max_bytes: u64,
) -> Vec<Range<usize>> {
    let n = bases_and_sizes
        .iter()
        .take_while(|(b, _)| *b < end_offset)
        .count();
    let mut groups = Vec::new();
    let mut i = 0;
    while i < n {
        let start = i;
        let mut size = bases_and_sizes[i].1;
        i += 1;
        while i < n && size + bases_and_sizes[i].1 <= max_bytes {
            let last_offset = bases_and_sizes
                .get(i + 1)
                .map_or(end_offset - 1, |(b, _)| b - 1);
            if bases_and_sizes[i].1 > 0
                && last_offset - bases_and_sizes[start].0 > i64::from(i32::MAX)
            {
                break;
            }
            size += bases_and_sizes[i].1;
            i += 1;
        }
        groups.push(start..i);
    }
    groups
}

/// Writes the cleaned copy of `group` (fsynced) beside the log.
fn copy_group(
    p: &Partition,
    group: &[SegmentSlice],
    group_end: i64,
    ctx: &FilterContext<'_>,
    env: &PassEnv<'_>,
    stats: &mut CleanStats,
) -> io::Result<Segment> {
    let base = group[0].base_offset;
    let path = swap::cleaned_path(&p.dir(), base);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut out = Segment::create_at(path, base, env.now_ms)?;
    let interval = p.config().index_interval_bytes;
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
    let flush = |out: &mut Segment, buf: &mut Vec<u8>, stats: &mut CleanStats| {
        if buf.is_empty() {
            return Ok(());
        }
        out.append(&mut [IoSlice::new(buf)])?;
        env.throttle.consume(buf.len() as u64, env.aborted);
        stats.bytes_written += buf.len() as u64;
        buf.clear();
        io::Result::Ok(())
    };
    for slice in group {
        for_each_batch(slice, 0, env, stats, |view, stats| {
            let f = filter_batch(&view, ctx).map_err(|e| corrupt(e.message))?;
            stats.records_read += f.records_read;
            stats.records_removed += f.records_removed;
            let bytes: &[u8] = match &f.outcome {
                Outcome::Keep => view.bytes(),
                Outcome::Rewrite(b) => b,
                Outcome::Drop => return Ok(true),
            };
            let position = out.size() + buf.len() as u64;
            out.index_batch(
                position,
                view.base_offset(),
                view.last_offset(),
                f.max_timestamp,
                f.max_timestamp_offset,
                bytes.len() as u64,
                interval,
            );
            buf.extend_from_slice(bytes);
            if buf.len() >= WRITE_CHUNK {
                flush(&mut out, &mut buf, stats)?;
            }
            Ok(true)
        })?;
    }
    flush(&mut out, &mut buf, stats)?;
    out.index.next_offset = group_end;
    out.index.indexed_size = out.size();
    out.sync()?;
    // Keep the group's modification time (retention falls back to it for untimestamped data).
    if let Some(mtime) = group.last().and_then(|s| {
        std::fs::metadata(s.file.path())
            .and_then(|m| m.modified())
            .ok()
    }) {
        let _ = out.file().and_then(|f| f.set_modified(mtime));
    }
    Ok(out)
}

/// Swaps the cleaned copy `out` in for the segments based at `bases` (see `swap` for the steps).
/// Once the swap is committed on disk, memory follows it whatever fails next: the old segments are
/// never served, checkpointed or deleted again in place of the new file.
fn swap_in(p: &Partition, mut out: Segment, bases: &[i64], group_end: i64) -> io::Result<u64> {
    let base = out.base_offset;
    // Held throughout, so a clean shutdown's checkpoint cannot record the replaced indexes.
    let _persist = p.persist.lock().unwrap_or_else(|p| p.into_inner());
    p.forget_segments(bases, group_end)?;
    // Until it is installed the copy is the `.swap` file, which start-up completes (forgetting
    // every index in the group's range).
    out.renamed(swap::commit(&p.dir(), base, group_end)?);
    let index = out.index.clone();
    let file = out.handle();
    // Memory follows before the old files go: a reader from now on finds the copy, and one
    // still holding an old segment keeps reading its file.
    let replaced: Vec<Segment> = {
        let mut st = p.lock();
        let replaced = bases.iter().filter_map(|b| st.segments.remove(b)).collect();
        st.segments.insert(base, out);
        replaced
    };
    for seg in &replaced {
        seg.retire();
    }
    let before = replaced.iter().map(Segment::size).sum();
    swap::install(&p.dir(), base, &bases[1..], |to| file.rename(to))?;
    p.meta
        .replace_segments(p.key, &[], &[(base, &index)], None, None)?;
    Ok(before)
}

/// Cleans `p` over the range `c`; `None` when there was nothing to map. The caller holds the
/// partition's maintenance lock.
pub(super) fn clean(
    p: &Partition,
    c: &Cleanable,
    env: &PassEnv<'_>,
) -> io::Result<Option<CleanStats>> {
    let config = p.config();
    let max_decompressed = super::super::validate::decompress_limit(&config);
    let mut snap = snapshot(p, c.first_dirty);
    let mut stats = CleanStats::default();
    let mut map = OffsetMap::new(env.map_bytes);
    build_map(&snap, c, max_decompressed, &mut map, env, &mut stats)?;
    let end_offset = map.latest_offset() + 1;
    if end_offset <= c.first_dirty {
        return Ok(None);
    }
    stats.end_offset = end_offset;
    stats.map_utilization = map.utilization();
    let ctx = FilterContext {
        map: &map,
        now_ms: env.now_ms,
        delete_retention_ms: config.delete_retention_ms,
        max_decompressed,
        last_batch_of_producer: &snap.last_batch_of_producer,
    };
    let sizes: Vec<(i64, u64)> = snap
        .sealed
        .iter()
        .map(|s| (s.base_offset, s.limit))
        .collect();
    let nexts: Vec<i64> = (0..sizes.len()).map(|i| snap.next_base(i)).collect();
    // Each group's slices are let go before its swap: a replaced segment still held by a reader
    // is kept open for it, and the pass is no such reader.
    let mut sealed = std::mem::take(&mut snap.sealed).into_iter();
    let mut taken = 0;
    for range in group_segments(&sizes, end_offset, config.segment_bytes) {
        let group: Vec<SegmentSlice> = sealed
            .by_ref()
            .take(range.end - taken)
            .skip(range.start - taken)
            .collect();
        taken = range.end;
        let group_end = nexts[range.end - 1];
        let out = match copy_group(p, &group, group_end, &ctx, env, &mut stats) {
            Ok(out) => out,
            Err(e) => {
                let _ = std::fs::remove_file(swap::cleaned_path(&p.dir(), group[0].base_offset));
                return Err(e);
            }
        };
        let after = out.size();
        let bases: Vec<i64> = group.iter().map(|s| s.base_offset).collect();
        drop(group);
        stats.bytes_before += swap_in(p, out, &bases, group_end)?;
        stats.bytes_after += after;
        stats.segments_before += bases.len();
        stats.segments_after += 1;
    }
    p.record_cleaner_checkpoint(end_offset)?;
    Ok(Some(stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_respect_size_and_the_mapped_end() {
        let segs = [
            (0, 400),
            (10, 400),
            (20, 300),
            (30, 900),
            (40, 10),
            (50, 10),
        ];
        // Up to 1000 bytes per group; segment 50 is beyond the end offset 50.
        let g = group_segments(&segs, 50, 1000);
        assert_eq!(g, vec![0..2, 2..3, 3..5]);
        assert_eq!(group_segments(&segs, 15, 1000), vec![0..2]);
        assert_eq!(group_segments(&segs, 0, 1000), Vec::<Range<usize>>::new());
        // Offsets too far apart for one segment's relative index.
        let wide = [(0, 1), (1_000, 1), (2_000, 1), (3_000_000_000, 1)];
        let g = group_segments(&wide, 3_000_000_001, 1000);
        assert_eq!(g, vec![0..2, 2..3, 3..4]);
    }
}
