//! JoinGroup: new, known and static members, and the rebalances their joins start.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::state::{join_error, sync_error, Effect, Group, State};
use super::{GroupConfig, JoinRequest, JoinResult, Member, ReqId};

impl Group {
    /// JoinGroup. `fresh_member_id` is the id to hand out if the member needs a new one.
    pub fn join(
        &mut self,
        req: JoinRequest,
        id: ReqId,
        fresh_member_id: String,
        now: i64,
        cfg: &GroupConfig,
    ) -> Vec<Effect> {
        let reply = |r: JoinResult| vec![Effect::Join(id, r)];
        if self.state == State::Dead {
            return reply(join_error(
                &req.member_id,
                ResponseError::CoordinatorNotAvailable,
            ));
        }
        if req.session_timeout_ms < cfg.min_session_timeout_ms
            || req.session_timeout_ms > cfg.max_session_timeout_ms
        {
            return reply(join_error(
                &req.member_id,
                ResponseError::InvalidSessionTimeout,
            ));
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return reply(join_error(
                &req.member_id,
                ResponseError::InconsistentGroupProtocol,
            ));
        }
        if req.member_id.is_empty() {
            self.join_unknown(req, id, fresh_member_id, now, cfg)
        } else {
            self.join_known(req, id, now, cfg)
        }
    }

    fn join_unknown(
        &mut self,
        req: JoinRequest,
        id: ReqId,
        fresh: String,
        now: i64,
        cfg: &GroupConfig,
    ) -> Vec<Effect> {
        if !self.accepts_joining(&fresh, cfg.max_size) {
            return vec![Effect::Join(
                id,
                join_error("", ResponseError::GroupMaxSizeReached),
            )];
        }
        if let Some(instance) = req.instance_id.clone() {
            if let Some(old) = self.statics.get(&instance).cloned() {
                return self.replace_static(req, id, &old, fresh, now, cfg);
            }
            return self.add_member(req, id, fresh, now, cfg);
        }
        if req.require_known_member_id {
            self.pending
                .insert(fresh.clone(), now + i64::from(req.session_timeout_ms));
            return vec![Effect::Join(
                id,
                join_error(&fresh, ResponseError::MemberIdRequired),
            )];
        }
        self.add_member(req, id, fresh, now, cfg)
    }

    fn join_known(
        &mut self,
        req: JoinRequest,
        id: ReqId,
        now: i64,
        cfg: &GroupConfig,
    ) -> Vec<Effect> {
        let member_id = req.member_id.clone();
        if self.pending.remove(&member_id).is_some() {
            if !self.accepts_joining(&member_id, cfg.max_size) {
                return vec![Effect::Join(
                    id,
                    join_error(&member_id, ResponseError::GroupMaxSizeReached),
                )];
            }
            return self.add_member(req, id, member_id, now, cfg);
        }
        let Some(member) = self.members.get(&member_id) else {
            return vec![Effect::Join(
                id,
                join_error(&member_id, ResponseError::UnknownMemberId),
            )];
        };
        if let Some(instance) = &req.instance_id {
            if self.statics.get(instance) != Some(&member_id) {
                return vec![Effect::Join(
                    id,
                    join_error(&member_id, ResponseError::FencedInstanceId),
                )];
            }
        }
        let unchanged = member.protocols == req.protocols;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            State::PreparingRebalance => self.update_and_rebalance(req, id, now, cfg),
            State::CompletingRebalance if unchanged => {
                let r = self.current_join_result(&member_id, None);
                self.heartbeat_now(&member_id, now);
                vec![Effect::Join(id, r)]
            }
            State::Stable if unchanged && !is_leader => {
                let r = self.current_join_result(&member_id, None);
                self.heartbeat_now(&member_id, now);
                vec![Effect::Join(id, r)]
            }
            State::CompletingRebalance | State::Stable => {
                self.update_and_rebalance(req, id, now, cfg)
            }
            State::Empty | State::Dead => vec![Effect::Join(
                id,
                join_error(&member_id, ResponseError::UnknownMemberId),
            )],
        }
    }

    pub(super) fn heartbeat_now(&mut self, member_id: &str, now: i64) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
    }

    fn add_member(
        &mut self,
        req: JoinRequest,
        id: ReqId,
        member_id: String,
        now: i64,
        cfg: &GroupConfig,
    ) -> Vec<Effect> {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(i) = &req.instance_id {
            self.statics.insert(i.clone(), member_id.clone());
        }
        let member = Member {
            member_id: member_id.clone(),
            instance_id: req.instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(id),
            awaiting_sync: None,
            last_heartbeat: now,
            is_new: true,
        };
        self.members.insert(member_id.clone(), member);
        if self.leader.is_none() {
            self.leader = Some(member_id);
        }
        self.new_member_added = true;
        let mut effects = self.prepare_rebalance(now, cfg);
        effects.extend(self.try_complete_join(now));
        effects
    }

    fn update_and_rebalance(
        &mut self,
        req: JoinRequest,
        id: ReqId,
        now: i64,
        cfg: &GroupConfig,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(m) = self.members.get_mut(&req.member_id) {
            if let Some(old) = m.awaiting_join.replace(id) {
                effects.push(Effect::Join(
                    old,
                    join_error(&m.member_id, ResponseError::RebalanceInProgress),
                ));
            }
            m.protocols = req.protocols;
            m.session_timeout_ms = req.session_timeout_ms;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.last_heartbeat = now;
        }
        effects.extend(self.prepare_rebalance(now, cfg));
        effects.extend(self.try_complete_join(now));
        effects
    }

    /// A static member rejoining under a new member id: the old id is fenced.
    fn replace_static(
        &mut self,
        req: JoinRequest,
        id: ReqId,
        old: &str,
        fresh: String,
        now: i64,
        cfg: &GroupConfig,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(mut member) = self.members.shift_remove(old) else {
            return self.add_member(req, id, fresh, now, cfg);
        };
        let previous_leader = self.leader.clone();
        if let Some(p) = member.awaiting_join.take() {
            effects.push(Effect::Join(
                p,
                join_error(old, ResponseError::FencedInstanceId),
            ));
        }
        if let Some(p) = member.awaiting_sync.take() {
            effects.push(Effect::Sync(p, sync_error(ResponseError::FencedInstanceId)));
        }
        let unchanged = member.protocols == req.protocols;
        member.member_id = fresh.clone();
        member.protocols = req.protocols.clone();
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.last_heartbeat = now;
        self.members.insert(fresh.clone(), member);
        if let Some(i) = &req.instance_id {
            self.statics.insert(i.clone(), fresh.clone());
        }
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(fresh.clone());
        }
        match self.state {
            State::Stable if unchanged || self.select_protocol() == self.protocol_name => {
                // No rebalance: answer with the current generation; the old leader id keeps the
                // new member from running a needless assignment.
                effects.push(Effect::Persist);
                effects.push(Effect::Join(
                    id,
                    self.current_join_result(&fresh, previous_leader.as_deref()),
                ));
                effects
            }
            State::PreparingRebalance => {
                if let Some(m) = self.members.get_mut(&fresh) {
                    m.awaiting_join = Some(id);
                }
                effects.extend(self.try_complete_join(now));
                effects
            }
            _ => {
                if let Some(m) = self.members.get_mut(&fresh) {
                    m.awaiting_join = Some(id);
                }
                effects.extend(self.prepare_rebalance(now, cfg));
                effects.extend(self.try_complete_join(now));
                effects
            }
        }
    }
}
