//! DescribeLogDirs (every log dir with its partitions' sizes and, v4, the dir's total and usable
//! bytes) and AlterReplicaLogDirs (moving a partition between log dirs in the background, as
//! Kafka's future replicas do; see `log::relocate`).

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;

use super::authorize;
use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::Ctx;
use crate::security::acl::Operation;

pub async fn describe(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: DescribeLogDirsRequest,
) -> Option<DescribeLogDirsResponse> {
    if !authorize::cluster(broker, ctx, Operation::Describe) {
        // As Kafka: no dirs, and from v3 the error at the top.
        let mut resp = DescribeLogDirsResponse::default();
        if ctx.header.request_api_version >= 3 {
            resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        }
        return Some(resp);
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect()
    });
    let dirs = broker.topics.log_dirs();
    let mut results: Vec<DescribeLogDirsResult> = dirs
        .iter()
        .map(|d| {
            let mut r = DescribeLogDirsResult::default();
            r.log_dir = str_bytes(&d.display().to_string());
            if broker.store.failures.is_dir_offline(d) {
                // As Kafka: an offline dir is listed with the error and nothing else.
                r.error_code = ResponseError::KafkaStorageError.code();
                r.total_bytes = -1;
                r.usable_bytes = -1;
                return r;
            }
            r.total_bytes = fs2::total_space(d).map_or(-1, |b| b as i64);
            r.usable_bytes = fs2::available_space(d).map_or(-1, |b| b as i64);
            r
        })
        .collect();
    for topic in broker.topics.all() {
        let parts: Option<&Vec<i32>> = match &wanted {
            Some(w) => match w.iter().find(|(n, _)| **n == *topic.name) {
                Some((_, ps)) => Some(ps),
                None => continue,
            },
            None => None,
        };
        let mut by_dir: HashMap<usize, DescribeLogDirsTopic> = HashMap::new();
        for p in &topic.partitions {
            if parts.is_some_and(|ps| !ps.contains(&p.key.partition)) {
                continue;
            }
            let Some(d) = broker.topics.log_dir_of(p) else {
                continue;
            };
            if results[d].error_code != 0 {
                continue;
            }
            let mut dp = DescribeLogDirsPartition::default();
            dp.partition_index = p.key.partition;
            dp.partition_size = p.size_bytes() as i64;
            dp.offset_lag = 0;
            by_dir
                .entry(d)
                .or_insert_with(|| {
                    let mut t = DescribeLogDirsTopic::default();
                    t.name = TopicName(str_bytes(&topic.name));
                    t
                })
                .partitions
                .push(dp);
        }
        let mut by_dir: Vec<_> = by_dir.into_iter().collect();
        by_dir.sort_by_key(|(d, _)| *d);
        for (d, t) in by_dir {
            results[d].topics.push(t);
        }
    }
    let mut resp = DescribeLogDirsResponse::default();
    resp.results = results;
    Some(resp)
}

/// A partition of an AlterReplicaLogDirs request and the log dir it should go to (if one of ours).
type Wanted = (i32, Option<usize>);

pub async fn alter(
    broker: &Arc<Broker>,
    ctx: &Ctx,
    req: AlterReplicaLogDirsRequest,
) -> Option<AlterReplicaLogDirsResponse> {
    // As Kafka: without ALTER on the cluster every partition named is refused.
    let allowed = authorize::cluster(broker, ctx, Operation::Alter);
    // As Kafka (a map from partition to dir): a partition named more than once goes to the last
    // dir naming it, with one result and one move. Results are per topic, in first-seen order.
    let mut wanted: Vec<(TopicName, Vec<Wanted>)> = Vec::new();
    let mut topic_index: HashMap<TopicName, usize> = HashMap::new();
    let mut partition_index: HashMap<(usize, i32), usize> = HashMap::new();
    for dir in req.dirs {
        let target = broker.topics.find_log_dir(dir.path.as_str());
        for t in dir.topics {
            let ti = *topic_index.entry(t.name.clone()).or_insert_with(|| {
                wanted.push((t.name.clone(), Vec::new()));
                wanted.len() - 1
            });
            for p in t.partitions {
                match partition_index.get(&(ti, p)) {
                    Some(&pi) => wanted[ti].1[pi].1 = target,
                    None => {
                        partition_index.insert((ti, p), wanted[ti].1.len());
                        wanted[ti].1.push((p, target));
                    }
                }
            }
        }
    }
    let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::with_capacity(wanted.len());
    for (name, partitions) in wanted {
        let topic = broker.topics.get(name.0.as_str());
        let mut r = AlterReplicaLogDirTopicResult::default();
        for (p, target) in partitions {
            let part = topic.as_ref().and_then(|t| t.partition(p));
            let error = match (target, part) {
                _ if !allowed => ResponseError::ClusterAuthorizationFailed.code(),
                // As Kafka: the directory is checked first.
                (None, _) => ResponseError::LogDirNotFound.code(),
                (Some(_), None) => ResponseError::UnknownTopicOrPartition.code(),
                (Some(to), Some(part))
                    if part.is_offline()
                        || broker
                            .store
                            .failures
                            .is_dir_offline(&broker.topics.log_dirs()[to]) =>
                {
                    ResponseError::KafkaStorageError.code()
                }
                (Some(to), Some(part)) => {
                    spawn_move(broker, topic.clone().expect("found"), part.clone(), to);
                    0
                }
            };
            let mut pr = AlterReplicaLogDirPartitionResult::default();
            pr.partition_index = p;
            pr.error_code = error;
            r.partitions.push(pr);
        }
        r.topic_name = name;
        results.push(r);
    }
    let mut resp = AlterReplicaLogDirsResponse::default();
    resp.results = results;
    Some(resp)
}

/// Moves a partition in the background (AlterReplicaLogDirs answers at once, as Kafka does;
/// DescribeLogDirs shows the partition in its new dir once the switch is made).
fn spawn_move(
    broker: &Arc<Broker>,
    topic: Arc<crate::topics::Topic>,
    part: Arc<crate::log::Partition>,
    to: usize,
) {
    let broker = broker.clone();
    broker.clone().background.spawn_blocking(move || {
        let started = std::time::Instant::now();
        let from = part.dir();
        match broker.topics.move_partition(&topic, &part, to) {
            Ok(None) => {}
            Ok(Some(moved)) => {
                metrics::counter!("gregor_log_dir_moves_total", "result" => "ok").increment(1);
                metrics::counter!("gregor_log_dir_moved_bytes_total").increment(moved.bytes);
                metrics::histogram!("gregor_log_dir_move_pause_seconds")
                    .record(moved.paused.as_secs_f64());
                tracing::info!(
                    topic = %topic.name,
                    partition = part.key.partition,
                    from = %from.display(),
                    to = %part.dir().display(),
                    bytes = moved.bytes,
                    segments = moved.segments,
                    appends_paused_ms = moved.paused.as_millis() as u64,
                    took_ms = started.elapsed().as_millis() as u64,
                    "moved partition to another log dir"
                );
            }
            Err(e) => {
                metrics::counter!("gregor_log_dir_moves_total", "result" => "failed").increment(1);
                tracing::error!(topic = %topic.name, partition = part.key.partition, from = %from.display(), error = %e, "moving a partition to another log dir failed; it stays where it was");
            }
        }
    });
}
