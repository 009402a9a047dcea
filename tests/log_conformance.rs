//! Conformance suite for the partition store interface (`gregor::log::Partition`): the invariants
//! written in `src/log/mod.rs`, exercised through append, read, log start/end, delete-before,
//! truncate-to, reopen (recovery) and torn-tail handling.

use bytes::Bytes;
use gregor::log::{batch, LogConfig, Partition, ReadError};

mod common;

use common::store::Store;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn values(records: &Bytes) -> Vec<(i64, Vec<u8>)> {
    kafka_protocol::records::RecordBatchDecoder::decode_all(&mut records.clone())
        .unwrap()
        .into_iter()
        .flat_map(|s| {
            s.records
                .into_iter()
                .map(|r| (r.offset, r.value.unwrap().to_vec()))
        })
        .collect()
}

/// Reads everything from `from` to the log end, batch by batch.
fn read_all(p: &Partition, from: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut next = from;
    while next < p.log_end_offset() {
        let d = p.read(next, 1000, true).unwrap();
        assert!(!d.records.is_empty(), "no progress at {next}");
        for (o, v) in values(&d.records) {
            if o >= next {
                out.push((o, v));
            }
        }
        next = out.last().unwrap().0 + 1;
    }
    out
}

fn append_n(p: &Partition, n: usize, tag: &str) -> Vec<i64> {
    (0..n)
        .map(|i| {
            let v = format!("{tag}-{i}-{}", "x".repeat(i % 50));
            let b = common::batch(&[v.as_bytes(), b"second"], None);
            p.append(&b, gregor::log::now_ms()).unwrap().base_offset
        })
        .collect()
}

#[test]
fn offsets_are_dense_across_segment_rolls_and_reads_see_every_record() {
    let s = Store::new(small_segments());
    let p = s.open();
    let bases = append_n(&p, 100, "a");
    assert_eq!(bases, (0..100).map(|i| i * 2).collect::<Vec<_>>());
    assert_eq!(p.log_end_offset(), 200);
    assert!(s.segment_files().len() > 5, "segments should have rolled");
    let all = read_all(&p, 0);
    assert_eq!(
        all.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (0..200).collect::<Vec<_>>()
    );
    // Every starting offset reads from the batch holding it.
    for start in [1, 37, 101, 199] {
        assert_eq!(read_all(&p, start).first().unwrap().0, start);
    }
    assert!(matches!(
        p.read(201, 100, true),
        Err(ReadError::OffsetOutOfRange)
    ));
}

#[test]
fn reopen_after_clean_close_and_after_a_kill_keeps_every_append() {
    let s = Store::new(small_segments());
    let p = s.open();
    append_n(&p, 40, "a");
    p.close().unwrap();
    drop(p);
    let p = s.open();
    assert_eq!(p.log_end_offset(), 80);
    append_n(&p, 40, "b");
    // No close: as after kill -9 (the page cache holds the appends, sled may not).
    drop(p);
    let p = s.open();
    assert_eq!(p.log_end_offset(), 160);
    let all = read_all(&p, 0);
    assert_eq!(all.len(), 160);
    assert!(all[80].1.starts_with(b"b-0-"));
    assert_eq!(append_n(&p, 1, "c"), vec![160]);
}

#[test]
fn a_torn_tail_is_truncated_on_recovery_and_never_served() {
    let s = Store::new(LogConfig::default());
    let p = s.open();
    append_n(&p, 10, "a");
    drop(p);
    let seg = s
        .segment_files()
        .into_iter()
        .find(|f| f.extension().unwrap() == "log")
        .unwrap();
    let good_len = std::fs::metadata(&seg).unwrap().len();
    // Half a batch at the end, as a crash in the middle of a write leaves it.
    let torn = common::batch(&[b"torn"], None);
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &torn[..torn.len() / 2]).unwrap();
    drop(f);
    let p = s.open();
    assert_eq!(p.log_end_offset(), 20);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), good_len);
    assert_eq!(read_all(&p, 0).len(), 20);
    assert_eq!(append_n(&p, 1, "b"), vec![20]);
}

#[test]
fn a_corrupt_batch_cuts_the_log_at_the_last_good_one() {
    let s = Store::new(LogConfig::default());
    let p = s.open();
    append_n(&p, 10, "a");
    drop(p);
    let seg = s.segment_files().into_iter().next().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let sizes: Vec<usize> = batch::frames(&bytes).map(<[u8]>::len).collect();
    let fifth: usize = sizes[..4].iter().sum();
    bytes[fifth + 70] ^= 0xff; // inside the 5th batch's records: its CRC fails
    std::fs::write(&seg, &bytes).unwrap();
    let p = s.open();
    assert_eq!(p.log_end_offset(), 8);
    assert_eq!(read_all(&p, 0).len(), 8);
}

/// A sealed segment damaged on disk (here: cut to half its size) loses only what is damaged: the
/// segments after it stay, no offset is handed out again, and the damaged file is kept aside.
#[test]
fn a_damaged_sealed_segment_takes_nothing_after_it() {
    let s = Store::new(small_segments());
    let p = s.open();
    append_n(&p, 100, "a");
    let before = read_all(&p, 0);
    let end = p.log_end_offset();
    drop(p);
    let logs = s.log_files();
    assert!(logs.len() >= 6, "{} segments", logs.len());
    let second = &logs[1];
    let len = std::fs::metadata(second).unwrap().len();
    let original = std::fs::read(second).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(second)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let second_base: i64 = second
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let third_base: i64 = logs[2]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();

    let p = s.open();
    assert_eq!(p.log_end_offset(), end, "the next offset must not go back");
    let after = read_all(&p, 0);
    // Everything outside the damaged segment is there, exactly.
    let outside = |r: &&(i64, Vec<u8>)| r.0 < second_base || r.0 >= third_base;
    let want: Vec<_> = before.iter().filter(outside).cloned().collect();
    let got: Vec<_> = after.iter().filter(outside).cloned().collect();
    assert_eq!(got, want);
    // Of the damaged segment, a prefix of its records survives.
    let kept: Vec<_> = after.iter().filter(|r| !outside(r)).cloned().collect();
    let had: Vec<_> = before.iter().filter(|r| !outside(r)).cloned().collect();
    assert!(!kept.is_empty() && kept.len() < had.len());
    assert_eq!(kept[..], had[..kept.len()]);
    // The damaged file's bytes are kept aside, not destroyed.
    let aside = second.with_extension("log.damaged");
    assert_eq!(
        std::fs::read(&aside).unwrap(),
        original[..(len / 2) as usize]
    );
    assert_eq!(append_n(&p, 1, "b"), vec![end]);
    drop(p);
    // Recovering again changes nothing.
    let p = s.open();
    assert_eq!(p.log_end_offset(), end + 2);
    assert_eq!(read_all(&p, 0).len(), after.len() + 2);
}

/// The last segment cut below what the meta store durably indexed (or gone altogether): the
/// offsets it had handed out are skipped, never handed out again.
#[test]
fn offsets_lost_to_damage_at_the_end_are_never_reused() {
    for remove in [false, true] {
        let s = Store::new(small_segments());
        let p = s.open();
        append_n(&p, 100, "a");
        let end = p.log_end_offset();
        // A clean shutdown indexes every segment durably (the active one included).
        p.close().unwrap();
        drop(p);
        let last = s.log_files().pop().unwrap();
        if remove {
            std::fs::remove_file(&last).unwrap();
        } else {
            let len = std::fs::metadata(&last).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
            f.set_len(len / 3).unwrap();
        }
        let p = s.open();
        assert_eq!(p.log_end_offset(), end, "removed: {remove}");
        assert_eq!(append_n(&p, 1, "b"), vec![end], "removed: {remove}");
    }
}

#[test]
fn delete_before_moves_the_log_start_and_removes_whole_segments() {
    let s = Store::new(small_segments());
    let p = s.open();
    append_n(&p, 100, "a");
    let files = s.log_files().len();
    p.delete_before(120).unwrap();
    assert_eq!(p.log_start_offset(), 120);
    // The segments below leave the log at once; their files wait for file.delete.delay.ms.
    let gone = files - s.log_files().len();
    assert!(gone > 0);
    let deleted = |s: &Store| {
        s.segment_files()
            .iter()
            .filter(|f| f.to_string_lossy().ends_with(".log.deleted"))
            .count()
    };
    assert_eq!(deleted(&s), gone);
    let delay = s.config.file_delete_delay_ms;
    assert_eq!(p.delete_due_files(gregor::log::now_ms() + delay - 1000), 0);
    assert!(p.delete_due_files(gregor::log::now_ms() + delay) > 0);
    assert_eq!(deleted(&s), 0);
    assert!(matches!(
        p.read(119, 100, true),
        Err(ReadError::OffsetOutOfRange)
    ));
    assert_eq!(read_all(&p, 120).first().unwrap().0, 120);
    drop(p);
    let p = s.open();
    assert_eq!(p.log_start_offset(), 120);
}

#[test]
fn truncate_to_cuts_at_a_batch_boundary() {
    let s = Store::new(small_segments());
    let p = s.open();
    append_n(&p, 50, "a");
    p.truncate_to(41).unwrap();
    assert_eq!(p.log_end_offset(), 40);
    assert_eq!(append_n(&p, 1, "b"), vec![40]);
    drop(p);
    let p = s.open();
    assert_eq!(p.log_end_offset(), 42);
}

#[test]
fn timestamp_lookup_finds_the_first_record_at_or_after() {
    let s = Store::new(small_segments());
    let p = s.open();
    for i in 0..60i64 {
        // Each batch: 2 records at 1000*i + 1000 and +1001 (the helper's timestamps are 1000 + n).
        let b = common::batch(&[b"x", b"y"], None);
        let mut b = b.to_vec();
        let ts = 10_000 * i;
        b[27..35].copy_from_slice(&ts.to_be_bytes());
        b[35..43].copy_from_slice(&(ts + 1).to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        p.append(&b, gregor::log::now_ms()).unwrap();
    }
    assert_eq!(p.offset_for_timestamp(0).unwrap(), Some((0, 0)));
    assert_eq!(p.offset_for_timestamp(1).unwrap(), Some((1, 1)));
    assert_eq!(p.offset_for_timestamp(2).unwrap(), Some((2, 10_000)));
    assert_eq!(
        p.offset_for_timestamp(250_001).unwrap(),
        Some((51, 250_001))
    );
    assert_eq!(p.offset_for_timestamp(10_000_000).unwrap(), None);
    assert_eq!(p.max_timestamp(), Some((119, 590_001)));
}

/// Under a message-count flush policy, a retried duplicate is answered only once its batch is
/// durable, like the original (it was answered at once, possibly before the original's fsync).
#[test]
fn a_retried_duplicate_waits_for_the_fsync_its_original_waits_for() {
    for (messages, wait) in [(1, true), (u64::MAX, false)] {
        let s = Store::new(LogConfig {
            flush_interval_messages: messages,
            ..LogConfig::default()
        });
        let p = s.open();
        let b = common::batch(&[b"once"], Some((7, 0, 0)));
        let first = p.append(&b, gregor::log::now_ms()).unwrap();
        assert!(!first.duplicate);
        assert_eq!(first.sync_needed, wait);
        let again = p.append(&b, gregor::log::now_ms()).unwrap();
        assert!(again.duplicate);
        assert_eq!(again.base_offset, first.base_offset);
        assert_eq!(again.sync_needed, wait, "flush.messages={messages}");
    }
}

/// Regression (a power-cut run of `tests/power_loss.rs` under load): a first segment that kept
/// none of its bytes, followed by a segment the meta store never indexed, left recovery with no
/// segment at all (the empty first one was taken for a deletion that had not finished, and the
/// later one went with the end of the log), and the next append panicked.
#[test]
fn a_log_whose_every_segment_goes_in_recovery_starts_again_with_one() {
    use gregor::log::LogMetaStore;
    let s = Store::new(small_segments());
    let p = s.open();
    append_n(&p, 60, "a");
    drop(p);
    let files = s.log_files();
    assert!(files.len() >= 2, "{files:?}");
    for f in &files {
        let base: i64 = f.file_stem().unwrap().to_string_lossy().parse().unwrap();
        s.meta.remove_segment(s.key, base).unwrap();
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap()
        .set_len(0)
        .unwrap();
    let p = s.open();
    assert_eq!(p.log_end_offset(), 0);
    assert_eq!(append_n(&p, 1, "b"), vec![0]);
    assert_eq!(read_all(&p, 0).len(), 2);
}
