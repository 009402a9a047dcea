//! Clients doing legal things at scale (issue 16): each attack must cost the broker bounded work and
//! memory and leave other clients unharmed. The time bounds below are not performance targets:
//! each is two orders of magnitude above what the work takes, and far below what the quadratic
//! or unbounded version took.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;

fn fetch_partition(p: i32, offset: i64) -> FetchPartition {
    let mut fp = FetchPartition::default();
    fp.partition = p;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = 1 << 20;
    fp
}

fn session_fetch(
    topic: &str,
    partitions: Vec<FetchPartition>,
    id: i32,
    epoch: i32,
) -> FetchRequest {
    let mut t = FetchTopic::default();
    t.topic = name(topic);
    t.partitions = partitions;
    let mut req = FetchRequest::default();
    req.max_wait_ms = 0;
    req.min_bytes = 0;
    req.max_bytes = 50 << 20;
    req.session_id = id;
    req.session_epoch = epoch;
    req.topics = vec![t];
    req
}

/// Item 6: a Fetch naming one partition 120,000 times is one partition (Kafka reads the request
/// into a map), answered once, and costs no more than naming it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_named_many_times_in_one_fetch_is_read_once() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "dup", 1).await;
    assert_eq!(produce(&mut c, "dup", 0, batch(&[b"v"], None)).await.0, 0);
    let parts = (0..120_000).map(|_| fetch_partition(0, 0)).collect();
    let req = session_fetch("dup", parts, 0, -1);
    let started = Instant::now();
    let r: FetchResponse = c.request(ApiKey::Fetch, 12, &req).await;
    assert_eq!(r.responses.len(), 1);
    assert_eq!(r.responses[0].partitions.len(), 1, "answered once");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // Produce to it is not held up either.
    let started = Instant::now();
    assert_eq!(produce(&mut c, "dup", 0, batch(&[b"w"], None)).await.0, 0);
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// Item 6: an incremental session growing by 100,000 partitions is linear work under that
/// session's own lock: another client's sessions go on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_incremental_session_is_linear_and_blocks_no_one_else() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "big", 1).await;
    let r: FetchResponse = c
        .request(
            ApiKey::Fetch,
            12,
            &session_fetch("big", vec![fetch_partition(0, 0)], 0, 0),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let id = r.session_id;
    assert!(id > 0);
    // Partitions that do not exist are legal to name (answered UNKNOWN_TOPIC_OR_PARTITION).
    let parts: Vec<_> = (1..100_000).map(|p| fetch_partition(p, 0)).collect();
    let big = session_fetch("big", parts, id, 1);
    let addr = b.addr;
    let attacker = tokio::spawn(async move {
        let mut a = Client::connect(addr).await;
        let started = Instant::now();
        let r: FetchResponse = a.request(ApiKey::Fetch, 12, &big).await;
        (r.error_code, started.elapsed())
    });
    // Meanwhile another consumer opens and uses its own session.
    let mut other = b.client().await;
    for _ in 0..20 {
        let started = Instant::now();
        let r: FetchResponse = other
            .request(
                ApiKey::Fetch,
                12,
                &session_fetch("big", vec![fetch_partition(0, 0)], 0, -1),
            )
            .await;
        assert_eq!(r.error_code, 0);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "another client's fetch waited {:?}",
            started.elapsed()
        );
    }
    let (code, took) = attacker.await.unwrap();
    assert_eq!(code, 0);
    assert!(
        took < Duration::from_secs(10),
        "100,000-partition session update took {took:?}"
    );
}

/// Item 6: session ids are random, so a client cannot close (epoch -1) a session it did not open
/// by guessing the next id.
#[tokio::test]
async fn session_ids_are_not_sequential() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "ids", 1).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r: FetchResponse = c
            .request(
                ApiKey::Fetch,
                12,
                &session_fetch("ids", vec![fetch_partition(0, 0)], 0, 0),
            )
            .await;
        assert_eq!(r.error_code, 0);
        ids.push(r.session_id);
    }
    assert!(
        ids.windows(2).any(|w| (w[1] - w[0]).abs() > 1000),
        "sequential session ids: {ids:?}"
    );
}

/// A client that disconnects in the middle of a long poll frees its connection slot at once (its
/// parked fetch is abandoned), not when its `max_wait_ms` runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_abandoned_by_its_client_frees_the_connection_slot() {
    let b = TestBroker::start(&[("max.connections.per.ip", "3")]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "lp", 1).await;
    drop(c);
    for _ in 0..3 {
        let mut fc = Client::connect(b.addr).await;
        let (_, f) = fc.frame(
            ApiKey::Fetch,
            12,
            &fetch_req("lp", 0, 0, i32::MAX, i32::MAX),
        );
        fc.send_raw(&f).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(fc);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut c = Client::connect(b.addr).await;
    let (_, f) = c.frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    c.send_raw(&f).await;
    assert!(
        matches!(c.try_read_frame(2000).await, Some(Some(_))),
        "three abandoned long polls still hold every per-ip slot"
    );
}

/// A long poll on a topic deleted while it waits is answered at once with
/// UNKNOWN_TOPIC_OR_PARTITION (as Kafka completes delayed fetches of stopped partitions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_on_a_deleted_topic_is_answered_at_once() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "gone", 1).await;
    assert_eq!(produce(&mut c, "gone", 0, batch(&[b"a"], None)).await.0, 0);
    let mut fc = b.client().await;
    let started = Instant::now();
    let waiter = tokio::spawn(async move {
        let r: FetchResponse = fc
            .request(ApiKey::Fetch, 12, &fetch_req("gone", 0, 1, 30_000, 1))
            .await;
        (r.responses[0].partitions[0].error_code, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![name("gone")];
    req.timeout_ms = 5000;
    let r: DeleteTopicsResponse = c.request(ApiKey::DeleteTopics, 5, &req).await;
    assert_eq!(r.responses[0].error_code, 0);
    let (error, took) = waiter.await.unwrap();
    assert_eq!(error, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
}

fn join_group(group: &str, member: &str, session_timeout_ms: i32) -> JoinGroupRequest {
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(kafka_protocol::protocol::StrBytes::from_string(
        group.to_string(),
    ));
    req.member_id = kafka_protocol::protocol::StrBytes::from_string(member.to_string());
    req.session_timeout_ms = session_timeout_ms;
    req.rebalance_timeout_ms = 10_000;
    req.protocol_type = kafka_protocol::protocol::StrBytes::from_static_str("consumer");
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = kafka_protocol::protocol::StrBytes::from_static_str("range");
    p.metadata = bytes::Bytes::from_static(b"\0\0\0\0\0\0\0\0");
    req.protocols = vec![p];
    req
}

async fn listed_groups(c: &mut Client) -> Vec<String> {
    let r: ListGroupsResponse = c
        .request(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    r.groups.iter().map(|g| g.group_id.0.to_string()).collect()
}

fn commit_req(group: &str, topic: &str, offset: i64) -> OffsetCommitRequest {
    let mut part = offset_commit_request::OffsetCommitRequestPartition::default();
    part.committed_offset = offset;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = name(topic);
    t.partitions = vec![part];
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(kafka_protocol::protocol::StrBytes::from_string(
        group.to_string(),
    ));
    req.generation_id_or_member_epoch = -1;
    req.topics = vec![t];
    req
}

/// Item 4: a group id longer than Kafka can store (32,767 bytes) is refused: it can no longer
/// wrap the meta store's 16-bit length and be read back after a restart as another group's
/// offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_group_id_cannot_forge_another_groups_offset() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "t", 1).await;
    let r: OffsetCommitResponse = c
        .request(ApiKey::OffsetCommit, 8, &commit_req("victim", "t", 42))
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    // "victim" followed by bytes that, after a 16-bit wrap of the length (65,542 → 6), read as
    // topic "t" partition 0 of group "victim".
    let mut forged = String::from("victim");
    forged.push_str("\0\u{1}t\0\0\0\0");
    while forged.len() < 65_542 {
        forged.push('x');
    }
    let r: OffsetCommitResponse = c
        .request(ApiKey::OffsetCommit, 8, &commit_req(&forged, "t", 999_999))
        .await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        kafka_protocol::ResponseError::InvalidGroupId.code()
    );
    let r: JoinGroupResponse = c
        .request(ApiKey::JoinGroup, 9, &join_group(&forged, "", 30_000))
        .await;
    assert_eq!(
        r.error_code,
        kafka_protocol::ResponseError::InvalidGroupId.code()
    );
    drop(c);
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, &[]).await;
    let mut c = b.client().await;
    let mut fetch = OffsetFetchRequest::default();
    fetch.group_id = GroupId(kafka_protocol::protocol::StrBytes::from_static_str(
        "victim",
    ));
    fetch.topics = None;
    let r: OffsetFetchResponse = c.request(ApiKey::OffsetFetch, 7, &fetch).await;
    let offsets: Vec<i64> = r
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.committed_offset))
        .collect();
    assert_eq!(offsets, vec![42], "the victim's offset after a restart");
}

/// Item 5: refused joins create no group, and a group left empty with no offsets is removed at
/// the retention check, as Kafka does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_joins_and_empty_groups_leave_nothing_behind() {
    let b = TestBroker::start(&[("offsets.retention.check.interval.ms", "200")]).await;
    let mut c = b.client().await;
    let long = "g".repeat(30_000);
    for i in 0..200 {
        let r: JoinGroupResponse = c
            .request(
                ApiKey::JoinGroup,
                9,
                &join_group(&format!("{long}{i}"), "", 1),
            )
            .await;
        assert_eq!(
            r.error_code,
            kafka_protocol::ResponseError::InvalidSessionTimeout.code()
        );
    }
    // A member id for a group that does not exist: UNKNOWN_MEMBER_ID, nothing created.
    let r: JoinGroupResponse = c
        .request(ApiKey::JoinGroup, 9, &join_group("ghost", "m-1", 30_000))
        .await;
    assert_eq!(
        r.error_code,
        kafka_protocol::ResponseError::UnknownMemberId.code()
    );
    assert_eq!(listed_groups(&mut c).await, Vec::<String>::new());
    // Join (v9: member id required first, then the real join) and leave.
    let r: JoinGroupResponse = c
        .request(ApiKey::JoinGroup, 9, &join_group("brief", "", 30_000))
        .await;
    assert_eq!(
        r.error_code,
        kafka_protocol::ResponseError::MemberIdRequired.code()
    );
    let member = r.member_id.to_string();
    let r: JoinGroupResponse = c
        .request(ApiKey::JoinGroup, 9, &join_group("brief", &member, 30_000))
        .await;
    assert_eq!(r.error_code, 0);
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(kafka_protocol::protocol::StrBytes::from_static_str("brief"));
    let mut m = leave_group_request::MemberIdentity::default();
    m.member_id = kafka_protocol::protocol::StrBytes::from_string(member);
    leave.members = vec![m];
    let r: LeaveGroupResponse = c.request(ApiKey::LeaveGroup, 5, &leave).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(listed_groups(&mut c).await, vec!["brief".to_string()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listed_groups(&mut c).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the empty group was never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Item 3: a Metadata request naming one topic 20,000 times describes it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_named_many_times_in_metadata_is_described_once() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "m", 100).await;
    let mut req = MetadataRequest::default();
    req.topics = Some(
        (0..20_000)
            .map(|_| {
                let mut t = metadata_request::MetadataRequestTopic::default();
                t.name = Some(name("m"));
                t
            })
            .collect(),
    );
    let r: MetadataResponse = c.request(ApiKey::Metadata, 12, &req).await;
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].partitions.len(), 100);
}

/// Item 3, DescribeConfigs: a topic named 20,000 times (a 140 KB request) is described once,
/// not into an answer of 20,000 copies of its configs with their documentation. Kafka's admin
/// client cannot send a resource twice (it keys them by resource).
#[tokio::test]
async fn a_resource_named_many_times_in_describe_configs_is_described_once() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "d", 1).await;
    let mut req = DescribeConfigsRequest::default();
    req.include_documentation = true;
    req.resources = (0..20_000)
        .map(|_| {
            let mut r = describe_configs_request::DescribeConfigsResource::default();
            r.resource_type = 2;
            r.resource_name = kafka_protocol::protocol::StrBytes::from_static_str("d");
            r.configuration_keys = None;
            r
        })
        .collect();
    let r: DescribeConfigsResponse = c.request(ApiKey::DescribeConfigs, 4, &req).await;
    assert_eq!(r.results.len(), 1);
    assert!(r.results[0].configs.len() > 20, "the topic's configs");
}

/// Item 8: a batch of 50,000 keyless records to a compacted topic is refused with at most
/// 1,000 record errors (Kafka lists one per record: an answer as large as the records), the
/// message counting them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_errors_in_a_produce_answer_are_bounded() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let r = create_with(&mut c, "compacted", &[("cleanup.policy", "compact")]).await;
    assert_eq!(r.topics[0].error_code, 0);
    let keyless: Vec<common::store::KeyValue<'_>> =
        (0..50_000).map(|_| (None, Some(&b"v"[..]))).collect();
    let records = common::store::keyed_batch(
        &keyless,
        1_000,
        None,
        kafka_protocol::records::Compression::None,
    );
    let resp: ProduceResponse = c
        .request(
            ApiKey::Produce,
            9,
            &produce_req("compacted", 0, records, -1),
        )
        .await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(
        p.error_code,
        kafka_protocol::ResponseError::InvalidRecord.code()
    );
    assert_eq!(p.record_errors.len(), 1000);
    let message = p.error_message.as_ref().unwrap().to_string();
    assert!(
        message.contains("50000 record errors in total"),
        "{message}"
    );
}

/// Everything logged by this test binary (installed once, for the log-flooding test).
static LOGGED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGGED.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Item 12: a client retrying what gets its connection closed (here Produce v2, removed in Kafka
/// 4.0, with acks=0) is logged once and counted, not once per try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_retrying_a_refused_request_does_not_flood_the_log() {
    let _ = tracing_subscriber::fmt()
        .with_writer(|| Capture)
        .with_ansi(false)
        .try_init();
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "old", 1).await;
    for _ in 0..300 {
        let mut old = Client::connect(b.addr).await;
        // Produce v2 is v3 without the transactional id (encoded as a v3 frame, then cut).
        let (_, v3) = old.frame(
            ApiKey::Produce,
            3,
            &produce_req("old", 0, batch(&[b"v"], None), 0),
        );
        let body_at = 4 + 2 + 2 + 4 + 2 + CLIENT_ID.len();
        let mut frame = v3.to_vec();
        frame[6..8].copy_from_slice(&2i16.to_be_bytes());
        assert_eq!(
            &frame[body_at..body_at + 2],
            &[0xff, 0xff],
            "null transactional id"
        );
        frame.drain(body_at..body_at + 2);
        let len = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        old.send_raw(&frame).await;
        assert!(old.closed_by_broker().await);
    }
    let logged = String::from_utf8_lossy(&LOGGED.lock().unwrap()).to_string();
    let lines = |needle: &str| logged.lines().filter(|l| l.contains(needle)).count();
    assert!(lines("Produce v2") <= 2, "{} lines", lines("Produce v2"));
    assert!(
        lines("closing connection") <= 2,
        "{} lines",
        lines("closing connection")
    );
}

/// Item 10: a fetch asking for 2 GiB gets at most the broker's `fetch.max.bytes`, as in Kafka
/// (so its answer is sent from the page cache, never buffered whole in memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_max_bytes_caps_what_a_client_asks_for() {
    let b = TestBroker::start(&[("fetch.max.bytes", "1048576")]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "big", 1).await;
    let value = vec![b'x'; 400_000];
    for _ in 0..6 {
        assert_eq!(produce(&mut c, "big", 0, batch(&[&value], None)).await.0, 0);
    }
    let mut req = fetch_req("big", 0, 0, 0, 0);
    req.max_bytes = i32::MAX;
    req.topics[0].partitions[0].partition_max_bytes = i32::MAX;
    let r: FetchResponse = c.request(ApiKey::Fetch, 12, &req).await;
    let records = r.responses[0].partitions[0].records.as_ref().unwrap();
    assert!(
        !records.is_empty() && records.len() <= 1_048_576,
        "{} bytes answered",
        records.len()
    );
}

/// Item 2: a client that sends requests but never reads the answers. Once its socket is full, the
/// broker reads no more of its requests than `READ_AHEAD_BYTES` (it held every pipelined frame:
/// 8 here, 24 MB), and closes it after `connections.max.idle.ms` without a byte taken (it held
/// them for as long as the client stayed connected). Others are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_holds_one_request_and_only_for_the_idle_time() {
    let b = TestBroker::start(&[("connections.max.idle.ms", "2000")]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "big", 1).await;
    create_topic(&mut c, "sink", 1).await;
    let value = vec![7u8; 900_000];
    for _ in 0..40 {
        assert_eq!(produce(&mut c, "big", 0, batch(&[&value], None)).await.0, 0);
    }
    let mut silent = b.client().await;
    // Three fetches of 30 MB answers fill the socket's buffers; six 4 MB produces follow.
    for _ in 0..3 {
        let mut req = fetch_req("big", 0, 0, 0, 0);
        req.topics[0].partitions[0].partition_max_bytes = 30 << 20;
        let (_, frame) = silent.frame(ApiKey::Fetch, 12, &req);
        silent.send_raw(&frame).await;
    }
    let chunk = vec![1u8; 4 << 20];
    let frames: Vec<_> = (0..6)
        .map(|_| {
            silent
                .frame(
                    ApiKey::Produce,
                    9,
                    &produce_req("sink", 0, batch(&[&chunk], None), 1),
                )
                .1
        })
        .collect();
    // Sent from a task: once the broker stops reading them, the writes block (and fail once it
    // closes the connection).
    let mut stream = silent.stream;
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for f in frames {
            if stream.write_all(&f).await.is_err() {
                break;
            }
        }
        stream
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let held = b.broker.request_memory.in_use();
    assert!(
        held < 1 << 20,
        "{held} bytes of requests held for a client that reads nothing"
    );
    // Others are served meanwhile.
    let started = Instant::now();
    assert_eq!(produce(&mut c, "sink", 0, batch(&[b"ok"], None)).await.0, 0);
    assert!(started.elapsed() < Duration::from_secs(1));
    // No byte taken for connections.max.idle.ms: closed, and everything it held given back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.broker.request_memory.in_use() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        b.broker.request_memory.in_use(),
        0,
        "still held after the idle time"
    );
    let stream = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the writes never ended: the connection was not closed")
        .unwrap();
    let mut silent = Client::from_stream(stream);
    assert!(silent.closed_by_broker().await);
}

/// Item 1: connections that announce 100 MB requests and send nothing (or a byte now and then)
/// took the whole of `queued.max.request.bytes`, and every other client waited behind them (a
/// 100-record round trip read back 0 in 20 s). Small requests now have a share of the budget
/// no large one can take, and an announced request must arrive within
/// `gregor.request.receive.timeout.ms` or its connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_announced_and_never_sent_block_no_one_and_are_dropped() {
    let b = TestBroker::start(&[("gregor.request.receive.timeout.ms", "3000")]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "normal", 1).await;
    let announced = (100i32 << 20).to_be_bytes();
    let mut loris = Vec::new();
    for _ in 0..11 {
        let mut s = b.client().await;
        s.send_raw(&announced).await;
        loris.push(s);
    }
    // One more sends a byte every 200 ms (each byte restarted the idle timer).
    let mut trickler = b.client().await;
    trickler.send_raw(&announced).await;
    let trickling = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while trickler.stream.write_all(&[0]).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        b.broker.request_memory.in_use() >= 400 << 20,
        "the announced requests hold their budget"
    );
    let started = Instant::now();
    let values: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("record-{i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    assert_eq!(
        produce(&mut c, "normal", 0, batch(&refs, None)).await,
        (0, 0)
    );
    let got = read_all(&mut c, "normal", 0).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a normal round trip took {:?}",
        started.elapsed()
    );
    assert_eq!(
        got,
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i as i64, v))
            .collect::<Vec<_>>()
    );
    // The announced requests never arrive: their connections are closed, their budget given back.
    for s in &mut loris {
        assert!(s.closed_by_broker().await);
    }
    tokio::time::timeout(Duration::from_secs(5), trickling)
        .await
        .expect("the trickling connection was not closed")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.broker.request_memory.in_use() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.broker.request_memory.in_use(), 0);
}

/// Item 7: one 2 KB zstd batch inflating past the per-batch limit (64 MiB), listed for 100
/// partitions in one 200 KB produce, cost 100 decompressions of 64 MiB (13–15 s of CPU). A
/// request's batches now share one budget (64 times its size, at least 64 MiB): the first bomb
/// uses it, the rest are refused without being inflated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bombs_in_one_request_share_one_budget() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "bombs", 100).await;
    let zeros = vec![0u8; 65 << 20];
    let bomb = store::keyed_batch(
        &[(None, Some(&zeros))],
        gregor::log::now_ms(),
        None,
        kafka_protocol::records::Compression::Zstd,
    );
    assert!(bomb.len() < 16 << 10, "{} bytes", bomb.len());
    let mut t = TopicProduceData::default();
    t.name = name("bombs");
    t.partition_data = (0..100)
        .map(|p| {
            let mut d = PartitionProduceData::default();
            d.index = p;
            d.records = Some(bomb.clone());
            d
        })
        .collect();
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 60_000;
    req.topic_data = vec![t];
    let started = Instant::now();
    let r: ProduceResponse = c.request(ApiKey::Produce, 9, &req).await;
    let took = started.elapsed();
    let parts = &r.responses[0].partition_responses;
    assert_eq!(parts.len(), 100);
    assert!(parts.iter().all(|p| p.error_code == 87), "INVALID_RECORD");
    let by_budget = parts
        .iter()
        .filter(|p| {
            p.error_message
                .as_deref()
                .is_some_and(|m| m.contains("decompress to more than it may"))
        })
        .count();
    // (The first may be refused by either limit: they are within a few bytes of each other.)
    assert!(
        by_budget >= 99,
        "{by_budget}: the others must be refused by the request's budget"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // A normal compressed produce still works.
    let ok = store::keyed_batch(
        &[(Some(b"k"), Some(b"v"))],
        gregor::log::now_ms(),
        None,
        kafka_protocol::records::Compression::Zstd,
    );
    assert_eq!(produce(&mut c, "bombs", 0, ok).await, (0, 0));
}

/// From the review: the receive deadline must not cut off a large request on a slow link that
/// keeps sending (it closed a 10 MB produce arriving at 256 KB/s after 30 s). Here the timeout is
/// 2 s and a 1 MB produce arrives steadily at about 200 KB/s: it is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_request_on_a_slow_link_that_keeps_sending_is_answered() {
    let b = TestBroker::start(&[("gregor.request.receive.timeout.ms", "2000")]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "slow", 1).await;
    let value = vec![5u8; 1_000_000];
    let (corr, frame) = c.frame(
        ApiKey::Produce,
        9,
        &produce_req("slow", 0, batch(&[&value], None), 1),
    );
    let started = Instant::now();
    for chunk in frame.chunks(20_000) {
        c.send_raw(chunk).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() > Duration::from_secs(4));
    let mut resp = c
        .read_frame()
        .await
        .expect("closed while the request was arriving");
    let r: ProduceResponse = decode_response(ApiKey::Produce, 9, corr, &mut resp);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}
