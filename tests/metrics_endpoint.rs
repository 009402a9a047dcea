//! The Prometheus endpoint of the real binary: after a produce, the byte and message counters
//! equal what was produced and the partition gauges show the new log end offset.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{batch, create_topic, free_port, Client};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn counters_and_gauges_match_what_was_produced() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mport) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args([
            "--override",
            &format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
        ])
        .args(["--override", &format!("log.dirs={}", dir.path().display())])
        .args(["--override", &format!("metrics.address=127.0.0.1:{mport}")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = Client::connect(([127, 0, 0, 1], port).into()).await;
    create_topic(&mut c, "m", 1).await;
    let records = batch(&[b"one", b"two", b"three"], None);
    let mut p = PartitionProduceData::default();
    p.records = Some(records.clone());
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_static_str("m"));
    td.partition_data = vec![p];
    let mut produce = ProduceRequest::default();
    produce.acks = 1;
    produce.timeout_ms = 1000;
    produce.topic_data = vec![td];
    let _: ProduceResponse = c.request(ApiKey::Produce, 9, &produce).await;
    // Gauges are sampled every few seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = scrape(mport);
        if value(
            &text,
            r#"kafka_log_log_logendoffset{topic="m",partition="0"}"#,
        ) == Some(3.0)
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "gauges never showed the append:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(
        value(
            &text,
            r#"kafka_server_brokertopicmetrics_bytesin_total{topic="m"}"#
        ),
        Some(records.len() as f64)
    );
    assert_eq!(
        value(
            &text,
            r#"kafka_server_brokertopicmetrics_messagesin_total{topic="m"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        value(&text, r#"gregor_requests_total{api="Produce"}"#),
        Some(1.0)
    );
    assert!(
        value(&text, r#"kafka_log_log_size{topic="m",partition="0"}"#).unwrap()
            >= records.len() as f64
    );
    assert_eq!(
        value(&text, r#"gregor_build_info{version="0.1.0"}"#),
        Some(1.0)
    );
}
