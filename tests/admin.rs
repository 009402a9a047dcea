//! Topic configs honoured on the produce path (max.message.bytes, LogAppendTime, compression.type)
//! and the admin APIs' effects: configs persist, DeleteRecords moves the log start,
//! CreatePartitions grows a topic.

mod common;

use bytes::Bytes;
use common::{batch, create_with, fetch, name, produce, produce_req, Client, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use kafka_protocol::ResponseError;

async fn describe(c: &mut Client, topic: &str) -> Vec<(String, String, i8)> {
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_string(topic.to_string());
    res.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![res];
    let r: DescribeConfigsResponse = c.request(ApiKey::DescribeConfigs, 4, &req).await;
    assert_eq!(r.results[0].error_code, 0);
    r.results[0]
        .configs
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                e.value.as_ref().unwrap().to_string(),
                e.config_source,
            )
        })
        .collect()
}

#[tokio::test]
async fn log_append_time_and_recompression_are_applied_on_append() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(
        create_with(
            &mut c,
            "lat",
            &[("message.timestamp.type", "LogAppendTime")]
        )
        .await
        .topics[0]
            .error_code,
        0
    );
    let before = gregor::log::now_ms();
    let resp: ProduceResponse = c
        .request(
            ApiKey::Produce,
            9,
            &produce_req("lat", 0, batch(&[b"x"], None), -1),
        )
        .await;
    let stamped = resp.responses[0].partition_responses[0].log_append_time_ms;
    assert!(stamped >= before, "log_append_time_ms {stamped}");
    let records = fetch(&mut c, "lat", 0, 0).await.records.unwrap();
    // Consumers take every record's timestamp from the batch's max timestamp under LogAppendTime.
    let view = gregor::log::batch::BatchView::checked(&records).unwrap();
    assert!(view.is_log_append_time());
    assert_eq!(view.max_timestamp(), stamped);
    let set = RecordBatchDecoder::decode(&mut records.clone()).unwrap();
    assert_eq!(
        set.records[0].timestamp_type,
        kafka_protocol::records::TimestampType::LogAppend
    );

    assert_eq!(
        create_with(&mut c, "z", &[("compression.type", "zstd")])
            .await
            .topics[0]
            .error_code,
        0
    );
    produce(&mut c, "z", 0, batch(&[b"alpha", b"beta"], None)).await;
    let mut records = fetch(&mut c, "z", 0, 0).await.records.unwrap();
    let set = RecordBatchDecoder::decode(&mut records).unwrap();
    assert_eq!(set.compression, Compression::Zstd);
    let values: Vec<Bytes> = set
        .records
        .iter()
        .map(|r| r.value.clone().unwrap())
        .collect();
    assert_eq!(values, vec![Bytes::from("alpha"), Bytes::from("beta")]);
}

#[tokio::test]
async fn topic_configs_are_validated_persisted_and_honoured() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let bad = create_with(&mut c, "bad", &[("segment.bytes", "10")]).await;
    assert_eq!(
        bad.topics[0].error_code,
        ResponseError::InvalidConfig.code()
    );
    assert!(bad.topics[0]
        .error_message
        .as_ref()
        .unwrap()
        .contains("segment.bytes"));
    let ok = create_with(&mut c, "small", &[("max.message.bytes", "100")]).await;
    assert_eq!(ok.topics[0].error_code, 0);
    assert_eq!(
        produce(&mut c, "small", 0, batch(&[&[0u8; 200]], None))
            .await
            .0,
        ResponseError::MessageTooLarge.code()
    );
    let configs = describe(&mut c, "small").await;
    assert!(configs.contains(&("max.message.bytes".into(), "100".into(), 1)));
    assert!(configs.contains(&("segment.bytes".into(), "1073741824".into(), 5)));
    let dir = b.stop().await;
    let b = TestBroker::start_in(dir, &[]).await;
    let mut c = b.client().await;
    assert!(describe(&mut c, "small").await.contains(&(
        "max.message.bytes".into(),
        "100".into(),
        1
    )));
    assert_eq!(
        produce(&mut c, "small", 0, batch(&[&[0u8; 200]], None))
            .await
            .0,
        ResponseError::MessageTooLarge.code()
    );
}

#[tokio::test]
async fn delete_records_moves_the_log_start_and_create_partitions_grows_a_topic() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    create_with(&mut c, "dr", &[]).await;
    for _ in 0..5 {
        produce(&mut c, "dr", 0, batch(&[b"a", b"b"], None)).await;
    }
    let mut p = delete_records_request::DeleteRecordsPartition::default();
    p.offset = 4;
    let mut t = delete_records_request::DeleteRecordsTopic::default();
    t.name = name("dr");
    t.partitions = vec![p];
    let mut req = DeleteRecordsRequest::default();
    req.topics = vec![t];
    let r: DeleteRecordsResponse = c.request(ApiKey::DeleteRecords, 2, &req).await;
    assert_eq!(
        (
            r.topics[0].partitions[0].error_code,
            r.topics[0].partitions[0].low_watermark
        ),
        (0, 4)
    );
    assert_eq!(
        fetch(&mut c, "dr", 0, 3).await.error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    let f = fetch(&mut c, "dr", 0, 4).await;
    assert_eq!((f.error_code, f.log_start_offset), (0, 4));
    req.topics[0].partitions[0].offset = 11;
    let r: DeleteRecordsResponse = c.request(ApiKey::DeleteRecords, 2, &req).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::OffsetOutOfRange.code()
    );

    let mut t = create_partitions_request::CreatePartitionsTopic::default();
    t.name = name("dr");
    t.count = 3;
    let mut req = CreatePartitionsRequest::default();
    req.topics = vec![t];
    let r: CreatePartitionsResponse = c.request(ApiKey::CreatePartitions, 3, &req).await;
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(
        produce(&mut c, "dr", 2, batch(&[b"new"], None)).await,
        (0, 0)
    );
    let r: CreatePartitionsResponse = c.request(ApiKey::CreatePartitions, 3, &req).await;
    assert_eq!(
        r.results[0].error_code,
        ResponseError::InvalidPartitions.code()
    );
}

#[tokio::test]
async fn colliding_names_are_refused_and_topic_partitions_page_with_a_cursor() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(
        create_with(&mut c, "a.b", &[]).await.topics[0].error_code,
        0
    );
    let clash = create_with(&mut c, "a_b", &[]).await;
    assert_eq!(
        clash.topics[0].error_code,
        ResponseError::InvalidTopicException.code()
    );
    assert!(clash.topics[0]
        .error_message
        .as_ref()
        .unwrap()
        .contains("collides with existing topic: a.b"));

    let mut t = create_partitions_request::CreatePartitionsTopic::default();
    t.name = name("a.b");
    t.count = 3;
    let mut grow = CreatePartitionsRequest::default();
    grow.topics = vec![t];
    let _: CreatePartitionsResponse = c.request(ApiKey::CreatePartitions, 3, &grow).await;
    create_with(&mut c, "z", &[]).await;
    // 4 partitions in all (a.b: 3, z: 1), two per page.
    let mut req = DescribeTopicPartitionsRequest::default();
    req.response_partition_limit = 2;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r: DescribeTopicPartitionsResponse =
            c.request(ApiKey::DescribeTopicPartitions, 0, &req).await;
        pages += 1;
        for t in &r.topics {
            for p in &t.partitions {
                seen.push((t.name.as_ref().unwrap().0.to_string(), p.partition_index));
            }
        }
        match r.next_cursor {
            Some(cursor) => {
                let mut next = describe_topic_partitions_request::Cursor::default();
                next.topic_name = cursor.topic_name;
                next.partition_index = cursor.partition_index;
                req.cursor = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(
        seen,
        vec![
            ("a.b".into(), 0),
            ("a.b".into(), 1),
            ("a.b".into(), 2),
            ("z".into(), 0)
        ]
    );
}

/// A `MakeWriter` collecting log output in memory.
#[derive(Clone, Default)]
struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
    type Writer = LogBuf;
    fn make_writer(&'a self) -> LogBuf {
        self.clone()
    }
}

#[tokio::test]
async fn broker_configs_list_every_kafka_config_and_hide_secrets() {
    // Loading a config file with a secret logs the key (not honoured yet), never the value.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.properties");
    std::fs::write(
        &file,
        "delegation.token.secret.key=hunter2\nssl.key.password=hunter2\nno.such.key=hunter2\n",
    )
    .unwrap();
    let logs = LogBuf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let config = tracing::subscriber::with_default(subscriber, || {
        gregor::Config::load(Some(&file), &["node.id=1".into()]).unwrap()
    });
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("delegation.token.secret.key"), "{logged}");
    assert!(!logged.contains("hunter2"), "{logged}");
    assert!(!format!("{config:?}").contains("hunter2"));

    let b = TestBroker::start(&[
        ("num.partitions", "2"),
        ("log.retention.hours", "100"),
        ("ssl.keystore.password", "hunter2"),
    ])
    .await;
    let mut c = b.client().await;
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = 4;
    res.resource_name = StrBytes::from_static_str("1");
    res.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![res];
    req.include_synonyms = true;
    req.include_documentation = true;
    let (corr, frame) = c.frame(ApiKey::DescribeConfigs, 4, &req);
    c.send_raw(&frame).await;
    let mut bytes = c.read_frame().await.unwrap();
    assert!(
        !bytes.windows(7).any(|w| w == b"hunter2"),
        "the secret is in the response"
    );
    let r: DescribeConfigsResponse =
        common::decode_response(ApiKey::DescribeConfigs, 4, corr, &mut bytes);
    assert_eq!(r.results[0].error_code, 0);
    let configs = &r.results[0].configs;
    assert!(configs.len() >= 300, "{} broker configs", configs.len());
    let get = |n: &str| {
        configs
            .iter()
            .find(|e| *e.name == *n)
            .unwrap_or_else(|| panic!("{n} not listed"))
    };
    // (value, source, type, read-only, sensitive) across families, as Kafka 4.1.1 reports them
    type Want<'a> = (&'a str, Option<&'a str>, i8, i8, bool, bool);
    let want: &[Want] = &[
        ("num.partitions", Some("2"), 4, 3, true, false),
        ("log.retention.hours", Some("100"), 4, 3, true, false),
        ("log.retention.ms", None, 5, 5, false, false),
        ("log.segment.bytes", Some("1073741824"), 5, 3, false, false),
        ("message.max.bytes", Some("1048588"), 5, 3, false, false),
        ("compression.type", Some("producer"), 5, 2, false, false),
        (
            "log.cleaner.min.cleanable.ratio",
            Some("0.5"),
            5,
            6,
            false,
            false,
        ),
        (
            "offsets.topic.replication.factor",
            Some("3"),
            5,
            4,
            true,
            false,
        ),
        (
            "sasl.enabled.mechanisms",
            Some("GSSAPI"),
            5,
            7,
            false,
            false,
        ),
        (
            "principal.builder.class",
            Some("org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder"),
            5,
            8,
            false,
            false,
        ),
        ("auto.create.topics.enable", Some("true"), 5, 1, true, false),
        ("broker.id", Some("1"), 4, 3, true, false),
        ("min.insync.replicas", Some("1"), 3, 3, false, false),
        ("ssl.keystore.password", None, 4, 9, false, true),
        ("ssl.truststore.password", None, 5, 9, false, true),
        ("sasl.jaas.config", None, 5, 9, false, true),
        ("delegation.token.secret.key", None, 5, 9, true, true),
    ];
    for &(n, value, source, ty, read_only, sensitive) in want {
        let e = get(n);
        assert_eq!(
            (
                e.value.as_ref().map(|v| v.to_string()),
                e.config_source,
                e.config_type,
                e.read_only,
                e.is_sensitive
            ),
            (value.map(String::from), source, ty, read_only, sensitive),
            "{n}"
        );
    }
    let syn = |n: &str| -> Vec<(String, Option<String>, i8)> {
        get(n)
            .synonyms
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    s.value.as_ref().map(|v| v.to_string()),
                    s.source,
                )
            })
            .collect()
    };
    assert_eq!(
        syn("log.retention.hours"),
        vec![
            ("log.retention.hours".into(), Some("100".into()), 4),
            ("log.retention.hours".into(), Some("168".into()), 5)
        ]
    );
    assert_eq!(
        syn("ssl.keystore.password"),
        vec![("ssl.keystore.password".into(), None, 4)]
    );
    assert!(get("log.segment.bytes")
        .documentation
        .as_ref()
        .is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn deleting_unset_broker_configs_succeeds_and_setting_them_is_refused() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let alter = |ops: &[(&str, i8)]| {
        let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 4;
        res.resource_name = StrBytes::from_static_str("1");
        for (name, op) in ops {
            let mut cfg = incremental_alter_configs_request::AlterableConfig::default();
            cfg.name = StrBytes::from_string(name.to_string());
            cfg.config_operation = *op;
            cfg.value = (*op == 0).then(|| StrBytes::from_static_str("100"));
            res.configs.push(cfg);
        }
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![res];
        req
    };
    // kafka-reassign-partitions.sh --verify clears its throttles this way.
    let throttles = [
        ("leader.replication.throttled.rate", 1),
        ("follower.replication.throttled.rate", 1),
        ("replica.alter.log.dirs.io.max.bytes.per.second", 1),
    ];
    for (ops, code) in [
        (&throttles[..], 0),
        (&[("log.cleaner.threads", 1)][..], 0),
        (&[("log.dirs", 1)][..], 0),
        (&[("leader.replication.throttled.rate", 0)][..], 42),
    ] {
        let r: IncrementalAlterConfigsResponse = c
            .request(ApiKey::IncrementalAlterConfigs, 1, &alter(ops))
            .await;
        assert_eq!(r.responses[0].error_code, code, "{ops:?}");
    }
    b.stop().await;
}

/// A topic's `flush.ms` is honoured by the background flusher, whatever the broker's
/// `log.flush.interval.ms` (it used only the broker's).
#[tokio::test]
async fn topic_flush_ms_is_honoured_by_the_background_flusher() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    let r = create_with(&mut c, "fast-flush", &[("flush.ms", "100")]).await;
    assert_eq!(r.topics[0].error_code, 0);
    create_with(&mut c, "default-flush", &[]).await;
    for t in ["fast-flush", "default-flush"] {
        let (err, _) = produce(&mut c, t, 0, batch(&[b"v"], None)).await;
        assert_eq!(err, 0);
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let unflushed = |t: &str| {
        let topic = b.broker.topics.get(t).unwrap();
        topic.partitions[0].flush_due(gregor::log::now_ms(), 0)
    };
    assert!(!unflushed("fast-flush"), "flush.ms=100 was not honoured");
    assert!(
        unflushed("default-flush"),
        "the default (no scheduled flush) changed"
    );
    b.stop().await;
}

/// `gregor.max.broker.partitions` is checked after Kafka's own checks: creating a topic that
/// exists answers TOPIC_ALREADY_EXISTS however full the broker is (Kafka Connect and Streams create
/// their topics "if absent" and take that answer for success); a new one past the cap is
/// POLICY_VIOLATION, validate_only or not.
#[tokio::test]
async fn an_existing_topic_is_already_there_at_the_partition_cap() {
    let b = TestBroker::start(&[("gregor.max.broker.partitions", "10")]).await;
    let mut c = b.client().await;
    common::create_topic(&mut c, "a", 6).await;
    common::create_topic(&mut c, "b", 4).await;
    let create = |topic: &str, partitions: i32, validate_only: bool| {
        let mut req = common::create_req(topic, partitions);
        req.validate_only = validate_only;
        req
    };
    for validate_only in [false, true] {
        let r: CreateTopicsResponse = c
            .request(ApiKey::CreateTopics, 7, &create("a", 6, validate_only))
            .await;
        assert_eq!(
            r.topics[0].error_code,
            ResponseError::TopicAlreadyExists.code()
        );
        let r: CreateTopicsResponse = c
            .request(ApiKey::CreateTopics, 7, &create("c", 1, validate_only))
            .await;
        assert_eq!(
            r.topics[0].error_code,
            ResponseError::PolicyViolation.code()
        );
    }
}
