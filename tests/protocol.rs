//! End-to-end protocol behaviour over TCP against an in-process broker: version negotiation,
//! produce/fetch rules, pipelining, and every kind of bad input (which must get the right Kafka
//! error or a closed connection, never a crash or harm to others).

mod common;

use bytes::{Bytes, BytesMut};
use common::{
    batch, create_topic, fetch, fetch_req, name, produce, produce_req, rss_kib, TestBroker,
};
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

/// After a bad input, the broker still serves other connections.
async fn still_serving(b: &TestBroker) {
    let mut c = b.client().await;
    let resp: ApiVersionsResponse = c.request(ApiKey::ApiVersions, 3, &api_versions_req()).await;
    assert_eq!(resp.error_code, 0);
}

fn api_versions_req() -> ApiVersionsRequest {
    let mut r = ApiVersionsRequest::default();
    r.client_software_name = StrBytes::from_static_str("gregor-tests");
    r.client_software_version = StrBytes::from_static_str("1.0");
    r
}

#[tokio::test]
async fn api_versions_advertises_the_dispatch_table() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let resp: ApiVersionsResponse = c.request(ApiKey::ApiVersions, 3, &api_versions_req()).await;
    let produce = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .unwrap();
    assert_eq!((produce.min_version, produce.max_version), (0, 13));
    let fetch = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .unwrap();
    assert_eq!(fetch.min_version, 4);
    assert_eq!(resp.api_keys.len(), gregor::dispatch::SUPPORTED.len());
}

#[tokio::test]
async fn unsupported_api_versions_version_gets_v0_answer() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    // ApiVersions v99: header v2 layout, body unreadable to us.
    let mut frame = vec![
        0, 0, 0, 0, 0, 18, 0, 99, 0, 0, 0, 42, 0, 1, b'x', 0, 1, 2, 3,
    ];
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    c.send_raw(&frame).await;
    let mut resp = c.read_frame().await.unwrap();
    let r: ApiVersionsResponse = common::decode_response(ApiKey::ApiVersions, 0, 42, &mut resp);
    assert_eq!(r.error_code, ResponseError::UnsupportedVersion.code());
    assert!(r
        .api_keys
        .iter()
        .any(|k| k.api_key == 18 && k.max_version == 4));
}

#[tokio::test]
async fn produce_below_v3_is_refused_with_unsupported_version() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "legacy", 1).await;
    // v2 body = v3 body without transactional_id: acks, timeout, topics.
    let mut v3 = BytesMut::new();
    kafka_protocol::protocol::Encodable::encode(
        &produce_req("legacy", 0, batch(&[b"x"], None), 1),
        &mut v3,
        3,
    )
    .unwrap();
    let body = &v3[2..];
    let mut frame = BytesMut::new();
    let header = [0u8, 0, 0, 2, 0, 0, 0, 7, 0, 0];
    frame.extend_from_slice(&((header.len() + body.len()) as i32).to_be_bytes());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(body);
    c.send_raw(&frame).await;
    let resp = c.read_frame().await.unwrap();
    // correlation 7, 1 topic "legacy", 1 partition: index 0, error 35, offset -1, append time -1, throttle 0.
    let mut expected = vec![0, 0, 0, 7, 0, 0, 0, 1, 0, 6];
    expected.extend_from_slice(b"legacy");
    expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 35]);
    expected.extend_from_slice(&(-1i64).to_be_bytes());
    expected.extend_from_slice(&(-1i64).to_be_bytes());
    expected.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(&resp[..], &expected[..]);
    assert_eq!(fetch(&mut c, "legacy", 0, 0).await.high_watermark, 0);
}

#[tokio::test]
async fn produce_assigns_dense_offsets_and_fetch_serves_bytes_as_sent() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "t", 2).await;
    let first = batch(&[b"a", b"b", b"c"], None);
    assert_eq!(produce(&mut c, "t", 1, first.clone()).await, (0, 0));
    assert_eq!(produce(&mut c, "t", 1, batch(&[b"d"], None)).await, (0, 3));
    let p = fetch(&mut c, "t", 1, 0).await;
    assert_eq!(
        (
            p.error_code,
            p.high_watermark,
            p.log_start_offset,
            p.last_stable_offset
        ),
        (0, 4, 0, 4)
    );
    let records = p.records.unwrap();
    // The first stored batch is the producer's bytes except baseOffset and partitionLeaderEpoch.
    assert_eq!(&records[16..first.len()], &first[16..]);
    assert_eq!(&records[12..16], &0i32.to_be_bytes());
    let sets =
        kafka_protocol::records::RecordBatchDecoder::decode_all(&mut records.clone()).unwrap();
    let values: Vec<(i64, Bytes)> = sets
        .iter()
        .flat_map(|s| {
            s.records
                .iter()
                .map(|r| (r.offset, r.value.clone().unwrap()))
        })
        .collect();
    assert_eq!(
        values,
        vec![
            (0, "a".into()),
            (1, "b".into()),
            (2, "c".into()),
            (3, "d".into())
        ]
    );
    // Offset in the middle of the first batch: served from that batch.
    let mid = fetch(&mut c, "t", 1, 2).await.records.unwrap();
    assert_eq!(&mid[..], &records[..]);
    // At the end: empty; beyond the end: OFFSET_OUT_OF_RANGE.
    assert!(fetch(&mut c, "t", 1, 4).await.records.unwrap().is_empty());
    assert_eq!(
        fetch(&mut c, "t", 1, 5).await.error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(
        fetch(&mut c, "t", 7, 0).await.error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

#[tokio::test]
async fn large_record_sets_go_out_from_the_file_byte_exact_in_every_fetch_version() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "big", 3).await;
    let value = |i: u8| vec![i; 3000];
    // Partition 0: two batches of ~6 KB (sent from the file); partition 1: one small batch (read
    // into memory); partition 2: empty.
    let big1 = batch(&[&value(1), &value(2)], None);
    let big2 = batch(&[&value(3), &value(4)], None);
    let small = batch(&[b"tiny"], None);
    assert_eq!(produce(&mut c, "big", 0, big1.clone()).await, (0, 0));
    assert_eq!(produce(&mut c, "big", 0, big2.clone()).await, (0, 2));
    assert_eq!(produce(&mut c, "big", 1, small.clone()).await, (0, 0));
    for version in [4i16, 11, 12, 16, 18] {
        let mut req = fetch_req("big", 0, 0, 0, 0);
        for partition in [1, 2] {
            let mut p = req.topics[0].partitions[0].clone();
            p.partition = partition;
            req.topics[0].partitions.push(p);
        }
        if version >= 13 {
            let mut all = MetadataRequest::default();
            all.topics = None;
            let meta: MetadataResponse = c.request(ApiKey::Metadata, 12, &all).await;
            let id = meta
                .topics
                .iter()
                .find(|t| t.name == Some(name("big")))
                .unwrap()
                .topic_id;
            req.topics[0].topic_id = id;
        }
        let resp: FetchResponse = c.request(ApiKey::Fetch, version, &req).await;
        let parts = &resp.responses[0].partitions;
        let records: Vec<Bytes> = parts.iter().map(|p| p.records.clone().unwrap()).collect();
        assert_eq!(records[0].len(), big1.len() + big2.len(), "v{version}");
        // As stored: the producer's bytes but for baseOffset and the leader epoch.
        assert_eq!(&records[0][16..big1.len()], &big1[16..], "v{version}");
        assert_eq!(&records[0][big1.len() + 16..], &big2[16..], "v{version}");
        assert_eq!(&records[0][big1.len()..big1.len() + 8], &2i64.to_be_bytes());
        assert_eq!(&records[1][16..], &small[16..], "v{version}");
        assert!(records[2].is_empty(), "v{version}");
        assert_eq!(
            parts.iter().map(|p| p.high_watermark).collect::<Vec<_>>(),
            vec![4, 1, 0]
        );
    }
    // A budget below two batches: the first batch only, still from the file.
    let mut req = fetch_req("big", 0, 0, 0, 0);
    req.topics[0].partitions[0].partition_max_bytes = (big1.len() + 10) as i32;
    let resp: FetchResponse = c.request(ApiKey::Fetch, 12, &req).await;
    let records = resp.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(records.len(), big1.len());
    // From an offset inside the second batch: that batch.
    let mid = fetch(&mut c, "big", 0, 3).await.records.unwrap();
    assert_eq!(&mid[16..], &big2[16..]);
    still_serving(&b).await;
}

#[tokio::test]
async fn produce_errors_are_per_partition_values() {
    let b = TestBroker::start(&[("message.max.bytes", "200")]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "e", 1).await;
    let good = batch(&[b"ok"], None);
    let mut corrupt = BytesMut::from(&good[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    assert_eq!(
        produce(&mut c, "e", 0, corrupt.freeze()).await.0,
        ResponseError::CorruptMessage.code()
    );
    // A batch cut short is no whole batch at all, as Kafka's batch iterator reads it.
    assert_eq!(
        produce(&mut c, "e", 0, good.slice(..good.len() - 3))
            .await
            .0,
        ResponseError::InvalidRecord.code()
    );
    let big = batch(&[&[7u8; 500]], None);
    assert_eq!(
        produce(&mut c, "e", 0, big).await.0,
        ResponseError::MessageTooLarge.code()
    );
    let mut two = BytesMut::from(&good[..]);
    two.extend_from_slice(&good);
    let two = two.freeze();
    assert_eq!(
        produce(&mut c, "e", 0, two.clone()).await.0,
        ResponseError::InvalidRecord.code()
    );
    assert_eq!(
        produce(&mut c, "e", 0, Bytes::new()).await.0,
        ResponseError::InvalidRecord.code()
    );
    assert_eq!(
        produce(&mut c, "missing", 0, good.clone()).await.0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let resp: ProduceResponse = c
        .request(ApiKey::Produce, 9, &produce_req("e", 0, good.clone(), 2))
        .await;
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code,
        ResponseError::InvalidRequiredAcks.code()
    );
    // Refusals of Kafka's request-level rule (`ProduceRequest.validateRecords`) carry no message,
    // as Kafka's do: no batch, and more than one.
    for records in [Bytes::new(), two] {
        let resp: ProduceResponse = c
            .request(ApiKey::Produce, 9, &produce_req("e", 0, records, 1))
            .await;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(
            (p.error_code, p.error_message.as_deref()),
            (ResponseError::InvalidRecord.code(), None)
        );
    }
    // None of that touched the log: the good batch still lands at offset 0.
    assert_eq!(produce(&mut c, "e", 0, good).await, (0, 0));
}

#[tokio::test]
async fn produce_v13_names_topics_by_id() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "by-id", 2).await;
    let id = b.broker.topics.get("by-id").unwrap().id;
    let good = batch(&[b"one", b"two"], None);
    let mut req = produce_req("", 0, good.clone(), -1);
    req.topic_data[0].topic_id = id;
    req.topic_data[0].partition_data[0].index = 1;
    let mut unknown = req.topic_data[0].clone();
    unknown.topic_id = uuid::Uuid::from_u128(7);
    let mut bad_partition = req.topic_data[0].clone();
    bad_partition.partition_data[0].index = 5;
    req.topic_data.extend([unknown, bad_partition]);
    let resp: ProduceResponse = c.request(ApiKey::Produce, 13, &req).await;
    let got: Vec<(uuid::Uuid, i32, i16, i64)> = resp
        .responses
        .iter()
        .flat_map(|t| {
            t.partition_responses
                .iter()
                .map(|p| (t.topic_id, p.index, p.error_code, p.base_offset))
        })
        .collect();
    // The topic named twice is answered as one topic, as Kafka does.
    let unknown_id = ResponseError::UnknownTopicId.code();
    let unknown_partition = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(
        got,
        vec![
            (id, 1, 0, 0),
            (id, 5, unknown_partition, -1),
            (uuid::Uuid::from_u128(7), 1, unknown_id, -1),
        ]
    );
    // The two records went to by-id-1: a produce by name lands after them.
    assert_eq!(produce(&mut c, "by-id", 1, good).await, (0, 2));
}

#[tokio::test]
async fn a_partition_named_twice_in_a_produce_is_appended_once_with_its_last_records() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "dup", 2).await;
    let mut req = produce_req("dup", 0, batch(&[b"first"], None), -1);
    let again = produce_req("dup", 0, batch(&[b"second", b"third"], None), -1);
    let other = produce_req("dup", 1, batch(&[b"other"], None), -1);
    req.topic_data.extend(again.topic_data);
    req.topic_data.extend(other.topic_data);
    let resp: ProduceResponse = c.request(ApiKey::Produce, 9, &req).await;
    let got: Vec<(String, i32, i16, i64)> = resp
        .responses
        .iter()
        .flat_map(|t| {
            t.partition_responses
                .iter()
                .map(|p| (t.name.0.to_string(), p.index, p.error_code, p.base_offset))
        })
        .collect();
    assert_eq!(got, vec![("dup".into(), 0, 0, 0), ("dup".into(), 1, 0, 0)]);
    // Only the last mention's two records went in.
    assert_eq!(
        produce(&mut c, "dup", 0, batch(&[b"next"], None)).await,
        (0, 2)
    );
}

#[tokio::test]
async fn idempotent_retries_are_deduplicated_and_gaps_refused() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "idem", 1).await;
    let resp: InitProducerIdResponse = c
        .request(ApiKey::InitProducerId, 4, &{
            let mut r = InitProducerIdRequest::default();
            r.transactional_id = None;
            r.transaction_timeout_ms = 60000;
            r.producer_id = ProducerId(-1);
            r.producer_epoch = -1;
            r
        })
        .await;
    assert_eq!(resp.error_code, 0);
    let pid = resp.producer_id.0;
    let b0 = batch(&[b"a", b"b"], Some((pid, 0, 0)));
    assert_eq!(produce(&mut c, "idem", 0, b0.clone()).await, (0, 0));
    assert_eq!(
        produce(&mut c, "idem", 0, b0).await,
        (0, 0),
        "retry answered with the original offset"
    );
    assert_eq!(
        produce(&mut c, "idem", 0, batch(&[b"c"], Some((pid, 0, 5))))
            .await
            .0,
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    assert_eq!(
        produce(&mut c, "idem", 0, batch(&[b"c"], Some((pid, 0, 2)))).await,
        (0, 2)
    );
    assert_eq!(fetch(&mut c, "idem", 0, 0).await.high_watermark, 3);
    // Producer state survives a restart.
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, &[]).await;
    let mut c = b.client().await;
    assert_eq!(
        produce(&mut c, "idem", 0, batch(&[b"c"], Some((pid, 0, 2)))).await,
        (0, 2)
    );
    assert_eq!(
        produce(&mut c, "idem", 0, batch(&[b"d"], Some((pid, 0, 3)))).await,
        (0, 3)
    );
}

#[tokio::test]
async fn long_poll_fetch_is_woken_by_an_append() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "lp", 1).await;
    let mut consumer = b.client().await;
    let (corr, frame) = consumer.frame(ApiKey::Fetch, 12, &fetch_req("lp", 0, 0, 10_000, 1));
    consumer.send_raw(&frame).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    produce(&mut c, "lp", 0, batch(&[b"wake"], None)).await;
    let mut resp = consumer.read_frame().await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "fetch was not woken by the append"
    );
    let r: FetchResponse = common::decode_response(ApiKey::Fetch, 12, corr, &mut resp);
    assert_eq!(r.responses[0].partitions[0].high_watermark, 1);
    // With nothing new, max_wait_ms bounds the wait.
    let started = std::time::Instant::now();
    let r: FetchResponse = consumer
        .request(ApiKey::Fetch, 12, &fetch_req("lp", 0, 1, 300, 1))
        .await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(290));
    assert!(r.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .is_empty());
}

/// Drops `path`'s pages from the page cache (they are clean: fsynced) and tells whether a read
/// that refuses to wait for the disk is now refused, as the fetch path's first attempt is.
fn evict(path: &std::path::Path) -> bool {
    use rustix::fs::{fadvise, Advice};
    use rustix::io::{preadv2, Errno, ReadWriteFlags};
    let f = std::fs::File::open(path).unwrap();
    fadvise(&f, 0, None, Advice::DontNeed).unwrap();
    let mut buf = [0u8; 64];
    let refused = preadv2(
        &f,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        0,
        ReadWriteFlags::NOWAIT,
    );
    refused == Err(Errno::AGAIN)
}

/// A fetch's read pass first runs on the worker refusing to wait for the disk; data the page cache
/// no longer holds is then read where waiting is allowed: every byte comes back, in every size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_of_data_outside_the_page_cache_are_read_from_disk() {
    let b = TestBroker::start(&[("log.flush.interval.messages", "1")]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "cold", 1).await;
    let small: Vec<u8> = b"tiny".to_vec();
    let large: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(
        produce(&mut c, "cold", 0, batch(&[&small], None)).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, "cold", 0, batch(&[&large], None)).await,
        (0, 1)
    );
    let segments: Vec<_> = walk(b.dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert!(!segments.is_empty());
    // Every segment is evicted (no short-circuit), then at least one read must be refused.
    let refused = segments.iter().fold(false, |any, p| evict(p) | any);
    assert!(
        refused,
        "the page cache kept the segment: the test would not test the fallback"
    );
    assert_eq!(
        common::read_all(&mut c, "cold", 0).await,
        vec![(0, small), (1, large)]
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_acks0_is_silent() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "pipe", 1).await;
    let mut frames = BytesMut::new();
    let mut expected = Vec::new();
    for i in 0..20 {
        let acks = if i % 2 == 0 { 0 } else { 1 };
        let (corr, f) = c.frame(
            ApiKey::Produce,
            9,
            &produce_req("pipe", 0, batch(&[b"x"], None), acks),
        );
        frames.extend_from_slice(&f);
        if acks != 0 {
            expected.push(corr);
        }
    }
    c.send_raw(&frames).await;
    for (i, corr) in expected.iter().enumerate() {
        let mut resp = c.read_frame().await.unwrap();
        let r: ProduceResponse = common::decode_response(ApiKey::Produce, 9, *corr, &mut resp);
        assert_eq!(
            r.responses[0].partition_responses[0].base_offset,
            (2 * i + 1) as i64
        );
    }
}

#[tokio::test]
async fn metadata_auto_creates_and_respects_the_switch() {
    let b = TestBroker::start(&[("num.partitions", "3")]).await;
    let mut c = b.client().await;
    let mut req = MetadataRequest::default();
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(name("auto"));
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = true;
    let resp: MetadataResponse = c.request(ApiKey::Metadata, 12, &req).await;
    assert_eq!(resp.topics[0].error_code, 0);
    assert_eq!(resp.topics[0].partitions.len(), 3);
    assert_eq!(resp.brokers[0].port, b.addr.port() as i32);
    assert_eq!(resp.controller_id.0, 1);
    assert!(!resp.topics[0].topic_id.is_nil());
    let b2 = TestBroker::start(&[("auto.create.topics.enable", "false")]).await;
    let mut c2 = b2.client().await;
    let resp: MetadataResponse = c2.request(ApiKey::Metadata, 12, &req).await;
    assert_eq!(
        resp.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let b = TestBroker::start(&[("socket.request.max.bytes", "1000000")]).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversized length", 0x7fff_ffffi32.to_be_bytes().to_vec()),
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        ("short header", vec![0, 0, 0, 3, 0, 18, 0]),
        (
            "unknown api key",
            vec![0, 0, 0, 10, 0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0, 0],
        ),
        (
            "unsupported metadata version",
            vec![0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 1, 0, 0],
        ),
        (
            "fetch below its floor",
            vec![0, 0, 0, 10, 0, 1, 0, 3, 0, 0, 0, 1, 0, 0],
        ),
        (
            "garbage",
            b"\x00\x00\x00\x20GET / HTTP/1.1\r\nHost: x\r\n\r\n12345".to_vec(),
        ),
        (
            "lying client id",
            vec![0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0xff],
        ),
    ];
    for (what, bytes) in cases {
        let mut c = b.client().await;
        c.send_raw(&bytes).await;
        assert!(c.closed_by_broker().await, "{what}: connection not closed");
        still_serving(&b).await;
    }
    // A truncated frame followed by a hang-up.
    let mut c = b.client().await;
    c.send_raw(&[0, 0, 0, 100, 0, 18, 0, 3]).await;
    drop(c);
    still_serving(&b).await;
}

#[tokio::test]
async fn lying_array_counts_in_every_request_type_are_harmless() {
    let b = TestBroker::start(&[]).await;
    let before = rss_kib();
    let mut silent = Vec::new();
    for api in gregor::dispatch::SUPPORTED {
        for version in api.min..=api.max {
            let hv = api.key.request_header_version(version);
            for filler in [
                [0x7f, 0xff, 0xff, 0xff],
                [0xff, 0xff, 0xff, 0x7f],
                [0x00, 0x00, 0x00, 0x01],
            ] {
                let mut frame = BytesMut::new();
                frame.extend_from_slice(&[0, 0, 0, 0]);
                frame.extend_from_slice(&(api.key as i16).to_be_bytes());
                frame.extend_from_slice(&version.to_be_bytes());
                frame.extend_from_slice(&9i32.to_be_bytes());
                frame.extend_from_slice(&[0, 1, b'x']);
                if hv >= 2 {
                    frame.extend_from_slice(&[0]);
                }
                for _ in 0..6 {
                    frame.extend_from_slice(&filler);
                }
                let len = (frame.len() - 4) as i32;
                frame[..4].copy_from_slice(&len.to_be_bytes());
                let mut c = b.client().await;
                c.send_raw(&frame).await;
                // An answer, a closed connection, or (for a request that decoded into a long poll
                // or an acks=0 produce) silence; never a dead broker.
                if c.try_read_frame(300).await.is_none() {
                    silent.push((api.key, version, filler));
                }
            }
        }
    }
    still_serving(&b).await;
    // Only requests that legitimately park: Fetch long polls and acks=0 produces.
    assert!(
        silent
            .iter()
            .all(|(k, _, _)| matches!(k, ApiKey::Fetch | ApiKey::Produce)),
        "{silent:?}"
    );
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 200,
        "RSS grew by {grown_mib} MiB under lying counts"
    );
}

/// ListOffsets as Kafka 4.1's ReplicaManager answers it: each special timestamp only from the
/// version that introduced it (UNSUPPORTED_VERSION before, and for any other negative value),
/// LATEST_TIERED (-5) without tiered storage is offset -1 with leader epoch -1, and a partition
/// named twice is answered once, with INVALID_REQUEST.
#[tokio::test]
async fn list_offsets_timestamps_versions_and_duplicates_as_kafka() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "lo", 2).await;
    let req = |parts: &[(i32, i64)]| {
        let mut t = ListOffsetsTopic::default();
        t.name = name("lo");
        t.partitions = parts
            .iter()
            .map(|&(p, ts)| {
                let mut lp = ListOffsetsPartition::default();
                lp.partition_index = p;
                lp.timestamp = ts;
                lp
            })
            .collect();
        let mut r = ListOffsetsRequest::default();
        r.topics = vec![t];
        r
    };
    let answer = |r: &ListOffsetsResponse| -> Vec<(i32, i16, i64, i32)> {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code, p.offset, p.leader_epoch))
            })
            .collect()
    };
    let unsupported = kafka_protocol::ResponseError::UnsupportedVersion.code();
    let invalid = kafka_protocol::ResponseError::InvalidRequest.code();
    let r: ListOffsetsResponse = c
        .request(ApiKey::ListOffsets, 9, &req(&[(0, -5), (1, -6)]))
        .await;
    assert_eq!(answer(&r), vec![(0, 0, -1, -1), (1, unsupported, -1, -1)]);
    let r: ListOffsetsResponse = c
        .request(ApiKey::ListOffsets, 9, &req(&[(0, i64::MIN)]))
        .await;
    assert_eq!(answer(&r), vec![(0, unsupported, -1, -1)]);
    let r: ListOffsetsResponse = c
        .request(ApiKey::ListOffsets, 6, &req(&[(0, -3), (1, -1)]))
        .await;
    assert_eq!(answer(&r), vec![(0, unsupported, -1, -1), (1, 0, 0, 0)]);
    let r: ListOffsetsResponse = c.request(ApiKey::ListOffsets, 8, &req(&[(0, -5)])).await;
    assert_eq!(answer(&r), vec![(0, unsupported, -1, -1)]);
    let r: ListOffsetsResponse = c
        .request(ApiKey::ListOffsets, 9, &req(&[(0, -1), (1, -2), (0, -2)]))
        .await;
    assert_eq!(answer(&r), vec![(0, invalid, -1, -1), (1, 0, 0, 0)]);
}
