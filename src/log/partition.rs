//! A partition: its segments, sparse indexes, producer state and high watermark signal.
//! Appends assign offsets by patching `baseOffset` in the header as it is written (the CRC does not
//! cover it), so the stored bytes are otherwise exactly what the producer sent.

use std::collections::BTreeMap;
use std::io::{self, IoSlice};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::producer_state::{ProducerStates, SeqCheck};

use super::batch::BatchView;
use super::dir_failure::LogDirFailures;
use super::rewrite;
use super::segment::Segment;
use super::validate::{decompress_limit, validate, PartitionName, ValidatedBatch};
use super::{AppendError, Checkpoint, LogConfig, LogMetaStore, PartitionKey};

/// The result of a successful append (or of a retried duplicate, answered with its first offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
    pub duplicate: bool,
    /// The flush policy asks for an fsync before this append is acknowledged.
    pub sync_needed: bool,
    /// The broker's timestamp, for LogAppendTime topics.
    pub log_append_time: Option<i64>,
}

pub(super) struct State {
    pub(super) segments: BTreeMap<i64, Segment>,
    pub(super) next_offset: i64,
    pub(super) producers: ProducerStates,
    pub(super) unflushed_messages: u64,
    pub(super) first_unflushed_ms: Option<i64>,
    /// A segment file was created since the last fsync: its directory entry needs one too.
    pub(super) dir_unsynced: bool,
}

/// A sealed segment whose fsync and index are to be persisted, with the checkpoint of its roll.
pub(super) struct SealJob {
    pub(super) base: i64,
    pub(super) file: super::descriptors::SegmentFile,
    pub(super) index: super::SegmentIndex,
    pub(super) checkpoint: Checkpoint,
}

/// The offsets recovery establishes besides the log end.
pub(super) struct Marks {
    pub(super) log_start: i64,
    pub(super) cleaner_checkpoint: Option<i64>,
}

/// What a partition reports to besides its files: its meta store and the broker's log dir health.
pub(super) struct Backing {
    pub(super) meta: Arc<dyn LogMetaStore>,
    pub(super) failures: Arc<LogDirFailures>,
}

pub struct Partition {
    pub key: PartitionKey,
    pub topic: Arc<str>,
    /// The partition's directory (changes only when it moves to another log dir).
    pub(super) dir: Arc<RwLock<PathBuf>>,
    pub(super) config: RwLock<Arc<LogConfig>>,
    pub(super) state: Mutex<State>,
    high_watermark: AtomicI64,
    pub(super) log_start: AtomicI64,
    /// Offset up to which the log is known fsynced; held while syncing so syncs group-commit.
    pub(super) synced: tokio::sync::Mutex<i64>,
    /// Serialises persisting of checkpoints so an older one never overwrites a newer one; holds
    /// the offset below which every sealed segment's persisting is done (the cleaner touches only
    /// those, and holds this while swapping so no index is written for a replaced file).
    pub(super) persist: Arc<Mutex<i64>>,
    pub(super) meta: Arc<dyn LogMetaStore>,
    /// Held by whoever removes or replaces sealed segments (retention, the cleaner, delete-records,
    /// retirement), so they never work on the same segments at once. Appends don't take it: they
    /// only touch the active segment.
    pub(super) maintenance: Mutex<()>,
    /// Serialises writes of the log start offset so a smaller one never overwrites a larger one.
    pub(super) start_writer: Mutex<()>,
    /// Sealed segments waiting to be persisted, in the order they were sealed.
    pub(super) seals: Arc<Mutex<std::collections::VecDeque<SealJob>>>,
    /// Set when the partition's topic is deleted: background work on it stops.
    pub(super) retired: Arc<AtomicBool>,
    /// Offset below which the log is compacted (-1: never cleaned).
    pub(super) cleaner_checkpoint: AtomicI64,
    /// Segment files removed from the log, waiting for `file.delete.delay.ms` before unlinking.
    pub(super) pending_deletes: Mutex<Vec<super::retention::PendingDelete>>,
    /// The broker's offline log dirs: a failed fsync takes this partition's dir offline.
    pub(super) failures: Arc<LogDirFailures>,
}

impl Partition {
    pub(super) fn from_parts(
        key: PartitionKey,
        topic: Arc<str>,
        dir: PathBuf,
        config: LogConfig,
        state: State,
        marks: Marks,
        backing: Backing,
    ) -> Self {
        let Backing { meta, failures } = backing;
        let next = state.next_offset;
        // No sealing is being persisted yet: every sealed segment counts as done.
        let active_base = state.segments.keys().next_back().copied().unwrap_or(next);
        Partition {
            key,
            topic,
            dir: Arc::new(RwLock::new(dir)),
            config: RwLock::new(Arc::new(config)),
            state: Mutex::new(state),
            high_watermark: AtomicI64::new(next),
            log_start: AtomicI64::new(marks.log_start),
            synced: tokio::sync::Mutex::new(next),
            persist: Arc::new(Mutex::new(active_base)),
            meta,
            maintenance: Mutex::new(()),
            start_writer: Mutex::new(()),
            seals: Arc::default(),
            retired: Arc::new(AtomicBool::new(false)),
            cleaner_checkpoint: AtomicI64::new(marks.cleaner_checkpoint.unwrap_or(-1)),
            pending_deletes: Mutex::new(Vec::new()),
            failures,
        }
    }

    /// Whether the partition's log dir is offline after a storage failure (nothing is appended to
    /// or served from it until a restart).
    pub fn is_offline(&self) -> bool {
        self.failures.any() && self.failures.is_offline(&self.dir())
    }

    /// Takes the partition's log dir offline after `what` failed.
    pub(super) fn dir_failed(&self, what: &str, error: &io::Error) {
        self.failures.fail(&self.dir(), what, error);
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory holding the partition's segment files.
    pub fn dir(&self) -> PathBuf {
        self.dir.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn set_dir(&self, dir: PathBuf) {
        *self.dir.write().unwrap_or_else(|p| p.into_inner()) = dir;
    }

    pub fn config(&self) -> Arc<LogConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies changed topic configs; appends from now on follow them.
    pub fn set_config(&self, config: LogConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }
    /// With a single replica and no transactions the log end offset is the high watermark.
    pub fn log_end_offset(&self) -> i64 {
        self.high_watermark()
    }
    /// Bytes of all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.lock().segments.values().map(Segment::size).sum()
    }
    pub fn segment_count(&self) -> usize {
        self.lock().segments.len()
    }

    /// Validates `bytes` as exactly one record batch and appends it at the log end (rewritten only
    /// for a LogAppendTime topic or one whose `compression.type` differs from the batch's).
    pub fn append(&self, bytes: &[u8], now_ms: i64) -> Result<Appended, AppendError> {
        let config = self.config();
        let batch = validate(
            bytes,
            &config,
            now_ms,
            PartitionName(&self.topic, self.key.partition),
        )?;
        let appended = if rewrite::needed(&batch.view, config.compression, config.log_append_time) {
            let stamp = config.log_append_time.then_some(now_ms);
            let rebuilt = rewrite::rewrite(
                &batch.view,
                config.compression,
                stamp,
                decompress_limit(&config),
            )
            .map_err(|m| AppendError::rejected(kafka_protocol::ResponseError::CorruptMessage, m))?;
            let batch = ValidatedBatch {
                view: BatchView::new(&rebuilt).map_err(|_| {
                    AppendError::rejected(
                        kafka_protocol::ResponseError::CorruptMessage,
                        "rewritten batch is malformed",
                    )
                })?,
                max_timestamp_delta: batch.max_timestamp_delta,
            };
            let mut a = self.append_validated(&batch, &config, now_ms)?;
            a.log_append_time = stamp;
            a
        } else {
            self.append_validated(&batch, &config, now_ms)?
        };
        Ok(appended)
    }

    fn append_validated(
        &self,
        batch: &ValidatedBatch<'_>,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Appended, AppendError> {
        let mut rolled = false;
        let result = self.append_locked(&mut self.lock(), batch, config, now_ms, &mut rolled);
        // Persisted outside the state lock (`persist` is taken before it everywhere else).
        if rolled {
            self.persist_sealed();
        }
        result
    }

    fn append_locked(
        &self,
        st: &mut State,
        batch: &ValidatedBatch<'_>,
        config: &LogConfig,
        now_ms: i64,
        rolled: &mut bool,
    ) -> Result<Appended, AppendError> {
        let view = &batch.view;
        if self.is_retired() {
            return Err(AppendError::rejected(
                kafka_protocol::ResponseError::UnknownTopicOrPartition,
                "the topic is being deleted",
            ));
        }
        if self.is_offline() {
            return Err(AppendError::rejected(
                kafka_protocol::ResponseError::KafkaStorageError,
                LogDirFailures::message(&self.dir()),
            ));
        }
        match st.producers.check(view) {
            SeqCheck::Append => {}
            SeqCheck::Duplicate(m) => {
                return Ok(Appended {
                    base_offset: m.base_offset,
                    last_offset: m.last_offset,
                    log_start_offset: self.log_start_offset(),
                    duplicate: true,
                    // A retry of a batch whose first ack may still be waiting for its fsync: under
                    // a message-count flush policy, answer it only once that batch is durable
                    // (an fsync shared with the original, or none if it already is).
                    sync_needed: config.flush_interval_messages != u64::MAX,
                    log_append_time: None,
                });
            }
            SeqCheck::Reject(error) => {
                return Err(AppendError::rejected(
                    error,
                    format!("producer {} rejected: {error:?}", view.producer_id()),
                ))
            }
        }
        let base = st.next_offset;
        let count = i64::from(view.last_offset_delta()) + 1;
        *rolled = self
            .maybe_roll(st, config, view, now_ms)
            .map_err(AppendError::Storage)?;
        let mut header = [0u8; 16];
        header[..8].copy_from_slice(&base.to_be_bytes());
        header[8..12].copy_from_slice(&view.bytes()[8..12]);
        header[12..16].copy_from_slice(&0i32.to_be_bytes()); // partitionLeaderEpoch: our only epoch
        let seg = st
            .segments
            .values_mut()
            .next_back()
            .expect("a partition always has a segment");
        // Failing to open the file (out of descriptors) writes nothing: the produce fails and
        // may be retried, the log dir stays online.
        let file = seg.file().map_err(AppendError::Storage)?;
        let position = match seg.append_to(
            &file,
            &mut [IoSlice::new(&header), IoSlice::new(&view.bytes()[16..])],
        ) {
            Ok(p) => p,
            Err(e) => {
                // Undo a partial write so the file never holds a torn batch while we keep serving.
                let size = seg.size();
                if let Err(t) = seg.truncate_file(&file, size) {
                    // Torn bytes may stay in the file: nothing more is served from this dir.
                    self.dir_failed("undoing a failed append", &t);
                }
                return Err(AppendError::Storage(e));
            }
        };
        let max_ts = view.max_timestamp();
        seg.index_batch(
            position,
            base,
            base + count - 1,
            max_ts,
            base + i64::from(batch.max_timestamp_delta),
            view.size() as u64,
            config.index_interval_bytes,
        );
        st.producers.update(view, base, now_ms);
        st.next_offset = base + count;
        st.unflushed_messages += count as u64;
        let first = *st.first_unflushed_ms.get_or_insert(now_ms);
        let sync_needed = st.unflushed_messages >= config.flush_interval_messages
            || now_ms.saturating_sub(first) >= config.flush_interval_ms;
        self.high_watermark.store(st.next_offset, Ordering::Release);
        Ok(Appended {
            base_offset: base,
            last_offset: base + count - 1,
            log_start_offset: self.log_start_offset(),
            duplicate: false,
            sync_needed,
            log_append_time: None,
        })
    }

    /// Rolls a new active segment before `batch` when the active one is full (`segment.bytes`),
    /// old (`segment.ms`, as Kafka: the batch's timestamp minus the segment's first batch's, or the
    /// segment's age when it has no timestamp) or out of 32-bit relative offsets.
    fn maybe_roll(
        &self,
        st: &mut State,
        config: &LogConfig,
        batch: &BatchView<'_>,
        now_ms: i64,
    ) -> io::Result<bool> {
        let next = st.next_offset;
        let (len, count) = (
            batch.size() as u64,
            i64::from(batch.last_offset_delta()) + 1,
        );
        let active = st
            .segments
            .values()
            .next_back()
            .expect("a partition always has a segment");
        let full = active.size() + len > config.segment_bytes;
        let waited = match active.first_batch_timestamp {
            Some(first) if first >= 0 => batch.max_timestamp().saturating_sub(first),
            _ => now_ms.saturating_sub(active.created_ms),
        };
        let old = waited > config.roll_ms;
        let offsets_overflow = next + count - active.base_offset > i64::from(u32::MAX);
        if active.size() == 0 || !(full || old || offsets_overflow) {
            return Ok(false);
        }
        let mut new = Segment::create(&self.dir(), next, now_ms)?;
        st.dir_unsynced = true;
        new.reserve_ahead(config, st.segments.values().next_back());
        tracing::debug!(topic = %self.topic, partition = self.key.partition, base_offset = next, "rolled segment");
        let sealed = st
            .segments
            .values()
            .next_back()
            .map(|s| (s.base_offset, s.handle(), s.index.clone()));
        st.segments.insert(next, new);
        let checkpoint = Checkpoint {
            snapshot_offset: next,
            producers: st.producers.clone(),
        };
        if let Some((base, file, index)) = sealed {
            self.queue_seal(SealJob {
                base,
                file,
                index,
                checkpoint,
            });
        }
        Ok(true)
    }

    /// Forgets idle producers (`producer.id.expiration.ms`).
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        let ms = self.config().producer_id_expiration_ms;
        self.lock().producers.expire(now_ms, ms)
    }

    /// Fsyncs the active segment and persists every index and the checkpoint (clean shutdown).
    pub fn close(&self) -> io::Result<()> {
        // `persist` before the state lock, as the cleaner's swap takes them.
        let mut last = self.persist.lock().unwrap_or_else(|p| p.into_inner());
        let st = self.lock();
        for seg in st.segments.values() {
            seg.sync()?;
        }
        let indexes: Vec<(i64, &super::SegmentIndex)> =
            st.segments.iter().map(|(b, s)| (*b, &s.index)).collect();
        let checkpoint = Checkpoint {
            snapshot_offset: st.next_offset,
            producers: st.producers.clone(),
        };
        self.meta.save_log(self.key, &indexes, &checkpoint)?;
        *last = checkpoint.snapshot_offset;
        Ok(())
    }

    /// Removes every batch at or above the one holding `offset`; the log end becomes that batch's
    /// base offset (never used on the produce path; kept for the store's interface and tests).
    pub fn truncate_to(&self, offset: i64) -> io::Result<()> {
        let mut st = self.lock();
        if offset >= st.next_offset {
            return Ok(());
        }
        let Some((&base, seg)) = st.segments.range(..=offset).next_back() else {
            return Ok(());
        };
        let slice = seg.slice();
        let (cut, new_end) = match slice.seek(seg.lookup(offset), offset)? {
            Some(h) => (h.position, h.base_offset()),
            None => (seg.size(), st.next_offset),
        };
        let later: Vec<i64> = st.segments.range(base + 1..).map(|(b, _)| *b).collect();
        for b in later {
            if let Some(s) = st.segments.remove(&b) {
                self.meta.remove_segment(self.key, b)?;
                s.retire();
                std::fs::remove_file(s.path())?;
            }
        }
        // Its durable index goes first: recovery would otherwise take the cut for damage and
        // keep the offsets above it from being handed out again.
        self.meta.remove_segment(self.key, base)?;
        let seg = st.segments.get_mut(&base).expect("segment present");
        seg.truncate(cut)?;
        seg.index.offsets.retain(|e| u64::from(e.position) < cut);
        seg.index.times.retain(|e| u64::from(e.position) <= cut);
        seg.index.next_offset = new_end;
        seg.index.indexed_size = cut;
        st.next_offset = new_end;
        st.producers.truncate_to(new_end);
        self.high_watermark.store(new_end, Ordering::Release);
        Ok(())
    }
}
