//! Several log dirs (JBOD): new partitions go to the dir with the fewest, start-up finds each where
//! it lives, DescribeLogDirs reports every dir with real sizes, and AlterReplicaLogDirs moves a
//! partition between dirs with appends going on, durably, recovering a half-done move to its
//! source.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::store::keyed_batch;
use common::*;
use kafka_protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const LOG_DIR_NOT_FOUND: i16 = 57;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn dirs(root: &Path) -> (PathBuf, PathBuf) {
    (root.join("a"), root.join("b"))
}

fn overrides(root: &Path) -> Vec<(String, String)> {
    let (a, b) = dirs(root);
    vec![
        (
            "log.dirs".to_string(),
            format!("{},{}", a.display(), b.display()),
        ),
        // Every batch below is 10 ms "younger" than the one before: each gets its own segment.
        ("log.roll.ms".to_string(), "1".to_string()),
    ]
}

async fn start(root: tempfile::TempDir) -> TestBroker {
    let o = overrides(root.path());
    let o: Vec<(&str, &str)> = o.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestBroker::start_in(root, &o).await
}

/// A batch of one record `value`, timestamped `ts`.
fn record(value: &str, ts: i64) -> Bytes {
    keyed_batch(
        &[(Some(b"k".as_slice()), Some(value.as_bytes()))],
        ts,
        None,
        kafka_protocol::records::Compression::None,
    )
}

/// Every (offset, value) of a partition from offset 0, values as text.
async fn read_all(c: &mut Client, topic: &str, partition: i32) -> Vec<(i64, String)> {
    common::read_all(c, topic, partition)
        .await
        .into_iter()
        .map(|(o, v)| (o, String::from_utf8(v).unwrap()))
        .collect()
}

async fn describe(c: &mut Client) -> DescribeLogDirsResponse {
    let mut req = DescribeLogDirsRequest::default();
    req.topics = None; // null: all
    c.request(ApiKey::DescribeLogDirs, 4, &req).await
}

/// log dir → topic → partitions, from DescribeLogDirs.
fn layout(resp: &DescribeLogDirsResponse) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    resp.results
        .iter()
        .map(|r| {
            let topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut ps: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
                    ps.sort();
                    (t.name.0.to_string(), ps)
                })
                .collect();
            (r.log_dir.to_string(), topics)
        })
        .collect()
}

fn canon(p: &Path) -> String {
    std::fs::canonicalize(p).unwrap().display().to_string()
}

async fn alter(c: &mut Client, dir: &str, topic: &str, partitions: Vec<i32>) -> Vec<(i32, i16)> {
    let mut t = AlterReplicaLogDirTopic::default();
    t.name = name(topic);
    t.partitions = partitions;
    let mut d = AlterReplicaLogDir::default();
    d.path = StrBytes::from_string(dir.to_string());
    d.topics = vec![t];
    let mut req = AlterReplicaLogDirsRequest::default();
    req.dirs = vec![d];
    let resp: AlterReplicaLogDirsResponse = c.request(ApiKey::AlterReplicaLogDirs, 2, &req).await;
    resp.results
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
        })
        .collect()
}

/// Waits until DescribeLogDirs shows `topic`-`partition` in `dir`.
async fn wait_in(c: &mut Client, dir: &str, topic: &str, partition: i32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let l = layout(&describe(c).await);
        if l.get(dir)
            .and_then(|ts| ts.get(topic))
            .is_some_and(|ps| ps.contains(&partition))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}-{partition} never reached {dir}: {l:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn partitions_spread_over_log_dirs_and_survive_restart() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = dirs(root.path());
    let broker = start(root).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "spread", 4).await;
    // Kafka's nextLogDirs: the dir with the fewest partitions, ties in configured order.
    for (p, dir) in [(0, &a), (1, &b), (2, &a), (3, &b)] {
        assert!(
            dir.join(format!("spread-{p}")).is_dir(),
            "spread-{p} not in {}",
            dir.display()
        );
    }
    assert!(!a.join("spread-1").exists() && !b.join("spread-0").exists());
    for p in 0..4 {
        for i in 0..3 {
            let (err, _) = produce(
                &mut c,
                "spread",
                p,
                record(&format!("p{p}-{i}"), 1000 + 10 * i),
            )
            .await;
            assert_eq!(err, 0);
        }
    }
    let resp = describe(&mut c).await;
    assert_eq!(resp.results.len(), 2, "{resp:?}");
    let l = layout(&resp);
    assert_eq!(l[&canon(&a)]["spread"], vec![0, 2]);
    assert_eq!(l[&canon(&b)]["spread"], vec![1, 3]);
    for r in &resp.results {
        assert!(r.total_bytes > 0, "{r:?}");
        assert!(
            r.usable_bytes >= 0 && r.usable_bytes <= r.total_bytes,
            "{r:?}"
        );
        for t in &r.topics {
            for p in &t.partitions {
                assert!(p.partition_size > 0, "{p:?}");
            }
        }
    }
    // A topic created next goes to the emptier dir first; CreatePartitions spreads too.
    let root = broker.stop().await;
    let broker = start(root).await;
    let mut c = broker.client().await;
    for p in 0..4 {
        let want: Vec<(i64, String)> = (0..3).map(|i| (i, format!("p{p}-{i}"))).collect();
        assert_eq!(read_all(&mut c, "spread", p).await, want);
    }
    let l = layout(&describe(&mut c).await);
    assert_eq!(l[&canon(&a)]["spread"], vec![0, 2]);
    assert_eq!(l[&canon(&b)]["spread"], vec![1, 3]);
    broker.stop().await;
}

#[tokio::test]
async fn alter_replica_log_dirs_moves_a_partition_with_appends_going_on() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = dirs(root.path());
    let broker = start(root).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "mv", 1).await;
    assert!(a.join("mv-0").is_dir());
    let mut want = Vec::new();
    for i in 0..20 {
        let v = format!("before-{i}");
        let (err, off) = produce(&mut c, "mv", 0, record(&v, 1000 + 10 * i)).await;
        assert_eq!(err, 0);
        want.push((off, v));
    }
    assert!(
        std::fs::read_dir(a.join("mv-0")).unwrap().count() >= 20,
        "one segment per batch"
    );
    // Appends keep going while the partition moves.
    let addr = broker.addr;
    let producer = tokio::spawn(async move {
        let mut c = Client::connect(addr).await;
        let mut acked = Vec::new();
        for i in 0..200 {
            let v = format!("during-{i}");
            let (err, off) = produce(&mut c, "mv", 0, record(&v, 2000 + i)).await;
            assert_eq!(err, 0);
            acked.push((off, v));
        }
        acked
    });
    let bdir = canon(&b);
    assert_eq!(alter(&mut c, &bdir, "mv", vec![0]).await, vec![(0, 0)]);
    wait_in(&mut c, &bdir, "mv", 0).await;
    want.extend(producer.await.unwrap());
    assert!(!a.join("mv-0").exists(), "the old copy is removed");
    assert!(b.join("mv-0").is_dir());
    for i in 0..5 {
        let v = format!("after-{i}");
        let (err, off) = produce(&mut c, "mv", 0, record(&v, 3000 + 10 * i)).await;
        assert_eq!(err, 0);
        want.push((off, v));
    }
    want.sort();
    let offsets: Vec<i64> = want.iter().map(|w| w.0).collect();
    assert_eq!(
        offsets,
        (0..want.len() as i64).collect::<Vec<_>>(),
        "dense offsets"
    );
    assert_eq!(read_all(&mut c, "mv", 0).await, want);
    // Moving to where it is is a no-op success; the move survives a restart.
    assert_eq!(alter(&mut c, &bdir, "mv", vec![0]).await, vec![(0, 0)]);
    let root = broker.stop().await;
    let broker = start(root).await;
    let mut c = broker.client().await;
    assert_eq!(read_all(&mut c, "mv", 0).await, want);
    let l = layout(&describe(&mut c).await);
    assert_eq!(l[&bdir]["mv"], vec![0]);
    assert!(!l[&canon(&a)].contains_key("mv"));
    // And back again.
    let adir = canon(&a);
    assert_eq!(alter(&mut c, &adir, "mv", vec![0]).await, vec![(0, 0)]);
    wait_in(&mut c, &adir, "mv", 0).await;
    assert_eq!(read_all(&mut c, "mv", 0).await, want);
    broker.stop().await;
}

#[tokio::test]
async fn alter_replica_log_dirs_errors_as_kafka() {
    let root = tempfile::tempdir().unwrap();
    let (a, _) = dirs(root.path());
    let broker = start(root).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "err", 1).await;
    for dir in ["/no/such/log/dir", "a", ""] {
        assert_eq!(
            alter(&mut c, dir, "err", vec![0]).await,
            vec![(0, LOG_DIR_NOT_FOUND)],
            "{dir}"
        );
    }
    let adir = canon(&a);
    assert_eq!(
        alter(&mut c, &adir, "nope", vec![0]).await,
        vec![(0, UNKNOWN_TOPIC_OR_PARTITION)]
    );
    assert_eq!(
        alter(&mut c, &adir, "err", vec![7]).await,
        vec![(7, UNKNOWN_TOPIC_OR_PARTITION)]
    );
    // The path is compared as Kafka compares it: exactly, not normalised.
    for dir in [format!("{adir}/"), format!("{adir}/../a")] {
        assert_eq!(
            alter(&mut c, &dir, "err", vec![0]).await,
            vec![(0, LOG_DIR_NOT_FOUND)],
            "{dir}"
        );
    }
    // Already there: success, nothing moves; a partition named twice gets one result.
    assert_eq!(alter(&mut c, &adir, "err", vec![0, 0]).await, vec![(0, 0)]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(a.join("err-0").is_dir());
    broker.stop().await;
}

fn copy_dir(from: &Path, to: &Path, truncate_last: bool) {
    std::fs::create_dir_all(to).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for (i, n) in names.iter().enumerate() {
        let bytes = std::fs::read(from.join(n)).unwrap();
        let keep = if truncate_last && i + 1 == names.len() {
            bytes.len() / 2
        } else {
            bytes.len()
        };
        std::fs::write(to.join(n), &bytes[..keep]).unwrap();
    }
}

async fn topic_with_data(broker: &TestBroker, topic: &str) -> (uuid::Uuid, Vec<(i64, String)>) {
    let mut c = broker.client().await;
    create_topic(&mut c, topic, 1).await;
    let mut want = Vec::new();
    for i in 0..10 {
        let v = format!("v{i}");
        let (err, off) = produce(&mut c, topic, 0, record(&v, 1000 + 10 * i)).await;
        assert_eq!(err, 0);
        want.push((off, v));
    }
    (broker.broker.topics.get(topic).unwrap().id, want)
}

#[tokio::test]
async fn a_half_copied_move_recovers_to_its_source() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = dirs(root.path());
    let broker = start(root).await;
    let (id, want) = topic_with_data(&broker, "half").await;
    let root = broker.stop().await;
    // The state a crash during the copy leaves: a partial `-future` copy, the switch not made.
    let future = b.join(format!("half-0.{}-future", id.simple()));
    copy_dir(&a.join("half-0"), &future, true);
    std::fs::write(future.join("00000000000000000099.log"), b"junk").unwrap();
    // Something that is not gregor's in the second log dir is left alone.
    std::fs::create_dir_all(b.join("not-gregors")).unwrap();
    let broker = start(root).await;
    let mut c = broker.client().await;
    assert_eq!(read_all(&mut c, "half", 0).await, want);
    assert!(!future.exists(), "the unfinished copy is removed");
    assert!(a.join("half-0").is_dir() && !b.join("half-0").exists());
    assert!(b.join("not-gregors").is_dir());
    let (err, off) = produce(&mut c, "half", 0, record("next", 5000)).await;
    assert_eq!((err, off), (0, 10));
    broker.stop().await;
}

#[tokio::test]
async fn a_move_whose_switch_was_recorded_finishes_at_start_up() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = dirs(root.path());
    let broker = start(root).await;
    let (id, want) = topic_with_data(&broker, "sw").await;
    let key = broker.broker.topics.get("sw").unwrap().partitions[0].key;
    let root = broker.stop().await;
    // The state a crash right after the switch leaves: a complete `-future` copy not yet renamed,
    // the new location recorded, the source not yet removed.
    copy_dir(
        &a.join("sw-0"),
        &b.join(format!("sw-0.{}-future", id.simple())),
        false,
    );
    {
        let meta = gregor::meta::Meta::open(&a.join("meta")).unwrap();
        meta.put_placement(
            key,
            &gregor::meta::Placement {
                dir: canon(&b),
                moved_from: Some(canon(&a)),
            },
        )
        .unwrap();
        meta.flush_blocking().unwrap();
    }
    let broker = start(root).await;
    let mut c = broker.client().await;
    assert_eq!(read_all(&mut c, "sw", 0).await, want);
    assert!(b.join("sw-0").is_dir() && !a.join("sw-0").exists());
    let l = layout(&describe(&mut c).await);
    assert_eq!(l[&canon(&b)]["sw"], vec![0]);
    broker.stop().await;
}

#[tokio::test]
async fn a_partition_in_two_log_dirs_stops_start_up() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = dirs(root.path());
    let broker = start(root).await;
    topic_with_data(&broker, "dup").await;
    let root = broker.stop().await;
    copy_dir(&a.join("dup-0"), &b.join("dup-0"), false);
    let mut raw = BTreeMap::new();
    for (k, v) in overrides(root.path()) {
        raw.insert(k, v);
    }
    raw.insert("listeners".into(), "PLAINTEXT://127.0.0.1:0".into());
    let config = gregor::Config::from_map(raw).unwrap();
    let err = tokio::task::spawn_blocking(move || gregor::Broker::open(config).err())
        .await
        .unwrap()
        .expect("start-up refused")
        .to_string();
    assert!(
        err.contains("dup-0") && err.contains("two log dirs"),
        "{err}"
    );
    // Nothing was deleted.
    assert!(a.join("dup-0").is_dir() && b.join("dup-0").is_dir());
}

/// Shutdown waits for a move in progress: the logs are closed after it, and a restart right
/// away finds the partition whole (once, the mover still held the store and the restart failed).
#[tokio::test]
async fn shutdown_waits_for_a_move_in_progress() {
    let mut root = tempfile::tempdir().unwrap();
    let (a, b) = dirs(root.path());
    let mut want = Vec::new();
    for round in 0..6 {
        let broker = start(root).await;
        let mut c = broker.client().await;
        if round == 0 {
            create_topic(&mut c, "busy", 1).await;
            for i in 0..200 {
                let v = format!("v{i}-{}", "x".repeat(2000));
                let (err, base) = produce(&mut c, "busy", 0, record(&v, 1000 + 10 * i)).await;
                assert_eq!(err, 0);
                want.push((base, v));
            }
        }
        assert_eq!(read_all(&mut c, "busy", 0).await, want, "round {round}");
        let to = if a.join("busy-0").is_dir() { &b } else { &a };
        assert_eq!(
            alter(&mut c, &canon(to), "busy", vec![0]).await,
            vec![(0, 0)]
        );
        drop(c);
        root = broker.stop().await;
    }
}

/// Slows the fsyncs under one test's root a little, so seal jobs queue up behind a move.
struct SlowFsyncs(PathBuf);

impl gregor::log::sync::SyncObserver for SlowFsyncs {
    fn before_sync(&self, path: &Path) -> std::io::Result<()> {
        if path.starts_with(&self.0) {
            std::thread::sleep(Duration::from_millis(3));
        }
        Ok(())
    }
    fn synced_file(&self, _: &Path, _: u64) {}
    fn synced_dir(&self, _: &Path) {}
    fn created(&self, _: &Path) {}
}

/// Whether `file` was opened with O_APPEND (Linux ignores pwritev's offset then).
fn opened_for_append(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd())).unwrap();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
        .unwrap();
    flags & 0o2000 != 0
}

/// Seal jobs and flush-policy fsyncs queued before a move finish after it: they work on the
/// partition's new directory (the old one is gone) and never take a log dir offline; the moved
/// segment files are written at positions, not opened for append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_racing_seals_and_fsyncs_never_take_a_log_dir_offline() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = dirs(root.path());
    gregor::log::sync::observe(std::sync::Arc::new(SlowFsyncs(
        root.path().canonicalize().unwrap(),
    )));
    let broker = start(root).await;
    let mut c = broker.client().await;
    let r = create_with(&mut c, "race", &[("flush.messages", "1")]).await;
    assert_eq!(r.topics[0].error_code, 0);
    let addr = broker.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let producer = tokio::spawn(async move {
        let mut c = Client::connect(addr).await;
        let mut acked = Vec::new();
        let mut i = 0i64;
        while !stopping.load(std::sync::atomic::Ordering::Acquire) {
            let v = format!("v{i}");
            let (err, off) = produce(&mut c, "race", 0, record(&v, 1000 + 10 * i)).await;
            assert_eq!(err, 0, "produce {i} refused");
            acked.push((off, v));
            i += 1;
        }
        acked
    });
    let (adir, bdir) = (canon(&a), canon(&b));
    for round in 0..16 {
        let to = if round % 2 == 0 { &bdir } else { &adir };
        assert_eq!(alter(&mut c, to, "race", vec![0]).await, vec![(0, 0)]);
        wait_in(&mut c, to, "race", 0).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    let acked = producer.await.unwrap();
    assert!(
        !broker.broker.store.failures.any(),
        "a log dir went offline"
    );
    assert_eq!(read_all(&mut c, "race", 0).await, acked);
    let part = broker.broker.topics.get("race").unwrap().partitions[0].clone();
    let region = part.read_region(0, 1 << 20, true).unwrap().region.unwrap();
    assert!(
        !opened_for_append(&region.file.get().unwrap()),
        "a moved segment was reopened with O_APPEND"
    );
}
