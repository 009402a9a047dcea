//! Probes for the replica, quorum and config-resource admin APIs (ElectLeaders,
//! AlterPartitionReassignments, ListPartitionReassignments, DescribeQuorum, ListConfigResources)
//! at every advertised version, with the single-broker answers Kafka's controller gives.

use kafka_protocol::messages::*;

use super::{versions, Prober};
use crate::common::name;

/// `topics`: every topic on the broker, sorted.
pub(crate) async fn probe(p: &mut Prober, topic: &str, topics: &[String], node: i32) {
    for v in versions::<ElectLeadersRequest>(ApiKey::ElectLeaders) {
        let mut t = elect_leaders_request::TopicPartitions::default();
        t.topic = name(topic);
        t.partitions = vec![0, 9];
        let mut req = ElectLeadersRequest::default();
        req.topic_partitions = Some(vec![t]);
        let r: ElectLeadersResponse = p.send(ApiKey::ElectLeaders, v, &req).await;
        assert_eq!(r.error_code, 0, "ElectLeaders v{v}");
        let got: Vec<(i32, i16, Option<String>)> = r.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| {
                let m = p.error_message.as_ref().map(|m| m.to_string());
                (p.partition_id, p.error_code, m)
            })
            .collect();
        let not_needed = "Leader election not needed for topic partition.".to_string();
        let no_such = format!("No such partition as {topic}-9");
        assert_eq!(
            got,
            vec![(0, 84, Some(not_needed)), (9, 3, Some(no_such))],
            "ElectLeaders v{v}"
        );
    }
    for v in versions::<AlterPartitionReassignmentsRequest>(ApiKey::AlterPartitionReassignments) {
        let mut req = AlterPartitionReassignmentsRequest::default();
        req.allow_replication_factor_change = v < 1;
        let mut t = alter_partition_reassignments_request::ReassignableTopic::default();
        t.name = name(topic);
        for (partition, replicas) in [(0, Some(vec![node])), (1, None)] {
            let mut rp = alter_partition_reassignments_request::ReassignablePartition::default();
            rp.partition_index = partition;
            rp.replicas = replicas.map(|r| r.into_iter().map(BrokerId).collect());
            t.partitions.push(rp);
        }
        req.topics = vec![t];
        let r: AlterPartitionReassignmentsResponse =
            p.send(ApiKey::AlterPartitionReassignments, v, &req).await;
        assert_eq!((r.error_code, r.error_message), (0, None), "v{v}");
        assert_eq!(r.allow_replication_factor_change, v < 1, "v{v}");
        let codes: Vec<i16> = r.responses[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        // Already on the only broker: done; a cancel: NO_REASSIGNMENT_IN_PROGRESS (85).
        assert_eq!(codes, vec![0, 85], "AlterPartitionReassignments v{v}");
    }
    for v in versions::<ListPartitionReassignmentsRequest>(ApiKey::ListPartitionReassignments) {
        let mut req = ListPartitionReassignmentsRequest::default();
        req.timeout_ms = 5000;
        let r: ListPartitionReassignmentsResponse =
            p.send(ApiKey::ListPartitionReassignments, v, &req).await;
        assert_eq!((r.error_code, r.error_message), (0, None), "v{v}");
        assert!(r.topics.is_empty(), "ListPartitionReassignments v{v}");
    }
    for v in versions::<DescribeQuorumRequest>(ApiKey::DescribeQuorum) {
        let mut part = describe_quorum_request::PartitionData::default();
        part.partition_index = 0;
        let mut t = describe_quorum_request::TopicData::default();
        t.topic_name = name("__cluster_metadata");
        t.partitions = vec![part];
        let mut req = DescribeQuorumRequest::default();
        req.topics = vec![t];
        let r: DescribeQuorumResponse = p.send(ApiKey::DescribeQuorum, v, &req).await;
        assert_eq!(r.error_code, 0, "DescribeQuorum v{v}");
        let q = &r.topics[0].partitions[0];
        assert_eq!((q.error_code, q.leader_id.0), (0, node), "v{v}");
        let voters: Vec<i32> = q.current_voters.iter().map(|r| r.replica_id.0).collect();
        assert_eq!(voters, vec![node], "DescribeQuorum v{v}");
        assert!(q.observers.is_empty());
        assert_eq!(q.current_voters[0].last_caught_up_timestamp > 0, v >= 1);
        assert_eq!(r.nodes.len(), usize::from(v >= 2), "DescribeQuorum v{v}");
    }
    for v in versions::<ListConfigResourcesRequest>(ApiKey::ListConfigResources) {
        let mut req = ListConfigResourcesRequest::default();
        if v >= 1 {
            req.resource_types = vec![2, 4];
        }
        let r: ListConfigResourcesResponse = p.send(ApiKey::ListConfigResources, v, &req).await;
        assert_eq!(r.error_code, 0, "ListConfigResources v{v}");
        let got: Vec<(i8, String)> = r
            .config_resources
            .iter()
            .map(|c| (c.resource_type, c.resource_name.to_string()))
            .collect();
        // v0 lists client-metrics subscriptions only, of which there are none.
        let want = if v == 0 {
            vec![]
        } else {
            let mut want: Vec<(i8, String)> = topics.iter().map(|t| (2, t.clone())).collect();
            want.push((4, node.to_string()));
            want
        };
        assert_eq!(got, want, "ListConfigResources v{v}");
    }
}
