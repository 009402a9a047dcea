//! Incremental fetch sessions (KIP-227): a bounded cache of sessions, each remembering the
//! partitions a consumer fetches and what it was last told about them, so later requests list only
//! changes and responses carry only partitions with news.

use std::collections::HashMap;
use std::sync::Mutex;
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

struct Session {
    partitions: Vec<SessionPartition>,
    next_epoch: i32,
    last_used: Instant,
}

pub struct FetchSessions {
    slots: usize,
    inner: Mutex<(HashMap<i32, Session>, i32)>,
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
            inner: Mutex::new((HashMap::new(), 0)),
        }
    }

    #[cfg(test)]
    fn open_sessions(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.len()
    }

    /// Resolves a request's session fields against the cache. `listed` are the partitions the
    /// request names, `forgotten` those it drops (incremental requests only).
    pub fn resolve(
        &self,
        session_id: i32,
        epoch: i32,
        listed: Vec<SessionPartition>,
        forgotten: Vec<(TopicRef, i32)>,
    ) -> Resolved {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (sessions, next_id) = &mut *guard;
        let now = Instant::now();
        if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            if session_id != 0 {
                sessions.remove(&session_id);
            }
            if epoch == FINAL_EPOCH
                || self.slots == 0
                || !make_room(sessions, self.slots, listed.len(), now)
            {
                return Resolved::Full {
                    session_id: 0,
                    partitions: listed,
                };
            }
            let id = loop {
                *next_id = next_id.wrapping_add(1).max(1);
                if !sessions.contains_key(next_id) {
                    break *next_id;
                }
            };
            sessions.insert(
                id,
                Session {
                    partitions: listed.clone(),
                    next_epoch: 1,
                    last_used: now,
                },
            );
            metrics::gauge!("gregor_fetch_sessions").set(sessions.len() as f64);
            return Resolved::Full {
                session_id: id,
                partitions: listed,
            };
        }
        let Some(session) = sessions.get_mut(&session_id) else {
            return Resolved::Error(ResponseError::FetchSessionIdNotFound);
        };
        if session.next_epoch != epoch {
            return Resolved::Error(ResponseError::InvalidFetchSessionEpoch);
        }
        session.next_epoch = epoch.wrapping_add(1).max(1);
        session.last_used = now;
        session.partitions.retain(|p| {
            !forgotten
                .iter()
                .any(|(t, i)| *t == p.topic && *i == p.partition)
        });
        for l in listed {
            match session
                .partitions
                .iter_mut()
                .find(|p| p.topic == l.topic && p.partition == l.partition)
            {
                Some(p) => {
                    p.fetch_offset = l.fetch_offset;
                    p.max_bytes = l.max_bytes;
                }
                None => session.partitions.push(l),
            }
        }
        Resolved::Incremental {
            session_id,
            partitions: session.partitions.clone(),
        }
    }

    /// Records what a response told the client about each partition.
    pub fn record_sent(&self, session_id: i32, sent: &[(TopicRef, i32, i64, i64)]) {
        if session_id == 0 {
            return;
        }
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = guard.0.get_mut(&session_id) {
            for (topic, partition, hw, log_start) in sent {
                if let Some(p) = s
                    .partitions
                    .iter_mut()
                    .find(|p| p.topic == *topic && p.partition == *partition)
                {
                    p.last_hw = *hw;
                    p.last_log_start = *log_start;
                }
            }
        }
    }
}

/// Frees a slot if the cache is full: the least recently used session goes if it is stale or
/// smaller than the newcomer (Kafka prefers keeping sessions that save the most work).
fn make_room(
    sessions: &mut HashMap<i32, Session>,
    slots: usize,
    wanted: usize,
    now: Instant,
) -> bool {
    if sessions.len() < slots {
        return true;
    }
    let Some((&victim, s)) = sessions.iter().min_by_key(|(_, s)| s.last_used) else {
        return false;
    };
    if now.duration_since(s.last_used) >= STALE_AFTER || s.partitions.len() < wanted {
        sessions.remove(&victim);
        metrics::counter!("gregor_fetch_session_evictions_total").increment(1);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(p: i32, offset: i64) -> SessionPartition {
        SessionPartition::new(TopicRef::Name("t".into()), p, offset, 1000)
    }

    #[test]
    fn session_lifecycle() {
        let cache = FetchSessions::new(1);
        let Resolved::Full {
            session_id,
            partitions,
        } = cache.resolve(0, INITIAL_EPOCH, vec![part(0, 0), part(1, 0)], vec![])
        else {
            panic!()
        };
        assert!(session_id > 0 && partitions.len() == 2);
        // Incremental: update partition 1, forget partition 0.
        let Resolved::Incremental { partitions, .. } = cache.resolve(
            session_id,
            1,
            vec![part(1, 5)],
            vec![(TopicRef::Name("t".into()), 0)],
        ) else {
            panic!()
        };
        assert_eq!(partitions.len(), 1);
        assert_eq!(partitions[0].fetch_offset, 5);
        // Wrong epoch, unknown session.
        assert!(matches!(
            cache.resolve(session_id, 1, vec![], vec![]),
            Resolved::Error(ResponseError::InvalidFetchSessionEpoch)
        ));
        assert!(matches!(
            cache.resolve(999, 1, vec![], vec![]),
            Resolved::Error(ResponseError::FetchSessionIdNotFound)
        ));
        // Cache full with a bigger, fresh session: a smaller newcomer gets no session.
        let Resolved::Full {
            session_id: none, ..
        } = cache.resolve(0, INITIAL_EPOCH, vec![], vec![])
        else {
            panic!()
        };
        assert_eq!(none, 0);
        // Closing the session frees the slot.
        let _ = cache.resolve(session_id, FINAL_EPOCH, vec![], vec![]);
        assert_eq!(cache.open_sessions(), 0);
    }
}
