//! What the controller listener refuses before Raft sees it. openraft trusts its peers: a request
//! claiming an absurd term, a leader that is not a voter, or a membership other than the
//! configured voters can make it panic or depose the real leader. The quorum here is static
//! (`controller.quorum.voters`), so every legitimate request names a voter other than this node,
//! carries terms that only elections raised, and never changes the membership.

use std::collections::BTreeSet;

use openraft::{EntryPayload, LogId, Membership, Vote};

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
}

/// The configured voters, and this node among them.
pub struct Guard {
    pub me: NodeId,
    pub voters: BTreeSet<NodeId>,
}

impl Guard {
    fn vote(&self, vote: &Vote<NodeId>) -> Result<u64, Refusal> {
        let from = vote.leader_id().voted_for();
        if !from.is_some_and(|id| id != self.me && self.voters.contains(&id)) {
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

    fn membership(&self, m: &Membership<NodeId, openraft::BasicNode>) -> Result<(), Refusal> {
        let voters: BTreeSet<NodeId> = m.voter_ids().collect();
        let learners = m.learner_ids().count();
        if voters != self.voters || learners != 0 {
            return Err(Refusal::Membership);
        }
        Ok(())
    }

    /// Whether Raft may see `req` (other requests are not Raft's and pass).
    pub fn check(&self, req: &Request) -> Result<(), Refusal> {
        match req {
            Request::AppendEntries(r) => {
                let term = self.vote(&r.vote)?;
                Self::log_id(term, &r.prev_log_id)?;
                Self::log_id(term, &r.leader_commit)?;
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
                self.membership(r.meta.last_membership.membership())
            }
            // Every broker of a combined-mode cluster is a voter.
            Request::Controller(
                ControllerRequest::Register { id, .. }
                | ControllerRequest::Heartbeat { id, .. }
                | ControllerRequest::AllocateProducerIds { id, .. },
            ) => {
                if self.voters.contains(&(*id as NodeId)) {
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
    use openraft::{BasicNode, CommittedLeaderId, Entry};

    fn guard() -> Guard {
        Guard {
            me: 2,
            voters: [1, 2, 3].into(),
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
        assert_eq!(g.check(&append(Vote::new_committed(5, 1), vec![])), Ok(()));
        let vote = Request::Vote(VoteRequest::new(Vote::new(6, 3), None));
        assert_eq!(g.check(&vote), Ok(()));
        // The first entry of a quorum: its configured membership.
        let first = Entry {
            log_id: LogId::new(CommittedLeaderId::new(0, 0), 0),
            payload: EntryPayload::Membership(membership(&[1, 2, 3])),
        };
        assert_eq!(
            g.check(&append(Vote::new_committed(1, 3), vec![first])),
            Ok(())
        );
    }

    #[test]
    fn strangers_impostors_and_absurd_terms_are_refused() {
        let g = guard();
        // The attack's 13-byte frame: term u64::MAX from "node 0".
        assert_eq!(
            g.check(&append(Vote::new_committed(u64::MAX, 0), vec![])),
            Err(Refusal::NotAVoter(Some(0)))
        );
        assert_eq!(
            g.check(&append(Vote::new_committed(u64::MAX, 1), vec![])),
            Err(Refusal::Term(u64::MAX))
        );
        // This node's own id from elsewhere.
        assert_eq!(
            g.check(&append(Vote::new_committed(3, 2), vec![])),
            Err(Refusal::NotAVoter(Some(2)))
        );
        let mut v = Vote::new(3, 1);
        v.leader_id.node_id = 9;
        assert_eq!(
            g.check(&Request::Vote(VoteRequest::new(v, None))),
            Err(Refusal::NotAVoter(Some(9)))
        );
    }

    #[test]
    fn a_membership_change_or_a_log_from_the_future_is_refused() {
        let g = guard();
        // The attack's 39-byte frame: voters {4} at term 1e6 from node 1.
        let other = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1_000_000, 1), 1),
            payload: EntryPayload::Membership(membership(&[4])),
        };
        assert_eq!(
            g.check(&append(Vote::new_committed(1_000_000, 1), vec![other])),
            Err(Refusal::Membership)
        );
        let future = Entry {
            log_id: LogId::new(CommittedLeaderId::new(9, 1), 4),
            payload: EntryPayload::Blank,
        };
        assert_eq!(
            g.check(&append(Vote::new_committed(5, 1), vec![future])),
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
        assert_eq!(g.check(&register(3)), Ok(()));
        assert_eq!(g.check(&register(7)), Err(Refusal::NotABroker(7)));
        let ids = Request::Controller(ControllerRequest::AllocateProducerIds { id: -1, epoch: 1 });
        assert_eq!(g.check(&ids), Err(Refusal::NotABroker(-1)));
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
        assert_eq!(g.check(&membership_change), Err(Refusal::Membership));
    }
}
