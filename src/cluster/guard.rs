//! What the controller listener refuses before Raft sees it. openraft trusts its peers: a request
//! claiming an absurd term, a leader that is not a voter, or a membership other than the
//! configured voters can make it panic or depose the real leader. The quorum here is static
//! (`controller.quorum.voters`), so every legitimate request names a voter other than this node,
//! carries terms that only elections raised, and never changes the membership.

use std::collections::{BTreeMap, BTreeSet};

use openraft::{BasicNode, EntryPayload, LogId, Membership, Vote};

use super::records::MetadataImage;
use super::rpc::{ControllerRequest, Request};
use super::NodeId;

/// No election sequence reaches this term (one election a millisecond for 35 years).
pub const MAX_TERM: u64 = 1 << 40;

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("node {0:?} is not another voter of this quorum")]
    NotAVoter(Option<NodeId>),
    #[error("term {0} is beyond any election")]
    Term(u64),
    #[error("a log id's term {0} is past the request's term {1}")]
    LogTerm(u64, u64),
    #[error("a membership other than the configured voters")]
    Membership,
    #[error("broker {0} is not one of the configured voters")]
    NotABroker(i32),
    #[error("entries that do not follow the previous log id one by one")]
    NotConsecutive,
    #[error("a snapshot {0}")]
    Snapshot(String),
}

/// The configured voters (ids and controller listener addresses), and this node among them.
pub struct Guard {
    pub me: NodeId,
    pub voters: BTreeMap<NodeId, BasicNode>,
}

impl Guard {
    fn vote(&self, vote: &Vote<NodeId>) -> Result<u64, Refusal> {
        let from = vote.leader_id().voted_for();
        if !from.is_some_and(|id| id != self.me && self.voters.contains_key(&id)) {
            return Err(Refusal::NotAVoter(from));
        }
        let term = vote.leader_id().term;
        if term > MAX_TERM {
            return Err(Refusal::Term(term));
        }
        Ok(term)
    }

    fn log_id(term: u64, id: &Option<LogId<NodeId>>) -> Result<(), Refusal> {
        match id {
            Some(l) if l.leader_id.term > term => Err(Refusal::LogTerm(l.leader_id.term, term)),
            _ => Ok(()),
        }
    }

    /// The configured voters at their configured addresses, and no one else.
    fn membership(&self, m: &Membership<NodeId, BasicNode>) -> Result<(), Refusal> {
        let voters: BTreeSet<NodeId> = m.voter_ids().collect();
        let nodes: BTreeMap<NodeId, BasicNode> =
            m.nodes().map(|(id, n)| (*id, n.clone())).collect();
        if nodes != self.voters || !voters.iter().eq(self.voters.keys()) {
            return Err(Refusal::Membership);
        }
        Ok(())
    }

    /// Entries must follow `prev` one index at a time, their terms never going down.
    fn consecutive(
        prev: &Option<LogId<NodeId>>,
        entries: &[openraft::Entry<super::TypeConfig>],
    ) -> Result<(), Refusal> {
        let (mut index, mut term) = prev.map_or((0, 0), |p| (p.index + 1, p.leader_id.term));
        for e in entries {
            if e.log_id.index != index || e.log_id.leader_id.term < term {
                return Err(Refusal::NotConsecutive);
            }
            index += 1;
            term = e.log_id.leader_id.term;
        }
        Ok(())
    }

    /// A snapshot arrives whole in one chunk, is an image, and is of this node's cluster.
    fn snapshot(
        r: &openraft::raft::InstallSnapshotRequest<super::TypeConfig>,
        cluster_id: Option<&str>,
    ) -> Result<(), Refusal> {
        if r.offset != 0 || !r.done {
            return Err(Refusal::Snapshot("not in one chunk".into()));
        }
        let image: MetadataImage = postcard::from_bytes(&r.data)
            .map_err(|e| Refusal::Snapshot(format!("not a metadata image: {e}")))?;
        if let Some(ours) = cluster_id {
            if image.cluster_id.as_deref() != Some(ours) {
                return Err(Refusal::Snapshot(format!(
                    "of cluster {:?}, not {ours}",
                    image.cluster_id
                )));
            }
        }
        Ok(())
    }

    /// Whether Raft may see `req` (other requests are not Raft's and pass); `cluster_id` is this
    /// node's, once it knows it.
    pub fn check(&self, req: &Request, cluster_id: Option<&str>) -> Result<(), Refusal> {
        match req {
            Request::AppendEntries(r) => {
                let term = self.vote(&r.vote)?;
                Self::log_id(term, &r.prev_log_id)?;
                Self::log_id(term, &r.leader_commit)?;
                Self::consecutive(&r.prev_log_id, &r.entries)?;
                for e in &r.entries {
                    Self::log_id(term, &Some(e.log_id))?;
                    if let EntryPayload::Membership(m) = &e.payload {
                        self.membership(m)?;
                    }
                }
                Ok(())
            }
            Request::Vote(r) => {
                let term = self.vote(&r.vote)?;
                Self::log_id(term, &r.last_log_id)
            }
            Request::InstallSnapshot(r) => {
                let term = self.vote(&r.vote)?;
                Self::log_id(term, &r.meta.last_log_id)?;
                self.membership(r.meta.last_membership.membership())?;
                Self::snapshot(r, cluster_id)
            }
            // Every broker of a combined-mode cluster is a voter.
            Request::Controller(
                ControllerRequest::Register { id, .. }
                | ControllerRequest::Heartbeat { id, .. }
                | ControllerRequest::AllocateProducerIds { id, .. },
            ) => {
                if self.voters.contains_key(&(*id as NodeId)) {
                    Ok(())
                } else {
                    Err(Refusal::NotABroker(*id))
                }
            }
            Request::Controller(ControllerRequest::DescribeQuorum) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::raft::{AppendEntriesRequest, VoteRequest};
    use openraft::{CommittedLeaderId, Entry};

    fn guard() -> Guard {
        Guard {
            me: 2,
            voters: [1, 2, 3]
                .into_iter()
                .map(|id| (id, BasicNode::new(format!("127.0.0.1:{}", 9000 + id))))
                .collect(),
        }
    }

    impl Guard {
        fn check_(&self, req: &Request) -> Result<(), Refusal> {
            self.check(req, Some("cluster"))
        }
    }

    fn append(vote: Vote<NodeId>, entries: Vec<Entry<super::super::TypeConfig>>) -> Request {
        Request::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: None,
            entries,
            leader_commit: None,
        })
    }

    fn membership(voters: &[NodeId]) -> Membership<NodeId, BasicNode> {
        let nodes: std::collections::BTreeMap<NodeId, BasicNode> = voters
            .iter()
            .map(|id| (*id, BasicNode::new(format!("127.0.0.1:{}", 9000 + id))))
            .collect();
        Membership::new(vec![voters.iter().copied().collect()], nodes)
    }

    #[test]
    fn a_voters_heartbeat_and_vote_pass() {
        let g = guard();
        assert_eq!(g.check_(&append(Vote::new_committed(5, 1), vec![])), Ok(()));
        let vote = Request::Vote(VoteRequest::new(Vote::new(6, 3), None));
        assert_eq!(g.check_(&vote), Ok(()));
        // The first entry of a quorum: its configured membership.
        let first = Entry {
            log_id: LogId::new(CommittedLeaderId::new(0, 0), 0),
            payload: EntryPayload::Membership(membership(&[1, 2, 3])),
        };
        assert_eq!(
            g.check_(&append(Vote::new_committed(1, 3), vec![first])),
            Ok(())
        );
    }

    #[test]
    fn strangers_impostors_and_absurd_terms_are_refused() {
        let g = guard();
        // The attack's 13-byte frame: term u64::MAX from "node 0".
        assert_eq!(
            g.check_(&append(Vote::new_committed(u64::MAX, 0), vec![])),
            Err(Refusal::NotAVoter(Some(0)))
        );
        assert_eq!(
            g.check_(&append(Vote::new_committed(u64::MAX, 1), vec![])),
            Err(Refusal::Term(u64::MAX))
        );
        // This node's own id from elsewhere.
        assert_eq!(
            g.check_(&append(Vote::new_committed(3, 2), vec![])),
            Err(Refusal::NotAVoter(Some(2)))
        );
        let mut v = Vote::new(3, 1);
        v.leader_id.node_id = 9;
        assert_eq!(
            g.check_(&Request::Vote(VoteRequest::new(v, None))),
            Err(Refusal::NotAVoter(Some(9)))
        );
    }

    #[test]
    fn a_membership_change_or_a_log_from_the_future_is_refused() {
        let g = guard();
        // The attack's 39-byte frame: voters {4} at term 1e6 from node 1.
        let other = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1_000_000, 1), 0),
            payload: EntryPayload::Membership(membership(&[4])),
        };
        assert_eq!(
            g.check_(&append(Vote::new_committed(1_000_000, 1), vec![other])),
            Err(Refusal::Membership)
        );
        let future = Entry {
            log_id: LogId::new(CommittedLeaderId::new(9, 1), 0),
            payload: EntryPayload::Blank,
        };
        assert_eq!(
            g.check_(&append(Vote::new_committed(5, 1), vec![future])),
            Err(Refusal::LogTerm(9, 5))
        );
    }

    #[test]
    fn only_configured_brokers_register() {
        let g = guard();
        let register = |id| {
            Request::Controller(ControllerRequest::Register {
                id,
                incarnation: [0; 16],
                endpoints: vec![],
                rack: None,
            })
        };
        assert_eq!(g.check_(&register(3)), Ok(()));
        assert_eq!(g.check_(&register(7)), Err(Refusal::NotABroker(7)));
        let ids = Request::Controller(ControllerRequest::AllocateProducerIds { id: -1, epoch: 1 });
        assert_eq!(g.check_(&ids), Err(Refusal::NotABroker(-1)));
    }

    #[test]
    fn entries_must_follow_the_previous_log_id() {
        let g = guard();
        // The second attack's 19-byte frame: prev (1,3,8), then an entry at index 14.
        let bytes = [
            0x00, 0x00, 0x01, 0x03, 0x01, 0x01, 0x01, 0x03, 0x08, 0x01, 0x01, 0x03, 0x0e, 0x00,
            0x00,
        ];
        let received: super::super::rpc::Received = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(g.check_(&received.request), Err(Refusal::NotConsecutive));
        let entry = |term, index| Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        };
        let with_prev = |prev: Option<(u64, u64)>, entries| {
            Request::AppendEntries(AppendEntriesRequest {
                vote: Vote::new_committed(5, 1),
                prev_log_id: prev.map(|(t, i)| LogId::new(CommittedLeaderId::new(t, 1), i)),
                entries,
                leader_commit: None,
            })
        };
        assert_eq!(
            g.check_(&with_prev(Some((2, 8)), vec![entry(2, 9), entry(5, 10)])),
            Ok(())
        );
        assert_eq!(
            g.check_(&with_prev(None, vec![entry(1, 0), entry(1, 1)])),
            Ok(())
        );
        assert_eq!(
            g.check_(&with_prev(None, vec![entry(1, 1)])),
            Err(Refusal::NotConsecutive)
        );
        assert_eq!(
            g.check_(&with_prev(Some((3, 8)), vec![entry(2, 9)])),
            Err(Refusal::NotConsecutive)
        );
        assert_eq!(
            g.check_(&with_prev(Some((2, 8)), vec![entry(2, 9), entry(2, 9)])),
            Err(Refusal::NotConsecutive)
        );
    }

    #[test]
    fn a_snapshot_must_be_one_image_of_this_cluster_with_the_configured_voters() {
        let g = guard();
        let snapshot = |image: &[u8], voters: Membership<NodeId, BasicNode>, offset, done| {
            Request::InstallSnapshot(openraft::raft::InstallSnapshotRequest {
                vote: Vote::new_committed(5, 1),
                meta: openraft::SnapshotMeta {
                    last_log_id: Some(LogId::new(CommittedLeaderId::new(5, 1), 1_000_000)),
                    last_membership: openraft::StoredMembership::new(None, voters),
                    snapshot_id: "s".into(),
                },
                offset,
                data: image.to_vec(),
                done,
            })
        };
        let ours = postcard::to_stdvec(&MetadataImage {
            cluster_id: Some("cluster".into()),
            ..Default::default()
        })
        .unwrap();
        let theirs = postcard::to_stdvec(&MetadataImage {
            cluster_id: Some("EVIL".into()),
            ..Default::default()
        })
        .unwrap();
        let members = || membership(&[1, 2, 3]);
        assert_eq!(g.check_(&snapshot(&ours, members(), 0, true)), Ok(()));
        assert!(matches!(
            g.check_(&snapshot(&theirs, members(), 0, true)),
            Err(Refusal::Snapshot(_))
        ));
        // Garbage that made openraft stop for good after deleting the log.
        assert!(matches!(
            g.check_(&snapshot(
                &[0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                members(),
                0,
                true
            )),
            Err(Refusal::Snapshot(_))
        ));
        assert!(matches!(
            g.check_(&snapshot(&ours, members(), 1, true)),
            Err(Refusal::Snapshot(_))
        ));
        assert!(matches!(
            g.check_(&snapshot(&ours, members(), 0, false)),
            Err(Refusal::Snapshot(_))
        ));
        // The voters' ids at other addresses (the attack's 127.0.0.1:9).
        let elsewhere: std::collections::BTreeMap<NodeId, BasicNode> = [1, 2, 3]
            .into_iter()
            .map(|id| (id, BasicNode::new("127.0.0.1:9")))
            .collect();
        let moved = Membership::new(vec![[1, 2, 3].into()], elsewhere);
        assert_eq!(
            g.check_(&snapshot(&ours, moved, 0, true)),
            Err(Refusal::Membership)
        );
    }

    #[test]
    fn the_attacks_frames_decode_and_are_refused() {
        let g = guard();
        let frame = |hex: &str| -> Request {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            postcard::from_bytes(&bytes[4..]).unwrap()
        };
        let membership_change =
            frame("0000002300c0843d01010001c0843d0101020101040104093132372e302e302e3101c0843d0101");
        // Its membership entry sits at index 1 with no previous log id: refused for that first.
        assert_eq!(g.check_(&membership_change), Err(Refusal::NotConsecutive));
    }
}
