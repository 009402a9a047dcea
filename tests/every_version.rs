//! Every advertised version of every API, with realistic content: a topic with records, groups
//! with members and committed offsets, configs, producer ids. Each request is sent at each version
//! the broker advertises (read from the dispatch table, so a new API or version is covered without
//! touching this file — and an API with no probe here fails the test), and its answer must decode
//! at that version with nothing left over. A handler that sets a field its version lacks makes the
//! encoder fail and the connection close (ListOffsets v1–v3 once did, with `leader_epoch`), which
//! fails here with the API and version named.

mod common;
#[path = "every_version/replicas.rs"]
mod replicas;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::{batch, name, Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};
use uuid::Uuid;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The versions gregor advertises for `api` that the codec can encode as a request (Produce v0–v2
/// are advertised but have no request type in the crate; `tests/protocol.rs` covers them).
fn versions<Req: Message>(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let s = gregor::dispatch::SUPPORTED
        .iter()
        .find(|s| s.key == api)
        .unwrap_or_else(|| panic!("{api:?} is not advertised"));
    s.min.max(Req::VERSIONS.min)..=s.max
}

struct Prober {
    c: Client,
    probed: BTreeSet<i16>,
}

impl Prober {
    /// Sends `req` at `version`; the answer must arrive and decode at that version.
    async fn send<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        self.probed.insert(api as i16);
        let (corr, frame) = self.c.frame(api, version, req);
        self.c.send_raw(&frame).await;
        let Some(mut resp) = self.c.read_frame().await else {
            panic!("{api:?} v{version}: the broker closed the connection (response not encodable at this version?)");
        };
        common::decode_response(api, version, corr, &mut resp)
    }
}

fn records(n: usize) -> Bytes {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("value-{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    batch(&refs, None)
}

fn produce_req(version: i16, topic: &str, id: Uuid, partition: i32) -> ProduceRequest {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records(3));
    let mut t = produce_request::TopicProduceData::default();
    if version >= 13 {
        t.topic_id = id;
    } else {
        t.name = name(topic);
    }
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = vec![t];
    req
}

fn fetch_req(version: i16, topic: &str, id: Uuid) -> FetchRequest {
    let mut req = FetchRequest::default();
    if version <= 14 {
        req.replica_id = BrokerId(-1);
    } else {
        req.replica_state.replica_id = BrokerId(-1);
        req.replica_state.replica_epoch = -1;
    }
    req.max_wait_ms = 0;
    req.min_bytes = 1;
    req.max_bytes = 1 << 20;
    if version >= 7 {
        req.session_epoch = -1;
    }
    let mut t = fetch_request::FetchTopic::default();
    if version >= 13 {
        t.topic_id = id;
    } else {
        t.topic = name(topic);
    }
    t.partitions = (0..2)
        .map(|p| {
            let mut fp = fetch_request::FetchPartition::default();
            fp.partition = p;
            fp.fetch_offset = 1;
            fp.partition_max_bytes = 1 << 20;
            if version >= 9 {
                fp.current_leader_epoch = -1;
            }
            if version >= 12 {
                fp.last_fetched_epoch = -1;
            }
            if version >= 5 {
                fp.log_start_offset = -1;
            }
            fp
        })
        .collect();
    req.topics = vec![t];
    if version >= 11 {
        req.rack_id = s("rack-a");
    }
    req
}

/// The special timestamps version `version` may send, after latest (-1) and earliest (-2).
fn list_offsets_stamps(version: i16) -> Vec<i64> {
    let mut stamps = vec![-1i64, -2, 0, 1001, i64::MAX / 2];
    if version >= 7 {
        stamps.push(-3);
    }
    if version >= 8 {
        stamps.push(-4);
    }
    if version >= 9 {
        stamps.push(-5);
    }
    stamps
}

/// One lookup of partition 0 at `ts`, and one of a partition that does not exist (a partition
/// named twice in one request is INVALID_REQUEST, as in Kafka).
fn list_offsets_req(version: i16, topic: &str, ts: i64) -> ListOffsetsRequest {
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = name(topic);
    let mut p = list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = ts;
    if version >= 4 {
        p.current_leader_epoch = -1;
    }
    t.partitions.push(p);
    let mut missing = list_offsets_request::ListOffsetsPartition::default();
    missing.partition_index = 7;
    missing.timestamp = -1;
    t.partitions.push(missing);
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    if version >= 10 {
        req.timeout_ms = 5000;
    }
    req
}

fn metadata_req(version: i16, topics: Option<&[&str]>) -> MetadataRequest {
    let mut req = MetadataRequest::default();
    req.topics = topics.map(|ts| {
        ts.iter()
            .map(|t| {
                let mut mt = metadata_request::MetadataRequestTopic::default();
                mt.name = Some(name(t));
                mt
            })
            .collect()
    });
    if version >= 4 {
        req.allow_auto_topic_creation = false;
    }
    if version >= 8 {
        req.include_topic_authorized_operations = true;
    }
    if (8..=10).contains(&version) {
        req.include_cluster_authorized_operations = true;
    }
    req
}

fn join_req(version: i16, group: &str, member: &str) -> JoinGroupRequest {
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(s(group));
    req.session_timeout_ms = 30_000;
    if version >= 1 {
        req.rebalance_timeout_ms = 30_000;
    }
    req.member_id = s(member);
    req.protocol_type = s("consumer");
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x01t\xff\xff\xff\xff");
    req.protocols = vec![p];
    if version >= 8 {
        req.reason = Some(s("probe"));
    }
    req
}

/// A consumer group `group` with one member, joined at JoinGroup `version` and synced: returns
/// (member id, generation).
async fn joined_group(p: &mut Prober, version: i16, group: &str) -> (StrBytes, i32) {
    let mut r: JoinGroupResponse = p
        .send(ApiKey::JoinGroup, version, &join_req(version, group, ""))
        .await;
    if r.error_code == kafka_protocol::ResponseError::MemberIdRequired.code() {
        let member = r.member_id.to_string();
        r = p
            .send(
                ApiKey::JoinGroup,
                version,
                &join_req(version, group, &member),
            )
            .await;
    }
    assert_eq!(r.error_code, 0, "JoinGroup v{version}");
    assert_eq!(
        r.members.len(),
        1,
        "JoinGroup v{version}: the leader sees itself"
    );
    assert_eq!(r.leader, r.member_id);
    let sync_v = version.min(*versions::<SyncGroupRequest>(ApiKey::SyncGroup).end());
    let mut req = SyncGroupRequest::default();
    req.group_id = GroupId(s(group));
    req.generation_id = r.generation_id;
    req.member_id = r.member_id.clone();
    if sync_v >= 5 {
        req.protocol_type = Some(s("consumer"));
        req.protocol_name = Some(s("range"));
    }
    let mut a = sync_group_request::SyncGroupRequestAssignment::default();
    a.member_id = r.member_id.clone();
    a.assignment = Bytes::from_static(
        b"\x00\x01\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x01\x00\x00\x00\x00\xff\xff\xff\xff",
    );
    let assignment = a.assignment.clone();
    req.assignments = vec![a];
    let sr: SyncGroupResponse = p.send(ApiKey::SyncGroup, sync_v, &req).await;
    assert_eq!(sr.error_code, 0, "SyncGroup v{sync_v}");
    assert_eq!(sr.assignment, assignment, "SyncGroup v{sync_v}");
    (r.member_id, r.generation_id)
}

fn commit_req(version: i16, group: &str, topic: &str) -> OffsetCommitRequest {
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(s(group));
    req.generation_id_or_member_epoch = -1;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = name(topic);
    t.partitions = (0..2)
        .map(|i| {
            let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
            p.partition_index = i;
            p.committed_offset = 2 + i64::from(i);
            p.committed_metadata = Some(s("meta"));
            if version >= 6 {
                p.committed_leader_epoch = 0;
            }
            p
        })
        .collect();
    if (2..=4).contains(&version) {
        req.retention_time_ms = -1;
    }
    req.topics = vec![t];
    req
}

fn offset_fetch_req(version: i16, group: &str, topic: &str) -> OffsetFetchRequest {
    let mut req = OffsetFetchRequest::default();
    if version <= 7 {
        req.group_id = GroupId(s(group));
        let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
        t.name = name(topic);
        t.partition_indexes = vec![0, 1];
        req.topics = Some(vec![t]);
    } else {
        for (g, topics) in [(group, true), ("no-such-group", false)] {
            let mut og = offset_fetch_request::OffsetFetchRequestGroup::default();
            og.group_id = GroupId(s(g));
            if topics {
                let mut t = offset_fetch_request::OffsetFetchRequestTopics::default();
                t.name = name(topic);
                t.partition_indexes = vec![0, 1];
                og.topics = Some(vec![t]);
            }
            if version >= 9 {
                og.member_epoch = -1;
            }
            req.groups.push(og);
        }
    }
    if version >= 7 {
        req.require_stable = true;
    }
    req
}

fn describe_configs_req(version: i16, topic: &str) -> DescribeConfigsRequest {
    let mut req = DescribeConfigsRequest::default();
    for (ty, n) in [(2i8, topic), (4, "1"), (4, "")] {
        let mut r = describe_configs_request::DescribeConfigsResource::default();
        r.resource_type = ty;
        r.resource_name = s(n);
        req.resources.push(r);
    }
    req.include_synonyms = true;
    if version >= 3 {
        req.include_documentation = true;
    }
    req
}

#[tokio::test]
async fn every_api_answers_at_every_advertised_version() {
    // An authorizer, so that the ACL APIs answer with content; the plaintext principal is a super
    // user, so nothing else is refused.
    let b = TestBroker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        (
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        ),
        ("super.users", "User:ANONYMOUS"),
    ])
    .await;
    let mut p = Prober {
        c: b.client().await,
        probed: BTreeSet::new(),
    };
    let topic = "events";
    common::create_topic(&mut p.c, topic, 2).await;
    let id = b.broker.topics.get(topic).unwrap().id;

    for v in versions::<ApiVersionsRequest>(ApiKey::ApiVersions) {
        let mut req = ApiVersionsRequest::default();
        if v >= 3 {
            req.client_software_name = s("probe");
            req.client_software_version = s("1.0");
        }
        let r: ApiVersionsResponse = p.send(ApiKey::ApiVersions, v, &req).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.api_keys.len(), gregor::dispatch::SUPPORTED.len());
    }

    for v in versions::<ProduceRequest>(ApiKey::Produce) {
        for part in 0..2 {
            let r: ProduceResponse = p
                .send(ApiKey::Produce, v, &produce_req(v, topic, id, part))
                .await;
            let pr = &r.responses[0].partition_responses[0];
            assert_eq!(pr.error_code, 0, "Produce v{v}");
            assert_eq!(pr.index, part);
            let t = &r.responses[0];
            let named = if v >= 13 {
                t.topic_id == id
            } else {
                t.name.0.as_str() == topic
            };
            assert!(named, "Produce v{v} names the topic as it was asked");
        }
    }
    let produced = i64::from(*versions::<ProduceRequest>(ApiKey::Produce).end() - 2) * 3;

    for v in versions::<FetchRequest>(ApiKey::Fetch) {
        let r: FetchResponse = p.send(ApiKey::Fetch, v, &fetch_req(v, topic, id)).await;
        assert_eq!(r.error_code, 0, "Fetch v{v}");
        for part in &r.responses[0].partitions {
            assert_eq!(part.error_code, 0, "Fetch v{v}");
            assert_eq!(part.high_watermark, produced, "Fetch v{v}");
            assert!(part.records.as_ref().is_some_and(|r| !r.is_empty()));
        }
    }

    for v in versions::<ListOffsetsRequest>(ApiKey::ListOffsets) {
        for ts in list_offsets_stamps(v) {
            let r: ListOffsetsResponse = p
                .send(ApiKey::ListOffsets, v, &list_offsets_req(v, topic, ts))
                .await;
            let parts = &r.topics[0].partitions;
            let want = match ts {
                -1 => produced,
                -2 | -4 | 0 => 0,
                1001 => 1,
                // The record with the largest timestamp, wherever the produce put it.
                -3 => parts[0].offset.max(0),
                _ => -1,
            };
            assert_eq!(parts[0].error_code, 0, "ListOffsets v{v} at {ts}");
            assert_eq!(parts[0].offset, want, "ListOffsets v{v} at {ts}");
            assert_eq!(
                parts[1].error_code,
                kafka_protocol::ResponseError::UnknownTopicOrPartition.code()
            );
        }
    }

    for v in versions::<MetadataRequest>(ApiKey::Metadata) {
        for topics in [Some(&[topic, "missing"][..]), None] {
            let r: MetadataResponse = p.send(ApiKey::Metadata, v, &metadata_req(v, topics)).await;
            assert_eq!(r.brokers.len(), 1, "Metadata v{v}");
            let t = r
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
                .unwrap();
            assert_eq!(t.partitions.len(), 2, "Metadata v{v}");
        }
    }

    for v in versions::<CreateTopicsRequest>(ApiKey::CreateTopics) {
        let mut t = create_topics_request::CreatableTopic::default();
        t.name = name(&format!("created-{v}"));
        t.num_partitions = if v >= 4 { -1 } else { 3 };
        t.replication_factor = if v >= 4 { -1 } else { 1 };
        let mut cfg = create_topics_request::CreatableTopicConfig::default();
        cfg.name = s("retention.ms");
        cfg.value = Some(s("3600000"));
        t.configs = vec![cfg];
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 5000;
        let r: CreateTopicsResponse = p.send(ApiKey::CreateTopics, v, &req).await;
        assert_eq!(r.topics[0].error_code, 0, "CreateTopics v{v}");
    }
    for v in versions::<CreatePartitionsRequest>(ApiKey::CreatePartitions) {
        let mut t = create_partitions_request::CreatePartitionsTopic::default();
        t.name = name("created-7");
        t.count = 2 + i32::from(v);
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 5000;
        let r: CreatePartitionsResponse = p.send(ApiKey::CreatePartitions, v, &req).await;
        assert_eq!(r.results[0].error_code, 0, "CreatePartitions v{v}");
    }
    for v in versions::<DeleteTopicsRequest>(ApiKey::DeleteTopics) {
        let n = name(&format!("created-{}", v + 1));
        let mut req = DeleteTopicsRequest::default();
        if v >= 6 {
            let mut st = delete_topics_request::DeleteTopicState::default();
            st.name = Some(n);
            req.topics = vec![st];
        } else {
            req.topic_names = vec![n];
        }
        req.timeout_ms = 5000;
        let r: DeleteTopicsResponse = p.send(ApiKey::DeleteTopics, v, &req).await;
        assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{v}");
    }

    for v in versions::<InitProducerIdRequest>(ApiKey::InitProducerId) {
        let mut req = InitProducerIdRequest::default();
        req.transactional_id = None;
        req.transaction_timeout_ms = 60_000;
        if v >= 3 {
            req.producer_id = ProducerId(-1);
            req.producer_epoch = -1;
        }
        let r: InitProducerIdResponse = p.send(ApiKey::InitProducerId, v, &req).await;
        assert_eq!(r.error_code, 0, "InitProducerId v{v}");
        assert!(r.producer_id.0 >= 0);
    }

    for v in versions::<FindCoordinatorRequest>(ApiKey::FindCoordinator) {
        let key_types: &[i8] = if v >= 1 { &[0, 1] } else { &[0] };
        for &key_type in key_types {
            let mut req = FindCoordinatorRequest::default();
            if v >= 1 {
                req.key_type = key_type;
            }
            if v >= 4 {
                req.coordinator_keys = vec![s("group-a"), s("group-b")];
            } else {
                req.key = s("group-a");
            }
            let r: FindCoordinatorResponse = p.send(ApiKey::FindCoordinator, v, &req).await;
            let err = if v >= 4 {
                r.coordinators[0].error_code
            } else {
                r.error_code
            };
            assert_eq!(
                err == 0,
                key_type == 0,
                "FindCoordinator v{v} key type {key_type}"
            );
            if key_type == 1 {
                // No transaction coordinator: an error clients fail on at once, with the reason.
                assert_eq!(
                    err,
                    kafka_protocol::ResponseError::UnsupportedVersion.code()
                );
                let message = if v >= 4 {
                    r.coordinators[0].error_message.clone()
                } else {
                    r.error_message.clone()
                };
                assert!(
                    message.is_some_and(|m| m.contains("does not support transactions")),
                    "FindCoordinator v{v}"
                );
            }
        }
    }

    // Groups: one per JoinGroup version, each joined, synced and heartbeating.
    let mut members = Vec::new();
    for v in versions::<JoinGroupRequest>(ApiKey::JoinGroup) {
        let group = format!("group-{v}");
        let (member, generation) = joined_group(&mut p, v, &group).await;
        let hb_v = v.min(*versions::<HeartbeatRequest>(ApiKey::Heartbeat).end());
        let mut hb = HeartbeatRequest::default();
        hb.group_id = GroupId(s(&group));
        hb.generation_id = generation;
        hb.member_id = member.clone();
        let r: HeartbeatResponse = p.send(ApiKey::Heartbeat, hb_v, &hb).await;
        assert_eq!(r.error_code, 0, "Heartbeat v{hb_v}");
        members.push((group, member));
    }
    for v in versions::<HeartbeatRequest>(ApiKey::Heartbeat) {
        let mut hb = HeartbeatRequest::default();
        hb.group_id = GroupId(s("group-0"));
        hb.generation_id = 1;
        hb.member_id = members[0].1.clone();
        let r: HeartbeatResponse = p.send(ApiKey::Heartbeat, v, &hb).await;
        assert_eq!(r.error_code, 0, "Heartbeat v{v}");
    }
    for v in versions::<DescribeGroupsRequest>(ApiKey::DescribeGroups) {
        let mut req = DescribeGroupsRequest::default();
        req.groups = members.iter().map(|(g, _)| GroupId(s(g))).collect();
        req.groups.push(GroupId(s("no-such-group")));
        if v >= 3 {
            req.include_authorized_operations = true;
        }
        let r: DescribeGroupsResponse = p.send(ApiKey::DescribeGroups, v, &req).await;
        assert_eq!(r.groups.len(), members.len() + 1);
        for g in &r.groups[..members.len()] {
            assert_eq!(g.group_state.as_str(), "Stable", "DescribeGroups v{v}");
            assert_eq!(g.members.len(), 1, "DescribeGroups v{v}");
        }
    }
    for v in versions::<ListGroupsRequest>(ApiKey::ListGroups) {
        let mut req = ListGroupsRequest::default();
        if v >= 4 {
            req.states_filter = vec![s("Stable")];
        }
        if v >= 5 {
            req.types_filter = vec![s("classic")];
        }
        let r: ListGroupsResponse = p.send(ApiKey::ListGroups, v, &req).await;
        assert_eq!(r.groups.len(), members.len(), "ListGroups v{v}");
    }

    for v in versions::<OffsetCommitRequest>(ApiKey::OffsetCommit) {
        let group = format!("offsets-{v}");
        let r: OffsetCommitResponse = p
            .send(ApiKey::OffsetCommit, v, &commit_req(v, &group, topic))
            .await;
        for part in &r.topics[0].partitions {
            assert_eq!(part.error_code, 0, "OffsetCommit v{v}");
        }
    }
    let committed_group = format!(
        "offsets-{}",
        versions::<OffsetCommitRequest>(ApiKey::OffsetCommit).start()
    );
    for v in versions::<OffsetFetchRequest>(ApiKey::OffsetFetch) {
        let r: OffsetFetchResponse = p
            .send(
                ApiKey::OffsetFetch,
                v,
                &offset_fetch_req(v, &committed_group, topic),
            )
            .await;
        let offsets: Vec<i64> = if v <= 7 {
            r.topics[0]
                .partitions
                .iter()
                .map(|p| p.committed_offset)
                .collect()
        } else {
            r.groups[0].topics[0]
                .partitions
                .iter()
                .map(|p| p.committed_offset)
                .collect()
        };
        assert_eq!(offsets, vec![2, 3], "OffsetFetch v{v}");
    }
    for v in versions::<OffsetDeleteRequest>(ApiKey::OffsetDelete) {
        let mut req = OffsetDeleteRequest::default();
        req.group_id = GroupId(s(&committed_group));
        let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
        t.name = name(topic);
        let mut part = offset_delete_request::OffsetDeleteRequestPartition::default();
        part.partition_index = i32::from(v);
        t.partitions = vec![part];
        req.topics = vec![t];
        let r: OffsetDeleteResponse = p.send(ApiKey::OffsetDelete, v, &req).await;
        assert_eq!(r.error_code, 0, "OffsetDelete v{v}");
    }

    for v in versions::<LeaveGroupRequest>(ApiKey::LeaveGroup) {
        let (group, member) = &members[v as usize];
        let mut req = LeaveGroupRequest::default();
        req.group_id = GroupId(s(group));
        if v >= 3 {
            let mut m = leave_group_request::MemberIdentity::default();
            m.member_id = member.clone();
            if v >= 5 {
                m.reason = Some(s("probe done"));
            }
            req.members = vec![m];
        } else {
            req.member_id = member.clone();
        }
        let r: LeaveGroupResponse = p.send(ApiKey::LeaveGroup, v, &req).await;
        assert_eq!(r.error_code, 0, "LeaveGroup v{v}");
    }
    for v in versions::<DeleteGroupsRequest>(ApiKey::DeleteGroups) {
        let mut req = DeleteGroupsRequest::default();
        req.groups_names = vec![GroupId(s(&format!("group-{v}")))];
        let r: DeleteGroupsResponse = p.send(ApiKey::DeleteGroups, v, &req).await;
        assert_eq!(r.results[0].error_code, 0, "DeleteGroups v{v}");
    }

    for v in versions::<DescribeConfigsRequest>(ApiKey::DescribeConfigs) {
        let r: DescribeConfigsResponse = p
            .send(ApiKey::DescribeConfigs, v, &describe_configs_req(v, topic))
            .await;
        for res in &r.results {
            assert_eq!(res.error_code, 0, "DescribeConfigs v{v}");
        }
        let counts: Vec<usize> = r.results.iter().map(|r| r.configs.len()).collect();
        assert!(
            counts[0] > 20 && counts[1] > 20,
            "DescribeConfigs v{v}: {counts:?}"
        );
    }
    for v in versions::<AlterConfigsRequest>(ApiKey::AlterConfigs) {
        let mut c = alter_configs_request::AlterableConfig::default();
        c.name = s("retention.ms");
        c.value = Some(s("7200000"));
        let mut r = alter_configs_request::AlterConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = s(topic);
        r.configs = vec![c];
        let mut req = AlterConfigsRequest::default();
        req.resources = vec![r];
        let r: AlterConfigsResponse = p.send(ApiKey::AlterConfigs, v, &req).await;
        assert_eq!(r.responses[0].error_code, 0, "AlterConfigs v{v}");
        assert_eq!(
            r.responses[0].error_message, None,
            "AlterConfigs v{v}: null on success"
        );
    }
    for v in versions::<IncrementalAlterConfigsRequest>(ApiKey::IncrementalAlterConfigs) {
        let mut c = incremental_alter_configs_request::AlterableConfig::default();
        c.name = s("cleanup.policy");
        c.config_operation = 2;
        c.value = Some(s("compact"));
        let mut r = incremental_alter_configs_request::AlterConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = s(topic);
        r.configs = vec![c];
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![r];
        req.validate_only = true;
        let r: IncrementalAlterConfigsResponse =
            p.send(ApiKey::IncrementalAlterConfigs, v, &req).await;
        assert_eq!(r.responses[0].error_code, 0, "IncrementalAlterConfigs v{v}");
        assert_eq!(
            r.responses[0].error_message, None,
            "IncrementalAlterConfigs v{v}"
        );
    }

    for v in versions::<DescribeClusterRequest>(ApiKey::DescribeCluster) {
        let mut req = DescribeClusterRequest::default();
        req.include_cluster_authorized_operations = true;
        if v >= 1 {
            req.endpoint_type = 1;
        }
        if v >= 2 {
            req.include_fenced_brokers = true;
        }
        let r: DescribeClusterResponse = p.send(ApiKey::DescribeCluster, v, &req).await;
        assert_eq!(r.error_code, 0, "DescribeCluster v{v}");
        assert_eq!(r.brokers.len(), 1);
    }
    for v in versions::<DescribeTopicPartitionsRequest>(ApiKey::DescribeTopicPartitions) {
        let mut t = describe_topic_partitions_request::TopicRequest::default();
        t.name = name(topic);
        let mut req = DescribeTopicPartitionsRequest::default();
        req.topics = vec![t];
        req.response_partition_limit = 1;
        let r: DescribeTopicPartitionsResponse =
            p.send(ApiKey::DescribeTopicPartitions, v, &req).await;
        assert_eq!(
            r.topics[0].partitions.len(),
            1,
            "DescribeTopicPartitions v{v}"
        );
        assert!(r.next_cursor.is_some());
    }
    let mut topics: Vec<String> = b
        .broker
        .topics
        .all()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    topics.sort();
    replicas::probe(&mut p, topic, &topics, b.broker.config.node_id).await;
    for v in versions::<DescribeLogDirsRequest>(ApiKey::DescribeLogDirs) {
        let r: DescribeLogDirsResponse = p
            .send(
                ApiKey::DescribeLogDirs,
                v,
                &DescribeLogDirsRequest::default(),
            )
            .await;
        assert!(!r.results.is_empty(), "DescribeLogDirs v{v}");
        assert_eq!(r.results[0].error_code, 0, "DescribeLogDirs v{v}");
    }
    let log_dir = b.broker.config.log_dirs[0].display().to_string();
    for v in versions::<AlterReplicaLogDirsRequest>(ApiKey::AlterReplicaLogDirs) {
        let mut req = AlterReplicaLogDirsRequest::default();
        for (partition, path) in [(0, log_dir.as_str()), (1, "/no/such/dir")] {
            let mut t = alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default();
            t.name = name(topic);
            t.partitions = vec![partition];
            let mut d = alter_replica_log_dirs_request::AlterReplicaLogDir::default();
            d.path = s(path);
            d.topics.push(t);
            req.dirs.push(d);
        }
        let r: AlterReplicaLogDirsResponse = p.send(ApiKey::AlterReplicaLogDirs, v, &req).await;
        let codes: Vec<i16> = r.results[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        // Already there: nothing to do; an unknown dir: LOG_DIR_NOT_FOUND (57).
        assert_eq!(codes, vec![0, 57], "AlterReplicaLogDirs v{v}");
    }
    for v in versions::<DeleteRecordsRequest>(ApiKey::DeleteRecords) {
        let mut part = delete_records_request::DeleteRecordsPartition::default();
        part.partition_index = 0;
        part.offset = 1 + i64::from(v);
        let mut t = delete_records_request::DeleteRecordsTopic::default();
        t.name = name(topic);
        t.partitions = vec![part];
        let mut req = DeleteRecordsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 5000;
        let r: DeleteRecordsResponse = p.send(ApiKey::DeleteRecords, v, &req).await;
        let pr = &r.topics[0].partitions[0];
        assert_eq!(pr.error_code, 0, "DeleteRecords v{v}");
        assert_eq!(pr.low_watermark, 1 + i64::from(v));
    }

    // On a PLAINTEXT listener the SASL requests are in an illegal state (34), as in Kafka.
    for v in versions::<SaslHandshakeRequest>(ApiKey::SaslHandshake) {
        let mut req = SaslHandshakeRequest::default();
        req.mechanism = s("PLAIN");
        let r: SaslHandshakeResponse = p.send(ApiKey::SaslHandshake, v, &req).await;
        assert_eq!(r.error_code, 34, "SaslHandshake v{v}");
    }
    for v in versions::<SaslAuthenticateRequest>(ApiKey::SaslAuthenticate) {
        let r: SaslAuthenticateResponse = p
            .send(
                ApiKey::SaslAuthenticate,
                v,
                &SaslAuthenticateRequest::default(),
            )
            .await;
        assert_eq!(r.error_code, 34, "SaslAuthenticate v{v}");
    }
    for v in versions::<AlterUserScramCredentialsRequest>(ApiKey::AlterUserScramCredentials) {
        let mut up = alter_user_scram_credentials_request::ScramCredentialUpsertion::default();
        up.name = s("carol");
        up.mechanism = 1;
        up.iterations = 4096;
        up.salt = Bytes::from_static(b"salt");
        up.salted_password = Bytes::from_static(&[7u8; 32]);
        let mut req = AlterUserScramCredentialsRequest::default();
        req.upsertions = vec![up];
        let r: AlterUserScramCredentialsResponse =
            p.send(ApiKey::AlterUserScramCredentials, v, &req).await;
        assert_eq!(r.results[0].error_code, 0, "AlterUserScramCredentials v{v}");
    }
    for v in versions::<DescribeUserScramCredentialsRequest>(ApiKey::DescribeUserScramCredentials) {
        let r: DescribeUserScramCredentialsResponse = p
            .send(
                ApiKey::DescribeUserScramCredentials,
                v,
                &DescribeUserScramCredentialsRequest::default(),
            )
            .await;
        assert_eq!(r.results[0].credential_infos[0].iterations, 4096);
    }
    for v in versions::<DescribeClientQuotasRequest>(ApiKey::DescribeClientQuotas) {
        let r: DescribeClientQuotasResponse = p
            .send(
                ApiKey::DescribeClientQuotas,
                v,
                &DescribeClientQuotasRequest::default(),
            )
            .await;
        assert_eq!((r.error_code, r.entries.map(|e| e.len())), (0, Some(0)));
    }

    for v in versions::<CreateAclsRequest>(ApiKey::CreateAcls) {
        let mut c = create_acls_request::AclCreation::default();
        c.resource_type = 2;
        c.resource_name = s(&format!("acl-probe-{v}"));
        c.resource_pattern_type = 3;
        c.principal = s("User:carol");
        c.host = s("*");
        c.operation = 3;
        c.permission_type = 3;
        let mut req = CreateAclsRequest::default();
        req.creations = vec![c];
        let r: CreateAclsResponse = p.send(ApiKey::CreateAcls, v, &req).await;
        assert_eq!(r.results[0].error_code, 0, "CreateAcls v{v}");
    }
    for v in versions::<DescribeAclsRequest>(ApiKey::DescribeAcls) {
        let mut req = DescribeAclsRequest::default();
        req.resource_type_filter = 2;
        req.resource_name_filter = Some(s("acl-probe-1"));
        req.pattern_type_filter = 3;
        req.principal_filter = None;
        req.host_filter = None;
        req.operation = 1;
        req.permission_type = 1;
        let r: DescribeAclsResponse = p.send(ApiKey::DescribeAcls, v, &req).await;
        let found: Vec<(&str, &str)> = r
            .resources
            .iter()
            .flat_map(|res| {
                res.acls
                    .iter()
                    .map(|a| (res.resource_name.as_str(), a.principal.as_str()))
            })
            .collect();
        assert_eq!(found, [("acl-probe-1", "User:carol")], "DescribeAcls v{v}");
    }
    for v in versions::<DeleteAclsRequest>(ApiKey::DeleteAcls) {
        let mut f = delete_acls_request::DeleteAclsFilter::default();
        f.resource_type_filter = 2;
        f.resource_name_filter = Some(s(&format!("acl-probe-{v}")));
        f.pattern_type_filter = 3;
        f.principal_filter = None;
        f.host_filter = None;
        f.operation = 1;
        f.permission_type = 1;
        let mut req = DeleteAclsRequest::default();
        req.filters = vec![f];
        let r: DeleteAclsResponse = p.send(ApiKey::DeleteAcls, v, &req).await;
        let deleted = &r.filter_results[0].matching_acls;
        assert_eq!(
            (r.filter_results[0].error_code, deleted.len()),
            (0, 1),
            "DeleteAcls v{v}"
        );
    }

    let advertised: BTreeSet<i16> = gregor::dispatch::SUPPORTED
        .iter()
        .map(|s| s.key as i16)
        .collect();
    let unprobed: Vec<_> = advertised.difference(&p.probed).collect();
    assert!(unprobed.is_empty(), "APIs with no probe here: {unprobed:?}");
    b.stop().await;
}
