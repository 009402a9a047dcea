//! Retention on the partition store with injected time: `retention.ms` judged on each segment's
//! largest timestamp, `retention.bytes` per partition, whole segments from the head only, the log
//! start offset advancing durably, files unlinked after `file.delete.delay.ms`, and a crash between
//! the durable log start and the file deletion.

use gregor::log::{LogConfig, Partition, ReadError};
use kafka_protocol::records::Compression;

mod common;

use common::store::{keyed_batch, read_records, Store};

const T0: i64 = 1_700_000_000_000;
const DELAY: i64 = 5_000;

fn config(retention_ms: i64, retention_bytes: i64) -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        retention_ms,
        retention_bytes,
        file_delete_delay_ms: DELAY,
        ..LogConfig::default()
    }
}

/// Appends `n` one-record batches with timestamp `ts`; returns their offsets.
fn append(p: &Partition, n: usize, ts: i64) -> Vec<i64> {
    (0..n)
        .map(|i| {
            let v = format!("value-{ts}-{i}-{}", "x".repeat(100));
            let b = keyed_batch(
                &[(Some(b"k"), Some(v.as_bytes()))],
                ts,
                None,
                Compression::None,
            );
            p.append(&b, ts).unwrap().base_offset
        })
        .collect()
}

fn deleted_files(s: &Store) -> usize {
    s.segment_files()
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".log.deleted"))
        .count()
}

#[test]
fn time_retention_drops_old_segments_and_keeps_recent_ones() {
    let s = Store::new(config(10_000, -1));
    let p = s.open_at(T0);
    let old = append(&p, 20, T0);
    let recent = append(&p, 20, T0 + 20_000);
    let segments = s.log_files().len();
    assert!(segments > 4, "{segments} segments");
    // Nothing is older than 10 s yet.
    assert_eq!(p.enforce_retention(T0 + 9_000).unwrap().segments, 0);
    let out = p.enforce_retention(T0 + 25_000).unwrap();
    assert!(out.segments > 0 && out.bytes > 0, "{out:?}");
    let start = p.log_start_offset();
    // Only whole segments of old records went; every recent record is still there.
    assert!(start <= recent[0] && start > old[0], "log start {start}");
    let left: Vec<i64> = read_records(&p, start).iter().map(|r| r.0).collect();
    assert_eq!(left, (start..=*recent.last().unwrap()).collect::<Vec<_>>());
    assert!(matches!(
        p.read(start - 1, 1000, true),
        Err(ReadError::OffsetOutOfRange)
    ));
    // The files are renamed away, then unlinked once the delay has passed.
    assert_eq!(deleted_files(&s), out.segments);
    assert_eq!(s.log_files().len(), segments - out.segments);
    assert_eq!(p.delete_due_files(T0 + 25_000 + DELAY - 1), 0);
    assert_eq!(p.delete_due_files(T0 + 25_000 + DELAY), out.bytes);
    assert_eq!(deleted_files(&s), 0);
    drop(p);
    let p = s.open_at(T0 + 30_000);
    assert_eq!(p.log_start_offset(), start);
    assert_eq!(read_records(&p, start).len(), left.len());
}

#[test]
fn when_everything_expires_an_empty_segment_is_rolled_at_the_log_end() {
    let s = Store::new(config(1_000, -1));
    let p = s.open_at(T0);
    append(&p, 30, T0);
    let end = p.log_end_offset();
    let segments = s.log_files().len();
    let out = p.enforce_retention(T0 + 60_000).unwrap();
    assert_eq!(out.segments, segments, "the active segment too");
    assert_eq!((p.log_start_offset(), p.log_end_offset()), (end, end));
    assert_eq!(s.log_files().len(), 1);
    assert_eq!(p.size_bytes(), 0);
    // An empty last segment is never deleted again; appends go on at the old log end.
    assert_eq!(p.enforce_retention(T0 + 120_000).unwrap().segments, 0);
    assert_eq!(append(&p, 1, T0 + 120_000), vec![end]);
    drop(p);
    let p = s.open_at(T0 + 130_000);
    assert_eq!((p.log_start_offset(), p.log_end_offset()), (end, end + 1));
}

#[test]
fn size_retention_keeps_the_partition_near_its_cap() {
    let cap = 4_000;
    let s = Store::new(config(-1, cap));
    let p = s.open_at(T0);
    append(&p, 200, T0);
    let before = p.size_bytes();
    p.enforce_retention(T0).unwrap();
    let after = p.size_bytes();
    let files = s.log_files();
    let first = std::fs::metadata(&files[0]).unwrap().len();
    assert!(before > 5 * cap as u64);
    // As Kafka: at or above the cap, but not by a whole segment.
    assert!(
        after >= cap as u64 && after - first < cap as u64,
        "{after} bytes"
    );
    assert_eq!(
        read_records(&p, p.log_start_offset()).last().unwrap().0,
        199
    );
}

#[test]
fn compact_only_logs_ignore_time_and_size_limits() {
    let s = Store::new(LogConfig {
        cleanup_delete: false,
        cleanup_compact: true,
        ..config(1, 1)
    });
    let p = s.open_at(T0);
    append(&p, 50, T0);
    assert_eq!(p.enforce_retention(T0 + 1_000_000).unwrap().segments, 0);
    assert_eq!(p.log_start_offset(), 0);
}

#[test]
fn a_crash_after_the_durable_log_start_finishes_the_deletion_on_recovery() {
    let s = Store::new(config(10_000, -1));
    let p = s.open_at(T0);
    append(&p, 20, T0);
    let recent = append(&p, 20, T0 + 20_000);
    p.enforce_retention(T0 + 25_000).unwrap();
    let start = p.log_start_offset();
    drop(p);
    // As if the broker died right after recording the new log start: the files are back.
    s.undelete();
    let p = s.open_at(T0 + 26_000);
    assert_eq!(p.log_start_offset(), start);
    assert_eq!(read_records(&p, start).first().unwrap().0, start);
    assert!(
        s.log_files().len() < 8,
        "segments below the log start are removed at start-up"
    );
    assert_eq!(p.log_end_offset(), recent.last().unwrap() + 1);
    // And leftover `.deleted` files are unlinked at start-up.
    drop(p);
    let doomed = s.partition_dir().join("00000000000000000001.log.deleted");
    std::fs::write(&doomed, b"old").unwrap();
    let _p = s.open_at(T0 + 27_000);
    assert!(!doomed.exists());
}

#[test]
fn an_idempotent_producers_state_survives_a_crash_in_the_middle_of_a_deletion() {
    let s = Store::new(config(10_000, -1));
    let p = s.open_at(T0);
    // Producer 7's batches are all in segments retention deletes.
    for seq in 0..20 {
        let v = format!("pid-{seq}-{}", "x".repeat(100));
        let b = keyed_batch(
            &[(Some(b"k"), Some(v.as_bytes()))],
            T0,
            Some((7, 0, seq)),
            Compression::None,
        );
        p.append(&b, T0).unwrap();
    }
    append(&p, 20, T0 + 20_000);
    p.enforce_retention(T0 + 25_000).unwrap();
    drop(p);
    s.undelete();
    let p = s.open_at(T0 + 26_000);
    // A retry of its last batch is still recognised; its next batch is accepted.
    let v = format!("pid-19-{}", "x".repeat(100));
    let retry = keyed_batch(
        &[(Some(b"k"), Some(v.as_bytes()))],
        T0,
        Some((7, 0, 19)),
        Compression::None,
    );
    let a = p.append(&retry, T0 + 26_000).unwrap();
    assert!(
        a.duplicate,
        "a retry appended twice: the producer's state was lost"
    );
    assert_eq!(a.base_offset, 19);
    let next = keyed_batch(
        &[(Some(b"k"), Some(b"seq 20"))],
        T0 + 26_000,
        Some((7, 0, 20)),
        Compression::None,
    );
    assert!(!p.append(&next, T0 + 26_000).unwrap().duplicate);
}
