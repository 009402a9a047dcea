//! Connection limits: idle connections are closed after `connections.max.idle.ms`, a client over
//! `max.connections.per.ip` is closed at once, and at `max.connections` the broker stops accepting
//! until a connection closes — while existing connections keep being served.

mod common;

use std::time::{Duration, Instant};

use common::{Client, TestBroker};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

fn api_versions() -> ApiVersionsRequest {
    let mut r = ApiVersionsRequest::default();
    r.client_software_name = StrBytes::from_static_str("limits");
    r.client_software_version = StrBytes::from_static_str("1");
    r
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let b = TestBroker::start(&[("connections.max.idle.ms", "300")]).await;
    let mut c = b.client().await;
    let _: ApiVersionsResponse = c.request(ApiKey::ApiVersions, 3, &api_versions()).await;
    let started = Instant::now();
    assert!(c.closed_by_broker().await);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn connections_over_the_per_ip_limit_are_closed() {
    let b = TestBroker::start(&[("max.connections.per.ip", "2")]).await;
    let mut first = b.client().await;
    let mut second = b.client().await;
    let mut third = b.client().await;
    assert!(third.closed_by_broker().await);
    let _: ApiVersionsResponse = first.request(ApiKey::ApiVersions, 3, &api_versions()).await;
    let _: ApiVersionsResponse = second
        .request(ApiKey::ApiVersions, 3, &api_versions())
        .await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = b.client().await;
    let _: ApiVersionsResponse = fourth
        .request(ApiKey::ApiVersions, 3, &api_versions())
        .await;
}

#[tokio::test]
async fn at_max_connections_accepting_waits_for_a_free_slot() {
    let b = TestBroker::start(&[("max.connections", "1")]).await;
    let mut first = b.client().await;
    let _: ApiVersionsResponse = first.request(ApiKey::ApiVersions, 3, &api_versions()).await;
    // The kernel completes the handshake, but the broker does not serve it yet.
    let mut second = b.client().await;
    let (_, frame) = second.frame(ApiKey::ApiVersions, 3, &api_versions());
    second.send_raw(&frame).await;
    assert!(
        second.try_read_frame(300).await.is_none(),
        "served beyond max.connections"
    );
    let _: ApiVersionsResponse = first.request(ApiKey::ApiVersions, 3, &api_versions()).await;
    drop(first);
    assert!(
        matches!(second.try_read_frame(2000).await, Some(Some(_))),
        "not served after a slot freed"
    );
}

/// `queued.max.request.bytes`: a request takes its size once its prefix has arrived, and once the
/// budget is spent reading waits, resuming as soon as bytes come back; memory never grows past the
/// budget. Large requests (over 1 MiB) can only take seven eighths of it, so they never make a
/// small request wait; small requests waiting for each other is back-pressure as in Kafka.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_request_bytes_bound_buffered_requests_and_apply_back_pressure() {
    const MIB: usize = 1 << 20;
    let b = TestBroker::start(&[
        ("queued.max.request.bytes", "4194304"),
        ("socket.request.max.bytes", "2097152"),
    ])
    .await;
    // Announces a request of `len` bytes and sends `sent` of it, from a new client.
    let announce = |len: usize, sent: usize| {
        let addr = b.addr;
        async move {
            let mut c = Client::connect(addr).await;
            let mut head = (len as i32 - 4).to_be_bytes().to_vec();
            head.extend(std::iter::repeat_n(0u8, sent));
            let _ = tokio::time::timeout(Duration::from_millis(300), c.send_raw(&head)).await;
            c
        }
    };
    // Twelve clients each announce a 2 MiB request and send 512 KiB of it: one fits in the large
    // requests' share (3.5 MiB), the others wait.
    let mut partial = Vec::new();
    for _ in 0..12 {
        partial.push(announce(2 * MIB, MIB / 2).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // (The waiting one holds what is left of the share while it waits.)
    let in_use = b.broker.request_memory.in_use();
    assert!(
        in_use <= 3 * MIB + MIB / 2,
        "{in_use} bytes: past the large requests' share"
    );
    assert!(in_use >= 2 * MIB, "{in_use}");
    // A small request is served meanwhile.
    let mut small = b.client().await;
    let (_, frame) = small.frame(ApiKey::ApiVersions, 3, &api_versions());
    small.send_raw(&frame).await;
    assert!(matches!(small.try_read_frame(2000).await, Some(Some(_))));
    // Small requests announced and not sent fill the small requests' share and the rest.
    for _ in 0..8 {
        partial.push(announce(400 << 10, 100 << 10).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let in_use = b.broker.request_memory.in_use();
    assert!(in_use <= 4 * MIB, "{in_use} bytes buffered");
    assert!(
        in_use >= 3 * MIB + MIB / 2,
        "the budget is in use: {in_use}"
    );
    // Now a small request waits for the budget...
    small.send_raw(&frame).await;
    assert!(
        small.try_read_frame(300).await.is_none(),
        "read past the budget"
    );
    // ...and is served once the partial requests' bytes come back (their clients go away).
    partial.clear();
    assert!(
        matches!(small.try_read_frame(5000).await, Some(Some(_))),
        "not served after the budget came back"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.broker.request_memory.in_use(), 0);
}

#[test]
fn queued_request_bytes_must_hold_the_largest_request() {
    let raw = [
        ("queued.max.request.bytes", "1000"),
        ("socket.request.max.bytes", "2000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let e = gregor::Config::from_map(raw).unwrap_err().to_string();
    assert!(
        e.contains("queued.max.request.bytes must be larger than socket.request.max.bytes"),
        "{e}"
    );
}
