//! Kafka's `DelayedOperationPurgatory`: requests that cannot be answered yet (a fetch below its
//! `min_bytes`) park here, watching the partitions that could
//! complete them. Each parked request registers once, on all its partitions, for its whole wait
//! (not once per partition per wake-up), and is woken by [`Purgatory::check`] when one of them
//! changes; it then re-checks its condition itself and leaves when done or timed out (its
//! [`Watch`] unregisters it on drop). Watchers are sharded by partition so appends to different
//! partitions do not contend.
//!
//! Metrics, with Kafka's names: `kafka_server_delayedoperationpurgatory_numdelayedoperations` (parked
//! requests) and `kafka_server_delayedoperationpurgatory_purgatorysize` (watch entries), labelled
//! `delayedOperation` (`Fetch`; `Produce` joins when acks=all waits for followers).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::log::PartitionKey;

const SHARDS: usize = 16;

type Watchers = HashMap<PartitionKey, Vec<Arc<Notify>>>;

pub struct Purgatory {
    /// Kafka's `delayedOperation` label.
    name: &'static str,
    shards: Vec<Mutex<Watchers>>,
    /// Watch entries across all shards (so appends skip the lock while nothing waits).
    entries: AtomicUsize,
}

/// A parked request's registration: woken through `op`, unregistered when dropped.
pub struct Watch<'a> {
    purgatory: &'a Purgatory,
    keys: Vec<PartitionKey>,
    pub op: Arc<Notify>,
}

fn shard_of(key: &PartitionKey) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

impl Purgatory {
    pub fn new(name: &'static str) -> Purgatory {
        Purgatory {
            name,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            entries: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &PartitionKey) -> std::sync::MutexGuard<'_, Watchers> {
        self.shards[shard_of(key)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Parks one request on `keys` (each once, however often it is named).
    pub fn watch(&self, keys: impl IntoIterator<Item = PartitionKey>) -> Watch<'_> {
        let op = Arc::new(Notify::new());
        let mut keys: Vec<PartitionKey> = keys.into_iter().collect();
        keys.sort_by_key(|k| (k.topic_id, k.partition));
        keys.dedup();
        for key in &keys {
            self.shard(key).entry(*key).or_default().push(op.clone());
        }
        self.entries.fetch_add(keys.len(), Ordering::AcqRel);
        metrics::gauge!("kafka_server_delayedoperationpurgatory_numdelayedoperations", "delayedOperation" => self.name).increment(1.0);
        metrics::gauge!("kafka_server_delayedoperationpurgatory_purgatorysize", "delayedOperation" => self.name).increment(keys.len() as f64);
        Watch {
            purgatory: self,
            keys,
            op,
        }
    }

    /// Wakes every request watching `key` (it re-checks whether it can complete).
    pub fn check(&self, key: PartitionKey) {
        if self.entries.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Some(ops) = self.shard(&key).get(&key) {
            for op in ops {
                op.notify_one();
            }
        }
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        for key in &self.keys {
            let mut shard = self.purgatory.shard(key);
            if let Some(ops) = shard.get_mut(key) {
                ops.retain(|o| !Arc::ptr_eq(o, &self.op));
                if ops.is_empty() {
                    shard.remove(key);
                }
            }
        }
        self.purgatory
            .entries
            .fetch_sub(self.keys.len(), Ordering::AcqRel);
        let name = self.purgatory.name;
        metrics::gauge!("kafka_server_delayedoperationpurgatory_numdelayedoperations", "delayedOperation" => name).decrement(1.0);
        metrics::gauge!("kafka_server_delayedoperationpurgatory_purgatorysize", "delayedOperation" => name).decrement(self.keys.len() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn key(p: i32) -> PartitionKey {
        PartitionKey {
            topic_id: Uuid::nil(),
            partition: p,
        }
    }

    #[tokio::test]
    async fn a_parked_request_is_woken_by_any_of_its_partitions_and_leaves_nothing_behind() {
        let purgatory = Purgatory::new("Test");
        let w = purgatory.watch([key(0), key(1), key(1)]);
        assert_eq!(
            purgatory.entries.load(Ordering::Acquire),
            2,
            "a key named twice is watched once"
        );
        purgatory.check(key(2));
        purgatory.check(key(1));
        // The wake-up is kept for a request that was not yet waiting.
        tokio::time::timeout(std::time::Duration::from_secs(1), w.op.notified())
            .await
            .expect("woken");
        drop(w);
        assert_eq!(purgatory.entries.load(Ordering::Acquire), 0);
        assert!(purgatory
            .shards
            .iter()
            .all(|s| s.lock().unwrap().is_empty()));
    }
}
