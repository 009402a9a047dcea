//! Descriptors: partitions and segments beyond the open-file limit are held (files opened when
//! used, the least recently used closed), and running out of descriptors fails requests, never
//! the log dir.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::finish;
use common::process::{request, send_signal, spawn_limited};
use kafka_protocol::messages::CreateTopicsResponse;

/// Issue 16 item 9: one CreateTopics could take every descriptor (a file per partition): 19,950
/// partitions left the broker unable to accept connections, 20,000 hit EMFILE and left orphan
/// directories. Segment files are now opened when used and the least recently used closed past
/// `gregor.log.open.files.max` (half the open-file limit by default): a broker limited to 1,024
/// descriptors holds, writes, reads back and restarts with 9,600 partitions. An operation adding
/// more than 9,999 partitions is refused as Kafka's controller refuses it, and so is growth past
/// `gregor.max.broker.partitions`.
#[test]
fn partitions_beyond_the_open_file_limit_are_held_and_connections_go_on() {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
    let dir = tempfile::tempdir().unwrap();
    let limits = ["gregor.max.broker.partitions=10000"];
    let (child, port) = spawn_limited("ulimit -n 1024", dir.path(), &limits);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // Creates topics in one request: the first topic's (error, message), all topics' the same.
    let mut create = |topics: &[(&str, i32)]| {
        let mut req = CreateTopicsRequest::default();
        req.topics = topics
            .iter()
            .map(|(name, partitions)| {
                let mut t = CreatableTopic::default();
                t.name = TopicName(kafka_protocol::protocol::StrBytes::from_string(
                    name.to_string(),
                ));
                t.num_partitions = *partitions;
                t.replication_factor = 1;
                t
            })
            .collect();
        req.timeout_ms = 60_000;
        let r: CreateTopicsResponse = request(&mut s, 19, 5, &req);
        let first = (r.topics[0].error_code, r.topics[0].error_message.clone());
        assert!(r
            .topics
            .iter()
            .all(|t| (t.error_code, t.error_message.clone()) == first));
        (first.0, first.1.as_deref().unwrap_or("").to_string())
    };
    let (code, msg) = create(&[("huge", 10_000)]);
    assert_eq!(code, 44, "POLICY_VIOLATION: {msg}");
    assert_eq!(msg, "Unable to perform excessively large batch operation.");
    // The limit holds for the request as a whole, as Kafka's: three topics of 3,500 partitions.
    let (code, msg) = create(&[("a", 3_500), ("b", 3_500), ("c", 3_500)]);
    assert_eq!(code, 44, "POLICY_VIOLATION: {msg}");
    assert_eq!(msg, "Unable to perform excessively large batch operation.");
    for t in ["w", "x", "y", "z"] {
        assert_eq!(create(&[(t, 2_400)]), (0, String::new()));
    }
    let (code, msg) = create(&[("over", 401)]);
    assert_eq!(code, 44, "POLICY_VIOLATION: {msg}");
    assert_eq!(msg, "401 more partitions would exceed this broker's limit of 10000 (gregor.max.broker.partitions); it holds 9600");
    assert_eq!(create(&[("fits", 300)]), (0, String::new()));
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", child.id()))
            .unwrap()
            .count()
    };
    // A record into every partition, and every one read back, over and over past the cap.
    for t in ["w", "x", "y", "z"] {
        produce_to_every_partition(&mut s, t, 2_400);
        assert!(fds() < 1024 / 2 + 64, "{} descriptors open", fds());
    }
    for t in ["w", "x", "y", "z"] {
        assert_eq!(read_every_partition(&mut s, t, 2_400), 2_400);
    }
    // Growing it by 10,001 partitions in one CreatePartitions is one record too many.
    let mut grow =
        kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic::default();
    grow.name = TopicName(kafka_protocol::protocol::StrBytes::from_static_str("fits"));
    grow.count = 10_301;
    let mut req = kafka_protocol::messages::CreatePartitionsRequest::default();
    req.topics = vec![grow];
    req.timeout_ms = 60_000;
    let r: kafka_protocol::messages::CreatePartitionsResponse = request(&mut s, 37, 1, &req);
    assert_eq!(r.results[0].error_code, 44);
    assert_eq!(
        r.results[0].error_message.as_deref(),
        Some("Unable to perform excessively large batch operation.")
    );
    let made: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            ["huge-", "a-", "b-", "c-", "over-"]
                .iter()
                .any(|t| n.starts_with(t))
        })
        .collect();
    assert!(made.is_empty(), "refused topics left directories: {made:?}");
    // Connections are still accepted and served.
    for _ in 0..50 {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _: kafka_protocol::messages::ApiVersionsResponse = request(
            &mut c,
            18,
            3,
            &kafka_protocol::messages::ApiVersionsRequest::default(),
        );
    }
    send_signal(child.id(), "TERM");
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
    // Recovery opens every segment, under the same limit.
    let (child, port) = spawn_limited("ulimit -n 1024", dir.path(), &limits);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    for t in ["w", "x", "y", "z"] {
        assert_eq!(read_every_partition(&mut s, t, 2_400), 2_400);
    }
    send_signal(child.id(), "TERM");
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
}

/// The value written to `topic`'s partition `p`: 6,000 bytes for topics named `big*` (so that a
/// fetch answers it from the file, not from memory), a few otherwise.
fn value_of(topic: &str, p: i32) -> Vec<u8> {
    let mut v = format!("{topic}/{p}").into_bytes();
    if topic.starts_with("big") {
        v.resize(6_000, b'.');
    }
    v
}

/// Writes one record into each of `topic`'s partitions, in one request.
fn produce_to_every_partition(s: &mut TcpStream, topic: &str, partitions: i32) {
    let errors = try_produce_to_every_partition(s, topic, partitions);
    assert!(errors.is_empty(), "{errors:?}");
}

/// Writes one record into each of `topic`'s partitions, in one request; the (partition, error)
/// of those that failed.
fn try_produce_to_every_partition(
    s: &mut TcpStream,
    topic: &str,
    partitions: i32,
) -> Vec<(i32, i16)> {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
    let mut t = TopicProduceData::default();
    t.name = common::name(topic);
    t.partition_data = (0..partitions)
        .map(|p| {
            let mut d = PartitionProduceData::default();
            d.index = p;
            d.records = Some(common::batch(&[&value_of(topic, p)], None));
            d
        })
        .collect();
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![t];
    let r: ProduceResponse = request(s, 0, 9, &req);
    let errors: Vec<_> = r.responses[0]
        .partition_responses
        .iter()
        .filter(|p| p.error_code != 0)
        .map(|p| (p.index, p.error_code))
        .collect();
    assert_eq!(
        r.responses[0].partition_responses.len(),
        partitions as usize
    );
    errors
}

/// Fetches every partition of `topic` from offset 0 in one request; the number of partitions
/// answering with exactly the record written to them.
fn read_every_partition(s: &mut TcpStream, topic: &str, partitions: i32) -> usize {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, FetchResponse};
    let mut t = FetchTopic::default();
    t.topic = common::name(topic);
    t.partitions = (0..partitions)
        .map(|p| {
            let mut f = FetchPartition::default();
            f.partition = p;
            f.partition_max_bytes = 8 << 10;
            f
        })
        .collect();
    let mut req = FetchRequest::default();
    req.max_bytes = 50 << 20;
    req.session_epoch = -1;
    req.topics = vec![t];
    let r: FetchResponse = request(s, 1, 4, &req);
    r.responses[0]
        .partitions
        .iter()
        .filter(|p| {
            p.error_code == 0
                && p.records.as_ref().is_some_and(|b| {
                    let recs = common::store::decode(b);
                    recs.len() == 1
                        && recs[0].2.as_deref() == Some(&value_of(topic, p.partition_index)[..])
                })
        })
        .count()
}

/// Out of descriptors (idle connections took them all), appends that must open a segment file
/// fail with KAFKA_STORAGE_ERROR, and work again once descriptors are free: failing to open a file
/// took the whole log dir offline until a restart.
#[test]
fn running_out_of_descriptors_fails_requests_not_the_log_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = spawn_limited("ulimit -n 256", dir.path(), &[]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let r: CreateTopicsResponse = request(&mut s, 19, 5, &common::create_req("t", 300));
    assert_eq!(r.topics[0].error_code, 0);
    // A topic that fsyncs every append and rolls a segment on every append after 100 ms idle:
    // flushes, new segments and sealed segments all open files and directories.
    let mut req = common::create_req("f", 100);
    for (k, v) in [("flush.messages", "1"), ("segment.ms", "100")] {
        let mut c =
            kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default();
        c.name = kafka_protocol::protocol::StrBytes::from_static_str(k);
        c.value = Some(kafka_protocol::protocol::StrBytes::from_static_str(v));
        req.topics[0].configs.push(c);
    }
    let r: CreateTopicsResponse = request(&mut s, 19, 5, &req);
    assert_eq!(r.topics[0].error_code, 0);
    produce_to_every_partition(&mut s, "t", 300);
    produce_to_every_partition(&mut s, "f", 100);
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", child.id()))
            .unwrap()
            .count()
    };
    // Idle connections until the broker has no descriptor left (the rest wait in the backlog).
    let mut idle = Vec::new();
    while fds() < 256 && idle.len() < 1000 {
        idle.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut failed = try_produce_to_every_partition(&mut s, "t", 300);
    for _ in 0..5 {
        failed.extend(try_produce_to_every_partition(&mut s, "f", 100));
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(
        failed.iter().all(|(_, e)| *e == 56),
        "only KAFKA_STORAGE_ERROR: {failed:?}"
    );
    drop(idle);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fds() > 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} descriptors still open",
            fds()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    produce_to_every_partition(&mut s, "t", 300);
    produce_to_every_partition(&mut s, "f", 100);
    send_signal(child.id(), "TERM");
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("offline"), "{out}");
    assert!(
        !failed.is_empty(),
        "nothing failed while out of descriptors: the test proves nothing"
    );
}

/// One fetch of 200 partitions answered from segment files kept every file open until sent (200
/// descriptors beyond the cache): with 128 descriptors, partitions failed with
/// KAFKA_STORAGE_ERROR. Responses now hold at most a quarter of the cache's cap; the rest of the
/// regions are read into memory.
#[test]
fn a_fetch_of_many_partitions_holds_few_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = spawn_limited("ulimit -n 128", dir.path(), &[]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let r: CreateTopicsResponse = request(&mut s, 19, 5, &common::create_req("big", 200));
    assert_eq!(r.topics[0].error_code, 0);
    produce_to_every_partition(&mut s, "big", 200);
    for _ in 0..3 {
        assert_eq!(read_every_partition(&mut s, "big", 200), 200);
    }
    send_signal(child.id(), "TERM");
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
}
