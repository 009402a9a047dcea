//! A failed fsync takes the log dir offline until restart, as Kafka's LogDirFailureChannel does:
//! after a failed fsync Linux may have dropped the dirty pages while a second fsync "succeeds", so
//! nothing more is acknowledged or served from that dir. Clients get KAFKA_STORAGE_ERROR, Metadata
//! shows the replica offline, DescribeLogDirs the dir's error; a restart recovers what is on disk.

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use kafka_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;

const STORAGE_ERROR: i16 = 56;

/// Fails the next `n` fsyncs under a root (one per test, by path).
#[derive(Default)]
struct FailFsyncs(Mutex<Vec<(PathBuf, Arc<AtomicUsize>)>>);

impl gregor::log::sync::SyncObserver for FailFsyncs {
    fn before_sync(&self, path: &Path) -> io::Result<()> {
        for (root, left) in self.0.lock().unwrap().iter() {
            if path.starts_with(root)
                && left
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok()
            {
                return Err(io::Error::from_raw_os_error(5)); // EIO
            }
        }
        Ok(())
    }
    fn synced_file(&self, _: &Path, _: u64) {}
    fn synced_dir(&self, _: &Path) {}
    fn created(&self, _: &Path) {}
}

fn fail_fsyncs_under(root: &Path) -> Arc<AtomicUsize> {
    static OBSERVER: OnceLock<Arc<FailFsyncs>> = OnceLock::new();
    let o = OBSERVER.get_or_init(|| {
        let o = Arc::new(FailFsyncs::default());
        gregor::log::sync::observe(o.clone());
        o
    });
    let left = Arc::new(AtomicUsize::new(0));
    o.0.lock()
        .unwrap()
        .push((root.canonicalize().unwrap(), left.clone()));
    left
}

/// Fails every directory open for an fsync under a root while its switch is on (out of
/// descriptors), and counts the directories fsynced there; one root per test.
#[derive(Default)]
#[allow(clippy::type_complexity)]
struct FailDirOpens(
    Mutex<
        Vec<(
            PathBuf,
            Arc<std::sync::atomic::AtomicBool>,
            Arc<AtomicUsize>,
        )>,
    >,
);

impl gregor::log::sync::SyncObserver for FailDirOpens {
    fn before_sync(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
    fn synced_file(&self, _: &Path, _: u64) {}
    fn synced_dir(&self, dir: &Path) {
        for (root, _, synced) in self.0.lock().unwrap().iter() {
            if dir.starts_with(root) {
                synced.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
    fn created(&self, _: &Path) {}
    fn before_open_dir(&self, dir: &Path) -> io::Result<()> {
        for (root, on, _) in self.0.lock().unwrap().iter() {
            if dir.starts_with(root) && on.load(Ordering::Acquire) {
                return Err(io::Error::from_raw_os_error(24)); // EMFILE
            }
        }
        Ok(())
    }
}

fn fail_dir_opens_under(root: &Path) -> (Arc<std::sync::atomic::AtomicBool>, Arc<AtomicUsize>) {
    static OBSERVER: OnceLock<Arc<FailDirOpens>> = OnceLock::new();
    let o = OBSERVER.get_or_init(|| {
        let o = Arc::new(FailDirOpens::default());
        gregor::log::sync::observe(o.clone());
        o
    });
    let on = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let synced = Arc::new(AtomicUsize::new(0));
    o.0.lock()
        .unwrap()
        .push((root.canonicalize().unwrap(), on.clone(), synced.clone()));
    (on, synced)
}

/// Out of descriptors, a directory cannot be opened to fsync it: that is no failed fsync. The
/// produce that needed it fails with KAFKA_STORAGE_ERROR, the sealed segment waits to be
/// persisted, and the log dir stays online (it went offline until restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_cannot_be_opened_fails_the_produce_not_the_log_dir() {
    let b = TestBroker::start(&[]).await;
    let (failing, synced_dirs) = fail_dir_opens_under(b.dir.path());
    let mut c = b.client().await;
    // Every append fsynced, and a new segment (a new directory entry) on every append (its
    // timestamp 1 ms or more past the segment's first).
    create_with(&mut c, "t", &[("flush.messages", "1"), ("segment.ms", "1")]).await;
    assert_eq!(produce(&mut c, "t", 0, now_batch(b"v0")).await, (0, 0));
    failing.store(true, Ordering::Release);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (code, _) = produce(&mut c, "t", 0, now_batch(b"v1")).await;
    assert_eq!(code, STORAGE_ERROR);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!b.broker.store.failures.any(), "the log dir went offline");
    // Descriptors back: the sealed segment left waiting is persisted within seconds, with no
    // further produce (its directory fsynced).
    let before = synced_dirs.load(Ordering::Acquire);
    failing.store(false, Ordering::Release);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while synced_dirs.load(Ordering::Acquire) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the sealed segment was never persisted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (code, _) = produce(&mut c, "t", 0, now_batch(b"v2")).await;
    assert_eq!(code, 0);
    assert!(!b.broker.store.failures.any());
    let values: Vec<Vec<u8>> = read_all(&mut c, "t", 0)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values.first().map(Vec::as_slice), Some(&b"v0"[..]));
    assert_eq!(values.last().map(Vec::as_slice), Some(&b"v2"[..]));
}

/// A batch of one record timestamped now.
fn now_batch(v: &[u8]) -> bytes::Bytes {
    common::store::keyed_batch(
        &[(None, Some(v))],
        gregor::log::now_ms(),
        None,
        kafka_protocol::records::Compression::None,
    )
}

fn value_batch(v: &[u8]) -> bytes::Bytes {
    batch(&[v], None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_takes_the_log_dir_offline_until_restart() {
    let b = TestBroker::start(&[("log.flush.interval.messages", "1")]).await;
    let fail = fail_fsyncs_under(b.dir.path());
    let mut c = b.client().await;
    create_topic(&mut c, "t", 1).await;
    assert_eq!(produce(&mut c, "t", 0, value_batch(b"acked")).await, (0, 0));

    // One fsync fails (EIO); every later one would "succeed".
    fail.store(1, Ordering::Release);
    let (code, _) = produce(&mut c, "t", 0, value_batch(b"lost?")).await;
    assert_eq!(code, STORAGE_ERROR, "the produce whose fsync failed");
    let (code, _) = produce(&mut c, "t", 0, value_batch(b"after")).await;
    assert_eq!(
        code, STORAGE_ERROR,
        "nothing is acknowledged from a dir whose fsync failed, even if the next fsync works"
    );
    assert_eq!(fetch(&mut c, "t", 0, 0).await.error_code, STORAGE_ERROR);

    let mut lo = ListOffsetsRequest::default();
    let mut lt = ListOffsetsTopic::default();
    lt.name = name("t");
    let mut lp = ListOffsetsPartition::default();
    lp.timestamp = -1;
    lt.partitions = vec![lp];
    lo.topics = vec![lt];
    let r: ListOffsetsResponse = c.request(ApiKey::ListOffsets, 7, &lo).await;
    assert_eq!(r.topics[0].partitions[0].error_code, STORAGE_ERROR);

    let mut md = MetadataRequest::default();
    let mut mt = MetadataRequestTopic::default();
    mt.name = Some(name("t"));
    md.topics = Some(vec![mt]);
    let r: MetadataResponse = c.request(ApiKey::Metadata, 12, &md).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, ResponseError::LeaderNotAvailable.code());
    assert_eq!(p.leader_id.0, -1);
    assert_eq!(p.offline_replicas.len(), 1);

    let mut dl = DescribeLogDirsRequest::default();
    dl.topics = None;
    let r: DescribeLogDirsResponse = c.request(ApiKey::DescribeLogDirs, 4, &dl).await;
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].error_code, STORAGE_ERROR);
    assert!(r.results[0].topics.is_empty());
    assert!(b
        .broker
        .store
        .failures
        .is_dir_offline(&b.dir.path().canonicalize().unwrap()));

    // A restart recovers the dir from what is on disk; the acknowledged record is there.
    drop(c);
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, &[("log.flush.interval.messages", "1")]).await;
    let mut c = b.client().await;
    let records = read_all(&mut c, "t", 0).await;
    assert_eq!(records[0], (0, b"acked".to_vec()));
    let (code, offset) = produce(&mut c, "t", 0, value_batch(b"again")).await;
    assert_eq!(code, 0);
    assert_eq!(offset, records.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_of_a_sealed_segment_takes_the_log_dir_offline() {
    // No flush policy: the only fsyncs are those of segments sealed by a roll.
    let b = TestBroker::start(&[]).await;
    let fail = fail_fsyncs_under(b.dir.path());
    let mut c = b.client().await;
    let r = create_with(&mut c, "s", &[("segment.bytes", "1048576")]).await;
    assert_eq!(r.topics[0].error_code, 0);
    fail.store(1, Ordering::Release);
    let value = vec![b'x'; 200_000];
    let mut refused = false;
    for _ in 0..50 {
        let (code, _) = produce(&mut c, "s", 0, value_batch(&value)).await;
        if code == STORAGE_ERROR {
            refused = true;
            break;
        }
        assert_eq!(code, 0);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "appends stop once a sealed segment's fsync failed");
    assert_eq!(fetch(&mut c, "s", 0, 0).await.error_code, STORAGE_ERROR);
}
