//! Disk space reserved ahead of appends (`gregor::log::preallocate`): only the active segment holds
//! a reservation, a file's length is always exactly its data, sealed segments give the space back
//! (also when a crash left it behind), and recovery, truncation and reads never see it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use gregor::log::{LogConfig, Partition};
use kafka_protocol::records::Compression;

mod common;

use common::store::Store;

const MIB: u64 = 1 << 20;

fn config(preallocate: bool, max: u64) -> LogConfig {
    LogConfig {
        segment_bytes: 4 * MIB,
        preallocate,
        preallocate_max_bytes: max,
        ..LogConfig::default()
    }
}

/// Appends `n` batches of one 100 KiB record with timestamp `ts`; returns their values.
fn append_at(p: &Partition, n: usize, tag: u8, ts: i64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let v = vec![tag.wrapping_add(i as u8); 100 << 10];
            let b = common::store::keyed_batch(&[(None, Some(&v))], ts, None, Compression::None);
            p.append(&b, gregor::log::now_ms()).unwrap();
            v
        })
        .collect()
}

fn append_big(p: &Partition, n: usize, tag: u8) -> Vec<Vec<u8>> {
    append_at(p, n, tag, 1_000)
}

fn logs(s: &Store) -> Vec<PathBuf> {
    s.segment_files()
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "log"))
        .collect()
}

/// Bytes allocated beyond the file's length (rounded to pages).
fn reserved(path: &Path) -> u64 {
    let m = std::fs::metadata(path).unwrap();
    (m.blocks() * 512).saturating_sub(m.len().next_multiple_of(4096))
}

fn values(p: &Partition) -> Vec<Vec<u8>> {
    common::store::read_records(p, 0)
        .into_iter()
        .map(|(_, _, value, _)| value.unwrap())
        .collect()
}

/// Whether the temp dir's file system reserves space (tmpfs, ext4 and XFS do; some do not).
fn supported(s: &Store) -> bool {
    let probe = s.dir.path().join("probe");
    let f = std::fs::File::create(&probe).unwrap();
    let ok = rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::KEEP_SIZE, 0, MIB).is_ok()
        && reserved(&probe) >= MIB / 2;
    std::fs::remove_file(&probe).unwrap();
    if !ok {
        eprintln!("skipping: the file system of the temp dir does not reserve space ahead");
    }
    ok
}

#[test]
fn only_the_active_segment_holds_a_reservation_and_lengths_are_the_data() {
    // Segments roll by time here (segment.ms), so each has reserved well beyond its data.
    let s = Store::new(LogConfig {
        segment_bytes: 64 * MIB,
        roll_ms: 500,
        ..config(false, 256 * MIB)
    });
    if !supported(&s) {
        return;
    }
    let p = s.open();
    let mut want = Vec::new();
    for phase in 0..3i64 {
        // 2.5 MB per segment: reservations of 1, 1 and 2 MiB, the last one partly used.
        want.extend(append_at(&p, 25, phase as u8, 1_000 + phase * 1_000));
        let files = logs(&s);
        assert_eq!(files.len() as i64, phase + 1, "rolled by time");
        let (active, sealed) = files.split_last().unwrap();
        assert!(reserved(active) >= MIB, "the active segment reserves ahead");
        for f in sealed {
            assert!(reserved(f) < MIB / 2, "{f:?} gave its reservation back");
        }
    }
    // Lengths are the data: reads, and a reopen's recovery scan, see every record and nothing else.
    assert_eq!(values(&p), want);
    drop(p); // as after kill -9
    let p = s.open();
    assert_eq!(values(&p), want);
    assert_eq!(p.log_end_offset(), 75);
    want.extend(append_at(&p, 5, 9, 3_000));
    assert_eq!(values(&p), want);
}

#[test]
fn a_sealed_segments_reservation_left_by_a_crash_is_given_back_on_recovery() {
    let s = Store::new(config(false, 256 * MIB));
    if !supported(&s) {
        return;
    }
    let p = s.open();
    let want = append_big(&p, 60, 3);
    drop(p);
    // A crash between the roll and the sealing job: a sealed file still holding space beyond it.
    let first = logs(&s).remove(0);
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&first)
        .unwrap();
    let len = f.metadata().unwrap().len();
    rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::KEEP_SIZE, len, 8 * MIB).unwrap();
    assert!(reserved(&first) >= 8 * MIB);
    let p = s.open();
    assert!(reserved(&first) < MIB / 2, "recovery gave it back");
    assert_eq!(std::fs::metadata(&first).unwrap().len(), len);
    assert_eq!(values(&p), want);
}

#[test]
fn a_torn_tail_inside_the_reservation_is_cut_and_appends_go_on() {
    let s = Store::new(config(false, 256 * MIB));
    if !supported(&s) {
        return;
    }
    let p = s.open();
    let mut want = append_big(&p, 15, 4);
    drop(p);
    let active = logs(&s).pop().unwrap();
    let good = std::fs::metadata(&active).unwrap().len();
    let torn = common::batch(&[b"torn"], None);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&active)
        .unwrap();
    std::io::Write::write_all(&mut f, &torn[..torn.len() / 2]).unwrap();
    drop(f);
    let p = s.open();
    assert_eq!(std::fs::metadata(&active).unwrap().len(), good);
    assert_eq!(values(&p), want);
    want.extend(append_big(&p, 30, 5)); // past the old reservation and into new segments
    assert_eq!(values(&p), want);
    drop(p);
    assert_eq!(values(&s.open()), want);
}

/// `preallocate=true` (any client may set it on a topic) reserves no more than the default: three
/// one-record produces with 1 GiB segments once allocated 3.2 GB. And 0 turns reservations off.
#[test]
fn preallocate_true_costs_no_whole_segment_and_zero_turns_reservations_off() {
    let s = Store::new(LogConfig {
        segment_bytes: 1 << 30,
        ..config(true, 256 * MIB)
    });
    if !supported(&s) {
        return;
    }
    for _ in 0..3 {
        let p = s.open();
        append_big(&p, 1, 6);
        let active = logs(&s).pop().unwrap();
        assert!(reserved(&active) <= MIB, "{} reserved", reserved(&active));
    }

    let s = Store::new(config(false, 0));
    let p = s.open();
    append_big(&p, 50, 7);
    for f in logs(&s) {
        assert!(reserved(&f) < MIB / 2, "{f:?}: nothing reserved");
    }
}

/// All reservations together stay within `gregor.log.preallocate.total.max.bytes`, however many
/// partitions write; past it, appends go on (and read back) without reserving.
#[test]
fn reservations_across_partitions_stay_within_the_total_bound() {
    let budget = 2 * MIB;
    let stores: Vec<Store> = (0..40)
        .map(|_| {
            Store::new(LogConfig {
                preallocate_total_max_bytes: budget,
                ..config(false, 256 * MIB)
            })
        })
        .collect();
    if !supported(&stores[0]) {
        return;
    }
    let parts: Vec<Partition> = stores.iter().map(Store::open).collect();
    let mut want = Vec::new();
    for p in &parts {
        want.push(append_big(p, 3, 9));
    }
    let total: u64 = stores.iter().flat_map(logs).map(|f| reserved(&f)).sum();
    // Each reservation rounds up to whole 64 KiB chunks and pages: allow one chunk per partition.
    assert!(
        total <= budget + 40 * (64 << 10),
        "{total} bytes reserved ahead across 40 partitions, bound {budget}"
    );
    for (p, w) in parts.iter().zip(&want) {
        assert_eq!(&values(p), w);
    }
}
