//! What nodes say to each other on the controller listener: Raft's own RPCs and the broker
//! lifecycle requests the active controller answers (registration, heartbeats). Each message is
//! a 4-byte big-endian length and a postcard body; one request, then its response, at a time per
//! connection. Nothing read is trusted: a frame past `MAX_FRAME` or a body that does not decode
//! closes the connection.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::records::BrokerEndpoint;
use super::{NodeId, TypeConfig};

/// The largest frame read: snapshot chunks are 1 MiB, append batches far smaller.
pub const MAX_FRAME: usize = 2 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    Controller(ControllerRequest),
}

/// A request as sent: with the sender's cluster id once it knows one, so that nodes of two
/// clusters (a majority's data wiped, a node moved between clusters) refuse each other.
#[derive(Serialize)]
pub struct Envelope<'a> {
    pub cluster_id: Option<&'a str>,
    pub request: &'a Request,
}

/// An [`Envelope`] as received.
#[derive(Deserialize)]
pub struct Received {
    pub cluster_id: Option<String>,
    pub request: Request,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Controller(ControllerResponse),
}

/// A broker's requests to the active controller (Kafka's BrokerRegistration and
/// BrokerHeartbeat).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerRequest {
    Register {
        id: i32,
        incarnation: [u8; 16],
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
    },
    Heartbeat {
        id: i32,
        epoch: i64,
        /// The broker is shutting down: fence it now rather than at session expiry.
        shutting_down: bool,
    },
    /// The quorum as its leader sees it (DescribeQuorum).
    DescribeQuorum,
    /// A block of producer ids no other broker has (Kafka's AllocateProducerIds).
    AllocateProducerIds { id: i32, epoch: i64 },
}

/// The quorum as its leader describes it (Kafka's DescribeQuorum partition data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumState {
    pub leader: i32,
    /// The Raft term.
    pub epoch: i32,
    /// The offset after the last committed entry.
    pub high_watermark: i64,
    pub voters: Vec<VoterState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoterState {
    pub id: i32,
    pub log_end_offset: i64,
    /// Wall-clock milliseconds; -1 when never.
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerResponse {
    Registered {
        epoch: i64,
    },
    Heartbeat {
        fenced: bool,
    },
    Quorum(QuorumState),
    /// Producer ids `start..start + len`, this broker's alone.
    ProducerIds {
        start: i64,
        len: i64,
    },
    /// This node is not the active controller; the leader it knows of, if any.
    NotController {
        leader: Option<NodeId>,
    },
    /// The broker epoch is not the registered one: register again.
    StaleBrokerEpoch,
    /// Another live incarnation holds this broker id.
    DuplicateBrokerRegistration,
    /// The metadata write failed (lost leadership mid-way, shut down): try again.
    Retry {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a frame of {0} bytes is larger than {MAX_FRAME}")]
    TooLarge(usize),
    #[error("a frame that does not decode: {0}")]
    Decode(#[from] postcard::Error),
}

/// Reads one message; `Ok(None)` at a clean end of stream before a frame starts.
pub async fn read<T: DeserializeOwned, R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    // Grown as bytes arrive: a length alone reserves nothing.
    let mut body = Vec::new();
    r.take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Some(postcard::from_bytes(&body)?))
}

/// Writes one message.
pub async fn write<T: Serialize, W: AsyncWrite + Unpin>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let body = postcard::to_stdvec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_round_trips_and_hostile_frames_are_refused() {
        let msg = Request::Controller(ControllerRequest::Heartbeat {
            id: 3,
            epoch: 17,
            shutting_down: true,
        });
        let mut buf = Vec::new();
        let sent = Envelope {
            cluster_id: Some("c"),
            request: &msg,
        };
        write(&mut buf, &sent).await.unwrap();
        let back: Received = read(&mut buf.as_slice()).await.unwrap().unwrap();
        assert_eq!(back.cluster_id.as_deref(), Some("c"));
        assert!(matches!(
            back.request,
            Request::Controller(ControllerRequest::Heartbeat {
                id: 3,
                epoch: 17,
                shutting_down: true
            })
        ));
        // Nothing at all: a clean end.
        assert!(read::<Request, _>(&mut [].as_slice())
            .await
            .unwrap()
            .is_none());
        // A huge length is refused before anything is allocated.
        let huge = u32::MAX.to_be_bytes();
        assert!(matches!(
            read::<Request, _>(&mut huge.as_slice()).await,
            Err(FrameError::TooLarge(_))
        ));
        // A body that is not a message.
        let junk = [0, 0, 0, 2, 0xff, 0xff];
        assert!(matches!(
            read::<Request, _>(&mut junk.as_slice()).await,
            Err(FrameError::Decode(_))
        ));
        // A frame cut short.
        assert!(matches!(
            read::<Request, _>(&mut buf[..buf.len() - 1].as_ref()).await,
            Err(FrameError::Io(_))
        ));
    }
}
