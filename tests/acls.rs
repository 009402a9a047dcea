//! ACLs with StandardAuthorizer semantics, frame by frame over SASL PLAIN principals: the ACL APIs
//! themselves, and what a principal allowed one thing is refused everywhere else, with the error
//! Kafka gives (TOPIC_/GROUP_/CLUSTER_AUTHORIZATION_FAILED).

mod common;

use bytes::Bytes;
use common::{batch, produce_req, Client, TestBroker};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";"#;
const STANDARD: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

// Kafka's codes.
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ANY: i8 = 1;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

fn settings(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut s = vec![
        ("listeners", "SASL_PLAINTEXT://{addr}"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
        ("authorizer.class.name", STANDARD),
        ("super.users", "User:admin"),
    ];
    s.extend_from_slice(extra);
    s
}

async fn secured() -> TestBroker {
    TestBroker::start(&settings(&[])).await
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn login(b: &TestBroker, user: &str) -> Client {
    let mut c = b.client().await;
    let mut h = SaslHandshakeRequest::default();
    h.mechanism = s("PLAIN");
    let r: SaslHandshakeResponse = c.request(ApiKey::SaslHandshake, 1, &h).await;
    assert_eq!(r.error_code, 0);
    let mut a = SaslAuthenticateRequest::default();
    a.auth_bytes = Bytes::from(format!("\0{user}\0{user}-secret"));
    let r: SaslAuthenticateResponse = c.request(ApiKey::SaslAuthenticate, 2, &a).await;
    assert_eq!(r.error_code, 0, "{user} logs in");
    c
}

/// (resource type, name, pattern, principal, operation, permission)
type Entry<'a> = (i8, &'a str, i8, &'a str, i8, i8);

fn creation(e: Entry) -> AclCreation {
    let mut c = AclCreation::default();
    c.resource_type = e.0;
    c.resource_name = s(e.1);
    c.resource_pattern_type = e.2;
    c.principal = s(e.3);
    c.host = s("*");
    c.operation = e.4;
    c.permission_type = e.5;
    c
}

async fn create_acls(c: &mut Client, entries: &[Entry<'_>]) -> Vec<(i16, Option<String>)> {
    let mut req = CreateAclsRequest::default();
    req.creations = entries.iter().map(|e| creation(*e)).collect();
    let r: CreateAclsResponse = c.request(ApiKey::CreateAcls, 3, &req).await;
    r.results
        .iter()
        .map(|r| {
            (
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect()
}

fn any_filter() -> DescribeAclsRequest {
    let mut f = DescribeAclsRequest::default();
    f.resource_type_filter = ANY;
    f.pattern_type_filter = ANY;
    f.operation = ANY;
    f.permission_type = ANY;
    f.resource_name_filter = None;
    f.principal_filter = None;
    f.host_filter = None;
    f
}

/// Every ACL as (type, name, pattern, principal, host, operation, permission), in Kafka's order.
async fn all_acls(c: &mut Client) -> Vec<(i8, String, i8, String, String, i8, i8)> {
    let r: DescribeAclsResponse = c.request(ApiKey::DescribeAcls, 3, &any_filter()).await;
    assert_eq!(r.error_code, 0);
    let mut out = Vec::new();
    for res in &r.resources {
        for a in &res.acls {
            out.push((
                res.resource_type,
                res.resource_name.to_string(),
                res.pattern_type,
                a.principal.to_string(),
                a.host.to_string(),
                a.operation,
                a.permission_type,
            ));
        }
    }
    out.sort();
    out
}

async fn create_topic(c: &mut Client, name: &str) -> i16 {
    let r: CreateTopicsResponse = c
        .request(ApiKey::CreateTopics, 7, &common::create_req(name, 1))
        .await;
    r.topics[0].error_code
}

async fn produce(c: &mut Client, topic: &str) -> i16 {
    let req = produce_req(topic, 0, batch(&[b"v"], None), 1);
    let r: ProduceResponse = c.request(ApiKey::Produce, 9, &req).await;
    r.responses[0].partition_responses[0].error_code
}

async fn fetch(c: &mut Client, topic: &str) -> i16 {
    common::fetch(c, topic, 0, 0).await.error_code
}

async fn visible_topics(c: &mut Client) -> Vec<String> {
    let mut req = MetadataRequest::default();
    req.topics = None;
    let r: MetadataResponse = c.request(ApiKey::Metadata, 12, &req).await;
    let mut names: Vec<String> = r
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn with_no_authorizer_the_acl_apis_answer_security_disabled() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let r = create_acls(&mut c, &[(TOPIC, "t", LITERAL, "User:a", READ, ALLOW)]).await;
    assert_eq!(r, [(54, Some("No Authorizer is configured.".into()))]);
    let r: DescribeAclsResponse = c.request(ApiKey::DescribeAcls, 3, &any_filter()).await;
    assert_eq!(
        (r.error_code, r.error_message.as_deref()),
        (54, Some("No Authorizer is configured on the broker"))
    );
    b.stop().await;
}

#[tokio::test]
async fn a_principal_allowed_only_to_produce_can_do_nothing_else() {
    let b = secured().await;
    let mut admin = login(&b, "admin").await;
    for t in ["orders", "payroll"] {
        assert_eq!(
            create_topic(&mut admin, t).await,
            0,
            "super user creates {t}"
        );
    }
    assert_eq!(
        create_acls(
            &mut admin,
            &[(TOPIC, "orders", LITERAL, "User:alice", WRITE, ALLOW)]
        )
        .await,
        [(0, None)]
    );
    let mut alice = login(&b, "alice").await;
    assert_eq!(produce(&mut alice, "orders").await, 0);
    assert_eq!(produce(&mut alice, "payroll").await, 29);
    assert_eq!(fetch(&mut alice, "orders").await, 29, "cannot consume");
    // WRITE implies DESCRIBE: alice sees the topic she writes to, and only that one.
    assert_eq!(visible_topics(&mut alice).await, ["orders"]);
    assert_eq!(visible_topics(&mut admin).await, ["orders", "payroll"]);

    let mut del = DeleteTopicsRequest::default();
    let mut t = delete_topics_request::DeleteTopicState::default();
    t.name = Some(TopicName(s("orders")));
    del.topics = vec![t];
    let r: DeleteTopicsResponse = alice.request(ApiKey::DeleteTopics, 6, &del).await;
    assert_eq!(r.responses[0].error_code, 29, "cannot delete the topic");

    let mut alter = IncrementalAlterConfigsRequest::default();
    let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = s("orders");
    let mut op = incremental_alter_configs_request::AlterableConfig::default();
    op.name = s("retention.ms");
    op.value = Some(s("1000"));
    res.configs.push(op);
    alter.resources.push(res);
    let r: IncrementalAlterConfigsResponse = alice
        .request(ApiKey::IncrementalAlterConfigs, 1, &alter)
        .await;
    assert_eq!(r.responses[0].error_code, 29, "cannot alter configs");

    let r = create_acls(
        &mut alice,
        &[(TOPIC, "payroll", LITERAL, "User:alice", READ, ALLOW)],
    )
    .await;
    assert_eq!(
        r,
        [(
            31,
            Some("Request from User:alice needs ALTER permission.".into())
        )],
        "cannot grant herself more"
    );
    // Nothing was consumed, deleted or altered.
    assert_eq!(common::read_all(&mut admin, "orders", 0).await.len(), 1);
    b.stop().await;
}

#[tokio::test]
async fn deny_wins_over_allow_and_prefixed_acls_cover_their_prefix() {
    let b = secured().await;
    let mut admin = login(&b, "admin").await;
    for t in ["logs-a", "logs-secret", "other"] {
        assert_eq!(create_topic(&mut admin, t).await, 0);
    }
    let acls = [
        (TOPIC, "logs-", PREFIXED, "User:bob", WRITE, ALLOW),
        (TOPIC, "logs-secret", LITERAL, "User:bob", WRITE, DENY),
    ];
    assert_eq!(create_acls(&mut admin, &acls).await, [(0, None), (0, None)]);
    let mut bob = login(&b, "bob").await;
    assert_eq!(produce(&mut bob, "logs-a").await, 0, "prefix allows");
    assert_eq!(produce(&mut bob, "logs-secret").await, 29, "DENY wins");
    assert_eq!(produce(&mut bob, "other").await, 29, "outside the prefix");

    // Removing the DENY (DeleteAcls) lets the ALLOW through.
    let mut f = DeleteAclsFilter::default();
    f.resource_type_filter = TOPIC;
    f.resource_name_filter = Some(s("logs-secret"));
    f.pattern_type_filter = LITERAL;
    f.operation = ANY;
    f.permission_type = DENY;
    f.principal_filter = None;
    f.host_filter = None;
    let mut req = DeleteAclsRequest::default();
    req.filters = vec![f];
    let r: DeleteAclsResponse = admin.request(ApiKey::DeleteAcls, 3, &req).await;
    assert_eq!(r.filter_results[0].error_code, 0);
    assert_eq!(r.filter_results[0].matching_acls.len(), 1);
    assert_eq!(produce(&mut bob, "logs-secret").await, 0);
    b.stop().await;
}

#[tokio::test]
async fn groups_need_their_own_acls_and_answer_group_authorization_failed() {
    let b = secured().await;
    let mut admin = login(&b, "admin").await;
    assert_eq!(create_topic(&mut admin, "t").await, 0);
    let acls = [
        (TOPIC, "t", LITERAL, "User:bob", READ, ALLOW),
        (GROUP, "mine", LITERAL, "User:bob", READ, ALLOW),
    ];
    assert_eq!(create_acls(&mut admin, &acls).await, [(0, None), (0, None)]);
    let mut bob = login(&b, "bob").await;

    // FindCoordinator: before v4 the whole answer, with the error's message; v4+ per key.
    let mut fc = FindCoordinatorRequest::default();
    fc.key = s("theirs");
    let r: FindCoordinatorResponse = bob.request(ApiKey::FindCoordinator, 3, &fc).await;
    assert_eq!(
        (r.error_code, r.error_message.as_deref(), r.node_id.0),
        (30, Some("Group authorization failed."), -1)
    );
    let mut fc = FindCoordinatorRequest::default();
    fc.coordinator_keys = vec![s("mine"), s("theirs")];
    let r: FindCoordinatorResponse = bob.request(ApiKey::FindCoordinator, 4, &fc).await;
    let codes: Vec<i16> = r.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(codes, [0, 30], "READ implies DESCRIBE on mine");

    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(s("theirs"));
    join.session_timeout_ms = 10_000;
    join.rebalance_timeout_ms = 10_000;
    join.protocol_type = s("consumer");
    let r: JoinGroupResponse = bob.request(ApiKey::JoinGroup, 9, &join).await;
    assert_eq!((r.error_code, r.generation_id), (30, -1));

    // OffsetCommit: the group first, then each topic.
    let commit = |group: &str, topic: &str| {
        let mut req = OffsetCommitRequest::default();
        req.group_id = GroupId(s(group));
        req.generation_id_or_member_epoch = -1;
        let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = TopicName(s(topic));
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
        p.committed_offset = 1;
        t.partitions.push(p);
        req.topics.push(t);
        req
    };
    for (group, topic, want) in [("theirs", "t", 30), ("mine", "nope", 29), ("mine", "t", 0)] {
        let r: OffsetCommitResponse = bob
            .request(ApiKey::OffsetCommit, 8, &commit(group, topic))
            .await;
        assert_eq!(
            r.topics[0].partitions[0].error_code, want,
            "{group}/{topic}"
        );
    }
    // OffsetFetch v8: per group.
    let mut of = OffsetFetchRequest::default();
    for g in ["mine", "theirs"] {
        let mut rg = offset_fetch_request::OffsetFetchRequestGroup::default();
        rg.group_id = GroupId(s(g));
        rg.topics = None;
        of.groups.push(rg);
    }
    let r: OffsetFetchResponse = bob.request(ApiKey::OffsetFetch, 8, &of).await;
    let got: Vec<(i16, Vec<i64>)> = r
        .groups
        .iter()
        .map(|g| {
            let offsets = g.topics.iter().flat_map(|t| &t.partitions);
            (g.error_code, offsets.map(|p| p.committed_offset).collect())
        })
        .collect();
    assert_eq!(got, [(0, vec![1]), (30, vec![])]);

    // ListGroups shows only what bob may describe; DescribeGroups refuses the rest.
    let r: ListGroupsResponse = admin
        .request(ApiKey::ListGroups, 5, &ListGroupsRequest::default())
        .await;
    assert_eq!(r.groups.len(), 1, "the committed group exists");
    let r: ListGroupsResponse = bob
        .request(ApiKey::ListGroups, 5, &ListGroupsRequest::default())
        .await;
    let ids: Vec<&str> = r.groups.iter().map(|g| g.group_id.as_str()).collect();
    assert_eq!(ids, ["mine"]);
    let mut dg = DescribeGroupsRequest::default();
    dg.groups = vec![GroupId(s("mine")), GroupId(s("theirs"))];
    dg.include_authorized_operations = true;
    let r: DescribeGroupsResponse = bob.request(ApiKey::DescribeGroups, 5, &dg).await;
    let got: Vec<(&str, i16, i32)> = r
        .groups
        .iter()
        .map(|g| (g.group_id.as_str(), g.error_code, g.authorized_operations))
        .collect();
    // Refused groups first, as Kafka; bob has READ (and so DESCRIBE) on his group.
    assert_eq!(
        got,
        [
            ("theirs", 30, i32::MIN),
            ("mine", 0, (1 << READ) | (1 << DESCRIBE))
        ]
    );
    let mut dg = DeleteGroupsRequest::default();
    dg.groups_names = vec![GroupId(s("mine"))];
    let r: DeleteGroupsResponse = bob.request(ApiKey::DeleteGroups, 2, &dg).await;
    assert_eq!(r.results[0].error_code, 30, "READ does not allow DELETE");
    b.stop().await;
}

#[tokio::test]
async fn allow_everyone_if_no_acl_found_opens_only_resources_without_acls() {
    let b = TestBroker::start(&settings(&[("allow.everyone.if.no.acl.found", "true")])).await;
    let mut admin = login(&b, "admin").await;
    for t in ["open", "guarded"] {
        assert_eq!(create_topic(&mut admin, t).await, 0);
    }
    let acl = [(TOPIC, "guarded", LITERAL, "User:alice", WRITE, ALLOW)];
    assert_eq!(create_acls(&mut admin, &acl).await, [(0, None)]);
    let mut bob = login(&b, "bob").await;
    assert_eq!(produce(&mut bob, "open").await, 0, "no ACL: allowed");
    assert_eq!(
        produce(&mut bob, "guarded").await,
        29,
        "an ACL for someone else"
    );
    b.stop().await;
}

#[tokio::test]
async fn acls_survive_a_restart_and_unknown_codes_close_the_connection() {
    let b = secured().await;
    let mut admin = login(&b, "admin").await;
    let acls = [
        (TOPIC, "t", LITERAL, "User:alice", READ, ALLOW),
        (
            CLUSTER,
            "kafka-cluster",
            LITERAL,
            "User:bob",
            DESCRIBE,
            DENY,
        ),
        (GROUP, "g-", PREFIXED, "User:*", READ, ALLOW),
    ];
    assert_eq!(
        create_acls(&mut admin, &acls).await,
        [(0, None), (0, None), (0, None)]
    );
    let before = all_acls(&mut admin).await;
    assert_eq!(before.len(), 3);
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, &settings(&[])).await;
    let mut admin = login(&b, "admin").await;
    assert_eq!(all_acls(&mut admin).await, before);

    // An UNKNOWN (0) operation cannot be parsed: Kafka closes the connection.
    let mut req = CreateAclsRequest::default();
    req.creations = vec![creation((TOPIC, "t", LITERAL, "User:a", 0, ALLOW))];
    let (_, frame) = admin.frame(ApiKey::CreateAcls, 3, &req);
    admin.send_raw(&frame).await;
    assert!(admin.read_frame().await.is_none());
    // Bad principals and cluster names get Kafka's INVALID_REQUEST.
    let mut admin = login(&b, "admin").await;
    let r = create_acls(
        &mut admin,
        &[
            (TOPIC, "t", LITERAL, "alice", READ, ALLOW),
            (CLUSTER, "other", LITERAL, "User:a", DESCRIBE, ALLOW),
        ],
    )
    .await;
    assert_eq!(r.iter().map(|r| r.0).collect::<Vec<_>>(), [42, 42]);
    assert_eq!(all_acls(&mut admin).await, before, "nothing else stored");
    b.stop().await;
}

/// A principal refused ALTER on a topic learns nothing about it from CreatePartitions: as Kafka,
/// refused topics are answered TOPIC_AUTHORIZATION_FAILED and left out of the request's
/// partition count (it was counted, so a count past the limit told an existing topic's size).
#[tokio::test]
async fn create_partitions_tells_nothing_about_a_refused_topic() {
    let b = secured().await;
    let mut admin = login(&b, "admin").await;
    assert_eq!(create_topic(&mut admin, "hidden").await, 0);
    let mut alice = login(&b, "alice").await;
    for name in ["hidden", "absent"] {
        let mut t = create_partitions_request::CreatePartitionsTopic::default();
        t.name = TopicName(s(name));
        t.count = 10_001;
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        req.validate_only = true;
        req.timeout_ms = 5_000;
        let r: CreatePartitionsResponse = alice.request(ApiKey::CreatePartitions, 3, &req).await;
        assert_eq!(r.results[0].error_code, 29, "{name}");
    }
    b.stop().await;
}

/// A fetch that names a replica id is a follower's: Kafka asks CLUSTER_ACTION on the cluster for
/// it instead of READ on the topics, so READ alone does not make a principal a follower.
#[tokio::test]
async fn a_follower_fetch_needs_cluster_action() {
    let b = secured().await;
    let mut admin = login(&b, "admin").await;
    assert_eq!(create_topic(&mut admin, "t").await, 0);
    let acl = [(TOPIC, "t", LITERAL, "User:alice", READ, ALLOW)];
    assert_eq!(create_acls(&mut admin, &acl).await, [(0, None)]);
    let mut alice = login(&b, "alice").await;
    for (replica, want) in [(-1, 0), (1, 29)] {
        let mut req = common::fetch_req("t", 0, 0, 0, 0);
        req.replica_id = BrokerId(replica);
        let r: FetchResponse = alice.request(ApiKey::Fetch, 12, &req).await;
        assert_eq!(
            r.responses[0].partitions[0].error_code, want,
            "replica {replica}"
        );
    }
    let acl = [(CLUSTER, "kafka-cluster", LITERAL, "User:alice", 9, ALLOW)];
    assert_eq!(create_acls(&mut admin, &acl).await, [(0, None)]);
    let mut req = common::fetch_req("t", 0, 0, 0, 0);
    req.replica_id = BrokerId(1);
    let r: FetchResponse = alice.request(ApiKey::Fetch, 12, &req).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code, 0,
        "with CLUSTER_ACTION"
    );
    b.stop().await;
}

/// A produce carrying a transactional batch needs WRITE on its transactional id, whichever
/// batch it is: every partition is answered TRANSACTIONAL_ID_AUTHORIZATION_FAILED, nothing is
/// appended.
#[tokio::test]
async fn a_transactional_produce_needs_write_on_its_transactional_id() {
    let b = secured().await;
    let mut admin = login(&b, "admin").await;
    assert_eq!(create_topic(&mut admin, "t").await, 0);
    let acl = [(TOPIC, "t", LITERAL, "User:alice", WRITE, ALLOW)];
    assert_eq!(create_acls(&mut admin, &acl).await, [(0, None)]);
    let mut alice = login(&b, "alice").await;
    let mut second = batch(&[b"tx"], None).to_vec();
    second[22] |= 0x10;
    let records = [batch(&[b"plain"], None).to_vec(), second].concat();
    let mut req = produce_req("t", 0, Bytes::from(records), 1);
    req.transactional_id = Some(TransactionalId(s("tx")));
    let r: ProduceResponse = alice.request(ApiKey::Produce, 9, &req).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 53);
    assert!(common::read_all(&mut admin, "t", 0).await.is_empty());
    b.stop().await;
}

/// CreateTopics needs CREATE on the cluster or on each topic; as Kafka's controller, the refused
/// topics are answered after the created ones, with its message.
#[tokio::test]
async fn create_topics_needs_create_and_answers_refusals_last() {
    let b = secured().await;
    let mut admin = login(&b, "admin").await;
    let acl = [(TOPIC, "mine", LITERAL, "User:alice", 5, ALLOW)];
    assert_eq!(create_acls(&mut admin, &acl).await, [(0, None)]);
    let mut alice = login(&b, "alice").await;
    let mut req = common::create_req("theirs", 1);
    req.topics.extend(common::create_req("mine", 1).topics);
    let r: CreateTopicsResponse = alice.request(ApiKey::CreateTopics, 7, &req).await;
    let got: Vec<(&str, i16, Option<&str>)> = r
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.error_code, t.error_message.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("mine", 0, None),
            ("theirs", 29, Some("Authorization failed."))
        ]
    );
    assert_eq!(visible_topics(&mut admin).await, ["mine"]);
    b.stop().await;
}

/// OffsetFetch of a group the principal may not describe, at each shape Kafka answers it in:
/// v1 per partition, v2–v7 at the top, v8+ per group.
#[tokio::test]
async fn offset_fetch_refusals_at_every_version() {
    let b = secured().await;
    let mut alice = login(&b, "alice").await;
    for v in 1..=9 {
        let mut req = OffsetFetchRequest::default();
        if v < 8 {
            req.group_id = GroupId(s("theirs"));
            let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
            t.name = TopicName(s("t"));
            t.partition_indexes = vec![0, 1];
            req.topics = Some(vec![t]);
        } else {
            let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
            g.group_id = GroupId(s("theirs"));
            g.topics = None;
            req.groups = vec![g];
        }
        let r: OffsetFetchResponse = alice.request(ApiKey::OffsetFetch, v, &req).await;
        let got = match v {
            1 => r.topics[0]
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code, p.committed_offset))
                .collect::<Vec<_>>(),
            2..=7 => {
                assert!(r.topics.is_empty(), "v{v}");
                vec![(-1, r.error_code, -1)]
            }
            _ => vec![(-1, r.groups[0].error_code, -1)],
        };
        let want = if v == 1 {
            vec![(0, 30, -1), (1, 30, -1)]
        } else {
            vec![(-1, 30, -1)]
        };
        assert_eq!(got, want, "v{v}");
    }
    b.stop().await;
}
