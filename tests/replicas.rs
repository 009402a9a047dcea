//! ElectLeaders, AlterPartitionReassignments, DescribeQuorum and ListConfigResources refuse what
//! Kafka's controller refuses, with its error codes and messages, on a cluster of one broker.

mod common;

use common::{name, TestBroker};
use kafka_protocol::messages::*;

fn results(r: &ElectLeadersResponse) -> Vec<(String, i32, i16, Option<String>)> {
    r.replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result.iter().map(|p| {
                let m = p.error_message.as_ref().map(|m| m.to_string());
                (t.topic.0.to_string(), p.partition_id, p.error_code, m)
            })
        })
        .collect()
}

#[tokio::test]
async fn elections_are_never_needed_and_unknown_ones_are_refused() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    common::create_topic(&mut c, "b-topic", 2).await;
    common::create_topic(&mut c, "a-topic", 1).await;

    // Every partition (a null list): each topic is listed, with no partitions (none needed one).
    let mut req = ElectLeadersRequest::default();
    req.topic_partitions = None;
    req.election_type = 1;
    let r: ElectLeadersResponse = c.request(ApiKey::ElectLeaders, 2, &req).await;
    let topics: Vec<(String, usize)> = r
        .replica_election_results
        .iter()
        .map(|t| (t.topic.0.to_string(), t.partition_result.len()))
        .collect();
    assert_eq!(topics, vec![("a-topic".into(), 0), ("b-topic".into(), 0)]);

    // Named partitions, unclean: not needed; an unknown topic is named in the message.
    let mut t = elect_leaders_request::TopicPartitions::default();
    t.topic = name("nope");
    t.partitions = vec![0];
    let mut known = elect_leaders_request::TopicPartitions::default();
    known.topic = name("b-topic");
    known.partitions = vec![1];
    req.topic_partitions = Some(vec![known, t]);
    let r: ElectLeadersResponse = c.request(ApiKey::ElectLeaders, 1, &req).await;
    assert_eq!(
        results(&r),
        vec![
            (
                "b-topic".into(),
                1,
                84,
                Some("Leader election not needed for topic partition.".into())
            ),
            ("nope".into(), 0, 3, Some("No such topic as nope".into())),
        ]
    );

    // An election type Kafka does not know: INVALID_REQUEST, at the top and on each partition.
    req.election_type = 7;
    let r: ElectLeadersResponse = c.request(ApiKey::ElectLeaders, 2, &req).await;
    assert_eq!(r.error_code, 42);
    let message = Some("Unknown election type 7".to_string());
    assert_eq!(
        results(&r),
        vec![
            ("b-topic".into(), 1, 42, message.clone()),
            ("nope".into(), 0, 42, message)
        ]
    );
    b.stop().await;
}

fn reassign(
    topic: &str,
    partition: i32,
    replicas: Option<&[i32]>,
) -> alter_partition_reassignments_request::ReassignableTopic {
    let mut p = alter_partition_reassignments_request::ReassignablePartition::default();
    p.partition_index = partition;
    p.replicas = replicas.map(|r| r.iter().copied().map(BrokerId).collect());
    let mut t = alter_partition_reassignments_request::ReassignableTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    t
}

/// Replicas, topic, partition, allow_replication_factor_change → error code and message.
type Case = (
    Option<Vec<i32>>,
    &'static str,
    i32,
    bool,
    i16,
    Option<String>,
);

#[tokio::test]
async fn reassignments_off_the_only_broker_are_refused_with_kafkas_messages() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    common::create_topic(&mut c, "t", 1).await;
    let node = b.broker.config.node_id;
    let cases: Vec<Case> = vec![
        (Some(vec![node]), "t", 0, false, 0, None),
        (
            Some(vec![7]),
            "t",
            0,
            true,
            39,
            Some(
                "The manual partition assignment includes broker 7, but no such broker is \
                 registered."
                    .into(),
            ),
        ),
        (
            Some(vec![node, node]),
            "t",
            0,
            true,
            39,
            Some(format!(
                "The manual partition assignment includes the broker {node} more than once."
            )),
        ),
        (
            Some(vec![]),
            "t",
            0,
            true,
            39,
            Some("The manual partition assignment includes an empty replica list.".into()),
        ),
        (
            Some(vec![node, 7]),
            "t",
            0,
            false,
            38,
            Some("The replication factor is changed from 1 to 2".into()),
        ),
        (None, "t", 0, true, 85, None),
        (
            Some(vec![node]),
            "t",
            4,
            true,
            3,
            Some("Unable to find partition t:4.".into()),
        ),
        (
            Some(vec![node]),
            "nope",
            0,
            true,
            3,
            Some("Unable to find a topic named nope.".into()),
        ),
    ];
    for (replicas, topic, partition, allow, code, message) in cases {
        let mut req = AlterPartitionReassignmentsRequest::default();
        req.allow_replication_factor_change = allow;
        req.topics = vec![reassign(topic, partition, replicas.as_deref())];
        let r: AlterPartitionReassignmentsResponse = c
            .request(ApiKey::AlterPartitionReassignments, 1, &req)
            .await;
        let p = &r.responses[0].partitions[0];
        let got = (
            p.error_code,
            p.error_message.as_ref().map(|m| m.to_string()),
        );
        assert_eq!(got, (code, message), "{replicas:?} {topic}-{partition}");
    }
    b.stop().await;
}

#[tokio::test]
async fn describe_quorum_knows_only_the_metadata_partition() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    for (topic, partition) in [("__cluster_metadata", 1), ("other", 0)] {
        let mut p = describe_quorum_request::PartitionData::default();
        p.partition_index = partition;
        let mut t = describe_quorum_request::TopicData::default();
        t.topic_name = name(topic);
        t.partitions = vec![p];
        let mut req = DescribeQuorumRequest::default();
        req.topics = vec![t];
        let r: DescribeQuorumResponse = c.request(ApiKey::DescribeQuorum, 2, &req).await;
        assert_eq!(r.error_code, 0);
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.partition_index, p.error_code), (partition, 3), "{topic}");
        assert!(p.current_voters.is_empty());
    }
    b.stop().await;
}

#[tokio::test]
async fn list_config_resources_lists_what_exists_and_refuses_unknown_types() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    common::create_topic(&mut c, "t", 1).await;
    let list = |types: Vec<i8>| {
        let mut req = ListConfigResourcesRequest::default();
        req.resource_types = types;
        req
    };
    let r: ListConfigResourcesResponse = c
        .request(ApiKey::ListConfigResources, 1, &list(vec![]))
        .await;
    let got: Vec<(i8, String)> = r
        .config_resources
        .iter()
        .map(|c| (c.resource_type, c.resource_name.to_string()))
        .collect();
    let node = b.broker.config.node_id.to_string();
    assert_eq!(got, vec![(2, "t".into()), (4, node.clone()), (8, node)]);
    // Named again and again, a type is still listed once.
    let r: ListConfigResourcesResponse = c
        .request(ApiKey::ListConfigResources, 1, &list(vec![4; 10_000]))
        .await;
    assert_eq!(r.config_resources.len(), 1);
    let r: ListConfigResourcesResponse = c
        .request(ApiKey::ListConfigResources, 1, &list(vec![2, 3]))
        .await;
    assert_eq!((r.error_code, r.config_resources.len()), (35, 0));
    b.stop().await;
}
