//! Connection limits: idle connections are closed after `connections.max.idle.ms`, a client over
//! `max.connections.per.ip` is closed at once, and at `max.connections` the broker stops accepting
//! until a connection closes — while existing connections keep being served.

mod common;

use std::time::{Duration, Instant};

use common::TestBroker;
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
