//! Power loss, modelled at every fsync: a partition takes appends (with segment rolls, so sealed
//! segments are fsynced and indexed in the background while appends go on), and at a random moment
//! the "power is cut". What survives is what a disk guarantees: each segment file keeps the bytes
//! it had at its last fsync plus a random part of what was written after (a torn tail), a file
//! whose directory entry was never fsynced may vanish, and the meta store keeps its last flush plus
//! a random prefix of the writes after it (sled's guarantee). The partition is then recovered from
//! that state and must:
//! - with `flush.messages=1`, hold every acknowledged record at its offset, byte for byte;
//! - with any policy, start cleanly and serve a consistent prefix of what was appended (dense
//!   offsets from 0, each record the one appended at that offset), and give the next append an
//!   offset no acknowledged record has.
//!
//! Many cut points per policy, each from a seed printed on failure.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::store::{keyed_batch, read_records};
use common::Rng;
use gregor::log::dir_failure::LogDirFailures;
use gregor::log::sync::SyncObserver;
use gregor::log::{
    Checkpoint, LogConfig, LogMetaStore, Partition, PartitionKey, PersistedLog, SegmentIndex,
};
use kafka_protocol::records::Compression;
use uuid::Uuid;

#[derive(Clone)]
enum MetaOp {
    SaveLog(Vec<(i64, SegmentIndex)>, Checkpoint),
    RemoveSegment(i64),
    Replace(Vec<i64>, Vec<(i64, SegmentIndex)>, Option<i64>, Option<i64>),
    Cleaner(i64),
    RemoveLog,
}

#[derive(Default)]
struct FileState {
    /// Bytes at the last fsync of the file.
    synced_len: u64,
    /// Whether the directory was fsynced after the file was created.
    entry_durable: bool,
}

/// What a power cut at one instant keeps the right to lose.
struct Snapshot {
    files: Vec<(PathBuf, FileState, u64)>,
    durable_ops: usize,
    ops: usize,
}

/// The disk and the meta store as the power sees them: every fsync, file creation and meta write
/// under one lock, so a cut is one instant for both.
#[derive(Default)]
struct World {
    files: HashMap<PathBuf, FileState>,
    ops: Vec<MetaOp>,
    /// Ops below this index are flushed (durable).
    durable: usize,
    cut: Option<Snapshot>,
}

struct Power {
    /// The test's directory: only paths under it are this world's.
    root: PathBuf,
    world: Mutex<World>,
}

impl Power {
    fn new(root: &Path) -> Power {
        Power {
            root: root.to_path_buf(),
            world: Mutex::default(),
        }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }

    fn record(&self, op: MetaOp, flush: bool) {
        let mut w = self.world();
        w.ops.push(op);
        if flush {
            w.durable = w.ops.len();
        }
    }

    /// The cut: from now on nothing is recorded.
    fn cut(&self) {
        let mut w = self.world();
        if w.cut.is_some() {
            return;
        }
        let files = w
            .files
            .iter()
            .map(|(p, f)| {
                let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                (
                    p.clone(),
                    FileState {
                        synced_len: f.synced_len,
                        entry_durable: f.entry_durable,
                    },
                    len,
                )
            })
            .collect();
        w.cut = Some(Snapshot {
            files,
            durable_ops: w.durable,
            ops: w.ops.len(),
        });
    }
}

impl SyncObserver for Power {
    fn before_sync(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
    fn synced_file(&self, path: &Path, len: u64) {
        let mut w = self.world();
        if w.cut.is_none() {
            let f = w.files.entry(path.to_path_buf()).or_default();
            f.synced_len = f.synced_len.max(len);
        }
    }
    fn synced_dir(&self, dir: &Path) {
        let mut w = self.world();
        if w.cut.is_none() {
            for (p, f) in w.files.iter_mut() {
                if p.parent() == Some(dir) {
                    f.entry_durable = true;
                }
            }
        }
    }
    fn created(&self, path: &Path) {
        let mut w = self.world();
        if w.cut.is_none() {
            w.files.insert(path.to_path_buf(), FileState::default());
        }
    }
}

/// Routes the process-wide observer to the world of the test running on this path.
#[derive(Default)]
struct Worlds(Mutex<Vec<Arc<Power>>>);

impl Worlds {
    fn each(&self, path: &Path, f: impl Fn(&Power)) {
        for p in self.0.lock().unwrap().iter() {
            if path.starts_with(&p.root) {
                f(p);
            }
        }
    }
}

impl SyncObserver for Worlds {
    fn before_sync(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
    fn synced_file(&self, path: &Path, len: u64) {
        self.each(path, |p| p.synced_file(path, len));
    }
    fn synced_dir(&self, dir: &Path) {
        self.each(dir, |p| p.synced_dir(dir));
    }
    fn created(&self, path: &Path) {
        self.each(path, |p| p.created(path));
    }
}

static WORLDS: std::sync::OnceLock<Arc<Worlds>> = std::sync::OnceLock::new();

fn power_for(root: &Path) -> Arc<Power> {
    let worlds = WORLDS.get_or_init(|| {
        let w = Arc::new(Worlds::default());
        gregor::log::sync::observe(w.clone());
        w
    });
    let power = Arc::new(Power::new(root));
    worlds.0.lock().unwrap().push(power.clone());
    power
}

/// The meta store as sled keeps it: writes in order, durable at flushes.
struct ModelMeta {
    power: Arc<Power>,
}

fn apply(ops: &[MetaOp]) -> PersistedLog {
    let mut segments: BTreeMap<i64, SegmentIndex> = BTreeMap::new();
    let mut out = PersistedLog::default();
    for op in ops {
        match op {
            MetaOp::SaveLog(segs, cp) => {
                segments.extend(segs.iter().cloned());
                out.checkpoint = Some(cp.clone());
            }
            MetaOp::RemoveSegment(b) => {
                segments.remove(b);
            }
            MetaOp::Replace(removed, added, start, cleaned_to) => {
                for b in removed {
                    segments.remove(b);
                }
                segments.extend(added.iter().cloned());
                if let Some(s) = start {
                    out.log_start_offset = Some(*s);
                }
                if let Some(c) = cleaned_to {
                    out.cleaner_checkpoint = Some(out.cleaner_checkpoint.unwrap_or(-1).max(*c));
                }
            }
            MetaOp::Cleaner(o) => out.cleaner_checkpoint = Some(*o),
            MetaOp::RemoveLog => {
                segments.clear();
                out = PersistedLog::default();
            }
        }
    }
    out.segments = segments.into_iter().collect();
    out
}

impl LogMetaStore for ModelMeta {
    fn load_log(&self, _key: PartitionKey) -> io::Result<PersistedLog> {
        Ok(apply(&self.power.world().ops))
    }
    fn save_log(
        &self,
        _key: PartitionKey,
        segments: &[(i64, &SegmentIndex)],
        checkpoint: &Checkpoint,
    ) -> io::Result<()> {
        let segs = segments.iter().map(|(b, i)| (*b, (*i).clone())).collect();
        self.power
            .record(MetaOp::SaveLog(segs, checkpoint.clone()), false);
        Ok(())
    }
    fn remove_segment(&self, _key: PartitionKey, base_offset: i64) -> io::Result<()> {
        self.power.record(MetaOp::RemoveSegment(base_offset), false);
        Ok(())
    }
    fn replace_segments(
        &self,
        _key: PartitionKey,
        removed: &[i64],
        added: &[(i64, &SegmentIndex)],
        log_start: Option<i64>,
        cleaned_to: Option<i64>,
    ) -> io::Result<()> {
        let added = added.iter().map(|(b, i)| (*b, (*i).clone())).collect();
        self.power.record(
            MetaOp::Replace(removed.to_vec(), added, log_start, cleaned_to),
            true,
        );
        Ok(())
    }
    fn save_cleaner_checkpoint(&self, _key: PartitionKey, offset: i64) -> io::Result<()> {
        self.power.record(MetaOp::Cleaner(offset), false);
        Ok(())
    }
    fn remove_log(&self, _key: PartitionKey) -> io::Result<()> {
        self.power.record(MetaOp::RemoveLog, true);
        Ok(())
    }
}

fn open(dir: &Path, config: &LogConfig, meta: Arc<dyn LogMetaStore>) -> io::Result<Partition> {
    Partition::open(
        PartitionKey {
            topic_id: Uuid::nil(),
            partition: 0,
        },
        Arc::from("t"),
        dir.to_path_buf(),
        config.clone(),
        meta,
        Arc::new(LogDirFailures::new()),
        gregor::log::now_ms(),
    )
}

/// What the appenders saw: every assigned offset's value, and the acknowledged ones.
#[derive(Default)]
struct Seen {
    appended: BTreeMap<i64, Vec<u8>>,
    acked: BTreeMap<i64, Vec<u8>>,
}

/// One run: appends from a few tasks until a cut at a random moment, then recovery and checks.
fn run(seed: u64, flush_messages: u64) {
    eprintln!("power cut run, seed {seed}, flush.messages={flush_messages}");
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let power = power_for(tmp.path());
    let config = LogConfig {
        segment_bytes: 2048 + rng.below(4096) as u64,
        flush_interval_messages: flush_messages,
        index_interval_bytes: 256,
        ..LogConfig::default()
    };
    let meta = Arc::new(ModelMeta {
        power: power.clone(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let partition = Arc::new(open(&dir, &config, meta).unwrap());
    // Creating a topic flushes the meta store before it is acknowledged.
    {
        let mut w = power.world();
        w.durable = w.ops.len();
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stopped = Arc::new(AtomicBool::new(false));
    let cut_after = Duration::from_micros(2_000 + rng.below(40_000) as u64);
    rt.block_on(async {
        let tasks: Vec<_> = (0..3u64)
            .map(|task| {
                let (p, seen, stopped) = (partition.clone(), seen.clone(), stopped.clone());
                let pad = (seed + task) as usize % 200;
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stopped.load(Ordering::Acquire) {
                        let value = format!("{seed}/{task}/{i}/{}", "x".repeat(pad)).into_bytes();
                        i += 1;
                        let batch =
                            keyed_batch(&[(None, Some(&value))], 1, None, Compression::None);
                        let a = match p.append(&batch, gregor::log::now_ms()) {
                            Ok(a) => a,
                            Err(e) => panic!("append failed: {e:?}"),
                        };
                        seen.lock()
                            .unwrap()
                            .appended
                            .insert(a.base_offset, value.clone());
                        if a.sync_needed {
                            p.sync_to(a.last_offset).await.unwrap();
                        }
                        // Acknowledged only if the cut has not happened yet.
                        if !stopped.load(Ordering::Acquire) {
                            seen.lock().unwrap().acked.insert(a.base_offset, value);
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(cut_after).await;
        power.cut();
        stopped.store(true, Ordering::Release);
        for t in tasks {
            t.await.unwrap();
        }
    });
    // Whatever was running in the background finishes (its effects are past the cut).
    drop(partition);
    rt.shutdown_timeout(Duration::from_secs(10));

    // The state the power cut leaves.
    let snapshot = power.world().cut.take().expect("cut");
    for (path, f, len_at_cut) in &snapshot.files {
        if !f.entry_durable && rng.below(2) == 0 {
            let _ = std::fs::remove_file(path);
            continue;
        }
        let keep =
            f.synced_len + rng.below((len_at_cut.saturating_sub(f.synced_len) + 1) as usize) as u64;
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_len(keep.min(*len_at_cut)).unwrap();
    }
    let kept_ops = snapshot.durable_ops + rng.below(snapshot.ops - snapshot.durable_ops + 1);
    let ops = power.world().ops[..kept_ops].to_vec();
    let after = Arc::new(Power::new(Path::new("/nonexistent")));
    after.world().ops = ops;
    let recovered = open(&dir, &config, Arc::new(ModelMeta { power: after })).unwrap_or_else(|e| {
        panic!("seed {seed}: recovery after the power cut failed: {e}");
    });

    let seen = seen.lock().unwrap();
    let records = read_records(&recovered, 0);
    let end = recovered.log_end_offset();
    if records.len() as i64 != end {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().len())
            })
            .collect();
        files.sort();
        let cut: Vec<_> = snapshot
            .files
            .iter()
            .map(|(p, f, len)| {
                (
                    p.file_name().unwrap().to_owned(),
                    f.synced_len,
                    f.entry_durable,
                    *len,
                )
            })
            .collect();
        eprintln!("files now {files:?}\nat the cut (name, synced, entry durable, len) {cut:?}\nmeta ops kept {kept_ops} of {} (durable {})", snapshot.ops, snapshot.durable_ops);
    }
    assert_eq!(
        records.len() as i64,
        end,
        "seed {seed}: offsets are dense from 0 to the log end"
    );
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.0, i as i64, "seed {seed}: offsets are dense");
        assert_eq!(
            r.2.as_deref(),
            seen.appended.get(&r.0).map(Vec::as_slice),
            "seed {seed}: offset {} holds the record appended there",
            r.0
        );
    }
    if flush_messages == 1 {
        for (offset, value) in &seen.acked {
            assert!(
                *offset < end && records[*offset as usize].2.as_deref() == Some(value.as_slice()),
                "seed {seed}: acknowledged offset {offset} lost (log end {end}, {} acked)",
                seen.acked.len()
            );
        }
    }
    eprintln!(
        "seed {seed}: {} appended, {} acknowledged, {end} recovered",
        seen.appended.len(),
        seen.acked.len()
    );
    // The next offset handed out is above every acknowledged one (none is reused).
    let batch = keyed_batch(&[(None, Some(b"after"))], 1, None, Compression::None);
    let next = recovered.append(&batch, gregor::log::now_ms()).unwrap();
    assert_eq!(next.base_offset, end, "seed {seed}");
    if flush_messages == 1 {
        if let Some((last, _)) = seen.acked.iter().next_back() {
            assert!(
                next.base_offset > *last,
                "seed {seed}: offset {last} handed out again"
            );
        }
    }
}

/// Cut points per run (`POWER_LOSS_ROUNDS=10` for a soak).
fn rounds() -> u64 {
    std::env::var("POWER_LOSS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

#[test]
fn every_acknowledged_record_survives_a_power_cut_with_flush_messages_1() {
    for seed in 1..=40 * rounds() {
        run(seed, 1);
    }
}

#[test]
fn any_policy_recovers_a_consistent_prefix_after_a_power_cut() {
    for seed in 10_001..=10_000 + 40 * rounds() {
        run(seed, u64::MAX);
    }
    for seed in 20_001..=20_000 + 20 * rounds() {
        run(seed, 7);
    }
}
