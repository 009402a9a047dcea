//! Golden frames captured from real clients (librdkafka via confluent-kafka, kafka-python, the Java
//! client via Kafka's tools; see `compat-tests/tools/capture_frames.py`): each decodes and
//! re-encodes byte for byte, and replaying a client's session against a fresh broker gets a
//! well-formed, error-free answer to every request.

mod common;

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use common::{decode_response, TestBroker};
use gregor::codec;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

fn frames(client: &str) -> Vec<(PathBuf, Bytes)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(client);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden frames in {}", dir.display());
    files
        .into_iter()
        .map(|f| (f.clone(), Bytes::from(std::fs::read(&f).unwrap())))
        .collect()
}

fn round_trip<T: Decodable + Encodable>(api: ApiKey, version: i16, body: &mut Bytes) -> Vec<u8> {
    let original = body.clone();
    let decoded: T = codec::decode_body(api, version, body).unwrap();
    let mut out = BytesMut::new();
    decoded.encode(&mut out, version).unwrap();
    assert_eq!(
        &out[..],
        &original[..],
        "{api:?} v{version} did not re-encode byte for byte"
    );
    out.to_vec()
}

fn check_round_trip(frame: &Bytes) {
    let mut rest = frame.clone();
    let (api, header) = codec::decode_header(&mut rest).unwrap();
    let v = header.request_api_version;
    match api {
        ApiKey::ApiVersions => round_trip::<ApiVersionsRequest>(api, v, &mut rest),
        ApiKey::Metadata => round_trip::<MetadataRequest>(api, v, &mut rest),
        ApiKey::CreateTopics => round_trip::<CreateTopicsRequest>(api, v, &mut rest),
        ApiKey::InitProducerId => round_trip::<InitProducerIdRequest>(api, v, &mut rest),
        ApiKey::Produce => round_trip::<ProduceRequest>(api, v, &mut rest),
        ApiKey::Fetch => round_trip::<FetchRequest>(api, v, &mut rest),
        ApiKey::ListOffsets => round_trip::<ListOffsetsRequest>(api, v, &mut rest),
        other => panic!("unexpected {other:?} in golden frames"),
    };
}

/// The id of the one topic a capture created (replays create it anew, with a new id).
async fn only_topic_id(b: &TestBroker) -> uuid::Uuid {
    let mut side = b.client().await;
    let mut all = MetadataRequest::default();
    all.topics = None;
    let r: MetadataResponse = side.request(ApiKey::Metadata, 12, &all).await;
    assert_eq!(r.topics.len(), 1);
    r.topics[0].topic_id
}

/// Sends one captured frame and checks the answer: well formed, in order, without errors.
/// Fetches by topic id (v13+) are re-encoded with the replayed topic's id.
async fn replay(
    b: &TestBroker,
    client: &mut common::Client,
    session: &mut i32,
    path: &Path,
    frame: &Bytes,
) {
    let mut rest = frame.clone();
    let (api, header) = codec::decode_header(&mut rest).unwrap();
    let (v, corr) = (header.request_api_version, header.correlation_id);
    let mut frame = frame.clone();
    let mut opens_session = false;
    if api == ApiKey::Fetch {
        let mut req: FetchRequest = codec::decode_body(api, v, &mut rest.clone()).unwrap();
        if v >= 13 {
            let id = only_topic_id(b).await;
            req.topics.iter_mut().for_each(|t| t.topic_id = id);
        }
        // Session ids differ between the captured broker and this one.
        opens_session = req.session_epoch == 0;
        if req.session_epoch > 0 {
            req.session_id = *session;
        }
        let mut out = BytesMut::from(&frame[..frame.len() - rest.len()]);
        req.encode(&mut out, v).unwrap();
        frame = out.freeze();
    }
    let mut prefixed = BytesMut::from(&(frame.len() as i32).to_be_bytes()[..]);
    prefixed.extend_from_slice(&frame);
    client.send_raw(&prefixed).await;
    if api == ApiKey::Produce {
        let req: ProduceRequest = codec::decode_body(api, v, &mut rest.clone()).unwrap();
        if req.acks == 0 {
            return;
        }
    }
    let mut resp = client
        .read_frame()
        .await
        .unwrap_or_else(|| panic!("{}: connection closed", path.display()));
    let what = path.display();
    match api {
        ApiKey::ApiVersions => assert_eq!(
            decode_response::<ApiVersionsResponse>(api, v, corr, &mut resp).error_code,
            0,
            "{what}"
        ),
        ApiKey::Metadata => {
            let r: MetadataResponse = decode_response(api, v, corr, &mut resp);
            assert!(r.topics.iter().all(|t| t.error_code == 0), "{what}: {r:?}");
        }
        ApiKey::CreateTopics => {
            let r: CreateTopicsResponse = decode_response(api, v, corr, &mut resp);
            assert!(r.topics.iter().all(|t| t.error_code == 0), "{what}: {r:?}");
        }
        ApiKey::InitProducerId => assert_eq!(
            decode_response::<InitProducerIdResponse>(api, v, corr, &mut resp).error_code,
            0,
            "{what}"
        ),
        ApiKey::Produce => {
            let r: ProduceResponse = decode_response(api, v, corr, &mut resp);
            assert!(
                r.responses
                    .iter()
                    .flat_map(|t| &t.partition_responses)
                    .all(|p| p.error_code == 0),
                "{what}: {r:?}"
            );
        }
        ApiKey::Fetch => {
            let r: FetchResponse = decode_response(api, v, corr, &mut resp);
            assert_eq!(r.error_code, 0, "{what}");
            if opens_session {
                *session = r.session_id;
            }
            assert!(
                r.responses
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .all(|p| p.error_code == 0),
                "{what}: {r:?}"
            );
        }
        ApiKey::ListOffsets => {
            let r: ListOffsetsResponse = decode_response(api, v, corr, &mut resp);
            assert!(
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .all(|p| p.error_code == 0),
                "{what}: {r:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

async fn golden(client: &str) {
    let captured = frames(client);
    for (_, f) in &captured {
        check_round_trip(f);
    }
    let b = TestBroker::start(&[]).await;
    let mut conn = b.client().await;
    let mut session = 0;
    for (path, f) in &captured {
        replay(&b, &mut conn, &mut session, path, f).await;
    }
}

#[tokio::test]
async fn librdkafka_frames() {
    golden("confluent").await;
}

#[tokio::test]
async fn kafka_python_frames() {
    golden("kafka-python").await;
}

#[tokio::test]
async fn java_client_frames() {
    golden("java").await;
}
