//! The controller listener: accepts other nodes' connections and answers their requests, Raft's
//! RPCs by this node's Raft and broker requests by its controller. A connection that sends a frame
//! that is too large or does not decode is closed, with one log line.

use std::sync::Arc;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use openraft::error::{Fatal, RaftError};
use openraft::BasicNode;

use super::guard::{Guard, Refusal};
use super::rpc::{self, Received, Request, Response};
use super::{Cluster, NodeId};
use crate::condition::Condition;

/// Connections closed for what they sent or did, and connections refused for want of a slot:
/// logged once, then counted (a hostile or misdirected client can make many).
static CLOSED: Condition = Condition::new("controller listener connections closed");
static FULL: Condition = Condition::new("controller listener connections refused");
pub const CLOSED_TOTAL: &str = "gregor_controller_connections_closed_total";
pub const REFUSED_TOTAL: &str = "gregor_controller_connections_refused_total";

/// Connections served at once; more are closed as they come.
const MAX_CONNECTIONS: usize = 64;
/// A connection with no request for this long is closed (voters send heartbeats ten times a
/// second; brokers every `broker.heartbeat.interval.ms`).
const IDLE: Duration = Duration::from_secs(30);
/// A frame, once begun, must arrive whole within this long.
const FRAME_DEADLINE: Duration = Duration::from_secs(10);

pub async fn serve(listener: TcpListener, cluster: Arc<Cluster>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let guard = Arc::new(Guard {
        me: cluster.node_id as NodeId,
        voters: cluster
            .config
            .voters
            .iter()
            .map(|v| (v.id as NodeId, BasicNode::new(super::addr(&v.endpoint))))
            .collect(),
    });
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "controller listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!(REFUSED_TOTAL).increment(1);
            FULL.occurred(|| {
                format!("controller listener: {MAX_CONNECTIONS} connections open; closing a new one from {peer}")
            });
            continue;
        };
        let cluster = cluster.clone();
        let guard = guard.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let served = match &cluster.config.tls {
                None => connection(stream, &cluster, &guard).await,
                Some(tls) => {
                    // A handshake is a frame: it must be over within the frame deadline.
                    match tokio::time::timeout(FRAME_DEADLINE, tls.acceptor.acceptor.accept(stream))
                        .await
                    {
                        Err(_) => Err(ConnectionError::SlowFrame),
                        Ok(Err(e)) => Err(ConnectionError::Handshake(e)),
                        Ok(Ok(s)) => connection(s, &cluster, &guard).await,
                    }
                }
            };
            if let Err(e) = served {
                metrics::counter!(CLOSED_TOTAL).increment(1);
                CLOSED.occurred(|| {
                    format!("controller listener: closing the connection from {peer}: {e}")
                });
            }
            drop(slot);
        });
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    cluster: &Cluster,
    guard: &Guard,
) -> Result<(), ConnectionError> {
    let mut stream = BufReader::new(stream);
    loop {
        // Idle until a frame begins, then the frame's own deadline.
        match tokio::time::timeout(IDLE, stream.fill_buf()).await {
            Err(_) => return Err(ConnectionError::Idle),
            Ok(Err(e)) => return Err(rpc::FrameError::Io(e).into()),
            Ok(Ok([])) => return Ok(()),
            Ok(Ok(_)) => {}
        }
        let Some(received) =
            tokio::time::timeout(FRAME_DEADLINE, rpc::read::<Received, _>(&mut stream))
                .await
                .map_err(|_| ConnectionError::SlowFrame)??
        else {
            return Ok(());
        };
        let ours = cluster.image().cluster_id.clone();
        if let (Some(theirs), Some(ours)) = (&received.cluster_id, &ours) {
            if theirs != ours {
                return Err(ConnectionError::OtherCluster {
                    theirs: theirs.clone(),
                    ours: ours.clone(),
                });
            }
        }
        let req = received.request;
        guard.check(&req, ours.as_deref())?;
        let resp = match req {
            Request::AppendEntries(r) => {
                Response::AppendEntries(cluster.raft.append_entries(r).await)
            }
            Request::Vote(r) => Response::Vote(cluster.raft.vote(r).await),
            Request::InstallSnapshot(r) => {
                Response::InstallSnapshot(cluster.raft.install_snapshot(r).await)
            }
            Request::Controller(r) => Response::Controller(cluster.controller.handle(r).await),
        };
        if let Some(fatal) = fatal(&resp) {
            // Raft cannot go on (a storage failure): the metadata would be served stale, and
            // every later request answered with the same error. Exit as a crash does.
            tracing::error!(error = %fatal, "the metadata quorum stopped on a fatal error; exiting");
            std::process::exit(70);
        }
        // A peer that does not read its answers does not hold a slot.
        tokio::time::timeout(FRAME_DEADLINE, rpc::write(stream.get_mut(), &resp))
            .await
            .map_err(|_| ConnectionError::SlowReader)??;
    }
}

/// The fatal error Raft answered with, other than having been stopped (shutdown).
fn fatal(resp: &Response) -> Option<String> {
    let fatal = match resp {
        Response::AppendEntries(Err(RaftError::Fatal(f)))
        | Response::Vote(Err(RaftError::Fatal(f))) => f,
        Response::InstallSnapshot(Err(RaftError::Fatal(f))) => f,
        _ => return None,
    };
    (!matches!(fatal, Fatal::Stopped)).then(|| fatal.to_string())
}

#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Frame(#[from] rpc::FrameError),
    #[error("no request for {IDLE:?}")]
    Idle,
    #[error("a frame did not arrive whole within {FRAME_DEADLINE:?}")]
    SlowFrame,
    #[error("an answer was not taken within {FRAME_DEADLINE:?}")]
    SlowReader,
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error("the sender belongs to cluster {theirs}, this node to cluster {ours}")]
    OtherCluster { theirs: String, ours: String },
}
