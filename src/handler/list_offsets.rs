//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), and by
//! timestamp through each segment's sparse time index (looked up by the store).

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, TopicName};
use kafka_protocol::ResponseError;

use super::authorize;
use crate::broker::Broker;
use crate::dispatch::Ctx;
use crate::security::acl::{Operation, ResourceType};

/// Kafka's special timestamps and the first version that may send each (ReplicaManager's
/// `timestampMinSupportedVersion`); any other negative timestamp is UNSUPPORTED_VERSION.
fn special_supported(timestamp: i64, version: i16) -> bool {
    let since = match timestamp {
        -1 | -2 => 1,
        -3 => 7,
        -4 => 8,
        -5 => 9,
        _ => return false,
    };
    version >= since
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: ListOffsetsRequest,
) -> Option<ListOffsetsResponse> {
    let version = ctx.header.request_api_version;
    // As Kafka: a partition named more than once is answered once, with INVALID_REQUEST, and a
    // topic named twice is one topic in the answer.
    let mut seen: HashMap<(TopicName, i32), usize> = HashMap::new();
    for t in &req.topics {
        for p in &t.partitions {
            *seen.entry((t.name.clone(), p.partition_index)).or_default() += 1;
        }
    }
    let mut resp = ListOffsetsResponse::default();
    let mut topic_index: HashMap<TopicName, usize> = HashMap::new();
    for t in req.topics {
        let topic = broker.topics.get(t.name.0.as_str());
        let ti = *topic_index.entry(t.name.clone()).or_insert_with(|| {
            let mut tr = ListOffsetsTopicResponse::default();
            tr.name = t.name.clone();
            resp.topics.push(tr);
            resp.topics.len() - 1
        });
        // As Kafka: a topic the principal may not describe has every partition it names
        // answered TOPIC_AUTHORIZATION_FAILED, whether or not it exists.
        let allowed = authorize::allowed(
            broker,
            ctx,
            Operation::Describe,
            ResourceType::Topic,
            &t.name,
        );
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            if !allowed {
                pr.error_code = ResponseError::TopicAuthorizationFailed.code();
                resp.topics[ti].partitions.push(pr);
                continue;
            }
            let key = (t.name.clone(), p.partition_index);
            let error = match seen.get(&key).copied() {
                // A later mention of a partition already answered.
                Some(0) => continue,
                Some(n) if n > 1 => {
                    seen.insert(key, 0);
                    Some(ResponseError::InvalidRequest)
                }
                _ if p.timestamp < 0 && !special_supported(p.timestamp, version) => {
                    Some(ResponseError::UnsupportedVersion)
                }
                _ => None,
            };
            let found = match (
                error,
                topic.as_ref().and_then(|t| t.partition(p.partition_index)),
            ) {
                (Some(e), _) => Err(e),
                (None, None) => Err(ResponseError::UnknownTopicOrPartition),
                (None, Some(part)) => broker.store.list_offset(part, p.timestamp).await,
            };
            match found {
                Ok(found) => {
                    pr.offset = found.offset;
                    pr.timestamp = found.timestamp;
                    if version >= 4 {
                        // The field exists from v4; setting it below makes the answer unencodable.
                        pr.leader_epoch = found.leader_epoch;
                    }
                }
                Err(e) => pr.error_code = e.code(),
            }
            resp.topics[ti].partitions.push(pr);
        }
    }
    Some(resp)
}
