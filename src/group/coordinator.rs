//! Runs the group state machines: parks JoinGroup/SyncGroup requests until their effects answer
//! them, persists group metadata and committed offsets (flushed before acknowledging), drives
//! deadlines from a timer task, and expires offsets of empty groups.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::{oneshot, Mutex};
use tokio_util::sync::CancellationToken;

use super::offsets::{self, Committed, OffsetMap};
use super::state::{Effect, Group, State};
use super::{GroupConfig, JoinRequest, JoinResult, ReqId, SyncRequest, SyncResult};
use crate::log::now_ms;
use crate::meta::{GroupRecord, Meta};

/// How often deadlines (sessions, rebalances) are checked.
const TICK: Duration = Duration::from_millis(100);

pub struct Entry {
    pub group: Group,
    pub offsets: OffsetMap,
    joins: HashMap<ReqId, oneshot::Sender<JoinResult>>,
    syncs: HashMap<ReqId, oneshot::Sender<SyncResult>>,
}

impl Entry {
    fn new(group: Group) -> Entry {
        Entry {
            group,
            offsets: OffsetMap::new(),
            joins: HashMap::new(),
            syncs: HashMap::new(),
        }
    }
}

pub struct Coordinator {
    pub config: GroupConfig,
    meta: Arc<Meta>,
    groups: std::sync::Mutex<HashMap<String, Arc<Mutex<Entry>>>>,
    next_req: AtomicU64,
}

/// One partition's commit outcome.
pub type CommitResult = Result<(), ResponseError>;

impl Coordinator {
    /// Loads persisted groups (members come back Stable and keep heartbeating) and offsets.
    pub fn open(meta: Arc<Meta>, config: GroupConfig) -> io::Result<Coordinator> {
        let now = now_ms();
        let mut map: HashMap<String, Entry> = HashMap::new();
        for (id, r) in meta.groups()? {
            let mut g = Group::new(&id, r.state_since);
            g.protocol_type = r.protocol_type;
            g.protocol_name = r.protocol_name;
            g.generation = r.generation;
            g.leader = r.leader;
            g.members = r
                .members
                .into_iter()
                .map(|m| (m.member_id.clone(), m))
                .collect();
            map.insert(id, Entry::new(g.restored(now)));
        }
        for (group, topic, partition, c) in meta.offsets()? {
            map.entry(group.clone())
                .or_insert_with(|| Entry::new(Group::new(&group, now)))
                .offsets
                .insert((topic, partition), c);
        }
        let groups = map
            .into_iter()
            .map(|(k, v)| (k, Arc::new(Mutex::new(v))))
            .collect();
        Ok(Coordinator {
            config,
            meta,
            groups: std::sync::Mutex::new(groups),
            next_req: AtomicU64::new(1),
        })
    }

    fn entry(&self, id: &str, create: bool) -> Option<Arc<Mutex<Entry>>> {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = groups.get(id) {
            return Some(e.clone());
        }
        if !create {
            return None;
        }
        let e = Arc::new(Mutex::new(Entry::new(Group::new(id, now_ms()))));
        groups.insert(id.to_string(), e.clone());
        Some(e)
    }

    fn all(&self) -> Vec<Arc<Mutex<Entry>>> {
        self.groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    async fn persist(&self, e: &Entry) -> io::Result<()> {
        let g = &e.group;
        let record = GroupRecord {
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            generation: g.generation,
            leader: g.leader.clone(),
            state_since: g.state_since,
            members: g.members.values().cloned().collect(),
        };
        self.meta.put_group(&g.id, &record)?;
        self.meta.flush().await
    }

    /// Carries out effects in order: persist first, then answer parked requests.
    async fn apply(&self, e: &mut Entry, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Persist => {
                    if let Err(err) = self.persist(e).await {
                        let id = &e.group.id;
                        crate::condition::storage_error(
                            &crate::condition::META_WRITES,
                            "meta",
                            || format!("cannot persist the metadata of group {id}: {err}"),
                        );
                    }
                }
                Effect::Join(id, r) => {
                    if let Some(tx) = e.joins.remove(&id) {
                        let _ = tx.send(r);
                    }
                }
                Effect::Sync(id, r) => {
                    if let Some(tx) = e.syncs.remove(&id) {
                        let _ = tx.send(r);
                    }
                }
            }
        }
    }

    pub async fn join(&self, group_id: &str, req: JoinRequest) -> JoinResult {
        // Refused before any state exists, as Kafka's coordinator service does: a refused join
        // creates nothing.
        let refused = |error| JoinResult {
            error: Some(error),
            generation: -1,
            member_id: req.member_id.clone(),
            ..JoinResult::default()
        };
        if let Err(e) = valid_group_id(group_id) {
            return refused(e);
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return refused(ResponseError::InvalidSessionTimeout);
        }
        // A known member id for a group that does not exist: Kafka answers UNKNOWN_MEMBER_ID.
        let create = req.member_id.is_empty();
        let Some(entry) = self.entry(group_id, create) else {
            return refused(ResponseError::UnknownMemberId);
        };
        let id = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let fresh = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
        {
            let mut e = entry.lock().await;
            e.joins.insert(id, tx);
            let effects = e.group.join(req, id, fresh, now_ms(), &self.config);
            self.apply(&mut e, effects).await;
        }
        rx.await.unwrap_or_else(|_| JoinResult {
            error: Some(ResponseError::CoordinatorNotAvailable),
            generation: -1,
            ..JoinResult::default()
        })
    }

    pub async fn sync(&self, group_id: &str, req: SyncRequest) -> SyncResult {
        let Some(entry) = self.entry(group_id, false) else {
            return SyncResult {
                error: Some(ResponseError::UnknownMemberId),
                ..SyncResult::default()
            };
        };
        let id = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut e = entry.lock().await;
            e.syncs.insert(id, tx);
            let effects = e.group.sync(req, id, now_ms());
            self.apply(&mut e, effects).await;
        }
        rx.await.unwrap_or_else(|_| SyncResult {
            error: Some(ResponseError::CoordinatorNotAvailable),
            ..SyncResult::default()
        })
    }

    pub async fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        let entry = self
            .entry(group_id, false)
            .ok_or(ResponseError::UnknownMemberId)?;
        let mut e = entry.lock().await;
        e.group
            .heartbeat(member_id, instance_id, generation, now_ms())
    }

    /// LeaveGroup for several members (v3+ batches them).
    pub async fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        let entry = self
            .entry(group_id, false)
            .ok_or(ResponseError::UnknownMemberId)?;
        let mut e = entry.lock().await;
        let mut results = Vec::new();
        for (member_id, instance_id) in members {
            let (r, effects) =
                e.group
                    .leave(member_id, instance_id.as_deref(), now_ms(), &self.config);
            self.apply(&mut e, effects).await;
            results.push(r);
        }
        Ok(results)
    }

    /// OffsetCommit: validates the committer as Kafka's classic groups do, then stores and flushes
    /// every offset before returning.
    pub async fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        offsets: Vec<((String, i32), Committed)>,
    ) -> Result<(), ResponseError> {
        valid_group_id(group_id)?;
        let Some(entry) = self.entry(group_id, true) else {
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        let mut e = entry.lock().await;
        let g = &e.group;
        if g.state == State::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let standalone = generation < 0 && member_id.is_empty() && instance_id.is_none();
        if !(standalone && g.state == State::Empty) {
            if !standalone {
                g.validate_member(member_id, instance_id, generation)?;
            } else {
                return Err(ResponseError::UnknownMemberId);
            }
            if g.state == State::CompletingRebalance {
                return Err(ResponseError::RebalanceInProgress);
            }
        }
        let changes: Vec<(&str, i32, Option<&Committed>)> = offsets
            .iter()
            .map(|((t, p), c)| (t.as_str(), *p, Some(c)))
            .collect();
        self.meta.put_offsets(group_id, &changes).map_err(storage)?;
        self.meta.flush().await.map_err(storage)?;
        metrics::counter!("gregor_group_offset_commits_total").increment(offsets.len() as u64);
        e.offsets.extend(offsets);
        Ok(())
    }

    /// Committed offsets of a group: the listed partitions, or all when `None`.
    pub async fn committed(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<((String, i32), Option<Committed>)> {
        let Some(entry) = self.entry(group_id, false) else {
            return partitions
                .unwrap_or_default()
                .iter()
                .map(|k| (k.clone(), None))
                .collect();
        };
        let e = entry.lock().await;
        match partitions {
            Some(ps) => ps
                .iter()
                .map(|k| (k.clone(), e.offsets.get(k).cloned()))
                .collect(),
            None => e
                .offsets
                .iter()
                .map(|(k, c)| (k.clone(), Some(c.clone())))
                .collect(),
        }
    }

    /// OffsetDelete. `subscribed` tells whether an active member consumes a topic.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
        subscribed: impl Fn(&Group, &str) -> bool,
    ) -> Result<Vec<CommitResult>, ResponseError> {
        let entry = self
            .entry(group_id, false)
            .ok_or(ResponseError::GroupIdNotFound)?;
        let mut e = entry.lock().await;
        if e.group.state == State::Dead {
            return Err(ResponseError::GroupIdNotFound);
        }
        let results: Vec<CommitResult> = partitions
            .iter()
            .map(|(t, _)| {
                if e.group.state != State::Empty && subscribed(&e.group, t) {
                    Err(ResponseError::GroupSubscribedToTopic)
                } else {
                    Ok(())
                }
            })
            .collect();
        let doomed: Vec<(String, i32)> = partitions
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(k, _)| k.clone())
            .collect();
        let changes: Vec<(&str, i32, Option<&Committed>)> =
            doomed.iter().map(|(t, p)| (t.as_str(), *p, None)).collect();
        self.meta.put_offsets(group_id, &changes).map_err(storage)?;
        self.meta.flush().await.map_err(storage)?;
        for k in doomed {
            e.offsets.remove(&k);
        }
        Ok(results)
    }

    /// DeleteGroups for one group: only empty groups; offsets go with it.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), ResponseError> {
        let entry = self
            .entry(group_id, false)
            .ok_or(ResponseError::GroupIdNotFound)?;
        let mut e = entry.lock().await;
        e.group.delete(now_ms())?;
        self.meta.remove_group(group_id).map_err(storage)?;
        self.meta.flush().await.map_err(storage)?;
        e.offsets.clear();
        self.groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(group_id);
        Ok(())
    }

    /// A copy of a group's state for DescribeGroups / ListGroups.
    pub async fn snapshot(&self, group_id: &str) -> Option<Group> {
        let entry = self.entry(group_id, false)?;
        let e = entry.lock().await;
        Some(e.group.clone())
    }

    pub async fn snapshots(&self) -> Vec<Group> {
        let mut out = Vec::new();
        for entry in self.all() {
            out.push(entry.lock().await.group.clone());
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Drives deadlines until `stop`; expires offsets on Kafka's retention check interval.
    pub async fn run_timers(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        let mut last_expiry = now_ms();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let now = now_ms();
            for entry in self.all() {
                let Ok(mut e) = entry.try_lock() else {
                    continue;
                };
                if e.group.next_deadline().is_some_and(|d| d <= now) {
                    let effects = e.group.tick(now, &self.config);
                    self.apply(&mut e, effects).await;
                }
            }
            if now - last_expiry >= self.config.offsets_retention_check_interval_ms {
                last_expiry = now;
                self.expire_offsets(now).await;
            }
        }
    }

    /// Kafka's retention check: expired offsets go, then every group left empty with no offsets
    /// (a join and a leave, or a refused join, leave nothing behind).
    async fn expire_offsets(&self, now: i64) {
        for entry in self.all() {
            let mut e = entry.lock().await;
            let doomed =
                offsets::expired(&e.group, &e.offsets, now, self.config.offsets_retention_ms);
            if doomed.is_empty() {
                if e.offsets.is_empty() && e.group.state == State::Empty {
                    self.remove_empty(e, now);
                }
                continue;
            }
            let changes: Vec<(&str, i32, Option<&Committed>)> =
                doomed.iter().map(|(t, p)| (t.as_str(), *p, None)).collect();
            if let Err(err) = self.meta.put_offsets(&e.group.id, &changes) {
                tracing::error!(group = %e.group.id, error = %err, "cannot expire offsets");
                continue;
            }
            for k in &doomed {
                e.offsets.remove(k);
            }
            tracing::info!(group = %e.group.id, expired = doomed.len(), "expired committed offsets");
            metrics::counter!("gregor_group_offsets_expired_total").increment(doomed.len() as u64);
            if e.offsets.is_empty() && e.group.state == State::Empty {
                self.remove_empty(e, now);
            }
        }
    }

    /// Removes an empty group with no offsets (its record, then its entry).
    fn remove_empty(&self, mut e: tokio::sync::MutexGuard<'_, Entry>, now: i64) {
        if e.group.delete(now).is_err() {
            return;
        }
        let id = e.group.id.clone();
        drop(e);
        if let Err(err) = self.meta.remove_group(&id) {
            tracing::error!(group = %id, error = %err, "cannot remove an empty group");
        }
        self.groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        metrics::counter!("gregor_groups_removed_total").increment(1);
    }
}

/// The longest group id Kafka can store: its records' keys hold it as a string with a 16-bit
/// length (longer ids fail to serialize there; gregor's offset keys use the same 16-bit length).
pub const MAX_GROUP_ID_BYTES: usize = i16::MAX as usize;

/// INVALID_GROUP_ID for an empty group id or one longer than Kafka can store.
pub fn valid_group_id(group_id: &str) -> Result<(), ResponseError> {
    if group_id.is_empty() || group_id.len() > MAX_GROUP_ID_BYTES {
        return Err(ResponseError::InvalidGroupId);
    }
    Ok(())
}

fn storage(e: io::Error) -> ResponseError {
    crate::condition::storage_error(&crate::condition::META_WRITES, "meta", || {
        format!("group storage failed: {e}")
    });
    ResponseError::KafkaStorageError
}
