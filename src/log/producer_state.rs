//! Idempotent-producer state of one partition: per producer id, its epoch and the metadata of its
//! last five batches, so a retried batch is answered with its original offset instead of being
//! written twice, and a gap in sequence numbers is refused (Kafka's `ProducerStateManager`).

use std::collections::{HashMap, VecDeque};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use super::batch::BatchView;

/// Batches remembered per producer for duplicate detection (Kafka's `NUM_BATCHES_TO_RETAIN`).
const BATCHES_TO_RETAIN: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    /// Wall-clock millis of the producer's last append, for `producer.id.expiration.ms`.
    pub last_append_ms: i64,
}

/// The outcome of checking one batch against the producer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Not idempotent, or next in sequence: append it.
    Append,
    /// Already written: answer with the original batch, write nothing.
    Duplicate(BatchMeta),
    Reject(ResponseError),
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (last == i32::MAX && next == 0)
}

impl ProducerStates {
    /// Checks a batch (not yet written) against the producer's state.
    pub fn check(&self, batch: &BatchView<'_>) -> SeqCheck {
        let pid = batch.producer_id();
        if pid < 0 {
            return SeqCheck::Append;
        }
        let (epoch, first_seq) = (batch.producer_epoch(), batch.base_sequence());
        let Some(entry) = self.producers.get(&pid) else {
            // No state (new producer, or its state expired): any sequence is accepted, as in Kafka.
            return SeqCheck::Append;
        };
        if epoch < entry.epoch {
            return SeqCheck::Reject(ResponseError::InvalidProducerEpoch);
        }
        if epoch > entry.epoch {
            return if first_seq == 0 {
                SeqCheck::Append
            } else {
                SeqCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
            };
        }
        let last_seq = batch.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return SeqCheck::Duplicate(*dup);
        }
        match entry.batches.back() {
            Some(last) if !in_sequence(last.last_seq, first_seq) => {
                SeqCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
            }
            _ => SeqCheck::Append,
        }
    }

    /// Records a batch written at `base_offset` (during appends and during recovery scans).
    pub fn update(&mut self, batch: &BatchView<'_>, base_offset: i64, now_ms: i64) {
        let pid = batch.producer_id();
        if pid < 0 {
            return;
        }
        let meta = BatchMeta {
            first_seq: batch.base_sequence(),
            last_seq: batch.last_sequence(),
            base_offset,
            last_offset: base_offset + i64::from(batch.last_offset_delta()),
            max_timestamp: batch.max_timestamp(),
        };
        let entry = self.producers.entry(pid).or_insert_with(|| ProducerEntry {
            epoch: batch.producer_epoch(),
            batches: VecDeque::new(),
            last_append_ms: now_ms,
        });
        if batch.producer_epoch() != entry.epoch {
            entry.epoch = batch.producer_epoch();
            entry.batches.clear();
        }
        entry.batches.push_back(meta);
        while entry.batches.len() > BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
    }

    /// Forgets producers idle for `expiration_ms`; returns how many were removed.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_append_ms) < expiration_ms);
        before - self.producers.len()
    }

    /// Producer id → last offset of its latest batch (the batches compaction must not remove
    /// entirely, Kafka's `lastRecordsOfActiveProducers`).
    pub fn last_batch_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(pid, e)| e.batches.back().map(|b| (*pid, b.last_offset)))
            .collect()
    }

    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// Forgets batches at or beyond `offset` (after a truncation).
    pub fn truncate_to(&mut self, offset: i64) {
        for e in self.producers.values_mut() {
            e.batches.retain(|b| b.last_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::super::batch::tests::{build_batch_with, TestRecord};
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
        let recs: Vec<TestRecord<'_>> = (0..n).map(|_| (None, Some(&b"v"[..]))).collect();
        build_batch_with(0, 0, pid, epoch, seq, &recs)
    }

    fn check(s: &ProducerStates, b: &[u8]) -> SeqCheck {
        s.check(&BatchView::new(b).unwrap())
    }

    #[test]
    fn sequence_rules() {
        let mut s = ProducerStates::default();
        let b0 = batch(7, 0, 0, 3);
        assert_eq!(check(&s, &b0), SeqCheck::Append);
        s.update(&BatchView::new(&b0).unwrap(), 100, 0);
        // Retry of the same batch: duplicate with its original offset.
        match check(&s, &b0) {
            SeqCheck::Duplicate(m) => assert_eq!((m.base_offset, m.last_offset), (100, 102)),
            other => panic!("{other:?}"),
        }
        assert_eq!(check(&s, &batch(7, 0, 3, 1)), SeqCheck::Append);
        assert_eq!(
            check(&s, &batch(7, 0, 5, 1)),
            SeqCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
        );
        // A new epoch must restart at 0; an old epoch is fenced.
        assert_eq!(check(&s, &batch(7, 1, 0, 1)), SeqCheck::Append);
        assert_eq!(
            check(&s, &batch(7, 1, 4, 1)),
            SeqCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
        );
        s.update(&BatchView::new(&batch(7, 1, 0, 1)).unwrap(), 103, 0);
        assert_eq!(
            check(&s, &batch(7, 0, 3, 1)),
            SeqCheck::Reject(ResponseError::InvalidProducerEpoch)
        );
        // Unknown producers and non-idempotent batches append freely.
        assert_eq!(check(&s, &batch(8, 0, 42, 1)), SeqCheck::Append);
        assert_eq!(check(&s, &batch(-1, -1, -1, 1)), SeqCheck::Append);
    }

    #[test]
    fn keeps_five_batches_and_expires() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.update(
                &BatchView::new(&batch(1, 0, i, 1)).unwrap(),
                i64::from(i),
                10,
            );
        }
        assert_eq!(
            check(&s, &batch(1, 0, 1, 1)),
            SeqCheck::Reject(ResponseError::OutOfOrderSequenceNumber)
        );
        assert!(matches!(
            check(&s, &batch(1, 0, 2, 1)),
            SeqCheck::Duplicate(_)
        ));
        assert_eq!(s.expire(15, 10), 0);
        assert_eq!(s.expire(20, 10), 1);
        assert_eq!(s.producer_count(), 0);
    }
}
