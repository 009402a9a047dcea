//! The client side of the controller listener: openraft's network (one connection per peer,
//! opened on first use and again after any failure) and the broker's calls to the controller.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RPCTypes};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;

use super::records::MetadataImage;
use super::rpc::{self, Request, Response};
use super::{NodeId, TypeConfig};
use tokio::sync::watch;

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr}: {source}")]
    Frame {
        addr: String,
        source: rpc::FrameError,
    },
    #[error("{addr} closed the connection")]
    Closed { addr: String },
    #[error("{addr} did not answer within {after:?}")]
    Timeout { addr: String, after: Duration },
    #[error("{addr} answered with another message")]
    Unexpected { addr: String },
}

/// Which peers answer, shared by every connection of this node: a peer's first failure is
/// logged, then nothing until it answers again; and when each last answered.
#[derive(Clone, Default)]
pub struct Reachability(Arc<Mutex<Peers>>);

#[derive(Default)]
struct Peers {
    failing: HashSet<NodeId>,
    /// Wall-clock milliseconds of each peer's last answer.
    answered: HashMap<NodeId, i64>,
}

impl Reachability {
    fn failed(&self, target: NodeId, addr: &str, error: &CallError) {
        if self
            .0
            .lock()
            .expect("reachability lock")
            .failing
            .insert(target)
        {
            tracing::warn!(node = target, %addr, %error, "controller listener unreachable");
        }
    }

    fn answered(&self, target: NodeId, addr: &str) {
        let mut peers = self.0.lock().expect("reachability lock");
        peers.answered.insert(target, super::now_ms());
        if peers.failing.remove(&target) {
            tracing::info!(node = target, %addr, "controller listener reachable again");
        }
    }

    /// When `target` last answered (wall-clock milliseconds).
    pub fn last_answer(&self, target: NodeId) -> Option<i64> {
        self.0
            .lock()
            .expect("reachability lock")
            .answered
            .get(&target)
            .copied()
    }
}

/// What every connection of this node shares: who answers, the cluster id to send, and TLS to
/// the other nodes' controller listeners if they are SSL listeners.
#[derive(Clone)]
pub struct Dialer {
    pub reachability: Reachability,
    /// Where this node's cluster id comes from, sent with every request.
    pub image: watch::Receiver<Arc<MetadataImage>>,
    pub tls: Option<tokio_rustls::TlsConnector>,
}

/// A connection to a peer, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// One peer's connection.
pub struct Peer {
    target: NodeId,
    addr: String,
    dialer: Dialer,
    stream: Option<BufReader<Box<dyn Stream>>>,
}

impl Peer {
    pub fn new(target: NodeId, addr: String, dialer: Dialer) -> Peer {
        Peer {
            target,
            addr,
            dialer,
            stream: None,
        }
    }

    /// Sends `req` and reads its response within `timeout`; any failure drops the connection.
    pub async fn call(&mut self, req: &Request, timeout: Duration) -> Result<Response, CallError> {
        let result = tokio::time::timeout(timeout, self.exchange(req)).await;
        let result = result.unwrap_or_else(|_| {
            Err(CallError::Timeout {
                addr: self.addr.clone(),
                after: timeout,
            })
        });
        match &result {
            Err(e) => {
                self.stream = None;
                self.dialer.reachability.failed(self.target, &self.addr, e);
            }
            Ok(_) => self.dialer.reachability.answered(self.target, &self.addr),
        }
        result
    }

    async fn exchange(&mut self, req: &Request) -> Result<Response, CallError> {
        let addr = self.addr.clone();
        if self.stream.is_none() {
            let s = TcpStream::connect(&addr)
                .await
                .map_err(|source| CallError::Connect {
                    addr: addr.clone(),
                    source,
                })?;
            let _ = s.set_nodelay(true);
            let s: Box<dyn Stream> =
                match &self.dialer.tls {
                    None => Box::new(s),
                    Some(tls) => {
                        // The certificate must name the host the voter entry names.
                        let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
                        let host = host.trim_start_matches('[').trim_end_matches(']');
                        let name = rustls::pki_types::ServerName::try_from(host.to_string())
                            .map_err(|e| CallError::Connect {
                                addr: addr.clone(),
                                source: std::io::Error::other(e),
                            })?;
                        let s =
                            tls.connect(name, s)
                                .await
                                .map_err(|source| CallError::Connect {
                                    addr: addr.clone(),
                                    source,
                                })?;
                        Box::new(s)
                    }
                };
            self.stream = Some(BufReader::new(s));
        }
        let stream = self.stream.as_mut().expect("connected above");
        let frame = |source| CallError::Frame {
            addr: addr.clone(),
            source,
        };
        let image = self.dialer.image.borrow().clone();
        let sent = rpc::Envelope {
            cluster_id: image.cluster_id.as_deref(),
            request: req,
        };
        rpc::write(stream.get_mut(), &sent).await.map_err(frame)?;
        rpc::read(stream)
            .await
            .map_err(frame)?
            .ok_or(CallError::Closed { addr })
    }
}

/// Makes a [`Peer`] per Raft target, from the address its membership entry names.
pub struct Network(pub Dialer);

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer::new(target, node.addr.clone(), self.0.clone())
    }
}

fn rpc_error<E: std::error::Error>(
    e: CallError,
    action: RPCTypes,
    target: NodeId,
    option: &RPCOption,
) -> RPCError<NodeId, BasicNode, E> {
    match e {
        CallError::Timeout { .. } => RPCError::Timeout(Timeout {
            action,
            id: 0,
            target,
            timeout: option.hard_ttl(),
        }),
        CallError::Connect { .. } => RPCError::Unreachable(Unreachable::new(&e)),
        _ => RPCError::Network(NetworkError::new(&e)),
    }
}

impl Peer {
    async fn raft_call<E: std::error::Error>(
        &mut self,
        req: Request,
        action: RPCTypes,
        target: NodeId,
        option: &RPCOption,
    ) -> Result<Response, RPCError<NodeId, BasicNode, E>> {
        self.call(&req, option.hard_ttl())
            .await
            .map_err(|e| rpc_error(e, action, target, option))
    }
}

fn unexpected<E: std::error::Error>(addr: &str) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Network(NetworkError::new(&CallError::Unexpected {
        addr: addr.to_string(),
    }))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let target = self.target;
        match self
            .raft_call(
                Request::AppendEntries(rpc),
                RPCTypes::AppendEntries,
                target,
                &option,
            )
            .await?
        {
            Response::AppendEntries(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
            }
            _ => Err(unexpected(&self.addr)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let target = self.target;
        match self
            .raft_call(
                Request::InstallSnapshot(rpc),
                RPCTypes::InstallSnapshot,
                target,
                &option,
            )
            .await?
        {
            Response::InstallSnapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
            }
            _ => Err(unexpected(&self.addr)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let target = self.target;
        match self
            .raft_call(Request::Vote(rpc), RPCTypes::Vote, target, &option)
            .await?
        {
            Response::Vote(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(target, e))),
            _ => Err(unexpected(&self.addr)),
        }
    }
}
