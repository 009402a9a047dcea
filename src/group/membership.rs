//! SyncGroup, Heartbeat, LeaveGroup, deadlines and deletion.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::state::{sync_error, Effect, Group, State};
use super::{GroupConfig, ReqId, SyncRequest, SyncResult};

impl Group {
    pub fn sync(&mut self, req: SyncRequest, id: ReqId, now: i64) -> Vec<Effect> {
        let reply = |e: ResponseError| vec![Effect::Sync(id, sync_error(e))];
        if let Err(e) =
            self.validate_member(&req.member_id, req.instance_id.as_deref(), req.generation)
        {
            return reply(e);
        }
        if req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|n| Some(n) != self.protocol_name.as_ref())
        {
            return reply(ResponseError::InconsistentGroupProtocol);
        }
        self.heartbeat_now(&req.member_id, now);
        match self.state {
            State::Empty => reply(ResponseError::UnknownMemberId),
            State::PreparingRebalance => reply(ResponseError::RebalanceInProgress),
            State::Dead => reply(ResponseError::CoordinatorNotAvailable),
            State::Stable => vec![Effect::Sync(id, self.assignment_of(&req.member_id))],
            State::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.awaiting_sync = Some(id);
                }
                if self.leader.as_deref() != Some(req.member_id.as_str()) {
                    return Vec::new();
                }
                let assigned: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                for m in self.members.values_mut() {
                    m.assignment = assigned.get(&m.member_id).cloned().unwrap_or_default();
                }
                self.deadline = None;
                self.transition(State::Stable, now);
                let mut effects = vec![Effect::Persist];
                let ids: Vec<String> = self.members.keys().cloned().collect();
                for mid in ids {
                    let r = self.assignment_of(&mid);
                    if let Some(p) = self
                        .members
                        .get_mut(&mid)
                        .and_then(|m| m.awaiting_sync.take())
                    {
                        effects.push(Effect::Sync(p, r));
                    }
                }
                effects
            }
        }
    }

    fn assignment_of(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Result<(), ResponseError> {
        if self.state == State::Empty {
            return Err(ResponseError::UnknownMemberId);
        }
        self.validate_member(member_id, instance_id, generation)?;
        self.heartbeat_now(member_id, now);
        match self.state {
            State::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// LeaveGroup for one member, identified by member id and/or instance id.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: i64,
        cfg: &GroupConfig,
    ) -> (Result<(), ResponseError>, Vec<Effect>) {
        if self.state == State::Dead {
            return (Err(ResponseError::CoordinatorNotAvailable), Vec::new());
        }
        let target = match instance_id {
            Some(i) => match self.statics.get(i) {
                Some(m) if member_id.is_empty() || m == member_id => m.clone(),
                Some(_) => return (Err(ResponseError::FencedInstanceId), Vec::new()),
                None => return (Err(ResponseError::UnknownMemberId), Vec::new()),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&target).is_some() {
            return (Ok(()), self.try_complete_join(now));
        }
        if !self.members.contains_key(&target) {
            return (Err(ResponseError::UnknownMemberId), Vec::new());
        }
        (Ok(()), self.remove_and_rebalance(&[target], now, cfg))
    }

    /// Deadlines: expired sessions, lapsed pending members, the end of the join phase, overdue syncs.
    pub fn tick(&mut self, now: i64, cfg: &GroupConfig) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
            .filter(|m| m.last_heartbeat + i64::from(m.session_timeout_ms) <= now)
            .map(|m| m.member_id.clone())
            .collect();
        if !expired.is_empty() {
            tracing::info!(group = %self.id, members = ?expired, "session timeout: removing members");
            effects.extend(self.remove_and_rebalance(&expired, now, cfg));
        }
        match (self.state, self.deadline) {
            (State::PreparingRebalance, Some(d)) if d <= now => {
                if let Some(left) = self.initial_delay_left {
                    if self.new_member_added && left > 0 {
                        let step = cfg.initial_rebalance_delay_ms.min(left);
                        self.deadline = Some(now + step);
                        self.initial_delay_left = Some(left - step);
                        self.new_member_added = false;
                        return effects;
                    }
                }
                effects.extend(self.complete_join(now));
            }
            (State::CompletingRebalance, Some(d)) if d <= now => {
                let unsynced: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.awaiting_sync.is_none())
                    .map(|m| m.member_id.clone())
                    .collect();
                tracing::info!(group = %self.id, members = ?unsynced, "sync timeout: removing members");
                effects.extend(self.remove_and_rebalance(&unsynced, now, cfg));
            }
            _ => effects.extend(self.try_complete_join(now)),
        }
        effects
    }

    /// Marks the group deleted (DeleteGroups); only an empty group may be deleted.
    pub fn delete(&mut self, now: i64) -> Result<(), ResponseError> {
        match self.state {
            State::Empty => {
                self.transition(State::Dead, now);
                Ok(())
            }
            State::Dead => Err(ResponseError::GroupIdNotFound),
            _ => Err(ResponseError::NonEmptyGroup),
        }
    }
}
