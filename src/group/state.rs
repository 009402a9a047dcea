//! The classic group protocol as a pure state machine: `(group, event, now) → effects`. No I/O, no
//! clock: the coordinator passes the time in and carries out the effects (answering parked
//! JoinGroup/SyncGroup requests, persisting the group). Follows Kafka's classic group coordinator:
//! Empty → PreparingRebalance → CompletingRebalance → Stable (→ Dead when deleted).

use std::collections::HashMap;

use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::ResponseError;

use super::{GroupConfig, JoinResult, JoinedMember, Member, Protocol, ReqId, SyncResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl State {
    /// The name Kafka reports (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

/// What the coordinator must do after an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Join(ReqId, JoinResult),
    Sync(ReqId, SyncResult),
    /// The group's persistent metadata changed: store it (before the responses that follow).
    Persist,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub state: State,
    /// When the group entered its current state (millis).
    pub state_since: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// Members in join order (the first becomes leader).
    pub members: IndexMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, and when they lapse.
    pub(super) pending: HashMap<String, i64>,
    /// group.instance.id → member id.
    pub(super) statics: HashMap<String, String>,
    /// PreparingRebalance: when the join phase ends; CompletingRebalance: when syncs are due.
    pub(super) deadline: Option<i64>,
    /// Remaining extension budget of the initial rebalance delay, if that delay is running.
    pub(super) initial_delay_left: Option<i64>,
    pub(super) new_member_added: bool,
}

pub(super) fn join_error(member_id: &str, error: ResponseError) -> JoinResult {
    JoinResult {
        error: Some(error),
        member_id: member_id.to_string(),
        generation: -1,
        ..JoinResult::default()
    }
}

pub(super) fn sync_error(error: ResponseError) -> SyncResult {
    SyncResult {
        error: Some(error),
        ..SyncResult::default()
    }
}

impl Group {
    pub fn new(id: &str, now: i64) -> Group {
        Group {
            id: id.to_string(),
            state: State::Empty,
            state_since: now,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            deadline: None,
            initial_delay_left: None,
            new_member_added: false,
        }
    }

    /// A group restored from storage: Stable with its members (who keep heartbeating), or Empty.
    pub fn restored(mut self, now: i64) -> Group {
        for m in self.members.values_mut() {
            m.last_heartbeat = now;
            if let Some(i) = &m.instance_id {
                self.statics.insert(i.clone(), m.member_id.clone());
            }
        }
        self.state = if self.members.is_empty() {
            State::Empty
        } else {
            State::Stable
        };
        self
    }

    pub(super) fn transition(&mut self, state: State, now: i64) {
        self.state = state;
        self.state_since = now;
    }

    /// The next time `tick` has work to do.
    pub fn next_deadline(&self) -> Option<i64> {
        let session = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
            .map(|m| m.last_heartbeat + i64::from(m.session_timeout_ms));
        session
            .chain(self.pending.values().copied())
            .chain(self.deadline)
            .min()
    }

    pub(super) fn supports(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|q| q.name == p.name))
            })
    }

    pub(super) fn accepts_joining(&self, member_id: &str, max: usize) -> bool {
        match self.state {
            State::Empty | State::Dead => true,
            State::PreparingRebalance => {
                self.members
                    .get(member_id)
                    .is_some_and(|m| m.awaiting_join.is_some())
                    || self
                        .members
                        .values()
                        .filter(|m| m.awaiting_join.is_some())
                        .count()
                        < max
            }
            State::CompletingRebalance | State::Stable => {
                self.members.contains_key(member_id) || self.members.len() < max
            }
        }
    }

    /// The protocol every member supports that most members prefer.
    pub(super) fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|q| q.name == *n))
            })
            .collect();
        let mut votes: Vec<(usize, &str)> = candidates.iter().map(|c| (0, *c)).collect();
        for m in self.members.values() {
            if let Some(choice) = m
                .protocols
                .iter()
                .find(|p| candidates.contains(&p.name.as_str()))
            {
                if let Some(v) = votes.iter_mut().find(|(_, n)| *n == choice.name) {
                    v.0 += 1;
                }
            }
        }
        let best = votes.iter().map(|(n, _)| *n).max()?;
        votes
            .into_iter()
            .find(|(n, _)| *n == best)
            .map(|(_, n)| n.to_string())
    }

    pub(super) fn current_join_result(
        &self,
        member_id: &str,
        leader_override: Option<&str>,
    ) -> JoinResult {
        let leader = leader_override
            .map(str::to_string)
            .or_else(|| self.leader.clone())
            .unwrap_or_default();
        let members = if leader == member_id {
            self.joined_members()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    pub(super) fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or("");
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m
                    .protocols
                    .iter()
                    .find(|p| p.name == protocol)
                    .map(|p| p.metadata.clone())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Moves to PreparingRebalance (no-op if already there), failing pending syncs.
    pub(super) fn prepare_rebalance(&mut self, now: i64, cfg: &GroupConfig) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.state == State::PreparingRebalance {
            return effects;
        }
        if self.state == State::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(p) = m.awaiting_sync.take() {
                    effects.push(Effect::Sync(
                        p,
                        sync_error(ResponseError::RebalanceInProgress),
                    ));
                }
            }
        }
        let rebalance_timeout = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        if self.state == State::Empty && cfg.initial_rebalance_delay_ms > 0 {
            let delay = cfg
                .initial_rebalance_delay_ms
                .min(rebalance_timeout.max(cfg.initial_rebalance_delay_ms));
            self.deadline = Some(now + delay);
            self.initial_delay_left = Some((rebalance_timeout - delay).max(0));
            self.new_member_added = false;
        } else {
            self.deadline = Some(now + rebalance_timeout);
            self.initial_delay_left = None;
        }
        self.transition(State::PreparingRebalance, now);
        metrics::counter!("gregor_group_rebalances_total").increment(1);
        effects
    }

    /// Completes the join phase once every member has rejoined (and no initial delay runs).
    pub(super) fn try_complete_join(&mut self, now: i64) -> Vec<Effect> {
        if self.state != State::PreparingRebalance || self.initial_delay_left.is_some() {
            return Vec::new();
        }
        let all_joined =
            self.pending.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some());
        if all_joined {
            self.complete_join(now)
        } else {
            Vec::new()
        }
    }

    pub(super) fn complete_join(&mut self, now: i64) -> Vec<Effect> {
        let mut effects = Vec::new();
        let laggards: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in laggards {
            effects.extend(self.remove_member(&id));
        }
        self.pending.clear();
        self.initial_delay_left = None;
        self.generation += 1;
        if self.members.is_empty() {
            // Kafka keeps the protocol type of an empty group (describe shows it).
            self.protocol_name = None;
            self.leader = None;
            self.deadline = None;
            self.transition(State::Empty, now);
            effects.push(Effect::Persist);
            return effects;
        }
        self.protocol_name = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.transition(State::CompletingRebalance, now);
        let sync_timeout = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        self.deadline = Some(now + sync_timeout);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let r = self.current_join_result(&id, None);
            let m = self.members.get_mut(&id).expect("member present");
            m.is_new = false;
            m.last_heartbeat = now;
            if let Some(p) = m.awaiting_join.take() {
                effects.push(Effect::Join(p, r));
            }
        }
        effects
    }

    /// Removes a member, failing its parked requests; the caller handles the state change.
    pub(super) fn remove_member(&mut self, member_id: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(m) = self.members.shift_remove(member_id) {
            if let Some(p) = m.awaiting_join {
                effects.push(Effect::Join(
                    p,
                    join_error(member_id, ResponseError::UnknownMemberId),
                ));
            }
            if let Some(p) = m.awaiting_sync {
                effects.push(Effect::Sync(p, sync_error(ResponseError::UnknownMemberId)));
            }
            if let Some(i) = &m.instance_id {
                if self.statics.get(i).map(String::as_str) == Some(member_id) {
                    self.statics.remove(i);
                }
            }
            if self.leader.as_deref() == Some(member_id) {
                self.leader = self.members.keys().next().cloned();
            }
        }
        effects
    }

    /// Removes members (leave, session expiry) and moves the group on.
    pub(super) fn remove_and_rebalance(
        &mut self,
        ids: &[String],
        now: i64,
        cfg: &GroupConfig,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        for id in ids {
            effects.extend(self.remove_member(id));
        }
        match self.state {
            State::Stable | State::CompletingRebalance => {
                effects.extend(self.prepare_rebalance(now, cfg));
                // As Kafka's DelayedJoin, try to complete the join phase at once: with nobody left
                // the group is Empty before the LeaveGroup (or expiry) is answered.
                effects.extend(self.try_complete_join(now));
            }
            State::PreparingRebalance => effects.extend(self.try_complete_join(now)),
            State::Empty | State::Dead => {}
        }
        effects
    }

    /// Checks `member_id` / `instance_id` / generation the way SyncGroup, Heartbeat and
    /// OffsetCommit do.
    pub fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if self.state == State::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if let Some(i) = instance_id {
            match self.statics.get(i) {
                Some(m) if m == member_id => {}
                Some(_) => return Err(ResponseError::FencedInstanceId),
                None => return Err(ResponseError::UnknownMemberId),
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }
}
