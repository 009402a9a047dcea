//! The broker's shared state: configuration, the data directory (format version, cluster id),
//! the meta store, the topic registry, the store layer, fetch sessions and the producer-id
//! allocator.

use crate::security::authorizer::Authorizer;
use crate::security::credentials::Credentials;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::config::{Config, Listener};
use crate::disk_space::DiskSpace;
use crate::group::configs::GroupConfigs;
use crate::group::Coordinator;
use crate::handler::fetch_session::FetchSessions;
use crate::log::dir_failure::LogDirFailures;
use crate::meta::Meta;
use crate::request_memory::RequestMemory;
use crate::store::Store;
use crate::topics::Topics;

/// The storage format this build writes; a data dir with a newer one is refused.
pub const STORAGE_FORMAT_VERSION: u32 = 1;
const FORMAT_FILE: &str = "gregor.properties";
/// Producer ids reserved (and flushed) per meta-store write.
const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("data directory {dir}: {source}")]
    Io { dir: String, source: io::Error },
    #[error("data directory {dir} has storage format version {found}, newer than this gregor supports ({STORAGE_FORMAT_VERSION}); upgrade gregor or use another log.dirs")]
    NewerFormat { dir: String, found: u32 },
    #[error(
        "data directory {dir} belongs to cluster {stored}, not to this quorum's cluster {agreed}"
    )]
    OtherCluster {
        dir: String,
        stored: String,
        agreed: String,
    },
    #[error("data directory {dir}: unreadable {FORMAT_FILE}: {reason}")]
    BadFormatFile { dir: String, reason: String },
}

/// Why no producer id could be handed out.
#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    #[error("the meta store: {0}")]
    Storage(#[from] io::Error),
    #[error("no active controller gave this broker producer ids")]
    NoController,
}

/// A broker as clients are shown it (Metadata, DescribeCluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

pub struct Broker {
    pub config: Config,
    pub cluster_id: String,
    /// The metadata quorum and this node's membership, when it is one of a cluster's nodes.
    pub cluster: Option<Arc<Cluster>>,
    pub meta: Arc<Meta>,
    pub topics: Arc<Topics>,
    pub fetch_sessions: FetchSessions,
    pub groups: Arc<Coordinator>,
    /// Dynamic group configs (DescribeConfigs / AlterConfigs of GROUP resources).
    pub group_configs: GroupConfigs,
    /// SCRAM credentials (AlterUserScramCredentials, SASL/SCRAM logins).
    pub credentials: Credentials,
    /// ACLs and the checks on them, when `authorizer.class.name` configures an authorizer.
    pub authorizer: Option<Authorizer>,
    /// Request bytes of clients not yet authenticated (SASL listeners), apart from
    /// `queued.max.request.bytes` so that they can never make authenticated clients wait.
    pub unauthenticated_memory: RequestMemory,
    /// `queued.max.request.bytes` across all connections.
    pub request_memory: RequestMemory,
    /// Appends, fetches and their waits, durability and log dir health (see `store`).
    pub store: Store,
    /// Blocking jobs a request starts and does not wait for (log dir moves): shutdown waits for
    /// them before it closes the logs.
    pub background: tokio_util::task::TaskTracker,
    producer_ids: tokio::sync::Mutex<(i64, i64)>,
}

/// The budget of request bytes of clients not yet authenticated: 64 frames of Kafka's default
/// `sasl.server.max.receive.size`.
const UNAUTHENTICATED_BYTES: usize = 32 << 20;

/// The cluster id in the format file, if the data directory has one.
pub fn stored_cluster_id(dir: &Path) -> Result<Option<String>, OpenError> {
    let d = dir.display().to_string();
    let text = match std::fs::read_to_string(dir.join(FORMAT_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(OpenError::Io { dir: d, source }),
    };
    let props = java_properties::read(text.as_bytes()).map_err(|e| OpenError::BadFormatFile {
        dir: d.clone(),
        reason: e.to_string(),
    })?;
    let found: u32 = props
        .get("format.version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| OpenError::BadFormatFile {
            dir: d.clone(),
            reason: "no format.version".into(),
        })?;
    if found > STORAGE_FORMAT_VERSION {
        return Err(OpenError::NewerFormat { dir: d, found });
    }
    props
        .get("cluster.id")
        .cloned()
        .map(Some)
        .ok_or(OpenError::BadFormatFile {
            dir: d,
            reason: "no cluster.id".into(),
        })
}

/// Reads or writes the format file, returning the cluster id: the one stored, else `agreed` (the
/// metadata quorum's) or a new one. A stored id other than the quorum's is refused: the data
/// belongs to another cluster.
fn check_format(dir: &Path, agreed: Option<&str>) -> Result<String, OpenError> {
    let d = dir.display().to_string();
    if let Some(stored) = stored_cluster_id(dir)? {
        return match agreed {
            Some(agreed) if agreed != stored => Err(OpenError::OtherCluster {
                dir: d,
                stored,
                agreed: agreed.into(),
            }),
            _ => Ok(stored),
        };
    }
    let cluster_id = agreed.map_or_else(new_cluster_id, str::to_string);
    let text = format!("# written by gregor; do not edit\nformat.version={STORAGE_FORMAT_VERSION}\ncluster.id={cluster_id}\n");
    let tmp = dir.join(format!("{FORMAT_FILE}.tmp"));
    let io_err = |source| OpenError::Io {
        dir: d.clone(),
        source,
    };
    std::fs::write(&tmp, text).map_err(io_err)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_err)?;
    std::fs::rename(&tmp, dir.join(FORMAT_FILE)).map_err(io_err)?;
    Ok(cluster_id)
}

/// A Kafka-style cluster id: a random UUID in URL-safe base64 without padding (22 characters).
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
        .collect()
}

impl Broker {
    /// Opens the data directory: format check, meta store, topics (with log recovery).
    pub fn open(config: Config) -> Result<Broker, OpenError> {
        Self::open_in(config, None)
    }

    /// Opens the data directory of a node of `cluster`, whose quorum agreed on `cluster_id`.
    pub fn open_clustered(
        config: Config,
        cluster: Arc<Cluster>,
        cluster_id: &str,
    ) -> Result<Broker, OpenError> {
        Self::open_in(config, Some((cluster, cluster_id)))
    }

    fn open_in(config: Config, cluster: Option<(Arc<Cluster>, &str)>) -> Result<Broker, OpenError> {
        let dir = config.data_dir.clone();
        let d = dir.display().to_string();
        std::fs::create_dir_all(&dir).map_err(|source| OpenError::Io {
            dir: d.clone(),
            source,
        })?;
        let cluster_id = check_format(&dir, cluster.as_ref().map(|(_, id)| *id))?;
        // Every log dir, canonical (DescribeLogDirs reports them so and AlterReplicaLogDirs
        // compares with them, as Kafka does).
        let mut log_dirs = Vec::with_capacity(config.log_dirs.len());
        for d in &config.log_dirs {
            let io_err = |source| OpenError::Io {
                dir: d.display().to_string(),
                source,
            };
            std::fs::create_dir_all(d).map_err(io_err)?;
            log_dirs.push(std::fs::canonicalize(d).map_err(io_err)?);
        }
        let meta = Arc::new(
            Meta::open(&dir.join("meta")).map_err(|source| OpenError::Io {
                dir: d.clone(),
                source,
            })?,
        );
        let failures = Arc::new(LogDirFailures::new());
        crate::log::descriptors::set_cap(match config.log_open_files_max {
            0 => crate::log::descriptors::default_cap(),
            n => n,
        });
        let topics = Topics::open(
            &log_dirs,
            meta.clone(),
            config.log.clone(),
            failures.clone(),
            config.max_broker_partitions,
        )
        .map_err(|source| OpenError::Io { dir: d, source })?;
        let fetch_sessions = FetchSessions::new(config.max_incremental_fetch_session_cache_slots);
        let groups = Coordinator::open(meta.clone(), config.group.clone()).map_err(|source| {
            OpenError::Io {
                dir: dir.display().to_string(),
                source,
            }
        })?;
        let group_configs = GroupConfigs::open(meta.clone(), config.group_configs.clone())
            .map_err(|source| OpenError::Io {
                dir: dir.display().to_string(),
                source,
            })?;
        let credentials = Credentials::open(meta.db()).map_err(|source| OpenError::Io {
            dir: dir.display().to_string(),
            source,
        })?;
        let authorizer = match &config.authorizer {
            None => None,
            Some(c) => Some(
                Authorizer::open(meta.db(), &c.super_users, c.allow_if_no_acl).map_err(
                    |source| OpenError::Io {
                        dir: dir.display().to_string(),
                        source,
                    },
                )?,
            ),
        };
        Ok(Broker {
            group_configs,
            credentials,
            authorizer,
            unauthenticated_memory: RequestMemory::new(Some(
                config
                    .queued_max_request_bytes
                    .map_or(UNAUTHENTICATED_BYTES, |q| q.min(UNAUTHENTICATED_BYTES)),
            )),
            request_memory: RequestMemory::new(config.queued_max_request_bytes),
            store: Store::new(
                DiskSpace::new(log_dirs, config.log_dir_min_free_bytes),
                failures,
            ),
            config,
            cluster_id,
            cluster: cluster.map(|(c, _)| c),
            meta,
            topics: Arc::new(topics),
            fetch_sessions,
            groups: Arc::new(groups),
            background: tokio_util::task::TaskTracker::new(),
            producer_ids: tokio::sync::Mutex::new((0, 0)),
        })
    }

    /// The brokers a client on `listener` is shown, by id: this one alone, or on a cluster
    /// every registered, unfenced broker with an endpoint on a listener of the same name.
    pub fn live_brokers(&self, listener: &Listener) -> Vec<BrokerInfo> {
        let Some(cluster) = &self.cluster else {
            return vec![BrokerInfo {
                id: self.config.node_id,
                host: listener.advertised.host.clone(),
                port: listener.advertised.port,
                rack: None,
            }];
        };
        cluster
            .image()
            .live_brokers()
            .filter_map(|b| {
                let e = b.endpoints.iter().find(|e| e.listener == listener.name)?;
                Some(BrokerInfo {
                    id: b.id,
                    host: e.host.clone(),
                    port: e.port,
                    rack: b.rack.clone(),
                })
            })
            .collect()
    }

    /// The controller id clients are told: on a cluster the active controller (every node is
    /// a broker too), else this broker.
    pub fn controller_id(&self) -> i32 {
        self.cluster
            .as_ref()
            .and_then(|c| c.controller_id())
            .unwrap_or(self.config.node_id)
    }

    /// A fresh producer id, durable before it is handed out (ids are reserved in blocks: in the
    /// meta store, or on a cluster from the active controller, so that no two brokers hand out
    /// the same id).
    pub async fn next_producer_id(&self) -> Result<i64, ProducerIdError> {
        let mut ids = self.producer_ids.lock().await;
        if ids.0 >= ids.1 {
            *ids = match &self.cluster {
                None => {
                    let start = self.meta.allocate_producer_ids(PRODUCER_ID_BLOCK).await?;
                    (start, start + PRODUCER_ID_BLOCK)
                }
                Some(c) => {
                    let block = c
                        .allocate_producer_ids()
                        .await
                        .ok_or(ProducerIdError::NoController)?;
                    (block.start, block.end)
                }
            };
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    /// Checkpoints every partition and flushes the meta store (clean shutdown).
    pub fn close(&self) {
        self.topics.close();
        if let Err(e) = self.meta.flush_blocking() {
            tracing::error!(error = %e, "cannot flush the meta store at shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_format_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FORMAT_FILE),
            "format.version=99\ncluster.id=x\n",
        )
        .unwrap();
        let err = check_format(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("99") && err.contains("newer"), "{err}");
    }

    #[test]
    fn cluster_id_is_stable_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let a = check_format(dir.path(), None).unwrap();
        assert_eq!(a.len(), 22);
        assert_eq!(check_format(dir.path(), None).unwrap(), a);
    }

    #[test]
    fn a_cluster_node_takes_the_quorums_id_and_refuses_another_clusters_data() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            check_format(dir.path(), Some("quorum-id")).unwrap(),
            "quorum-id"
        );
        assert_eq!(
            stored_cluster_id(dir.path()).unwrap().as_deref(),
            Some("quorum-id")
        );
        assert_eq!(check_format(dir.path(), None).unwrap(), "quorum-id");
        let err = check_format(dir.path(), Some("other"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("quorum-id") && err.contains("other"), "{err}");
    }
}
