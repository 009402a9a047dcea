//! The broker side of membership (Kafka's `BrokerLifecycleManager`): register this incarnation
//! with the active controller, heartbeat every `broker.heartbeat.interval.ms`, register again
//! when told the epoch is stale, and on shutdown ask to be fenced at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::network::Peer;
use super::records::BrokerEndpoint;
use super::rpc::{ControllerRequest, ControllerResponse, Request, Response};
use super::{Cluster, NodeId};

/// Where this broker stands with the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerState {
    /// Not registered yet (or told to register again).
    Starting,
    /// Registered, not yet (or no longer) shown to clients.
    Fenced { epoch: i64 },
    /// Registered and unfenced.
    Running { epoch: i64 },
}

/// What this broker registers.
#[derive(Clone)]
pub struct Registration {
    pub id: i32,
    pub incarnation: [u8; 16],
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
}

/// Sends `req` to the active controller as this node knows it; `None` when there is none yet or
/// it did not answer.
pub(super) async fn call_controller(
    cluster: &Cluster,
    peer: &mut Option<(NodeId, Peer)>,
    req: ControllerRequest,
) -> Option<ControllerResponse> {
    let leader = cluster.raft.metrics().borrow().current_leader?;
    if peer.as_ref().is_none_or(|(id, _)| *id != leader) {
        *peer = Some((
            leader,
            Peer::new(leader, cluster.voter_addr(leader)?, cluster.dialer.clone()),
        ));
    }
    let (_, p) = peer.as_mut().expect("set above");
    let timeout = Duration::from_millis(cluster.config.request_timeout_ms);
    match p.call(&Request::Controller(req), timeout).await {
        Ok(Response::Controller(r)) => Some(r),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!(error = %e, "controller call failed");
            None
        }
    }
}

/// Registers and heartbeats until `stop` turns true; publishes the state in `state`.
pub async fn run(
    cluster: Arc<Cluster>,
    me: Registration,
    state: watch::Sender<BrokerState>,
    mut stop: watch::Receiver<bool>,
) {
    let heartbeat = Duration::from_millis(cluster.config.heartbeat_interval_ms);
    let retry = Duration::from_millis(100);
    let mut peer = None;
    loop {
        let current = *state.borrow();
        let req = match current {
            BrokerState::Starting => ControllerRequest::Register {
                id: me.id,
                incarnation: me.incarnation,
                endpoints: me.endpoints.clone(),
                rack: me.rack.clone(),
            },
            BrokerState::Fenced { epoch } | BrokerState::Running { epoch } => {
                ControllerRequest::Heartbeat {
                    id: me.id,
                    epoch,
                    shutting_down: false,
                }
            }
        };
        let wait = match call_controller(&cluster, &mut peer, req).await {
            Some(ControllerResponse::Registered { epoch }) => {
                tracing::info!(epoch, "registered with the controller");
                state.send_replace(BrokerState::Fenced { epoch });
                Duration::ZERO
            }
            Some(ControllerResponse::Heartbeat { fenced }) => match current {
                // A heartbeat's answer to a registration is no answer: ask again.
                BrokerState::Starting => retry,
                BrokerState::Fenced { epoch } | BrokerState::Running { epoch } => {
                    let next = if fenced {
                        BrokerState::Fenced { epoch }
                    } else {
                        BrokerState::Running { epoch }
                    };
                    if next != current {
                        tracing::info!(?next, "broker state");
                    }
                    state.send_replace(next);
                    heartbeat
                }
            },
            Some(ControllerResponse::StaleBrokerEpoch) => {
                tracing::warn!(
                    "the controller no longer knows this broker's epoch: registering again"
                );
                state.send_replace(BrokerState::Starting);
                Duration::ZERO
            }
            Some(ControllerResponse::DuplicateBrokerRegistration) => {
                tracing::warn!(
                    id = me.id,
                    "another live broker is registered with this node.id; retrying"
                );
                heartbeat
            }
            Some(ControllerResponse::NotController { .. })
            | Some(ControllerResponse::Quorum(_))
            | Some(ControllerResponse::ProducerIds { .. })
            | Some(ControllerResponse::Retry { .. })
            | None => retry,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
