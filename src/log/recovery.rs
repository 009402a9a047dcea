//! Opening a partition: the segment files are the truth for the payload. Every segment is opened
//! with the index the meta store durably holds for it; every byte beyond that index is scanned,
//! CRC-checked and indexed again.
//!
//! Segments are indexed in offset order, each only once it is fsynced, so the indexed segments are
//! a durable prefix of the log. A torn or corrupt batch beyond that prefix is where the disk's copy
//! of the log ends (a crash's torn tail, or a power cut that took unsynced bytes): as Kafka, the log
//! is truncated there and the unindexed segments after it are removed, so what is served is always
//! a prefix of what was appended, without holes. Damage inside durably indexed bytes (a disk fault,
//! not a crash) costs only what is damaged: the file is kept aside as `<base>.log.damaged`, the
//! segment is served up to the damage, later segments stay, and no offset ever handed out is
//! reused. Producer state is the persisted snapshot plus the scanned batches, or is rebuilt from
//! every batch header when the snapshot does not line up.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{BatchView, HEADER_LEN};
use super::partition::{Backing, Marks, State};
use super::producer_state::ProducerStates;
use super::retention::DELETED_SUFFIX;
use super::segment::{self, Segment, SegmentIndex};
use super::{cleaner, records, Checkpoint, LogConfig, LogMetaStore, Partition, PartitionKey};

/// What a scan of the tail found.
struct Scanned {
    /// Headers of the batches scanned, in order, for rebuilding producer state.
    headers: Vec<([u8; HEADER_LEN], i64)>,
    torn: bool,
}

/// Lists the segment files, unlinking segments a deletion had renamed away.
fn list_segments(dir: &Path) -> io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = segment::parse_file_name(name) {
            bases.push(base);
        } else if name.ends_with(DELETED_SUFFIX) {
            std::fs::remove_file(dir.join(name))?;
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

fn fresh_index(base: i64) -> SegmentIndex {
    SegmentIndex {
        max_timestamp: -1,
        max_timestamp_offset: -1,
        next_offset: base,
        ..SegmentIndex::default()
    }
}

/// Scans `seg` from the end of its index, indexing every valid batch; stops at the first batch
/// that is incomplete, fails its CRC or goes back in offsets (compaction leaves gaps, so a batch
/// may start above the previous one's end).
fn scan_tail(seg: &mut Segment, config: &LogConfig) -> io::Result<Scanned> {
    let slice = seg.slice();
    let mut pos = seg.index.indexed_size;
    let mut headers = Vec::new();
    while let Some(h) = slice.header_at(pos)? {
        if h.base_offset() < seg.index.next_offset {
            break;
        }
        let bytes = slice.read_batch(&h)?;
        let Ok(view) = BatchView::checked(&bytes) else {
            break;
        };
        let mut max_ts_offset = view.last_offset();
        let mut best = i64::MIN;
        let _ = records::walk_stored(&view, 0, |r| {
            if r.timestamp > best {
                best = r.timestamp;
                max_ts_offset = view.base_offset() + i64::from(r.offset_delta);
            }
        });
        seg.index_batch(
            pos,
            view.base_offset(),
            view.last_offset(),
            view.max_timestamp(),
            max_ts_offset,
            h.size(),
            config.index_interval_bytes,
        );
        headers.push((h.bytes, view.base_offset()));
        pos += h.size();
    }
    Ok(Scanned {
        headers,
        torn: pos < seg.size(),
    })
}

/// Replays every batch header of the log into a fresh producer state.
fn rebuild_producers(segments: &BTreeMap<i64, Segment>, now_ms: i64) -> io::Result<ProducerStates> {
    let mut producers = ProducerStates::default();
    for seg in segments.values() {
        let slice = seg.slice();
        let mut pos = 0;
        while let Some(h) = slice.header_at(pos)? {
            producers.update(&BatchView::header_only(&h.bytes), h.base_offset(), now_ms);
            pos += h.size();
        }
    }
    Ok(producers)
}

impl Partition {
    /// Opens (creating if needed) the partition stored in `dir`, recovering as described above.
    pub fn open(
        key: PartitionKey,
        topic: Arc<str>,
        dir: PathBuf,
        config: LogConfig,
        meta: Arc<dyn LogMetaStore>,
        failures: Arc<super::dir_failure::LogDirFailures>,
        now_ms: i64,
    ) -> io::Result<Partition> {
        std::fs::create_dir_all(&dir)?;
        cleaner::finish_interrupted_swaps(&dir, key, meta.as_ref())?;
        let persisted = meta.load_log(key)?;
        let mut indexes: BTreeMap<i64, SegmentIndex> = persisted.segments.into_iter().collect();
        let mut bases = list_segments(&dir)?;
        let hint = persisted.log_start_offset.unwrap_or(0);
        // Whether the meta store has a record of this log (a checkpoint or a log start). Without
        // one, files found here are a log it never recorded: a rebuild after the meta store was
        // lost (or data from an older gregor), whose gaps nothing can explain.
        let recorded = persisted.checkpoint.is_some() || persisted.log_start_offset.is_some();
        if bases.is_empty() {
            Segment::create(&dir, hint, now_ms)?;
            // The first segment's entry is durable before the log is recorded (and before any
            // append): a power cut never keeps later segments and loses the first.
            super::sync::sync_dir(&dir)?;
            bases.push(hint);
            if !recorded {
                // A new log is recorded from its first byte (made durable with the topic).
                meta.save_log(
                    key,
                    &[],
                    &Checkpoint {
                        snapshot_offset: hint,
                        producers: ProducerStates::default(),
                    },
                )?;
            }
        }
        if persisted.log_start_offset.is_some() {
            // Wholly below the durable log start (the next segment starts at or before it): a
            // deletion that did not finish. Removed unread, so the producer snapshot still lines up.
            while bases.len() > 1 && bases[1] <= hint {
                let base = bases.remove(0);
                tracing::info!(topic = %topic, partition = key.partition, base_offset = base, "removing a segment below the log start offset");
                meta.remove_segment(key, base)?;
                indexes.remove(&base);
                std::fs::remove_file(dir.join(segment::file_name(base)))?;
            }
        }
        let mut segments: BTreeMap<i64, Segment> = BTreeMap::new();
        let mut tail_headers = Vec::new();
        let mut scan_start: Option<i64> = None;
        // The highest offset the meta store durably recorded as written (an index's end): the
        // next offset never goes below it, even if the bytes behind it were damaged.
        let mut durable_end = hint;
        // Whether a torn batch in never-indexed bytes of a sealed segment ended the log.
        let mut cut = false;
        for (i, &base) in bases.iter().enumerate() {
            let prev_end = segments.values().next_back().map(|s| s.index.next_offset);
            if prev_end.is_some_and(|end| base < end) {
                // Overlaps the segment before it: a cleaned group's old segment that an interrupted
                // swap left behind (the cleaned copy before it already holds its records).
                tracing::warn!(topic = %topic, partition = key.partition, base_offset = base, "removing a segment overlapping the one before it");
                meta.remove_segment(key, base)?;
                indexes.remove(&base);
                std::fs::remove_file(dir.join(segment::file_name(base)))?;
                continue;
            }
            let durably_indexed = indexes.contains_key(&base);
            if cut && !durably_indexed {
                // Beyond a torn batch in bytes never known fsynced: what follows it was never
                // durable either, and keeping it would leave a hole in the log.
                let seg = Segment::open(&dir, base, fresh_index(base), now_ms)?;
                tracing::warn!(topic = %topic, partition = key.partition, base_offset = base, bytes = seg.size(), "removing a segment written after the torn end of the log (never fsynced; lost with a power cut)");
                std::fs::remove_file(seg.path())?;
                continue;
            }
            let index = indexes.remove(&base).unwrap_or_else(|| fresh_index(base));
            durable_end = durable_end.max(index.next_offset);
            let mut seg = Segment::open(&dir, base, index, now_ms)?;
            let sealed = i + 1 < bases.len();
            let mut damaged = false;
            if seg.index.indexed_size > seg.size() {
                tracing::error!(topic = %topic, partition = key.partition, base_offset = base, "segment shorter than its durable index (damaged on disk); rescanning it");
                seg.index = fresh_index(base);
                damaged = true;
            }
            if seg.index.indexed_size < seg.size() {
                scan_start.get_or_insert(seg.index.next_offset);
                let scanned = scan_tail(&mut seg, &config)?;
                tail_headers.extend(scanned.headers);
                if scanned.torn {
                    let valid = seg.index.indexed_size;
                    if damaged {
                        // Not a crash's torn tail: damage. Its bytes are kept aside before the
                        // segment is cut at the damage; the segments after it stay.
                        let aside = seg.path().with_extension("log.damaged");
                        if !aside.exists() {
                            std::fs::copy(seg.path(), &aside)?;
                            std::fs::File::open(&aside)?.sync_all()?;
                        }
                        tracing::error!(
                            topic = %topic,
                            partition = key.partition,
                            segment = %seg.path().display(),
                            valid_bytes = valid,
                            damaged_bytes = seg.size() - valid,
                            copy = %aside.display(),
                            "damaged batch inside the log: serving the segment up to it; the damaged file is kept aside, the segments after it are kept"
                        );
                    } else {
                        // Beyond what the meta store knows durable (segments are indexed in
                        // order, once fsynced): the end of what reached the disk. As Kafka, the
                        // log ends here and unindexed segments after it go.
                        tracing::warn!(
                            topic = %topic,
                            partition = key.partition,
                            segment = %seg.path().display(),
                            valid_bytes = valid,
                            dropped_bytes = seg.size() - valid,
                            "torn or corrupt batch beyond the durable end of the log: truncating it"
                        );
                        cut |= sealed;
                    }
                    seg.truncate(valid)?;
                }
            }
            let last_offset = seg.index.next_offset;
            if let Some(&next_base) = bases.get(i + 1) {
                // A segment is sealed at exactly the next one's base, so a never-indexed sealed
                // segment that ends short of it lost its tail to a power cut at a batch boundary
                // (no torn batch to see), while bytes of later segments survived: the log ends
                // here too. Gaps the log legitimately has are left alone: compaction's (cleaned
                // segments are indexed, and below the cleaner checkpoint), damage's and missing
                // indexed files' (their indexes cover the gap), and a rebuilt log's (no
                // persisted state at all).
                let unexplained_gap = !cut
                    && recorded
                    && !durably_indexed
                    && last_offset < next_base
                    && next_base > persisted.cleaner_checkpoint.unwrap_or(-1)
                    && indexes.range(last_offset..next_base).next().is_none();
                if unexplained_gap {
                    tracing::warn!(
                        topic = %topic,
                        partition = key.partition,
                        segment = %seg.path().display(),
                        from = last_offset,
                        to = next_base,
                        "a segment never fsynced ends short of the next one: the log ends there (what followed was lost with a power cut)"
                    );
                    cut = true;
                }
            }
            segments.insert(base, seg);
            if last_offset <= hint && bases.get(i + 1).is_some() && !cut {
                // Wholly below the log start offset: a deletion that did not finish. (Not when the
                // log ends here: the segments after it are going, and this one is the log.)
                let seg = segments.remove(&base).expect("just inserted");
                meta.remove_segment(key, base)?;
                std::fs::remove_file(seg.path())?;
            }
        }
        // A segment the meta store knows but whose file is gone: its offsets are lost (and count
        // towards the durable end).
        for (base, stale) in &indexes {
            if stale.next_offset > *base && stale.next_offset > hint {
                tracing::error!(topic = %topic, partition = key.partition, base_offset = base, from = base, to = stale.next_offset, "a segment file the meta store indexed is missing: its offsets are lost");
            }
            durable_end = durable_end.max(stale.next_offset);
        }
        // Damage cut the last segment below what was durably written: the offsets in between
        // were handed out, so appends go on after them (in a new segment), never reusing one.
        let end = segments
            .values()
            .next_back()
            .map_or(hint, |s| s.index.next_offset);
        if end < durable_end {
            tracing::error!(topic = %topic, partition = key.partition, from = end, to = durable_end, "offsets lost to damage are skipped, not reused");
            let seg = Segment::create(&dir, durable_end, now_ms)?;
            segments.insert(durable_end, seg);
        } else if segments.is_empty() {
            // Every segment file went (a power cut took them all): the log starts again where it
            // was known to start.
            let seg = Segment::create(&dir, end, now_ms)?;
            super::sync::sync_dir(&dir)?;
            segments.insert(end, seg);
        }
        for stale in indexes.keys() {
            meta.remove_segment(key, *stale)?;
        }
        // Only the active segment keeps space reserved ahead of it; a crash may have left a
        // sealed one's reservation behind.
        if let Some((_, active)) = segments.iter_mut().next_back() {
            active.reserve_ahead(&config, None);
        }
        for seg in segments.values().rev().skip(1) {
            if super::preallocate::release_beyond_eof(&*seg.file()?)? {
                tracing::info!(topic = %topic, partition = key.partition, base_offset = seg.base_offset, "gave back space reserved beyond a sealed segment");
            }
        }
        let next_offset = segments
            .values()
            .next_back()
            .map_or(hint, |s| s.index.next_offset);
        // A persisted log start is the truth (it is durable before any segment below it is
        // deleted; compaction may have emptied the first segments without moving it).
        let first_base = segments.keys().next().copied().unwrap_or(hint);
        let log_start = persisted
            .log_start_offset
            .unwrap_or(first_base)
            .min(next_offset);
        let mut cleaner_checkpoint = persisted.cleaner_checkpoint;
        if !recorded && next_offset > hint {
            // An unrecorded log may be compacted anywhere: its gaps stay legitimate on every
            // later start (the cleaner takes it as cleaned up to here), and it is recorded now.
            let cp = cleaner_checkpoint.unwrap_or(-1).max(next_offset);
            meta.save_cleaner_checkpoint(key, cp)?;
            cleaner_checkpoint = Some(cp);
        }
        let producers = match (persisted.checkpoint, scan_start) {
            (Some(cp), Some(start)) if cp.snapshot_offset == start => {
                let mut p = cp.producers;
                for (h, base) in &tail_headers {
                    p.update(&BatchView::header_only(h), *base, now_ms);
                }
                p
            }
            (Some(cp), None) if cp.snapshot_offset == next_offset => cp.producers,
            _ => rebuild_producers(&segments, now_ms)?,
        };
        if scan_start.is_some() {
            tracing::info!(topic = %topic, partition = key.partition, next_offset, "recovered partition log");
        }
        if !recorded && next_offset > hint {
            meta.save_log(
                key,
                &[],
                &Checkpoint {
                    snapshot_offset: next_offset,
                    producers: producers.clone(),
                },
            )?;
        }
        let state = State {
            segments,
            next_offset,
            producers,
            unflushed_messages: 0,
            first_unflushed_ms: None,
            dir_unsynced: true,
        };
        Ok(Partition::from_parts(
            key,
            topic,
            dir,
            config,
            state,
            Marks {
                log_start,
                cleaner_checkpoint,
            },
            Backing { meta, failures },
        ))
    }
}
