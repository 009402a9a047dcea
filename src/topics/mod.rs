//! The topic registry: topics by name and id, each with its partitions' logs. Creation and
//! deletion are serialised, persisted in the meta store and flushed before they are acknowledged.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::log::dir_failure::LogDirFailures;
use crate::log::{now_ms, LogConfig, Partition, PartitionKey};
use crate::meta::{Meta, Placement, TopicRecord};

mod dirs;
mod placement;
pub mod room;
mod startup;
use dirs::{delete_name, partition_dir};

/// Kafka's limit on topic name length.
const MAX_NAME_LEN: usize = 249;

/// Per-topic counters, registered once so the hot paths don't look them up per request.
#[derive(Clone)]
pub struct TopicMetrics {
    pub bytes_in: metrics::Counter,
    pub messages_in: metrics::Counter,
    pub bytes_out: metrics::Counter,
}

impl TopicMetrics {
    fn new(topic: &str) -> Self {
        TopicMetrics {
            bytes_in: metrics::counter!("kafka_server_brokertopicmetrics_bytesin_total", "topic" => topic.to_string()),
            messages_in: metrics::counter!("kafka_server_brokertopicmetrics_messagesin_total", "topic" => topic.to_string()),
            bytes_out: metrics::counter!("kafka_server_brokertopicmetrics_bytesout_total", "topic" => topic.to_string()),
        }
    }
}

pub struct Topic {
    pub metrics: TopicMetrics,
    pub name: Arc<str>,
    pub id: Uuid,
    pub partitions: Vec<Arc<Partition>>,
    pub configs: BTreeMap<String, String>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

#[derive(Default)]
struct Maps {
    by_name: HashMap<Arc<str>, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

pub struct Topics {
    /// `log.dirs`, canonical, in configured order; the first holds the meta store.
    log_dirs: Vec<PathBuf>,
    meta: Arc<Meta>,
    log_config: LogConfig,
    /// Offline log dirs (shared with every partition and the store).
    failures: Arc<LogDirFailures>,
    maps: RwLock<Maps>,
    /// Serialises create and delete (they touch sled and the file system together).
    changes: tokio::sync::Mutex<()>,
    /// `gregor.max.broker.partitions`.
    max_partitions: usize,
}

/// A failed topic operation: the Kafka error and its message.
#[derive(Debug)]
pub struct TopicError {
    pub error: ResponseError,
    pub message: String,
}

impl TopicError {
    fn new(error: ResponseError, message: impl Into<String>) -> Self {
        TopicError {
            error,
            message: message.into(),
        }
    }
    fn storage(e: io::Error) -> Self {
        crate::condition::storage_error(&crate::condition::META_WRITES, "meta", || {
            format!("topic metadata write failed: {e}")
        });
        TopicError::new(ResponseError::KafkaStorageError, e.to_string())
    }
}

/// Checks a topic name as Kafka's `Topic.validate` does.
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    let bad = |m: String| Err(TopicError::new(ResponseError::InvalidTopicException, m));
    if name.is_empty() {
        return bad("Topic name is invalid: the empty string is not allowed".into());
    }
    if name == "." || name == ".." {
        return bad(format!("Topic name is invalid: '{name}' is not allowed"));
    }
    if name.len() > MAX_NAME_LEN {
        return bad(format!("Topic name is invalid: the length of '{name}' is longer than the max allowed length {MAX_NAME_LEN}"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return bad(format!("Topic name is invalid: '{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"));
    }
    Ok(())
}

impl Topics {
    /// Opens the partitions of `record`, partition `p` in log dir `dirs[p]`.
    fn open_topic(&self, record: &TopicRecord, dirs: &[usize]) -> io::Result<Topic> {
        let name: Arc<str> = Arc::from(record.name.as_str());
        let partitions = (0..record.partitions)
            .zip(dirs)
            .map(|(p, &d)| self.open_partition(record, &name, p, d))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Topic {
            metrics: TopicMetrics::new(&record.name),
            name,
            id: record.id,
            partitions,
            configs: record.configs.clone(),
        })
    }

    fn open_partition(
        &self,
        record: &TopicRecord,
        name: &Arc<str>,
        p: i32,
        log_dir: usize,
    ) -> io::Result<Arc<Partition>> {
        let key = PartitionKey {
            topic_id: record.id,
            partition: p,
        };
        let dir = partition_dir(&self.log_dirs[log_dir], &record.name, p);
        dirs::check_owner(&dir, &record.id)?;
        let partition = Partition::open(
            key,
            name.clone(),
            dir.clone(),
            crate::config::topic::log_config(&self.log_config, &record.configs),
            self.meta.clone(),
            self.failures.clone(),
            now_ms(),
        )?;
        dirs::write_partition_metadata(&dir, &record.id)?;
        Ok(Arc::new(partition))
    }

    /// Records where new partitions live (with the topic record, in the same flush).
    fn record_placements(&self, id: Uuid, from: i32, dirs: &[usize]) -> io::Result<()> {
        for (p, &d) in (from..).zip(dirs) {
            let key = PartitionKey {
                topic_id: id,
                partition: p,
            };
            self.meta.put_placement(
                key,
                &Placement {
                    dir: self.dir_string(d),
                    moved_from: None,
                },
            )?;
        }
        Ok(())
    }

    fn insert(&self, topic: Topic) {
        let topic = Arc::new(topic);
        let mut maps = self.maps.write().unwrap_or_else(|p| p.into_inner());
        maps.by_name.insert(topic.name.clone(), topic.clone());
        maps.by_id.insert(topic.id, topic);
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .get(name)
            .cloned()
    }

    pub fn get_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .get(id)
            .cloned()
    }

    /// Every topic, sorted by name.
    /// Partitions on this broker.
    fn partition_count(&self) -> usize {
        let maps = self.maps.read().unwrap_or_else(|p| p.into_inner());
        maps.by_name.values().map(|t| t.partitions.len()).sum()
    }

    pub fn all(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self
            .maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Creates a topic; durable when this returns. `validate_only` checks without creating.
    pub async fn create(
        self: &Arc<Self>,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, TopicError> {
        validate_name(name)?;
        if partitions < 1 {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                "Number of partitions was set to an invalid non-positive value.",
            ));
        }
        let _guard = self.changes.lock().await;
        if self.get(name).is_some() {
            return Err(TopicError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        let collides = {
            let maps = self.maps.read().unwrap_or_else(|p| p.into_inner());
            let norm = name.replace('.', "_");
            maps.by_name
                .keys()
                .find(|n| n.replace('.', "_") == norm)
                .cloned()
        };
        if let Some(other) = collides {
            return Err(TopicError::new(
                ResponseError::InvalidTopicException,
                format!("Topic '{name}' collides with existing topic: {other}"),
            ));
        }
        // After the checks above, as Kafka: an existing topic is TOPIC_ALREADY_EXISTS however full
        // the broker is (clients creating "if absent" take that for success).
        room::check(
            partitions,
            true,
            self.partition_count(),
            self.max_partitions,
        )?;
        if validate_only {
            return Ok(Arc::new(Topic {
                metrics: TopicMetrics::new(name),
                name: Arc::from(name),
                id: Uuid::nil(),
                partitions: Vec::new(),
                configs,
            }));
        }
        let record = TopicRecord {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            configs,
        };
        let dirs = self.place(partitions);
        self.check_free(&record.name, 0..partitions)?;
        // Directories, segment files and meta-store writes: on the blocking pool.
        let this = self.clone();
        let topic = blocking(move || {
            let topic = this.open_topic(&record, &dirs)?;
            this.sync_log_dirs(&dirs)?;
            this.record_placements(record.id, 0, &dirs)?;
            this.meta.put_topic(&record)?;
            Ok(topic)
        })
        .await?;
        self.meta.flush().await.map_err(TopicError::storage)?;
        self.insert(topic);
        tracing::info!(topic = %name, partitions, "created topic");
        metrics::counter!("gregor_topics_created_total").increment(1);
        Ok(self.get(name).expect("just inserted"))
    }

    /// Deletes a topic and its data; durable when this returns.
    pub async fn delete(self: &Arc<Self>, topic: &Arc<Topic>) -> Result<(), TopicError> {
        let _guard = self.changes.lock().await;
        let record = TopicRecord {
            name: topic.name.to_string(),
            id: topic.id,
            partitions: topic.partitions.len() as i32,
            configs: topic.configs.clone(),
        };
        {
            let mut maps = self.maps.write().unwrap_or_else(|p| p.into_inner());
            maps.by_name.remove(&topic.name);
            maps.by_id.remove(&topic.id);
        }
        // Stop appends, retention and the cleaner on its partitions before its metadata and files
        // go, so nothing writes either again.
        // The directories are renamed aside first (durably), then the record goes: a crash
        // before the record is gone restores them; after, start-up removes the renamed copies.
        // A partition directory is never left under its own name without its topic's record.
        // All of it (renames, fsyncs, removing gigabytes) on the blocking pool.
        let (this, partitions) = (self.clone(), topic.partitions.clone());
        let doomed = blocking(move || {
            partitions.iter().for_each(|p| p.retire());
            let mut doomed = Vec::with_capacity(partitions.len());
            for (p, part) in (0..record.partitions).zip(&partitions) {
                let dir = part.dir();
                let parent = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
                let to = parent.join(delete_name(&record.name, p, &record.id));
                std::fs::rename(&dir, &to).and_then(|_| crate::log::sync::sync_dir(&parent))?;
                doomed.push(to);
            }
            this.meta.delete_topic(&record)?;
            Ok((doomed, record.name))
        })
        .await?;
        self.meta.flush().await.map_err(TopicError::storage)?;
        let (doomed, name) = doomed;
        let _ = tokio::task::spawn_blocking(move || {
            for dir in doomed {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a deleted topic's data (start-up will)");
                }
            }
        })
        .await;
        tracing::info!(topic = %name, "deleted topic");
        metrics::counter!("gregor_topics_deleted_total").increment(1);
        Ok(())
    }

    /// Replaces a topic's config overrides (validated by the caller); durable when this returns.
    pub async fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let _guard = self.changes.lock().await;
        let current = self.get(name).ok_or_else(|| {
            TopicError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("topic '{name}' does not exist"),
            )
        })?;
        let record = TopicRecord {
            name: name.to_string(),
            id: current.id,
            partitions: current.partitions.len() as i32,
            configs: configs.clone(),
        };
        self.meta.put_topic(&record).map_err(TopicError::storage)?;
        self.meta.flush().await.map_err(TopicError::storage)?;
        let config = crate::config::topic::log_config(&self.log_config, &configs);
        for p in &current.partitions {
            p.set_config(config.clone());
        }
        self.insert(Topic {
            metrics: current.metrics.clone(),
            name: current.name.clone(),
            id: current.id,
            partitions: current.partitions.clone(),
            configs,
        });
        tracing::info!(topic = %name, "topic configs changed");
        Ok(())
    }

    /// Grows a topic to `count` partitions; durable when this returns.
    pub async fn add_partitions(
        self: &Arc<Self>,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _guard = self.changes.lock().await;
        let current = self.get(name).ok_or_else(|| {
            TopicError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("This server does not host this topic-partition: {name}"),
            )
        })?;
        let have = current.partitions.len() as i32;
        if count <= have {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                if count == have {
                    format!("Topic already has {have} partition(s).")
                } else {
                    format!("The topic {name} currently has {have} partition(s); {count} would not be an increase.")
                },
            ));
        }
        room::check(
            count - have,
            false,
            self.partition_count(),
            self.max_partitions,
        )?;
        if validate_only {
            return Ok(());
        }
        let record = TopicRecord {
            name: name.to_string(),
            id: current.id,
            partitions: count,
            configs: current.configs.clone(),
        };
        let mut partitions = current.partitions.clone();
        let config = crate::config::topic::log_config(&self.log_config, &current.configs);
        let dirs = self.place(count - have);
        self.check_free(name, have..count)?;
        let (this, topic) = (self.clone(), current.clone());
        let partitions = blocking(move || {
            for (p, &d) in (have..count).zip(&dirs) {
                let key = PartitionKey {
                    topic_id: topic.id,
                    partition: p,
                };
                let dir = partition_dir(&this.log_dirs[d], &topic.name, p);
                let part = Partition::open(
                    key,
                    topic.name.clone(),
                    dir.clone(),
                    config.clone(),
                    this.meta.clone(),
                    this.failures.clone(),
                    now_ms(),
                )?;
                dirs::write_partition_metadata(&dir, &topic.id)?;
                partitions.push(Arc::new(part));
            }
            this.sync_log_dirs(&dirs)?;
            this.record_placements(topic.id, have, &dirs)?;
            this.meta.put_topic(&record)?;
            Ok(partitions)
        })
        .await?;
        self.meta.flush().await.map_err(TopicError::storage)?;
        self.insert(Topic {
            metrics: current.metrics.clone(),
            name: current.name.clone(),
            id: current.id,
            partitions,
            configs: current.configs.clone(),
        });
        tracing::info!(topic = %name, from = have, to = count, "added partitions");
        Ok(())
    }

    /// Fsyncs and checkpoints every partition (clean shutdown).
    pub fn close(&self) {
        for topic in self.all() {
            for p in &topic.partitions {
                if let Err(e) = p.close() {
                    tracing::error!(topic = %topic.name, partition = p.key.partition, error = %e, "cannot checkpoint partition at shutdown");
                }
            }
        }
    }
}

/// Runs file and meta-store work of a topic change on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, TopicError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)
        .and_then(|r| r)
        .map_err(TopicError::storage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert_eq!(
                validate_name(bad).unwrap_err().error,
                ResponseError::InvalidTopicException,
                "{bad}"
            );
        }
        assert!(validate_name(&"x".repeat(249)).is_ok());
    }
}
