//! The topic registry: topics by name and id, each with its partitions' logs. Creation and
//! deletion are serialised, persisted in the meta store and flushed before they are acknowledged.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::log::{now_ms, LogConfig, Partition, PartitionKey};
use crate::meta::{Meta, TopicRecord};

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
    data_dir: PathBuf,
    meta: Arc<Meta>,
    log_config: LogConfig,
    maps: RwLock<Maps>,
    /// Serialises create and delete (they touch sled and the file system together).
    changes: tokio::sync::Mutex<()>,
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

fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl Topics {
    /// Loads every persisted topic and opens (recovering) its partitions.
    pub fn open(data_dir: &Path, meta: Arc<Meta>, log_config: LogConfig) -> io::Result<Topics> {
        let topics = Topics {
            data_dir: data_dir.to_path_buf(),
            meta,
            log_config,
            maps: RwLock::new(Maps::default()),
            changes: tokio::sync::Mutex::new(()),
        };
        let mut expected_dirs = std::collections::HashSet::new();
        for record in topics.meta.topics()? {
            for p in 0..record.partitions {
                expected_dirs.insert(format!("{}-{p}", record.name));
            }
            let topic = topics.open_topic(&record)?;
            topics.insert(topic);
        }
        for entry in std::fs::read_dir(data_dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_dir() && name != "meta" && !expected_dirs.contains(&name) {
                tracing::warn!(dir = %name, "removing a partition directory no topic owns (an unfinished create or delete)");
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(topics)
    }

    fn open_topic(&self, record: &TopicRecord) -> io::Result<Topic> {
        let name: Arc<str> = Arc::from(record.name.as_str());
        let partitions = (0..record.partitions)
            .map(|p| {
                let key = PartitionKey {
                    topic_id: record.id,
                    partition: p,
                };
                let dir = partition_dir(&self.data_dir, &record.name, p);
                Partition::open(
                    key,
                    name.clone(),
                    dir,
                    crate::config::topic::log_config(&self.log_config, &record.configs),
                    self.meta.clone(),
                    now_ms(),
                )
                .map(Arc::new)
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Topic {
            metrics: TopicMetrics::new(&record.name),
            name,
            id: record.id,
            partitions,
            configs: record.configs.clone(),
        })
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
        &self,
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
        let topic = self.open_topic(&record).map_err(TopicError::storage)?;
        self.meta.put_topic(&record).map_err(TopicError::storage)?;
        self.meta.flush().await.map_err(TopicError::storage)?;
        self.insert(topic);
        tracing::info!(topic = %name, partitions, "created topic");
        metrics::counter!("gregor_topics_created_total").increment(1);
        Ok(self.get(name).expect("just inserted"))
    }

    /// Deletes a topic and its data; durable when this returns.
    pub async fn delete(&self, topic: &Arc<Topic>) -> Result<(), TopicError> {
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
        let partitions = topic.partitions.clone();
        let _ =
            tokio::task::spawn_blocking(move || partitions.iter().for_each(|p| p.retire())).await;
        self.meta
            .delete_topic(&record)
            .map_err(TopicError::storage)?;
        self.meta.flush().await.map_err(TopicError::storage)?;
        for p in 0..record.partitions {
            let dir = partition_dir(&self.data_dir, &record.name, p);
            let doomed =
                self.data_dir
                    .join(format!("{}-{p}.{}-delete", record.name, record.id.simple()));
            if let Err(e) =
                std::fs::rename(&dir, &doomed).and_then(|_| std::fs::remove_dir_all(&doomed))
            {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a deleted topic's data");
            }
        }
        tracing::info!(topic = %record.name, "deleted topic");
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
        &self,
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
        for p in have..count {
            let key = PartitionKey {
                topic_id: current.id,
                partition: p,
            };
            let dir = partition_dir(&self.data_dir, name, p);
            let part = Partition::open(
                key,
                current.name.clone(),
                dir,
                config.clone(),
                self.meta.clone(),
                now_ms(),
            )
            .map_err(TopicError::storage)?;
            partitions.push(Arc::new(part));
        }
        self.meta.put_topic(&record).map_err(TopicError::storage)?;
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
