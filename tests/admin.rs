//! Topic configs honoured on the produce path (max.message.bytes, LogAppendTime, compression.type)
//! and the admin APIs' effects: configs persist, DeleteRecords moves the log start,
//! CreatePartitions grows a topic.

mod common;

use bytes::Bytes;
use common::{batch, fetch, name, produce, produce_req, Client, TestBroker};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use kafka_protocol::ResponseError;

async fn create_with(
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
            let mut cfg = CreatableTopicConfig::default();
            cfg.name = StrBytes::from_string(k.to_string());
            cfg.value = Some(StrBytes::from_string(v.to_string()));
            cfg
        })
        .collect();
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    c.request(ApiKey::CreateTopics, 7, &req).await
}

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
