//! The sled database: topics and their ids and configs, per-partition segment indexes, producer
//! snapshots and log start offsets, groups with their offsets and dynamic configs, and the
//! producer-id counter. Keys are big-endian so byte order is numeric order; each logical change
//! is one sled batch. Anything acknowledged to a client that lives only here (topic creation,
//! group configs, InitProducerId) is flushed before the acknowledgement.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::group::offsets::Committed;
use crate::group::Member;
use crate::log::{Checkpoint, LogMetaStore, PartitionKey, PersistedLog, SegmentIndex};

const KIND_CHECKPOINT: u8 = 0;
const KIND_SEGMENT: u8 = 1;
const KIND_LOG_START: u8 = 2;
const KIND_CLEANER: u8 = 3;

/// A topic as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    /// Topic-level config overrides (Kafka names).
    pub configs: BTreeMap<String, String>,
}

/// A consumer group's metadata as persisted (what Kafka's group metadata record holds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRecord {
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub state_since: i64,
    pub members: Vec<Member>,
}

/// Where a partition's log lives: one of `log.dirs`, and while a move between log dirs is being
/// finished, the directory it left (whose copy is stale once this record is durable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub dir: String,
    pub moved_from: Option<String>,
}

pub struct Meta {
    db: sled::Db,
    placements: sled::Tree,
    topics: sled::Tree,
    logs: sled::Tree,
    broker: sled::Tree,
    groups: sled::Tree,
    offsets: sled::Tree,
    /// Dynamic group configs (config resource type GROUP): group id -> its configs.
    group_configs: sled::Tree,
}

/// Offsets key: group and topic length-prefixed (any bytes allowed), then the partition.
fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = offset_prefix(group);
    k.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    k.extend_from_slice(topic.as_bytes());
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

fn offset_prefix(group: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.len() + 2);
    k.extend_from_slice(&(group.len() as u16).to_be_bytes());
    k.extend_from_slice(group.as_bytes());
    k
}

fn parse_offset_key(k: &[u8]) -> Option<(String, String, i32)> {
    let glen = u16::from_be_bytes(k.get(..2)?.try_into().ok()?) as usize;
    let group = std::str::from_utf8(k.get(2..2 + glen)?).ok()?.to_string();
    let rest = k.get(2 + glen..)?;
    let tlen = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize;
    let topic = std::str::from_utf8(rest.get(2..2 + tlen)?)
        .ok()?
        .to_string();
    let partition = i32::from_be_bytes(rest.get(2 + tlen..6 + tlen)?.try_into().ok()?);
    Some((group, topic, partition))
}

fn to_io(e: sled::Error) -> io::Error {
    match e {
        sled::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

fn encode<T: Serialize>(v: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(v).map_err(io::Error::other)
}

fn decode<'a, T: Deserialize<'a>>(b: &'a [u8]) -> io::Result<T> {
    postcard::from_bytes(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn log_prefix(key: PartitionKey) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(key.topic_id.as_bytes());
    k[16..].copy_from_slice(&key.partition.to_be_bytes());
    k
}

fn log_key(key: PartitionKey, kind: u8, base: i64) -> [u8; 29] {
    let mut k = [0u8; 29];
    k[..20].copy_from_slice(&log_prefix(key));
    k[20] = kind;
    k[21..].copy_from_slice(&base.to_be_bytes());
    k
}

impl Meta {
    pub fn open(dir: &Path) -> io::Result<Meta> {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(to_io)?;
        Ok(Meta {
            topics: db.open_tree("topics").map_err(to_io)?,
            logs: db.open_tree("logs").map_err(to_io)?,
            broker: db.open_tree("broker").map_err(to_io)?,
            groups: db.open_tree("groups").map_err(to_io)?,
            offsets: db.open_tree("offsets").map_err(to_io)?,
            placements: db.open_tree("placements").map_err(to_io)?,
            group_configs: db.open_tree("group_configs").map_err(to_io)?,
            db,
        })
    }

    /// Makes every change so far durable.
    pub async fn flush(&self) -> io::Result<()> {
        let started = std::time::Instant::now();
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(io::Error::other)?
            .map_err(to_io)?;
        metrics::histogram!("gregor_meta_flush_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }

    pub fn flush_blocking(&self) -> io::Result<()> {
        self.db.flush().map(|_| ()).map_err(to_io)
    }

    /// The database, for stores that keep a tree of their own (SCRAM credentials).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    pub fn topics(&self) -> io::Result<Vec<TopicRecord>> {
        self.topics
            .iter()
            .values()
            .map(|v| decode(&v.map_err(to_io)?))
            .collect()
    }

    /// Records a topic (not yet durable: call [`Meta::flush`] before acknowledging).
    pub fn put_topic(&self, topic: &TopicRecord) -> io::Result<()> {
        self.topics
            .insert(topic.name.as_bytes(), encode(topic)?)
            .map_err(to_io)?;
        Ok(())
    }

    /// Forgets a topic and everything persisted about its partitions.
    pub fn delete_topic(&self, topic: &TopicRecord) -> io::Result<()> {
        self.topics.remove(topic.name.as_bytes()).map_err(to_io)?;
        let mut batch = sled::Batch::default();
        for k in self.logs.scan_prefix(topic.id.as_bytes()).keys() {
            batch.remove(k.map_err(to_io)?);
        }
        self.logs.apply_batch(batch).map_err(to_io)?;
        let mut batch = sled::Batch::default();
        for k in self.placements.scan_prefix(topic.id.as_bytes()).keys() {
            batch.remove(k.map_err(to_io)?);
        }
        self.placements.apply_batch(batch).map_err(to_io)
    }

    /// The recorded log dir of a partition (`None` for data written before log dirs were
    /// recorded: start-up then finds it by looking).
    pub fn placement(&self, key: PartitionKey) -> io::Result<Option<Placement>> {
        self.placements
            .get(log_prefix(key))
            .map_err(to_io)?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Records where a partition lives (not yet durable: call [`Meta::flush`]).
    pub fn put_placement(&self, key: PartitionKey, placement: &Placement) -> io::Result<()> {
        self.placements
            .insert(log_prefix(key), encode(placement)?)
            .map_err(to_io)?;
        Ok(())
    }

    pub fn groups(&self) -> io::Result<Vec<(String, GroupRecord)>> {
        self.groups
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(to_io)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), decode(&v)?))
            })
            .collect()
    }

    pub fn put_group(&self, id: &str, record: &GroupRecord) -> io::Result<()> {
        self.groups
            .insert(id.as_bytes(), encode(record)?)
            .map_err(to_io)?;
        Ok(())
    }

    /// Forgets a group and all its committed offsets.
    pub fn remove_group(&self, id: &str) -> io::Result<()> {
        self.groups.remove(id.as_bytes()).map_err(to_io)?;
        let mut batch = sled::Batch::default();
        for k in self.offsets.scan_prefix(offset_prefix(id)).keys() {
            batch.remove(k.map_err(to_io)?);
        }
        self.offsets.apply_batch(batch).map_err(to_io)
    }

    /// Every group's dynamic configs (the key is the whole group id).
    pub fn group_configs(&self) -> io::Result<Vec<(String, BTreeMap<String, String>)>> {
        self.group_configs
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(to_io)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), decode(&v)?))
            })
            .collect()
    }

    /// Records a group's dynamic configs, forgetting the group when there are none (not yet
    /// durable: call [`Meta::flush`] before acknowledging).
    pub fn put_group_configs(
        &self,
        id: &str,
        configs: &BTreeMap<String, String>,
    ) -> io::Result<()> {
        if configs.is_empty() {
            self.group_configs.remove(id.as_bytes()).map_err(to_io)?;
        } else {
            self.group_configs
                .insert(id.as_bytes(), encode(configs)?)
                .map_err(to_io)?;
        }
        Ok(())
    }

    /// Every committed offset: (group, topic, partition, offset).
    pub fn offsets(&self) -> io::Result<Vec<(String, String, i32, Committed)>> {
        let mut out = Vec::new();
        for kv in self.offsets.iter() {
            let (k, v) = kv.map_err(to_io)?;
            if let Some((g, t, p)) = parse_offset_key(&k) {
                out.push((g, t, p, decode(&v)?));
            }
        }
        Ok(out)
    }

    /// Stores (`Some`) or removes (`None`) offsets of one group in one batch.
    pub fn put_offsets(
        &self,
        group: &str,
        changes: &[(&str, i32, Option<&Committed>)],
    ) -> io::Result<()> {
        let mut batch = sled::Batch::default();
        for (topic, partition, c) in changes {
            let key = offset_key(group, topic, *partition);
            match c {
                Some(c) => batch.insert(key, encode(c)?),
                None => batch.remove(key),
            }
        }
        self.offsets.apply_batch(batch).map_err(to_io)
    }

    /// Reserves `count` producer ids and returns the first (durable when this returns).
    pub async fn allocate_producer_ids(&self, count: i64) -> io::Result<i64> {
        let prev = self
            .broker
            .fetch_and_update("next_producer_id", |old| {
                let cur = old.map_or(0, |b| i64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
                Some((cur + count).to_be_bytes().to_vec())
            })
            .map_err(to_io)?;
        let start = prev.map_or(0, |b| {
            i64::from_be_bytes(b.as_ref().try_into().unwrap_or([0; 8]))
        });
        self.flush().await?;
        Ok(start)
    }
}

impl LogMetaStore for Meta {
    fn load_log(&self, key: PartitionKey) -> io::Result<PersistedLog> {
        let mut out = PersistedLog::default();
        for item in self.logs.scan_prefix(log_prefix(key)) {
            let (k, v) = item.map_err(to_io)?;
            if k.len() != 29 {
                continue;
            }
            let base = i64::from_be_bytes(k[21..29].try_into().expect("8 bytes"));
            match k[20] {
                KIND_CHECKPOINT => out.checkpoint = Some(decode::<Checkpoint>(&v)?),
                KIND_SEGMENT => out.segments.push((base, decode::<SegmentIndex>(&v)?)),
                KIND_LOG_START => out.log_start_offset = Some(decode::<i64>(&v)?),
                KIND_CLEANER => out.cleaner_checkpoint = Some(decode::<i64>(&v)?),
                _ => {}
            }
        }
        Ok(out)
    }

    fn save_log(
        &self,
        key: PartitionKey,
        segments: &[(i64, &SegmentIndex)],
        checkpoint: &Checkpoint,
    ) -> io::Result<()> {
        let mut batch = sled::Batch::default();
        for (base, index) in segments {
            batch.insert(&log_key(key, KIND_SEGMENT, *base)[..], encode(index)?);
        }
        batch.insert(&log_key(key, KIND_CHECKPOINT, 0)[..], encode(checkpoint)?);
        self.logs.apply_batch(batch).map_err(to_io)
    }

    fn remove_segment(&self, key: PartitionKey, base_offset: i64) -> io::Result<()> {
        self.logs
            .remove(&log_key(key, KIND_SEGMENT, base_offset)[..])
            .map_err(to_io)?;
        Ok(())
    }

    fn replace_segments(
        &self,
        key: PartitionKey,
        removed: &[i64],
        added: &[(i64, &SegmentIndex)],
        log_start: Option<i64>,
        cleaned_to: Option<i64>,
    ) -> io::Result<()> {
        let mut batch = sled::Batch::default();
        if let Some(offset) = log_start {
            batch.insert(&log_key(key, KIND_LOG_START, 0)[..], encode(&offset)?);
        }
        if let Some(offset) = cleaned_to {
            // Only the cleaner (one pass per partition at a time) writes the checkpoint.
            let cleaner = log_key(key, KIND_CLEANER, 0);
            let current = match self.logs.get(&cleaner[..]).map_err(to_io)? {
                Some(v) => decode::<i64>(&v)?,
                None => -1,
            };
            batch.insert(&cleaner[..], encode(&current.max(offset))?);
        }
        for base in removed {
            batch.remove(&log_key(key, KIND_SEGMENT, *base)[..]);
        }
        for (base, index) in added {
            batch.insert(&log_key(key, KIND_SEGMENT, *base)[..], encode(index)?);
        }
        self.logs.apply_batch(batch).map_err(to_io)?;
        self.flush_blocking()
    }

    fn save_cleaner_checkpoint(&self, key: PartitionKey, offset: i64) -> io::Result<()> {
        self.logs
            .insert(&log_key(key, KIND_CLEANER, 0)[..], encode(&offset)?)
            .map_err(to_io)?;
        Ok(())
    }

    fn remove_log(&self, key: PartitionKey) -> io::Result<()> {
        let mut batch = sled::Batch::default();
        for k in self.logs.scan_prefix(log_prefix(key)).keys() {
            batch.remove(k.map_err(to_io)?);
        }
        self.logs.apply_batch(batch).map_err(to_io)
    }
}
