//! Incremental fetch sessions (KIP-227): a bounded cache of sessions, each remembering the
//! partitions a consumer fetches and what it was last told about them, so later requests list only
//! changes and responses carry only partitions with news.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use uuid::Uuid;

/// Sessions unused this long may be evicted by new ones (Kafka's default eviction time).
const STALE_AFTER: Duration = Duration::from_secs(120);
/// The epoch of a request that opens a new session (full fetch).
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch of a sessionless full fetch (or a request closing its session).
pub const FINAL_EPOCH: i32 = -1;

/// How a request names a topic: by name (Fetch v4–v12) or by id (v13+).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicRef {
    Name(String),
    Id(Uuid),
}

/// One partition a session fetches, and what the client last heard about it.
#[derive(Debug, Clone)]
pub struct SessionPartition {
    pub topic: TopicRef,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub last_hw: i64,
    pub last_log_start: i64,
}

impl SessionPartition {
    pub fn new(topic: TopicRef, partition: i32, fetch_offset: i64, max_bytes: i32) -> Self {
        SessionPartition {
            topic,
            partition,
            fetch_offset,
            max_bytes,
            last_hw: -1,
            last_log_start: -1,
        }
    }
}

/// A partition's identity in a request or a session.
type Key = (TopicRef, i32);

/// Partitions in request order, each once (a partition named again keeps its first place and
/// takes its latest fields, as Kafka's LinkedHashMap of fetch data), with O(1) lookup.
#[derive(Default, Clone)]
pub struct PartitionList {
    partitions: Vec<SessionPartition>,
    index: HashMap<Key, usize>,
}

impl PartitionList {
    pub fn from_listed(listed: impl IntoIterator<Item = SessionPartition>) -> Self {
        let mut list = PartitionList::default();
        for p in listed {
            list.upsert(p);
        }
        list
    }

    /// Adds `p`, or updates the fetch position and limit of the partition already there.
    fn upsert(&mut self, p: SessionPartition) {
        match self.index.get(&(p.topic.clone(), p.partition)) {
            Some(&i) => {
                let q = &mut self.partitions[i];
                q.fetch_offset = p.fetch_offset;
                q.max_bytes = p.max_bytes;
            }
            None => {
                self.index
                    .insert((p.topic.clone(), p.partition), self.partitions.len());
                self.partitions.push(p);
            }
        }
    }

    fn forget(&mut self, forgotten: &HashSet<Key>) {
        if forgotten.is_empty() {
            return;
        }
        self.partitions
            .retain(|p| !forgotten.contains(&(p.topic.clone(), p.partition)));
        self.reindex();
    }

    /// Moves `keys` after the other partitions, each group keeping its order.
    fn move_to_end(&mut self, keys: &HashSet<Key>) {
        if keys.is_empty() {
            return;
        }
        self.partitions
            .sort_by_key(|p| keys.contains(&(p.topic.clone(), p.partition)));
        self.reindex();
    }

    fn reindex(&mut self) {
        self.index = self
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.topic.clone(), p.partition), i))
            .collect();
    }

    fn get_mut(&mut self, key: &Key) -> Option<&mut SessionPartition> {
        let i = *self.index.get(key)?;
        self.partitions.get_mut(i)
    }

    pub fn len(&self) -> usize {
        self.partitions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    pub fn into_vec(self) -> Vec<SessionPartition> {
        self.partitions
    }
}

struct Session {
    partitions: PartitionList,
    next_epoch: i32,
    last_used: Instant,
}

/// The session cache. The map's lock is held only to find, add or evict a session; work on one
/// session's partitions holds that session's own lock, so a client updating a large session never
/// makes others wait.
pub struct FetchSessions {
    slots: usize,
    sessions: Mutex<HashMap<i32, Arc<Mutex<Session>>>>,
}

/// A random positive session id (Kafka's are random too: a client cannot guess another's).
fn random_id() -> i32 {
    ((Uuid::new_v4().as_u128() as u32) & 0x7fff_ffff).max(1) as i32
}

/// What a fetch request resolves to.
pub enum Resolved {
    /// A full fetch: respond with every listed partition; `session_id` 0 means sessionless.
    Full {
        session_id: i32,
        partitions: Vec<SessionPartition>,
    },
    /// An incremental fetch over the session's partitions: respond only with changes.
    Incremental {
        session_id: i32,
        partitions: Vec<SessionPartition>,
    },
    Error(ResponseError),
}

impl FetchSessions {
    pub fn new(slots: usize) -> Self {
        FetchSessions {
            slots,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Arc<Mutex<Session>>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn open_sessions(&self) -> usize {
        self.map().len()
    }

    /// Resolves a request's session fields against the cache. `listed` are the partitions the
    /// request names, `forgotten` those it drops (incremental requests only).
    pub fn resolve(
        &self,
        session_id: i32,
        epoch: i32,
        listed: PartitionList,
        forgotten: Vec<Key>,
    ) -> Resolved {
        let now = Instant::now();
        if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            let mut sessions = self.map();
            if session_id != 0 {
                sessions.remove(&session_id);
            }
            if epoch == FINAL_EPOCH
                || self.slots == 0
                || !make_room(&mut sessions, self.slots, listed.len(), now)
            {
                return Resolved::Full {
                    session_id: 0,
                    partitions: listed.into_vec(),
                };
            }
            let id = loop {
                let id = random_id();
                if !sessions.contains_key(&id) {
                    break id;
                }
            };
            sessions.insert(
                id,
                Arc::new(Mutex::new(Session {
                    partitions: listed.clone(),
                    next_epoch: 1,
                    last_used: now,
                })),
            );
            metrics::gauge!("gregor_fetch_sessions").set(sessions.len() as f64);
            return Resolved::Full {
                session_id: id,
                partitions: listed.into_vec(),
            };
        }
        let Some(session) = self.map().get(&session_id).cloned() else {
            return Resolved::Error(ResponseError::FetchSessionIdNotFound);
        };
        let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
        if session.next_epoch != epoch {
            return Resolved::Error(ResponseError::InvalidFetchSessionEpoch);
        }
        session.next_epoch = epoch.wrapping_add(1).max(1);
        session.last_used = now;
        session.partitions.forget(&forgotten.into_iter().collect());
        for l in listed.into_vec() {
            session.partitions.upsert(l);
        }
        Resolved::Incremental {
            session_id,
            partitions: session.partitions.partitions.clone(),
        }
    }

    /// Records what a response told the client about each partition, `(topic, partition, high
    /// watermark, log start, whether records were sent)`. As Kafka's incremental fetch context
    /// does, partitions that got records move to the end of the session, so the next response's
    /// byte budget goes to the others first and no partition starves behind busier ones.
    pub fn record_sent(&self, session_id: i32, sent: &[(TopicRef, i32, i64, i64, bool)]) {
        if session_id == 0 {
            return;
        }
        let Some(session) = self.map().get(&session_id).cloned() else {
            return;
        };
        let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
        let mut served = HashSet::new();
        for (topic, partition, hw, log_start, records) in sent {
            let key = (topic.clone(), *partition);
            if let Some(p) = s.partitions.get_mut(&key) {
                p.last_hw = *hw;
                p.last_log_start = *log_start;
                if *records {
                    served.insert(key);
                }
            }
        }
        s.partitions.move_to_end(&served);
    }
}

/// Frees a slot if the cache is full: the least recently used session goes if it is stale or
/// smaller than the newcomer (Kafka prefers keeping sessions that save the most work).
fn make_room(
    sessions: &mut HashMap<i32, Arc<Mutex<Session>>>,
    slots: usize,
    wanted: usize,
    now: Instant,
) -> bool {
    if sessions.len() < slots {
        return true;
    }
    // A session in use right now (its lock taken) is not a candidate.
    let Some((victim, last_used, size)) = sessions
        .iter()
        .filter_map(|(id, s)| {
            let s = s.try_lock().ok()?;
            Some((*id, s.last_used, s.partitions.len()))
        })
        .min_by_key(|(_, last_used, _)| *last_used)
    else {
        return false;
    };
    if now.duration_since(last_used) >= STALE_AFTER || size < wanted {
        sessions.remove(&victim);
        metrics::counter!("gregor_fetch_session_evictions_total").increment(1);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: Vec<SessionPartition>) -> PartitionList {
        PartitionList::from_listed(v)
    }

    fn part(p: i32, offset: i64) -> SessionPartition {
        SessionPartition::new(TopicRef::Name("t".into()), p, offset, 1000)
    }

    #[test]
    fn partitions_that_got_records_move_to_the_end_of_the_session() {
        let cache = FetchSessions::new(1);
        let Resolved::Full { session_id, .. } = cache.resolve(
            0,
            INITIAL_EPOCH,
            list(vec![part(0, 0), part(1, 0), part(2, 0)]),
            vec![],
        ) else {
            panic!()
        };
        let t = TopicRef::Name("t".into());
        cache.record_sent(
            session_id,
            &[
                (t.clone(), 0, 5, 0, true),
                (t.clone(), 1, 0, 0, false),
                (t, 2, 0, 0, false),
            ],
        );
        let Resolved::Incremental { partitions, .. } =
            cache.resolve(session_id, 1, list(vec![]), vec![])
        else {
            panic!()
        };
        let order: Vec<i32> = partitions.iter().map(|p| p.partition).collect();
        assert_eq!(order, vec![1, 2, 0]);
    }

    #[test]
    fn session_lifecycle() {
        let cache = FetchSessions::new(1);
        let Resolved::Full {
            session_id,
            partitions,
        } = cache.resolve(0, INITIAL_EPOCH, list(vec![part(0, 0), part(1, 0)]), vec![])
        else {
            panic!()
        };
        assert!(session_id > 0 && partitions.len() == 2);
        // Incremental: update partition 1, forget partition 0.
        let Resolved::Incremental { partitions, .. } = cache.resolve(
            session_id,
            1,
            list(vec![part(1, 5)]),
            vec![(TopicRef::Name("t".into()), 0)],
        ) else {
            panic!()
        };
        assert_eq!(partitions.len(), 1);
        assert_eq!(partitions[0].fetch_offset, 5);
        // Wrong epoch, unknown session.
        assert!(matches!(
            cache.resolve(session_id, 1, list(vec![]), vec![]),
            Resolved::Error(ResponseError::InvalidFetchSessionEpoch)
        ));
        assert!(matches!(
            cache.resolve(999, 1, list(vec![]), vec![]),
            Resolved::Error(ResponseError::FetchSessionIdNotFound)
        ));
        // Cache full with a bigger, fresh session: a smaller newcomer gets no session.
        let Resolved::Full {
            session_id: none, ..
        } = cache.resolve(0, INITIAL_EPOCH, list(vec![]), vec![])
        else {
            panic!()
        };
        assert_eq!(none, 0);
        // Closing the session frees the slot.
        let _ = cache.resolve(session_id, FINAL_EPOCH, list(vec![]), vec![]);
        assert_eq!(cache.open_sessions(), 0);
    }
}
