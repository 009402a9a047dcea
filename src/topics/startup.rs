//! Start-up: every persisted topic opened (recovering its partitions) in the log dir that holds
//! each partition, finishing or undoing a move or delete a crash cut short, and what is found in
//! the log dirs without a record: gregor's own copies removed, topics rebuilt from their
//! partition directories, everything else left alone.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use super::dirs::{
    self, delete_name, future_name, partition_dir, partition_name, remove_copy, Stray,
};
use super::{Maps, Topics};
use crate::log::dir_failure::LogDirFailures;
use crate::log::{LogConfig, PartitionKey};
use crate::meta::{Meta, Placement, TopicRecord};

impl Topics {
    /// Loads every persisted topic and opens (recovering) its partitions, each in the log dir
    /// that holds it. `log_dirs` are canonical; the first holds the meta store.
    pub fn open(
        log_dirs: &[PathBuf],
        meta: Arc<Meta>,
        log_config: LogConfig,
        failures: Arc<LogDirFailures>,
        max_partitions: usize,
    ) -> io::Result<Topics> {
        let topics = Topics {
            log_dirs: log_dirs.to_vec(),
            meta,
            log_config,
            failures,
            maps: RwLock::new(Maps::default()),
            changes: tokio::sync::Mutex::new(()),
            max_partitions,
        };
        let mut expected_dirs = std::collections::HashSet::new();
        for record in topics.meta.topics()? {
            let mut dirs = Vec::with_capacity(record.partitions.max(0) as usize);
            for p in 0..record.partitions {
                expected_dirs.insert(partition_name(&record.name, p));
                dirs.push(topics.locate(&record, p)?);
            }
            let topic = topics.open_topic(&record, &dirs)?;
            topics.insert(topic);
        }
        topics.meta.flush_blocking()?;
        // Directories no known topic owns: gregor's transient copies are removed; a partition
        // directory that names its topic (`partition.metadata`) rebuilds that topic (its record
        // was lost with the meta store, or its create did not finish); anything else is not
        // gregor's and is left alone. Nothing gregor did not create is ever deleted.
        let mut strays: BTreeMap<Uuid, Vec<(String, i32, usize)>> = BTreeMap::new();
        for (i, log_dir) in log_dirs.iter().enumerate() {
            for entry in std::fs::read_dir(log_dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !entry.file_type()?.is_dir()
                    || name == "meta"
                    || name == crate::cluster::storage::DIR
                    || expected_dirs.contains(&name)
                    || log_dirs.contains(&entry.path())
                {
                    continue;
                }
                match dirs::classify(&entry.path(), &name) {
                    Stray::Transient => {
                        tracing::warn!(dir = %entry.path().display(), "removing the copy of an unfinished delete or move");
                        if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                            tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove it; leaving it");
                        }
                    }
                    Stray::Partition {
                        topic,
                        partition,
                        id,
                    } => strays.entry(id).or_default().push((topic, partition, i)),
                    Stray::Foreign => {
                        tracing::warn!(dir = %entry.path().display(), "leaving alone a directory in a log dir that is not gregor's");
                    }
                }
            }
        }
        for (id, parts) in strays {
            topics.adopt(id, parts)?;
        }
        Ok(topics)
    }

    /// Rebuilds the record of a topic whose partition directories were found without one, with
    /// default configs (its overrides, like its committed offsets, lived in the lost record).
    /// Directories that disagree on the name, or whose name or id another topic has, are left
    /// alone.
    fn adopt(&self, id: Uuid, parts: Vec<(String, i32, usize)>) -> io::Result<()> {
        let name = parts[0].0.clone();
        let taken = self.get(&name).is_some() || self.get_by_id(&id).is_some();
        if taken || parts.iter().any(|(t, _, _)| *t != name) {
            for (t, p, d) in &parts {
                tracing::warn!(dir = %partition_dir(&self.log_dirs[*d], t, *p).display(), "leaving alone a partition directory whose topic name or id another topic has");
            }
            return Ok(());
        }
        let partitions = parts.iter().map(|(_, p, _)| p + 1).max().unwrap_or(0);
        // A partition missing in between comes back empty, unless a directory of that name is
        // there (another topic's, or not gregor's): then nothing of this topic is opened.
        for p in 0..partitions {
            if parts.iter().any(|(_, q, _)| *q == p) {
                continue;
            }
            if let Some(d) = self
                .log_dirs
                .iter()
                .map(|d| partition_dir(d, &name, p))
                .find(|d| d.exists())
            {
                tracing::warn!(dir = %d.display(), topic = %name, %id, "not rebuilding a topic: a directory it would use for a missing partition is not its own; leaving all of its directories alone");
                return Ok(());
            }
        }
        let mut dirs = self.place(partitions);
        for (_, p, d) in &parts {
            dirs[*p as usize] = *d;
        }
        let record = TopicRecord {
            name: name.clone(),
            id,
            partitions,
            configs: BTreeMap::new(),
        };
        let topic = self.open_topic(&record, &dirs)?;
        self.record_placements(id, 0, &dirs)?;
        self.meta.put_topic(&record)?;
        self.meta.flush_blocking()?;
        self.insert(topic);
        tracing::warn!(topic = %name, %id, partitions, found = parts.len(), "rebuilt a topic from its partition directories (its record was missing from the meta store); its config overrides are back to the defaults");
        Ok(())
    }

    /// Finds the log dir holding a partition at start-up: the recorded one (finishing a move whose
    /// switch was durable), else the one directory holding it. A partition in two log dirs is an
    /// error; a `-future` copy of an unfinished move is removed (its source is authoritative).
    fn locate(&self, record: &TopicRecord, p: i32) -> io::Result<usize> {
        let key = PartitionKey {
            topic_id: record.id,
            partition: p,
        };
        let name = partition_name(&record.name, p);
        let future = future_name(&record.name, p, &record.id);
        let placed = self.meta.placement(key)?;
        let recorded = placed.as_ref().and_then(|pl| {
            let i = self.dir_index(&pl.dir);
            if i.is_none() {
                tracing::warn!(partition = %name, dir = %pl.dir, "the recorded log dir is not in log.dirs; looking for the partition");
            }
            i
        });
        let mut chosen = None;
        if let (Some(i), Some(pl)) = (recorded, &placed) {
            chosen = Some(i);
            if let Some(from) = &pl.moved_from {
                // A move whose switch is durable but whose clean-up may not be.
                let target = self.log_dirs[i].join(&name);
                let copy = self.log_dirs[i].join(&future);
                if !target.exists() && copy.exists() {
                    std::fs::rename(&copy, &target)?;
                    crate::log::sync::sync_dir(&self.log_dirs[i])?;
                    tracing::info!(partition = %name, dir = %self.log_dirs[i].display(), "finished an interrupted move to another log dir");
                }
                let source = self.dir_index(from);
                if target.exists() {
                    if let Some(j) = source.filter(|&j| j != i) {
                        let old = self.log_dirs[j].join(&name);
                        if old.exists() {
                            tracing::info!(partition = %name, dir = %old.display(), "removing the source of a finished move");
                            remove_copy(
                                &old,
                                &self.log_dirs[j].join(delete_name(&record.name, p, &record.id)),
                            )?;
                        }
                    }
                } else if let Some(j) = source {
                    // The move failed after its switch was recorded: its source is the copy.
                    chosen = Some(j);
                }
            }
        }
        let mut holders: Vec<usize> = (0..self.log_dirs.len())
            .filter(|&i| self.log_dirs[i].join(&name).is_dir())
            .collect();
        if holders.is_empty() {
            // A delete renames the directories aside before it removes the record: with the
            // record still here the delete did not happen, so the directory comes back.
            let doomed = delete_name(&record.name, p, &record.id);
            if let Some(i) =
                (0..self.log_dirs.len()).find(|&i| self.log_dirs[i].join(&doomed).is_dir())
            {
                std::fs::rename(self.log_dirs[i].join(&doomed), self.log_dirs[i].join(&name))?;
                crate::log::sync::sync_dir(&self.log_dirs[i])?;
                tracing::warn!(partition = %name, dir = %self.log_dirs[i].display(), "restored a partition whose topic delete did not finish");
                holders.push(i);
            }
        }
        let chosen = match chosen {
            Some(i) => i,
            None if holders.len() == 1 => holders[0],
            None => 0,
        };
        if let Some(&other) = holders.iter().find(|&&i| i != chosen) {
            return Err(io::Error::other(format!(
                "partition {name} has a directory in two log dirs, {} and {}: remove the stale one (gregor does not choose)",
                self.dir_string(chosen),
                self.dir_string(other),
            )));
        }
        for d in &self.log_dirs {
            let copy = d.join(&future);
            if copy.exists() {
                tracing::warn!(dir = %copy.display(), "removing the copy of an unfinished move to another log dir (its source is kept)");
                std::fs::remove_dir_all(&copy)?;
            }
        }
        let placement = Placement {
            dir: self.dir_string(chosen),
            moved_from: None,
        };
        if placed.as_ref() != Some(&placement) {
            self.meta.put_placement(key, &placement)?;
        }
        Ok(chosen)
    }
}
