//! Test helpers: an in-process broker on 127.0.0.1:0 with a temporary data dir, and a raw-frame
//! client that speaks the Kafka protocol with kafka-protocol's request encoders.
#![allow(dead_code, unreachable_pub)]

pub mod process;
pub mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// xorshift64*: deterministic, so a failing mutation is the same on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

pub struct TestBroker {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub broker: Arc<gregor::Broker>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestBroker {
    pub async fn start(overrides: &[(&str, &str)]) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, overrides).await
    }

    pub async fn start_in(dir: tempfile::TempDir, overrides: &[(&str, &str)]) -> TestBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw: BTreeMap<String, String> = BTreeMap::new();
        raw.insert("log.dirs".into(), dir.path().display().to_string());
        raw.insert("listeners".into(), format!("PLAINTEXT://{addr}"));
        // `{addr}` in an override stands for the address bound (a listener of another protocol).
        for (k, v) in overrides {
            raw.insert(k.to_string(), v.replace("{addr}", &addr.to_string()));
        }
        let config = gregor::Config::from_map(raw).unwrap();
        let broker = Arc::new(
            tokio::task::spawn_blocking(move || gregor::Broker::open(config).unwrap())
                .await
                .unwrap(),
        );
        let (tx, rx) = oneshot::channel();
        let listeners = vec![(listener, broker.config.listeners[0].clone())];
        let task = tokio::spawn(gregor::run(broker.clone(), listeners, async move {
            let _ = rx.await;
        }));
        TestBroker {
            addr,
            dir,
            broker,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Graceful shutdown; returns the data dir for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

pub struct Client {
    pub stream: TcpStream,
    next_correlation: i32,
}

pub const CLIENT_ID: &str = "gregor-tests";

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            next_correlation: 1,
        }
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        Client {
            stream,
            next_correlation: 1,
        }
    }

    /// Encodes a request frame (length prefix included) and returns its correlation id.
    pub fn frame<T: Encodable>(&mut self, api: ApiKey, version: i16, body: &T) -> (i32, Bytes) {
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = correlation;
        header.client_id = Some(StrBytes::from_static_str(CLIENT_ID));
        let hv = api.request_header_version(version);
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, hv).unwrap();
        body.encode(&mut buf, version).unwrap();
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        (correlation, buf.freeze())
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response frame; `None` if the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_exact(&mut len))
            .await
            .expect("response timed out")
            .ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(Bytes::from(body))
    }

    /// Waits up to `ms` for the next frame: `Some(Some)` a frame, `Some(None)` closed, `None` silence.
    pub async fn try_read_frame(&mut self, ms: u64) -> Option<Option<Bytes>> {
        tokio::time::timeout(Duration::from_millis(ms), async {
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await.ok()?;
            let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
            self.stream.read_exact(&mut body).await.ok()?;
            Some(Bytes::from(body))
        })
        .await
        .ok()
    }

    pub async fn request<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        let (corr, frame) = self.frame(api, version, body);
        self.send_raw(&frame).await;
        let mut resp = self.read_frame().await.expect("connection closed");
        decode_response(api, version, corr, &mut resp)
    }

    /// True once the broker has closed the connection (reads EOF within the timeout).
    pub async fn closed_by_broker(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

pub fn decode_response<Resp: Decodable>(
    api: ApiKey,
    version: i16,
    corr: i32,
    frame: &mut Bytes,
) -> Resp {
    let hv = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    let header = ResponseHeader::decode(frame, hv).unwrap();
    assert_eq!(header.correlation_id, corr, "responses out of order");
    let resp = Resp::decode(frame, version).unwrap();
    assert_eq!(frame.remaining(), 0, "trailing bytes in response");
    resp
}

/// Builds an uncompressed v2 record batch with the given values (keys `k{i}`, timestamps 1000+i).
pub fn batch(values: &[&[u8]], producer: Option<(i64, i16, i32)>) -> Bytes {
    let keys: Vec<String> = (0..values.len()).map(|i| format!("k{i}")).collect();
    let records: Vec<store::KeyValue<'_>> = keys
        .iter()
        .zip(values)
        .map(|(k, v)| (Some(k.as_bytes()), Some(*v)))
        .collect();
    store::keyed_batch(
        &records,
        1_000,
        producer,
        kafka_protocol::records::Compression::None,
    )
}

/// Waits for a broker process to exit: its exit code and everything it wrote.
pub fn finish(mut child: std::process::Child) -> (i32, String) {
    use std::io::Read;
    let status = child.wait().unwrap();
    let mut out = String::new();
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read>),
    ]
    .into_iter()
    .flatten()
    {
        let mut stream = stream;
        stream.read_to_string(&mut out).unwrap();
    }
    (status.code().unwrap_or(-1), out)
}

/// A port nothing listens on right now (for brokers started as separate processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Current resident set size of this process in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

// Request helpers shared by the protocol tests.
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// CreateTopics of one topic with `partitions` (replication factor 1).
pub fn create_req(topic: &str, partitions: i32) -> CreateTopicsRequest {
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 60_000;
    req
}

pub async fn create_topic(c: &mut Client, topic: &str, partitions: i32) {
    let req = create_req(topic, partitions);
    let resp: CreateTopicsResponse = c.request(ApiKey::CreateTopics, 7, &req).await;
    assert_eq!(
        resp.topics[0].error_code, 0,
        "{:?}",
        resp.topics[0].error_message
    );
}

/// CreateTopics v7 of one single-partition topic with `configs` (the broker's replication factor).
pub async fn create_with(
    c: &mut Client,
    topic: &str,
    configs: &[(&str, &str)],
) -> CreateTopicsResponse {
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = 1;
    t.replication_factor = -1;
    t.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut cfg = create_topics_request::CreatableTopicConfig::default();
            cfg.name = StrBytes::from_string(k.to_string());
            cfg.value = Some(StrBytes::from_string(v.to_string()));
            cfg
        })
        .collect();
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    c.request(ApiKey::CreateTopics, 7, &req).await
}

pub fn produce_req(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = name(topic);
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 5000;
    req.topic_data = vec![t];
    req
}

pub async fn produce(c: &mut Client, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let resp: ProduceResponse = c
        .request(
            ApiKey::Produce,
            9,
            &produce_req(topic, partition, records, -1),
        )
        .await;
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

pub fn fetch_req(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = name(topic);
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = min_bytes;
    req.max_bytes = 50 << 20;
    req.session_epoch = -1;
    req.topics = vec![t];
    req
}

pub async fn fetch(
    c: &mut Client,
    topic: &str,
    partition: i32,
    offset: i64,
) -> fetch_response::PartitionData {
    let resp: FetchResponse = c
        .request(
            ApiKey::Fetch,
            12,
            &fetch_req(topic, partition, offset, 0, 0),
        )
        .await;
    resp.responses[0].partitions[0].clone()
}

/// Every (offset, value) of a partition from offset 0, fetched in order.
pub async fn read_all(c: &mut Client, topic: &str, partition: i32) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = 0;
    loop {
        let p = fetch(c, topic, partition, next).await;
        assert_eq!(p.error_code, 0, "fetch {topic}-{partition}@{next}");
        let recs = store::decode(p.records.as_ref().unwrap_or(&Bytes::new()));
        if recs.is_empty() {
            return out;
        }
        for r in recs {
            if r.0 >= next {
                out.push((r.0, r.2.unwrap_or_default()));
                next = r.0 + 1;
            }
        }
    }
}
