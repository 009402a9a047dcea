//! The active controller: the quorum's leader. It writes the cluster id once, registers brokers,
//! tracks their heartbeats (in memory, as Kafka's `BrokerHeartbeatManager`: a new active
//! controller gives every broker a fresh session) and fences a broker whose session expires or
//! that shuts down. Every node runs one; only the leader's acts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::Raft;
use tokio::sync::watch;

use super::network::Reachability;
use super::records::{MetadataImage, MetadataRecord};
use super::rpc::{ControllerRequest, ControllerResponse, QuorumState, VoterState};
use super::{NodeId, TypeConfig};

pub struct Controller {
    node_id: NodeId,
    raft: Raft<TypeConfig>,
    image: watch::Receiver<Arc<MetadataImage>>,
    session_timeout: Duration,
    /// The cluster id written if the quorum has none yet.
    proposed_cluster_id: String,
    /// Last heartbeat per broker, and the term they were counted in.
    sessions: Mutex<Sessions>,
    /// When each peer last answered this node.
    reachability: Reachability,
    /// When each follower last had every entry this leader had (wall-clock milliseconds).
    caught_up: Mutex<HashMap<NodeId, i64>>,
    /// One producer-id allocation at a time: each reads the image's next id and writes past it.
    allocating: tokio::sync::Mutex<()>,
}

/// Producer ids per block, as Kafka's controller hands them out.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Default)]
struct Sessions {
    term: u64,
    last_seen: HashMap<i32, Instant>,
}

impl Controller {
    pub fn new(
        node_id: NodeId,
        raft: Raft<TypeConfig>,
        image: watch::Receiver<Arc<MetadataImage>>,
        session_timeout: Duration,
        proposed_cluster_id: String,
        reachability: Reachability,
    ) -> Controller {
        Controller {
            node_id,
            raft,
            image,
            session_timeout,
            proposed_cluster_id,
            sessions: Mutex::new(Sessions::default()),
            reachability,
            caught_up: Mutex::new(HashMap::new()),
            allocating: tokio::sync::Mutex::new(()),
        }
    }

    pub fn caught_up(&self, id: NodeId) {
        self.caught_up
            .lock()
            .expect("caught-up lock")
            .insert(id, super::now_ms());
    }

    /// The quorum as this node, if it leads, describes it (Kafka's offsets are Raft indexes
    /// plus one: the offset after the last entry).
    pub fn describe_quorum(&self) -> Option<QuorumState> {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader != Some(self.node_id) || !m.state.is_leader() {
            return None;
        }
        let now = super::now_ms();
        let end = m.last_log_index.map_or(0, |i| i as i64 + 1);
        let caught_up = self.caught_up.lock().expect("caught-up lock").clone();
        let voters = m
            .membership_config
            .membership()
            .voter_ids()
            .map(|id| {
                if id == self.node_id {
                    return VoterState {
                        id: id as i32,
                        log_end_offset: end,
                        last_fetch_timestamp: now,
                        last_caught_up_timestamp: now,
                    };
                }
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&id).cloned().flatten());
                VoterState {
                    id: id as i32,
                    log_end_offset: matched.map_or(0, |l| l.index as i64 + 1),
                    last_fetch_timestamp: self.reachability.last_answer(id).unwrap_or(-1),
                    last_caught_up_timestamp: caught_up.get(&id).copied().unwrap_or(-1),
                }
            })
            .collect();
        Some(QuorumState {
            leader: self.node_id as i32,
            epoch: m.current_term.min(i32::MAX as u64) as i32,
            high_watermark: m.last_applied.map_or(0, |l| l.index as i64 + 1),
            voters,
        })
    }

    /// The term this node leads in, or `None` with the leader it knows of.
    fn leading(&self) -> Result<u64, Option<NodeId>> {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader == Some(self.node_id) && m.state.is_leader() {
            Ok(m.current_term)
        } else {
            Err(m.current_leader)
        }
    }

    /// The sessions of this term: a new term starts every registered broker's session afresh.
    fn sessions(&self, term: u64) -> std::sync::MutexGuard<'_, Sessions> {
        let mut s = self.sessions.lock().expect("sessions lock");
        if s.term != term {
            let now = Instant::now();
            s.term = term;
            s.last_seen = self
                .image
                .borrow()
                .brokers
                .keys()
                .map(|id| (*id, now))
                .collect();
        }
        s
    }

    async fn write(&self, record: MetadataRecord) -> Result<u64, ControllerResponse> {
        match self.raft.client_write(record).await {
            Ok(r) => Ok(r.log_id.index),
            Err(e) => Err(ControllerResponse::Retry {
                reason: e.to_string(),
            }),
        }
    }

    pub async fn handle(&self, req: ControllerRequest) -> ControllerResponse {
        let term = match self.leading() {
            Ok(t) => t,
            Err(leader) => return ControllerResponse::NotController { leader },
        };
        match req {
            ControllerRequest::Register {
                id,
                incarnation,
                endpoints,
                rack,
            } => {
                let existing = self.image.borrow().brokers.get(&id).cloned();
                if let Some(b) = existing {
                    if b.incarnation == incarnation {
                        return ControllerResponse::Registered { epoch: b.epoch };
                    }
                    let alive = self
                        .sessions(term)
                        .last_seen
                        .get(&id)
                        .is_some_and(|t| t.elapsed() < self.session_timeout);
                    if !b.fenced && alive {
                        return ControllerResponse::DuplicateBrokerRegistration;
                    }
                }
                let record = MetadataRecord::RegisterBroker {
                    id,
                    incarnation,
                    endpoints,
                    rack,
                };
                match self.write(record).await {
                    Ok(index) => {
                        self.sessions(term).last_seen.insert(id, Instant::now());
                        tracing::info!(broker = id, epoch = index, "registered broker");
                        ControllerResponse::Registered {
                            epoch: index as i64,
                        }
                    }
                    Err(e) => e,
                }
            }
            ControllerRequest::DescribeQuorum => match self.describe_quorum() {
                Some(state) => ControllerResponse::Quorum(state),
                None => ControllerResponse::NotController {
                    leader: self.raft.metrics().borrow().current_leader,
                },
            },
            ControllerRequest::AllocateProducerIds { id, epoch } => {
                let registered = self.image.borrow().brokers.get(&id).map(|b| b.epoch);
                if registered != Some(epoch) {
                    return ControllerResponse::StaleBrokerEpoch;
                }
                let _one_at_a_time = self.allocating.lock().await;
                let start = self.image.borrow().next_producer_id;
                let Some(next) = start.checked_add(PRODUCER_ID_BLOCK) else {
                    return ControllerResponse::Retry {
                        reason: "producer ids exhausted".into(),
                    };
                };
                let record = MetadataRecord::ProducerIds {
                    broker: id,
                    epoch,
                    next,
                };
                match self.write(record).await {
                    Ok(_) => ControllerResponse::ProducerIds {
                        start,
                        len: PRODUCER_ID_BLOCK,
                    },
                    Err(e) => e,
                }
            }
            ControllerRequest::Heartbeat {
                id,
                epoch,
                shutting_down,
            } => {
                let Some(b) = self.image.borrow().brokers.get(&id).cloned() else {
                    return ControllerResponse::StaleBrokerEpoch;
                };
                if b.epoch != epoch {
                    return ControllerResponse::StaleBrokerEpoch;
                }
                self.sessions(term).last_seen.insert(id, Instant::now());
                let (record, fenced) = if shutting_down {
                    (MetadataRecord::FenceBroker { id, epoch }, true)
                } else {
                    (MetadataRecord::UnfenceBroker { id, epoch }, false)
                };
                if b.fenced != fenced {
                    if let Err(e) = self.write(record).await {
                        return e;
                    }
                    tracing::info!(
                        broker = id,
                        epoch,
                        "{} broker",
                        if fenced {
                            "fenced (controlled shutdown)"
                        } else {
                            "unfenced"
                        }
                    );
                }
                ControllerResponse::Heartbeat { fenced }
            }
        }
    }

    /// The leader's periodic duties: the cluster id, and fencing brokers whose session expired.
    pub async fn tick(&self) {
        let Ok(term) = self.leading() else {
            return;
        };
        let image = self.image.borrow().clone();
        if image.cluster_id.is_none() {
            let record = MetadataRecord::ClusterId {
                cluster_id: self.proposed_cluster_id.clone(),
            };
            if let Err(ControllerResponse::Retry { reason }) = self.write(record).await {
                tracing::debug!(%reason, "cannot write the cluster id yet");
            }
        }
        let expired: Vec<(i32, i64)> = {
            let s = self.sessions(term);
            image
                .live_brokers()
                .filter(|b| {
                    s.last_seen
                        .get(&b.id)
                        .is_none_or(|t| t.elapsed() >= self.session_timeout)
                })
                .map(|b| (b.id, b.epoch))
                .collect()
        };
        for (id, epoch) in expired {
            if self
                .write(MetadataRecord::FenceBroker { id, epoch })
                .await
                .is_ok()
            {
                tracing::warn!(
                    broker = id,
                    epoch,
                    timeout_ms = self.session_timeout.as_millis() as u64,
                    "fenced broker: no heartbeat within broker.session.timeout.ms"
                );
            }
        }
    }
}
