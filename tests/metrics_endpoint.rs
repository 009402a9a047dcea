//! The Prometheus endpoint of the real binary: after a produce, the byte and message counters
//! equal what was produced and the partition gauges show the new log end offset; on a fresh
//! broker every metric a shipped dashboard queries already has a series.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{batch, create_topic, Client};
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

/// Starts the binary with a metrics endpoint: (process, Kafka port, metrics port).
fn spawn(dir: &std::path::Path) -> (std::process::Child, u16, u16) {
    let (child, ports) = common::process::start_listening(2, |p| {
        Command::new(env!("CARGO_BIN_EXE_gregor"))
            .args([
                "--override",
                &format!("listeners=PLAINTEXT://127.0.0.1:{}", p[0]),
            ])
            .args(["--override", &format!("log.dirs={}", dir.display())])
            .args(["--override", &format!("metrics.address=127.0.0.1:{}", p[1])])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    });
    let (port, mport) = (ports[0], ports[1]);
    (child, port, mport)
}

/// Every `gregor_*`, `kafka_*` and `process_*` metric named in a dashboard query.
fn dashboard_metrics() -> std::collections::BTreeSet<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/grafana/dashboards");
    let mut names = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for expr in text.split("\"expr\"").skip(1) {
            let expr = expr.split('\n').next().unwrap_or("");
            names.extend(
                expr.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .filter(|t| {
                        ["gregor_", "kafka_", "process_"]
                            .iter()
                            .any(|p| t.starts_with(p))
                    })
                    .map(str::to_string),
            );
        }
    }
    names
}

#[tokio::test]
async fn every_dashboard_metric_has_a_series_on_a_fresh_broker() {
    let wanted = dashboard_metrics();
    assert!(wanted.len() > 20, "dashboards not found: {wanted:?}");
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port, mport) = spawn(dir.path());
    // Per-topic and per-group series need a topic and a group with a committed offset; nothing
    // else happens: no produce, no rebalance, no error, no flush, no waiting fetch.
    let mut c = Client::connect(([127, 0, 0, 1], port).into()).await;
    create_topic(&mut c, "d", 1).await;
    let mut part = offset_commit_request::OffsetCommitRequestPartition::default();
    part.committed_offset = 0;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str("d"));
    t.partitions = vec![part];
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(StrBytes::from_static_str("g"));
    commit.generation_id_or_member_epoch = -1;
    commit.topics = vec![t];
    let r: OffsetCommitResponse = c.request(ApiKey::OffsetCommit, 2, &commit).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let present = |text: &str, name: &str| {
        text.lines()
            .any(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(mport);
        let missing: Vec<&String> = wanted.iter().filter(|n| !present(&text, n)).collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("no series for {missing:?}:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The store's gauges, with Kafka's names, from start-up.
    let text = scrape(mport);
    for series in [
        "kafka_log_logmanager_offlinelogdirectorycount",
        r#"kafka_server_delayedoperationpurgatory_numdelayedoperations{delayedOperation="Fetch"}"#,
        r#"kafka_server_delayedoperationpurgatory_purgatorysize{delayedOperation="Fetch"}"#,
    ] {
        assert_eq!(value(&text, series), Some(0.0), "{series}");
    }
    // A single node is its own active controller, with one live broker (Kafka's gauges).
    for (series, v) in [
        (
            "kafka_controller_kafkacontroller_activecontrollercount",
            1.0,
        ),
        ("kafka_controller_kafkacontroller_activebrokercount", 1.0),
        ("kafka_controller_kafkacontroller_fencedbrokercount", 0.0),
        ("gregor_controller_leader_changes_total", 0.0),
    ] {
        assert_eq!(value(&text, series), Some(v), "{series}");
    }
    child.kill().unwrap();
    let _ = child.wait();
}

#[tokio::test]
async fn counters_and_gauges_match_what_was_produced() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port, mport) = spawn(dir.path());
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
