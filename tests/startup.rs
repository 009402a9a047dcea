//! The `gregor` binary's start-up contract: a stock Kafka server.properties starts it (with one
//! warning per key not honoured yet), invalid values stop it naming key and value, a newer storage
//! format is refused, and SIGTERM exits 0.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{finish, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_gregor");

fn spawn(args: &[String]) -> Child {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "broker did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stock_kafka_server_properties_starts_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = spawn(&[
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kafka-4-server.properties"
        )
        .to_string(),
        "--override".into(),
        format!("listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://:9093"),
        "--override".into(),
        format!("log.dirs={}", dir.path().display()),
        "--override".into(),
        "no.such.key=1".into(),
    ]);
    wait_for_port(port);
    send_signal(child.id(), "TERM");
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("gregor started"), "{out}");
    assert_eq!(out.matches("key=num.network.threads").count(), 1, "{out}");
    assert!(
        out.contains("unknown config key") && out.contains("key=no.such.key"),
        "{out}"
    );
    // Every stock key is a Kafka key: only the one we added is unknown.
    assert_eq!(out.matches("unknown config key").count(), 1, "{out}");
    assert!(out.contains("shutdown complete"), "{out}");
    assert!(dir.path().join("gregor.properties").exists());
}

#[test]
fn invalid_value_stops_start_up_naming_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn(&[
        "--override".into(),
        format!("log.dirs={}", dir.path().display()),
        "--override".into(),
        "message.max.bytes=lots".into(),
    ]);
    let (code, out) = finish(child);
    assert_ne!(code, 0);
    assert!(
        out.contains("message.max.bytes") && out.contains("lots"),
        "{out}"
    );
}

#[test]
fn a_newer_storage_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gregor.properties"),
        "format.version=999\ncluster.id=abc\n",
    )
    .unwrap();
    let port = free_port();
    let child = spawn(&[
        "--override".into(),
        format!("log.dirs={}", dir.path().display()),
        "--override".into(),
        format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
    ]);
    let (code, out) = finish(child);
    assert_ne!(code, 0);
    assert!(out.contains("format version 999"), "{out}");
}

/// Sends a signal with the `kill` command (no unsafe code in tests).
fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Starts the broker on `data` from a shell that first runs `limit` (a `ulimit` command), as an
/// operator's service script would; returns it once it listens, with its port.
fn spawn_limited(limit: &str, data: &std::path::Path, overrides: &[&str]) -> (Child, u16) {
    let port = free_port();
    let log_dirs = format!("log.dirs={}", data.display());
    let listeners = format!("listeners=PLAINTEXT://127.0.0.1:{port}");
    let script = format!("{limit} && exec \"$0\" \"$@\"");
    let mut args = vec!["-c", &script, BIN];
    for o in [log_dirs.as_str(), &listeners, "metrics.address=127.0.0.1:0"]
        .into_iter()
        .chain(overrides.iter().copied())
    {
        args.extend(["--override", o]);
    }
    let child = Command::new("sh")
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(port);
    (child, port)
}

/// Issue 16 item 0: under an address-space limit (`ulimit -v`, as hardened hosts and some
/// container runtimes enforce memory), a request whose array count, string or bytes length claims
/// more than the frame holds must not make the decoder ask for that much memory: it aborted the
/// whole broker (`memory allocation of 154618822584 bytes failed`) from a 4-byte Metadata body.
/// Each such frame now closes only its own connection.
#[test]
fn lying_counts_under_an_address_space_limit_close_only_their_connection() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn_limited("ulimit -v 8388608", dir.path(), &[]);
    // (api key, version, flexible header, body)
    let lies: [(i16, i16, bool, &[u8]); 4] = [
        // Metadata v1: topics array of 2^31-1 elements.
        (3, 1, false, &[0x7f, 0xff, 0xff, 0xff]),
        // Metadata v12: compact topics array of 2^32-2 elements.
        (3, 12, true, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        // CreateTopics v5: one topic whose compact name claims 4 GiB.
        (19, 5, true, &[0x02, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        // DescribeConfigs v1: resources array of 2^31-1 elements.
        (32, 1, false, &[0x7f, 0xff, 0xff, 0xff]),
    ];
    // And a lie inside a large frame: Produce v3 whose topics array claims 2^31-1 elements with
    // 100 MiB of zeros after it (reserving one element per remaining byte still asked for 10 GB).
    let mut produce = Vec::new();
    produce.extend((-1i16).to_be_bytes());
    produce.extend(1i16.to_be_bytes());
    produce.extend(1000i32.to_be_bytes());
    produce.extend(i32::MAX.to_be_bytes());
    produce.resize(100 * 1024 * 1024 - 64, 0);
    let lies = lies
        .iter()
        .copied()
        .chain([(0i16, 3i16, false, produce.as_slice())]);
    for (api, version, flexible, body) in lies {
        let mut frame = Vec::new();
        frame.extend(api.to_be_bytes());
        frame.extend(version.to_be_bytes());
        frame.extend(7i32.to_be_bytes());
        frame.extend((-1i16).to_be_bytes());
        if flexible {
            frame.push(0);
        }
        frame.extend_from_slice(body);
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(&(frame.len() as i32).to_be_bytes()).unwrap();
        s.write_all(&frame).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(
            child.try_wait().unwrap().is_none(),
            "api {api} v{version} killed the broker: {}",
            finish(child).1
        );
        assert!(rest.is_empty(), "api {api} v{version} was answered");
    }
    // The broker still answers: ApiVersions v0.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut frame = Vec::new();
    frame.extend(18i16.to_be_bytes());
    frame.extend(0i16.to_be_bytes());
    frame.extend(9i32.to_be_bytes());
    frame.extend((-1i16).to_be_bytes());
    s.write_all(&(frame.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&frame).unwrap();
    let mut head = [0u8; 8];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_exact(&mut head).unwrap();
    assert_eq!(i32::from_be_bytes(head[4..8].try_into().unwrap()), 9);
    send_signal(child.id(), "TERM");
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
}

/// Sends one request over a blocking socket and decodes its answer.
fn request<Req, Resp>(s: &mut TcpStream, api: i16, version: i16, body: &Req) -> Resp
where
    Req: kafka_protocol::protocol::Encodable,
    Resp: kafka_protocol::protocol::Decodable,
{
    use bytes::{Buf, BufMut, BytesMut};
    use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable};
    use std::io::Write;
    let key = ApiKey::try_from(api).unwrap();
    let mut header = RequestHeader::default();
    header.request_api_key = api;
    header.request_api_version = version;
    header.correlation_id = 1;
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    s.write_all(&buf).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut frame = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut frame).unwrap();
    let mut frame = bytes::Bytes::from(frame);
    ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
    let resp = Resp::decode(&mut frame, version).unwrap();
    assert_eq!(frame.remaining(), 0);
    resp
}

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

/// The value written to `topic`'s partition `p`.
fn value_of(topic: &str, p: i32) -> Vec<u8> {
    format!("{topic}/{p}").into_bytes()
}

/// Writes one record into each of `topic`'s partitions, in one request.
fn produce_to_every_partition(s: &mut TcpStream, topic: &str, partitions: i32) {
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
        .filter(|p| p.error_code != 0 || p.base_offset != 0)
        .map(|p| (p.index, p.error_code))
        .collect();
    assert_eq!(
        r.responses[0].partition_responses.len(),
        partitions as usize
    );
    assert!(errors.is_empty(), "{errors:?}");
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
            f.partition_max_bytes = 1 << 10;
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
