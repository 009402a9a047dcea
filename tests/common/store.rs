//! A partition store on a temporary directory, opened (and re-opened, to recover) directly
//! through `gregor::log::Partition`, and record-level helpers for store tests.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor::log::dir_failure::LogDirFailures;
use gregor::log::{LogConfig, Partition, PartitionKey};
use gregor::meta::Meta;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use uuid::Uuid;

pub struct Store {
    pub dir: tempfile::TempDir,
    pub meta: Arc<Meta>,
    pub key: PartitionKey,
    pub config: LogConfig,
    pub failures: Arc<LogDirFailures>,
}

impl Store {
    pub fn new(config: LogConfig) -> Store {
        // Every store test runs with few descriptors, so segments are closed and opened again
        // under reads, appends, retention, compaction and recovery (see `log::descriptors`).
        gregor::log::descriptors::set_cap(16);
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(Meta::open(&dir.path().join("meta")).unwrap());
        Store {
            dir,
            meta,
            key: PartitionKey {
                topic_id: Uuid::new_v4(),
                partition: 0,
            },
            config,
            failures: Arc::new(LogDirFailures::new()),
        }
    }

    pub fn open(&self) -> Partition {
        self.open_at(gregor::log::now_ms())
    }

    pub fn open_at(&self, now_ms: i64) -> Partition {
        Partition::open(
            self.key,
            Arc::from("t"),
            self.partition_dir(),
            self.config.clone(),
            self.meta.clone(),
            self.failures.clone(),
            now_ms,
        )
        .unwrap()
    }

    pub fn partition_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("t-0")
    }

    /// Every file in the partition's directory, sorted.
    pub fn segment_files(&self) -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(self.partition_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    /// Each `.log` file with its bytes (to put back later, as a crash would have left them).
    pub fn copy_log_files(&self) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        self.log_files()
            .into_iter()
            .map(|f| {
                let bytes = std::fs::read(&f).unwrap();
                (f, bytes)
            })
            .collect()
    }

    /// Renames every `*.deleted` file back: the state of a crash right after a deletion recorded
    /// the new log start and before it renamed the files.
    pub fn undelete(&self) {
        for f in self.segment_files() {
            let name = f.to_string_lossy().to_string();
            if let Some(orig) = name.strip_suffix(".deleted") {
                std::fs::rename(&f, orig).unwrap();
            }
        }
    }

    /// The `.log` segment files only.
    pub fn log_files(&self) -> Vec<std::path::PathBuf> {
        self.segment_files()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect()
    }
}

/// A stored record as tests compare them: offset, key, value, timestamp.
pub type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>, i64);

/// A record's key and value (`None`: null).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// One batch of `records` with timestamps `ts, ts+1, ...`.
pub fn keyed_batch(
    records: &[KeyValue<'_>],
    ts: i64,
    producer: Option<(i64, i16, i32)>,
    compression: Compression,
) -> Bytes {
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence stays constant.
            sequence: seq + i as i32,
            timestamp: ts + i as i64,
            key: k.map(Bytes::copy_from_slice),
            value: v.map(Bytes::copy_from_slice),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

/// The records of the batches in `bytes`.
pub fn decode(bytes: &Bytes) -> Vec<Rec> {
    RecordBatchDecoder::decode_all(&mut bytes.clone())
        .unwrap()
        .into_iter()
        .flat_map(|s| s.records)
        .map(|r| {
            (
                r.offset,
                r.key.map(|k| k.to_vec()),
                r.value.map(|v| v.to_vec()),
                r.timestamp,
            )
        })
        .collect()
}

/// Every record from `from` to the log end, reading as a consumer does (gaps allowed).
pub fn read_records(p: &Partition, from: i64) -> Vec<Rec> {
    let mut out: Vec<Rec> = Vec::new();
    let mut next = from;
    while next < p.log_end_offset() {
        let d = p.read(next, 64 << 10, true).unwrap();
        assert!(!d.records.is_empty(), "no data at {next} below the log end");
        let mut last = next - 1;
        for frame in gregor::log::batch::frames(&d.records) {
            let view = gregor::log::batch::BatchView::new(frame).unwrap();
            last = last.max(view.last_offset());
        }
        for r in decode(&d.records) {
            if r.0 >= next {
                out.push(r);
            }
        }
        next = last + 1;
    }
    out
}
