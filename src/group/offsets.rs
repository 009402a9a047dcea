//! Committed offsets of a group, and their expiry (`offsets.retention.minutes`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::state::{Group, State};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp: i64,
    /// OffsetCommit v2–v4 `retention_time_ms`: an explicit expiry.
    pub expire_timestamp: Option<i64>,
}

/// (topic, partition) → committed offset.
pub type OffsetMap = BTreeMap<(String, i32), Committed>;

/// The offsets that have expired, following Kafka: an empty group with a protocol type expires
/// its offsets `retention` after it became empty; a group that never used the group protocol
/// (standalone commits) expires each offset `retention` after its commit; members keep offsets.
pub fn expired(
    group: &Group,
    offsets: &OffsetMap,
    now: i64,
    retention_ms: i64,
) -> Vec<(String, i32)> {
    let base = |c: &Committed| -> Option<i64> {
        match (&group.protocol_type, group.state) {
            (Some(_), State::Empty) => Some(group.state_since.max(c.commit_timestamp)),
            (None, _) => Some(c.commit_timestamp),
            _ => None,
        }
    };
    offsets
        .iter()
        .filter(|(_, c)| match c.expire_timestamp {
            Some(at) => now >= at,
            None => base(c).is_some_and(|b| now - b >= retention_ms),
        })
        .map(|(k, _)| k.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(ts: i64) -> Committed {
        Committed {
            offset: 1,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp: ts,
            expire_timestamp: None,
        }
    }

    #[test]
    fn empty_groups_expire_from_when_they_emptied() {
        let mut g = Group::new("g", 0);
        g.protocol_type = Some("consumer".into());
        g.state_since = 1_000;
        let offsets: OffsetMap = [(("t".to_string(), 0), committed(500))]
            .into_iter()
            .collect();
        assert!(expired(&g, &offsets, 1_000 + 99, 100).is_empty());
        assert_eq!(
            expired(&g, &offsets, 1_000 + 100, 100),
            vec![("t".to_string(), 0)]
        );
        // Standalone commits: from the commit itself.
        g.protocol_type = None;
        assert_eq!(expired(&g, &offsets, 600, 100).len(), 1);
    }
}
