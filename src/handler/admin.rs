//! Cluster and partition administration: CreatePartitions, DescribeCluster,
//! DescribeTopicPartitions (KIP-966, with cursor paging) and DeleteRecords (DescribeLogDirs is in
//! `log_dirs`, reassignments and elections in `replicas`).

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;

use super::authorize::{self, TOPIC_OPERATIONS};
use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::Ctx;
use crate::security::acl::{Operation, ResourceType};

pub async fn create_partitions(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: CreatePartitionsRequest,
) -> Option<CreatePartitionsResponse> {
    let mut resp = CreatePartitionsResponse::default();
    let node = BrokerId(broker.config.node_id);
    // As Kafka: ALTER on each topic first; the rest never learn whether a refused topic exists.
    let (allowed, refused): (Vec<_>, Vec<_>) = req.topics.into_iter().partition(|t| {
        authorize::allowed(broker, ctx, Operation::Alter, ResourceType::Topic, &t.name)
    });
    let refusals = refused.into_iter().map(|t| {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name;
        r.error_code = ResponseError::TopicAuthorizationFailed.code();
        r
    });
    // One batch of partition records for the allowed topics, refused whole when too large.
    let records: i64 = allowed
        .iter()
        .map(|t| {
            let have = broker
                .topics
                .get(&t.name.0)
                .map_or(0, |c| c.partitions.len());
            (i64::from(t.count) - have as i64).max(0)
        })
        .sum();
    if let Err(e) = crate::topics::room::check_operation(records) {
        for t in allowed {
            let mut r = CreatePartitionsTopicResult::default();
            r.name = t.name;
            r.error_code = e.error.code();
            r.error_message = Some(str_bytes(&e.message));
            resp.results.push(r);
        }
        resp.results.extend(refusals);
        return Some(resp);
    }
    for t in allowed {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name.clone();
        let bad_assignment = t
            .assignments
            .as_ref()
            .is_some_and(|a| a.iter().any(|x| x.broker_ids != [node]));
        let result = if bad_assignment {
            Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Unknown broker(s) in the replica assignment; the only broker is {}",
                    node.0
                ),
            ))
        } else {
            broker
                .topics
                .add_partitions(&t.name.0, t.count, req.validate_only)
                .await
                .map_err(|e| (e.error, e.message))
        };
        if let Err((e, m)) = result {
            r.error_code = e.code();
            r.error_message = Some(str_bytes(&m));
        }
        resp.results.push(r);
    }
    resp.results.extend(refusals);
    Some(resp)
}

pub async fn describe_cluster(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DescribeClusterRequest,
) -> Option<DescribeClusterResponse> {
    let mut resp = DescribeClusterResponse::default();
    resp.endpoint_type = req.endpoint_type;
    resp.cluster_id = str_bytes(&broker.cluster_id);
    resp.controller_id = BrokerId(broker.controller_id());
    resp.brokers = broker
        .live_brokers(&ctx.listener)
        .into_iter()
        .map(|info| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = BrokerId(info.id);
            b.host = str_bytes(&info.host);
            b.port = i32::from(info.port);
            b.rack = info.rack.as_deref().map(str_bytes);
            b
        })
        .collect();
    resp.cluster_authorized_operations = if req.include_cluster_authorized_operations {
        authorize::cluster_operations(broker, ctx)
    } else {
        i32::MIN
    };
    Some(resp)
}

pub async fn describe_topic_partitions(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DescribeTopicPartitionsRequest,
) -> Option<DescribeTopicPartitionsResponse> {
    let node = BrokerId(broker.config.node_id);
    let may_describe = |name: &str| {
        authorize::allowed(broker, ctx, Operation::Describe, ResourceType::Topic, name)
    };
    // Listing every topic leaves out those the principal may not describe.
    let mut names: Vec<String> = if req.topics.is_empty() {
        broker
            .topics
            .all()
            .iter()
            .filter(|t| may_describe(&t.name))
            .map(|t| t.name.to_string())
            .collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    let (cursor_topic, cursor_partition) = req.cursor.as_ref().map_or((String::new(), 0), |c| {
        (c.topic_name.0.to_string(), c.partition_index)
    });
    let mut budget = if req.response_partition_limit <= 0 {
        2000
    } else {
        req.response_partition_limit as usize
    };
    let mut resp = DescribeTopicPartitionsResponse::default();
    for name in names.into_iter().filter(|n| *n >= cursor_topic) {
        let mut t = DescribeTopicPartitionsResponseTopic::default();
        t.name = Some(TopicName(str_bytes(&name)));
        if !may_describe(&name) {
            t.error_code = ResponseError::TopicAuthorizationFailed.code();
            resp.topics.push(t);
            continue;
        }
        t.topic_authorized_operations =
            authorize::operations(broker, ctx, ResourceType::Topic, &name, TOPIC_OPERATIONS);
        let Some(topic) = broker.topics.get(&name) else {
            t.error_code = ResponseError::UnknownTopicOrPartition.code();
            resp.topics.push(t);
            continue;
        };
        t.topic_id = topic.id;
        let first = if name == cursor_topic {
            cursor_partition.max(0)
        } else {
            0
        };
        for p in first..topic.partitions.len() as i32 {
            if budget == 0 {
                let mut c = Cursor::default();
                c.topic_name = TopicName(str_bytes(&name));
                c.partition_index = p;
                resp.next_cursor = Some(c);
                break;
            }
            budget -= 1;
            let mut dp = DescribeTopicPartitionsResponsePartition::default();
            dp.partition_index = p;
            dp.leader_id = node;
            dp.leader_epoch = 0;
            dp.replica_nodes = vec![node];
            dp.isr_nodes = vec![node];
            dp.eligible_leader_replicas = Some(Vec::new());
            dp.last_known_elr = Some(Vec::new());
            if topic.partition(p).is_some_and(|p| p.is_offline()) {
                // Its only replica is in an offline log dir (see `log::dir_failure`).
                dp.leader_id = BrokerId(-1);
                dp.offline_replicas = vec![node];
            }
            t.partitions.push(dp);
        }
        resp.topics.push(t);
        if resp.next_cursor.is_some() {
            break;
        }
    }
    Some(resp)
}

pub async fn delete_records(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DeleteRecordsRequest,
) -> Option<DeleteRecordsResponse> {
    let mut resp = DeleteRecordsResponse::default();
    for t in req.topics {
        let topic = broker.topics.get(&t.name.0);
        let mut rt = DeleteRecordsTopicResult::default();
        rt.name = t.name.clone();
        let allowed =
            authorize::allowed(broker, ctx, Operation::Delete, ResourceType::Topic, &t.name);
        for p in t.partitions {
            let mut rp = DeleteRecordsPartitionResult::default();
            rp.partition_index = p.partition_index;
            rp.low_watermark = -1;
            match topic.as_ref().and_then(|t| t.partition(p.partition_index)) {
                _ if !allowed => rp.error_code = ResponseError::TopicAuthorizationFailed.code(),
                None => rp.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(part) => match broker.store.delete_records(part, p.offset).await {
                    Ok(start) => rp.low_watermark = start,
                    Err(e) => rp.error_code = e.code(),
                },
            }
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    Some(resp)
}
