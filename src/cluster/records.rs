//! The replicated metadata: the records the quorum agrees on (named after Kafka's KRaft records)
//! and the image every node builds by applying them in log order. Applying is pure, so every node
//! that applied the same records holds the same image.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One of a broker's client listeners, as it registers it (Kafka's `BrokerEndpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}

/// A broker as the quorum knows it (Kafka's `BrokerRegistration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub id: i32,
    /// A fresh id per process start: a registration with another one is another incarnation.
    pub incarnation: [u8; 16],
    /// The index of the record that registered this incarnation (Kafka's broker epoch).
    pub epoch: i64,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    /// A fenced broker is registered but not (or no longer) in the cluster clients are shown.
    pub fenced: bool,
}

/// A change to the metadata, proposed by the active controller and applied by every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// The cluster id; the first one written stays.
    ClusterId { cluster_id: String },
    /// Kafka's `RegisterBrokerRecord`: a new incarnation, fenced until it heartbeats.
    RegisterBroker {
        id: i32,
        incarnation: [u8; 16],
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
    },
    /// Kafka's `BrokerRegistrationChangeRecord` fencing a broker (session expired, shut down).
    FenceBroker { id: i32, epoch: i64 },
    /// Kafka's `BrokerRegistrationChangeRecord` unfencing a broker that caught up.
    UnfenceBroker { id: i32, epoch: i64 },
    /// Kafka's `ProducerIdsRecord`: broker `broker` (at `epoch`) was given the producer ids
    /// below `next` that no one had; the next block starts at `next`.
    ProducerIds { broker: i32, epoch: i64, next: i64 },
}

/// The metadata as of some index of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// The first producer id no broker has been given.
    pub next_producer_id: i64,
}

impl MetadataImage {
    /// Applies the record at log `index`.
    pub fn apply(&mut self, index: u64, record: &MetadataRecord) {
        match record {
            MetadataRecord::ClusterId { cluster_id } => {
                self.cluster_id.get_or_insert_with(|| cluster_id.clone());
            }
            MetadataRecord::RegisterBroker {
                id,
                incarnation,
                endpoints,
                rack,
            } => {
                self.brokers.insert(
                    *id,
                    BrokerRegistration {
                        id: *id,
                        incarnation: *incarnation,
                        epoch: index as i64,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        fenced: true,
                    },
                );
            }
            MetadataRecord::FenceBroker { id, epoch } => self.set_fenced(*id, *epoch, true),
            MetadataRecord::UnfenceBroker { id, epoch } => self.set_fenced(*id, *epoch, false),
            MetadataRecord::ProducerIds { next, .. } => {
                // Ids never go back, whatever a record says.
                self.next_producer_id = self.next_producer_id.max(*next);
            }
        }
    }

    /// A change for an older incarnation than the one registered is ignored.
    fn set_fenced(&mut self, id: i32, epoch: i64, fenced: bool) {
        if let Some(b) = self.brokers.get_mut(&id).filter(|b| b.epoch == epoch) {
            b.fenced = fenced;
        }
    }

    /// The brokers clients are shown: registered and not fenced.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(id: i32, incarnation: u8) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            id,
            incarnation: [incarnation; 16],
            endpoints: vec![BrokerEndpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9090 + id as u16,
            }],
            rack: None,
        }
    }

    #[test]
    fn the_first_cluster_id_stays() {
        let mut image = MetadataImage::default();
        image.apply(
            1,
            &MetadataRecord::ClusterId {
                cluster_id: "a".into(),
            },
        );
        image.apply(
            2,
            &MetadataRecord::ClusterId {
                cluster_id: "b".into(),
            },
        );
        assert_eq!(image.cluster_id.as_deref(), Some("a"));
    }

    #[test]
    fn a_broker_is_fenced_until_unfenced_and_its_epoch_is_the_record_index() {
        let mut image = MetadataImage::default();
        image.apply(7, &register(2, 1));
        assert_eq!(image.brokers[&2].epoch, 7);
        assert_eq!(image.live_brokers().count(), 0);
        image.apply(8, &MetadataRecord::UnfenceBroker { id: 2, epoch: 7 });
        assert_eq!(image.live_brokers().map(|b| b.id).collect::<Vec<_>>(), [2]);
        image.apply(9, &MetadataRecord::FenceBroker { id: 2, epoch: 7 });
        assert_eq!(image.live_brokers().count(), 0);
    }

    #[test]
    fn producer_id_blocks_only_move_forward() {
        let mut image = MetadataImage::default();
        let ids = |next| MetadataRecord::ProducerIds {
            broker: 1,
            epoch: 1,
            next,
        };
        image.apply(1, &ids(1000));
        image.apply(2, &ids(500));
        assert_eq!(image.next_producer_id, 1000);
        image.apply(3, &ids(2000));
        assert_eq!(image.next_producer_id, 2000);
    }

    #[test]
    fn changes_for_an_older_incarnation_are_ignored() {
        let mut image = MetadataImage::default();
        image.apply(3, &register(1, 1));
        image.apply(5, &register(1, 2));
        image.apply(6, &MetadataRecord::UnfenceBroker { id: 1, epoch: 3 });
        assert!(image.brokers[&1].fenced);
        image.apply(7, &MetadataRecord::UnfenceBroker { id: 1, epoch: 5 });
        image.apply(8, &MetadataRecord::FenceBroker { id: 1, epoch: 3 });
        assert!(!image.brokers[&1].fenced);
        assert_eq!(image.brokers[&1].incarnation, [2; 16]);
    }
}
