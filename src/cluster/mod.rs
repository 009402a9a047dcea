//! A gregor cluster's metadata quorum (Kafka's KRaft, on openraft): every node of a cluster is a
//! voter (combined mode, `process.roles=broker,controller`); the quorum's leader is the active
//! controller. The replicated state is [`records::MetadataImage`] (cluster id, registered brokers
//! and whether each is fenced); every node builds it by applying the log, in `storage`'s sled
//! database under the data directory. Nodes talk over the controller listener (`service`,
//! `network`, `rpc`).
//!
//! - [`controller`]: the active controller's duties (cluster id, registrations, sessions, fencing).
//! - [`lifecycle`]: this node as a broker (registration and heartbeats).

pub mod controller;
pub mod guard;
pub mod lifecycle;
pub mod network;
pub mod records;
pub mod rpc;
pub mod service;
pub mod storage;
pub mod watch;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Raft};
use tokio::sync::watch as channel;

use crate::config::quorum::QuorumConfig;
use controller::Controller;
use lifecycle::{BrokerState, Registration};
use records::MetadataImage;

pub type NodeId = u64;

/// Why a cluster refuses to create topics: the quorum does not place partitions on brokers or
/// replicate them yet, and a topic on one node alone would look replicated and not be.
pub const TOPICS_NOT_PLACED: &str = "This gregor is a node of a cluster, which cannot create topics yet: partition placement and replication across nodes are not implemented.";

openraft::declare_raft_types!(
    /// The quorum's types: metadata records in, nothing out.
    pub TypeConfig:
        D = records::MetadataRecord,
        R = (),
        Node = BasicNode,
);

/// This node's part in the cluster.
pub struct Cluster {
    pub node_id: i32,
    pub config: QuorumConfig,
    pub raft: Raft<TypeConfig>,
    dialer: network::Dialer,
    controller: Controller,
    image: channel::Receiver<Arc<MetadataImage>>,
    broker_state: channel::Receiver<BrokerState>,
    broker_state_tx: channel::Sender<BrokerState>,
    stop: channel::Sender<bool>,
}

/// Wall-clock milliseconds since the epoch (Kafka's timestamps).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn addr(e: &crate::config::Endpoint) -> String {
    if e.host.contains(':') {
        format!("[{}]:{}", e.host, e.port)
    } else {
        format!("{}:{}", e.host, e.port)
    }
}

impl Cluster {
    /// Opens the quorum's storage under `data_dir`, binds the controller listener, starts Raft
    /// (forming the quorum from `controller.quorum.voters` on a first start) and the controller.
    /// `proposed_cluster_id` becomes the cluster id if the quorum has none yet.
    pub async fn start(
        node_id: i32,
        config: QuorumConfig,
        data_dir: &std::path::Path,
        proposed_cluster_id: String,
    ) -> anyhow::Result<Arc<Cluster>> {
        let db = storage::open(data_dir)?;
        let (image_tx, image) = channel::channel(Arc::new(MetadataImage::default()));
        let log = storage::LogStore::new(&db)?;
        let sm = storage::StateMachine::new(&db, Arc::new(image_tx))?;
        let raft_config = openraft::Config {
            cluster_name: "gregor".into(),
            heartbeat_interval: 100,
            election_timeout_min: config.election_timeout_ms,
            election_timeout_max: config.election_timeout_ms + config.election_backoff_max_ms,
            // A snapshot (the metadata image) travels in one chunk, under rpc::MAX_FRAME: the
            // guard refuses anything else.
            snapshot_max_chunk_size: (rpc::MAX_FRAME - (64 << 10)) as u64,
            ..Default::default()
        }
        .validate()?;
        let id = node_id as NodeId;
        let reachability = network::Reachability::default();
        let dialer = network::Dialer {
            reachability: reachability.clone(),
            image: image.clone(),
            tls: config.tls.as_ref().map(|t| t.connector.clone()),
        };
        let network = network::Network(dialer.clone());
        let raft = Raft::new(id, Arc::new(raft_config), network, log, sm).await?;
        let bind = &config.controller_bind;
        let host = if bind.host.is_empty() {
            "0.0.0.0"
        } else {
            bind.host.as_str()
        };
        let socket = tokio::net::TcpListener::bind((host, bind.port))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {host}:{} (controller listener): {e}",
                    bind.port
                )
            })?;
        let voters: BTreeMap<NodeId, BasicNode> = config
            .voters
            .iter()
            .map(|v| (v.id as NodeId, BasicNode::new(addr(&v.endpoint))))
            .collect();
        if raft.is_initialized().await? {
            // The quorum this node belongs to is the one stored: a configuration that names
            // other voters, or the same at other addresses, would split it.
            let stored = raft.metrics().borrow().membership_config.clone();
            let stored: BTreeMap<NodeId, BasicNode> = stored
                .membership()
                .nodes()
                .map(|(id, n)| (*id, n.clone()))
                .collect();
            if stored != voters {
                let _ = raft.shutdown().await;
                let show = |m: &BTreeMap<NodeId, BasicNode>| {
                    m.iter()
                        .map(|(id, n)| format!("{id}@{}", n.addr))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                anyhow::bail!(
                    "controller.quorum.voters is {}, but this node belongs to the quorum {} (stored in {}); configure the same voters on every node",
                    show(&voters),
                    show(&stored),
                    data_dir.join(storage::DIR).display()
                );
            }
        } else {
            tracing::info!(?voters, "forming the metadata quorum");
            if let Err(e) = raft.initialize(voters).await {
                // Another voter formed it first: what initialize is for.
                tracing::debug!(error = %e, "quorum already formed");
            }
        }
        let (broker_state_tx, broker_state) = channel::channel(BrokerState::Starting);
        let (stop, _) = channel::channel(false);
        let session = Duration::from_millis(config.session_timeout_ms);
        let cluster = Arc::new(Cluster {
            node_id,
            controller: Controller::new(
                id,
                raft.clone(),
                image.clone(),
                session,
                proposed_cluster_id,
                reachability.clone(),
            ),
            config,
            raft,
            dialer,
            image,
            broker_state,
            broker_state_tx,
            stop,
        });
        watch::register_metrics();
        tokio::spawn(watch::run(cluster.clone()));
        tokio::spawn(service::serve(socket, cluster.clone()));
        let ticker = cluster.clone();
        let mut stop = cluster.stop.subscribe();
        tokio::spawn(async move {
            let period = Duration::from_millis(ticker.config.heartbeat_interval_ms.min(250));
            loop {
                ticker.controller.tick().await;
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        });
        Ok(cluster)
    }

    /// The address of voter `id`'s controller listener.
    pub fn voter_addr(&self, id: NodeId) -> Option<String> {
        self.config
            .voters
            .iter()
            .find(|v| v.id as NodeId == id)
            .map(|v| addr(&v.endpoint))
    }

    /// The cluster id, once the quorum has agreed on one.
    pub async fn cluster_id(&self) -> String {
        let mut image = self.image.clone();
        let agreed = image
            .wait_for(|i| i.cluster_id.is_some())
            .await
            .expect("the state machine outlives the cluster");
        agreed.cluster_id.clone().expect("waited for")
    }

    /// The metadata as applied on this node.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// The quorum as its leader describes it: this node's view if it leads, else the leader's.
    pub async fn describe_quorum(&self) -> Option<rpc::QuorumState> {
        if let Some(state) = self.controller.describe_quorum() {
            return Some(state);
        }
        match lifecycle::call_controller(self, &mut None, rpc::ControllerRequest::DescribeQuorum)
            .await
        {
            Some(rpc::ControllerResponse::Quorum(state)) => Some(state),
            _ => None,
        }
    }

    /// A block of producer ids no other broker of the cluster has, from the active controller;
    /// `None` while this broker is not registered or no controller answers.
    pub async fn allocate_producer_ids(&self) -> Option<std::ops::Range<i64>> {
        let epoch = match *self.broker_state.borrow() {
            BrokerState::Fenced { epoch } | BrokerState::Running { epoch } => epoch,
            BrokerState::Starting => return None,
        };
        let req = rpc::ControllerRequest::AllocateProducerIds {
            id: self.node_id,
            epoch,
        };
        match lifecycle::call_controller(self, &mut None, req).await? {
            rpc::ControllerResponse::ProducerIds { start, len } => Some(start..start + len),
            other => {
                tracing::debug!(?other, "no producer ids from the controller");
                None
            }
        }
    }

    /// Records that follower `id` has every entry the leader has (for DescribeQuorum).
    pub(crate) fn caught_up(&self, id: NodeId) {
        self.controller.caught_up(id);
    }

    /// The active controller, as this node knows it.
    pub fn controller_id(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .map(|id| id as i32)
    }

    /// Registers this node as a broker and keeps its session alive until [`Cluster::shutdown`].
    pub fn start_broker(self: &Arc<Cluster>, me: Registration) {
        let stop = self.stop.subscribe();
        tokio::spawn(lifecycle::run(
            self.clone(),
            me,
            self.broker_state_tx.clone(),
            stop,
        ));
    }

    /// Controlled shutdown: asks the controller to fence this broker, then stops Raft.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let state = *self.broker_state.borrow();
        if let BrokerState::Fenced { epoch } | BrokerState::Running { epoch } = state {
            let req = rpc::ControllerRequest::Heartbeat {
                id: self.node_id,
                epoch,
                shutting_down: true,
            };
            match lifecycle::call_controller(self, &mut None, req).await {
                Some(rpc::ControllerResponse::Heartbeat { fenced: true }) => {
                    tracing::info!("fenced by the controller for shutdown")
                }
                other => tracing::warn!(?other, "controlled shutdown not acknowledged"),
            }
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum did not stop cleanly");
        }
    }
}
