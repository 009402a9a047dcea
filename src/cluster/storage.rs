//! The quorum's log and state machine, stored in their own sled database (`<data>/quorum`), as
//! openraft's storage traits ask: log entries keyed by index, the vote and the committed log id
//! flushed before openraft is told they are stored; the state machine is the metadata image,
//! rebuilt on start from the last snapshot plus the committed entries openraft applies again.

// openraft's storage traits return its StorageError, which is large; so do the helpers here.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership, Vote,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::sync::watch;

use super::records::MetadataImage;
use super::{NodeId, TypeConfig};

type Result<T> = std::result::Result<T, StorageError<NodeId>>;

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";
const SNAPSHOT: &[u8] = b"snapshot";

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("quorum state serializes")
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// The quorum's directory under the data directory.
pub const DIR: &str = "quorum";

/// Opens the quorum's database under the data directory.
pub fn open(data_dir: &std::path::Path) -> std::io::Result<sled::Db> {
    sled::Config::new()
        .path(data_dir.join(DIR))
        .open()
        .map_err(std::io::Error::other)
}

/// The Raft log: entries in one tree, vote / committed / last purged in another.
#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    state: sled::Tree,
}

impl LogStore {
    pub fn new(db: &sled::Db) -> std::io::Result<LogStore> {
        let tree = |name: &str| db.open_tree(name).map_err(std::io::Error::other);
        Ok(LogStore {
            db: db.clone(),
            log: tree("raft_log")?,
            state: tree("raft_state")?,
        })
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.state.get(key).map_err(|e| StorageIOError::read(&e))? {
            None => Ok(None),
            Some(v) => Ok(Some(decode(&v).map_err(|e| StorageIOError::read(&e))?)),
        }
    }

    async fn put<T: Serialize>(&self, key: &[u8], value: &T) -> Result<()> {
        self.state
            .insert(key, encode(value))
            .map_err(|e| StorageIOError::write(&e))?;
        self.db
            .flush_async()
            .await
            .map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        for kv in self.log.range(start.to_be_bytes()..) {
            let (key, value) = kv.map_err(|e| StorageIOError::read_logs(&e))?;
            let index = u64::from_be_bytes(key.as_ref().try_into().map_err(|_| {
                StorageIOError::read_logs(&std::io::Error::other("a log key is not 8 bytes"))
            })?);
            if !range.contains(&index) {
                break;
            }
            out.push(decode(&value).map_err(|e| StorageIOError::read_log_at_index(index, &e))?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.get(LAST_PURGED)?;
        let last = match self.log.last().map_err(|e| StorageIOError::read_logs(&e))? {
            None => None,
            Some((_, v)) => Some(
                decode::<Entry<TypeConfig>>(&v)
                    .map_err(|e| StorageIOError::read_logs(&e))?
                    .log_id,
            ),
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        self.put(VOTE, vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        self.get(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        self.put(COMMITTED, &committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        Ok(self.get::<Option<LogId<NodeId>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&entry.log_id.index.to_be_bytes(), encode(&entry));
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        // Stored means flushed: openraft counts this entry towards a quorum once told.
        let flushed = self.db.flush_async().await.map(|_| ());
        callback.log_io_completed(flushed.map_err(std::io::Error::other));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.remove(log_id.index.to_be_bytes()..).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.put(LAST_PURGED, &log_id).await?;
        self.remove(..=log_id.index.to_be_bytes()).await
    }
}

impl LogStore {
    async fn remove<R: RangeBounds<[u8; 8]>>(&self, range: R) -> Result<()> {
        let mut batch = sled::Batch::default();
        for kv in self.log.range(range) {
            let (k, _) = kv.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(k);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.db
            .flush_async()
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}

/// A snapshot as stored: openraft's meta and the image.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    image: MetadataImage,
}

/// The state machine: the metadata image, published to the rest of the node on every apply.
#[derive(Clone)]
pub struct StateMachine {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    image: MetadataImage,
    published: Arc<watch::Sender<Arc<MetadataImage>>>,
    state: sled::Tree,
    db: sled::Db,
}

impl StateMachine {
    /// The state machine as of the stored snapshot; `published` sees every later apply.
    pub fn new(
        db: &sled::Db,
        published: Arc<watch::Sender<Arc<MetadataImage>>>,
    ) -> std::io::Result<StateMachine> {
        let state = db.open_tree("raft_state").map_err(std::io::Error::other)?;
        let mut sm = StateMachine {
            last_applied: None,
            membership: StoredMembership::default(),
            image: MetadataImage::default(),
            published,
            state,
            db: db.clone(),
        };
        if let Some(bytes) = sm.state.get(SNAPSHOT).map_err(std::io::Error::other)? {
            let s: StoredSnapshot = decode(&bytes).map_err(std::io::Error::other)?;
            sm.restore(s);
        }
        Ok(sm)
    }

    fn restore(&mut self, s: StoredSnapshot) {
        self.last_applied = s.meta.last_log_id;
        self.membership = s.meta.last_membership;
        self.image = s.image;
        self.published.send_replace(Arc::new(self.image.clone()));
    }

    fn stored(&self) -> Result<Option<StoredSnapshot>> {
        match self
            .state
            .get(SNAPSHOT)
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?
        {
            None => Ok(None),
            Some(b) => Ok(Some(
                decode(&b).map_err(|e| StorageIOError::read_snapshot(None, &e))?,
            )),
        }
    }

    async fn store(&self, s: &StoredSnapshot) -> Result<()> {
        let sig = Some(s.meta.signature());
        self.state
            .insert(SNAPSHOT, encode(s))
            .map_err(|e| StorageIOError::write_snapshot(sig.clone(), &e))?;
        self.db
            .flush_async()
            .await
            .map_err(|e| StorageIOError::write_snapshot(sig, &e))?;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}", l.leader_id, l.index),
            None => "empty".into(),
        };
        let s = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.membership.clone(),
                snapshot_id,
            },
            image: self.image.clone(),
        };
        self.store(&s).await?;
        Ok(Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(encode(&s.image))),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(
        Option<LogId<NodeId>>,
        StoredMembership<NodeId, openraft::BasicNode>,
    )> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(record) => self.image.apply(entry.log_id.index, &record),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            replies.push(());
        }
        self.published.send_replace(Arc::new(self.image.clone()));
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let sig = Some(meta.signature());
        let image: MetadataImage =
            decode(snapshot.get_ref()).map_err(|e| StorageIOError::read_snapshot(sig, &e))?;
        let s = StoredSnapshot {
            meta: meta.clone(),
            image,
        };
        self.store(&s).await?;
        self.restore(s);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        Ok(self.stored()?.map(|s| Snapshot {
            snapshot: Box::new(Cursor::new(encode(&s.image))),
            meta: s.meta,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::testing::{StoreBuilder, Suite};

    /// A fresh store in a temporary directory (kept alive by the suite as its guard).
    struct Fresh;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Fresh {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine)> {
            let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
            let db = open(dir.path()).map_err(|e| StorageIOError::write(&e))?;
            let (tx, _) = watch::channel(Arc::new(MetadataImage::default()));
            let log = LogStore::new(&db).map_err(|e| StorageIOError::write(&e))?;
            let sm = StateMachine::new(&db, Arc::new(tx)).map_err(|e| StorageIOError::write(&e))?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's conformance suite for log and state-machine storage.
    #[test]
    fn the_quorum_store_passes_openraft_storage_suite() {
        Suite::test_all(Fresh).unwrap();
    }

    /// What a restart sees: the vote, the entries and the committed id, as flushed.
    #[test]
    fn a_reopened_store_has_what_was_stored() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let db = open(dir.path()).unwrap();
            let mut log = LogStore::new(&db).unwrap();
            let vote = Vote::new(3, 2);
            log.save_vote(&vote).await.unwrap();
            let id = LogId::new(openraft::CommittedLeaderId::new(3, 2), 1);
            log.save_committed(Some(id)).await.unwrap();
            drop(log);
            drop(db);
            let db = open(dir.path()).unwrap();
            let mut log = LogStore::new(&db).unwrap();
            assert_eq!(log.read_vote().await.unwrap(), Some(vote));
            assert_eq!(log.read_committed().await.unwrap(), Some(id));
        });
    }
}
