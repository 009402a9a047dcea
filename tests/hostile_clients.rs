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
