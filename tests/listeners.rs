//! The `gregor` binary's listeners: every client listener in `listeners` is served, and clients are
//! told the advertised endpoint of the listener they connected to (Metadata, FindCoordinator,
//! DescribeCluster), as Kafka does; a listener whose security protocol gregor does not implement
//! stops start-up instead of being served without that security.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::start_listening;
use common::{finish, free_port, Client};
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;

const BIN: &str = env!("CARGO_BIN_EXE_gregor");

fn spawn(data: &std::path::Path, overrides: &[String]) -> Child {
    let mut cmd = Command::new(BIN);
    for o in [
        format!("log.dirs={}", data.display()),
        "metrics.address=127.0.0.1:0".into(),
    ]
    .iter()
    .chain(overrides)
    {
        cmd.args(["--override", o]);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn connect(port: u16) -> Client {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
            return Client::from_stream(s);
        }
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a client connected to `port` is told about the broker, by Metadata, FindCoordinator and
/// DescribeCluster.
async fn endpoints_told(port: u16) -> Vec<(String, i32)> {
    let mut c = connect(port).await;
    let m: MetadataResponse = c
        .request(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    let mut find = FindCoordinatorRequest::default();
    find.coordinator_keys = vec![StrBytes::from_static_str("g")];
    let f: FindCoordinatorResponse = c.request(ApiKey::FindCoordinator, 4, &find).await;
    let d: DescribeClusterResponse = c
        .request(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default(),
        )
        .await;
    vec![
        (m.brokers[0].host.to_string(), m.brokers[0].port),
        (f.coordinators[0].host.to_string(), f.coordinators[0].port),
        (d.brokers[0].host.to_string(), d.brokers[0].port),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_listener_is_served_and_tells_clients_its_own_advertised_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (child, ports) = start_listening(2, |p| {
        let (inside, outside) = (p[0], p[1]);
        spawn(
            dir.path(),
            &[
                format!("listeners=PLAINTEXT://127.0.0.1:{inside},EXTERNAL://127.0.0.1:{outside},CONTROLLER://127.0.0.1:{}", free_port()),
                format!("advertised.listeners=PLAINTEXT://127.0.0.1:{inside},EXTERNAL://localhost:{outside}"),
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
                "controller.listener.names=CONTROLLER".into(),
            ],
        )
    });
    let (inside, outside) = (ports[0], ports[1]);
    let inside_told = endpoints_told(inside).await;
    let outside_told = endpoints_told(outside).await;
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        inside_told,
        vec![("127.0.0.1".to_string(), i32::from(inside)); 3]
    );
    assert_eq!(
        outside_told,
        vec![("localhost".to_string(), i32::from(outside)); 3]
    );
    assert!(
        out.contains(&format!(
            "PLAINTEXT=127.0.0.1:{inside} (advertised 127.0.0.1:{inside}), EXTERNAL=127.0.0.1:{outside} (advertised localhost:{outside})"
        )),
        "{out}"
    );
}

/// `listeners=SASL_PLAINTEXT://...` used to be served in plaintext, with no authentication at all
/// (it now authenticates, see tests/sasl.rs); a second listener was silently not served. A
/// listener whose security is not configured (no SASL mechanism gregor has, no key store) stops
/// start-up, and nothing is served.
#[test]
fn a_listener_gregor_cannot_secure_stops_start_up() {
    for (listeners, map, named) in [
        (
            "SASL_PLAINTEXT://127.0.0.1:{p}",
            None,
            "SASL mechanism GSSAPI of listener SASL_PLAINTEXT is not implemented",
        ),
        (
            "PLAINTEXT://127.0.0.1:{p},SECURE://127.0.0.1:{q}",
            Some("PLAINTEXT:PLAINTEXT,SECURE:SSL"),
            "listener.name.secure.ssl.keystore.location",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (p, q) = (free_port(), free_port());
        let mut overrides = vec![format!(
            "listeners={}",
            listeners
                .replace("{p}", &p.to_string())
                .replace("{q}", &q.to_string())
        )];
        overrides.extend(map.map(|m| format!("listener.security.protocol.map={m}")));
        let (code, out) = finish(spawn(dir.path(), &overrides));
        assert_ne!(code, 0, "{out}");
        assert!(out.contains(named), "{out}");
        assert!(std::net::TcpStream::connect(("127.0.0.1", p)).is_err());
    }
}

/// `max.connections` is shared by every listener, and an idle listener holds no share of it: with
/// two listeners and `max.connections=2`, one listener served one connection only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_is_shared_and_idle_listeners_hold_none_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let (child, ports) = start_listening(2, |p| {
        spawn(
            dir.path(),
            &[
                format!(
                    "listeners=PLAINTEXT://127.0.0.1:{},OTHER://127.0.0.1:{}",
                    p[0], p[1]
                ),
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT".into(),
                "max.connections=2".into(),
            ],
        )
    });
    let (a, b) = (ports[0], ports[1]);
    let mut first = connect(a).await;
    let mut second = connect(a).await;
    ask(&mut first).await;
    assert!(answered_within(&mut first, 5000).await, "first connection");
    ask(&mut second).await;
    assert!(
        answered_within(&mut second, 5000).await,
        "second connection on the same listener"
    );
    let mut third = connect(b).await;
    ask(&mut third).await;
    assert!(
        !answered_within(&mut third, 700).await,
        "a third connection past max.connections"
    );
    drop(first);
    assert!(
        answered_within(&mut third, 5000).await,
        "served once a connection closed"
    );
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
}

/// Sends an ApiVersions request on `c`.
async fn ask(c: &mut Client) {
    use tokio::io::AsyncWriteExt;
    let (_, frame) = c.frame(
        ApiKey::ApiVersions,
        3,
        &kafka_protocol::messages::ApiVersionsRequest::default(),
    );
    c.stream.write_all(&frame).await.unwrap();
}

/// Whether an answer arrives on `c` within `ms` (a connection beyond `max.connections` waits,
/// unread, in the backlog).
async fn answered_within(c: &mut Client, ms: u64) -> bool {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    if tokio::time::timeout(Duration::from_millis(ms), c.stream.read_exact(&mut len))
        .await
        .is_err()
    {
        return false;
    }
    let mut rest = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    c.stream.read_exact(&mut rest).await.unwrap();
    true
}

/// A listener on port 0 binds an ephemeral port, and clients are told that port (they were told
/// port 0 and could not connect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_port_is_advertised_as_bound() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(dir.path(), &["listeners=PLAINTEXT://127.0.0.1:0".into()]);
    let stdout = child.stdout.take().unwrap();
    let line = std::io::BufReader::new(stdout)
        .lines()
        .map(Result::unwrap)
        .find(|l| l.contains("gregor started"))
        .unwrap();
    let port: u16 = line
        .split("PLAINTEXT=127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(port, 0);
    assert_eq!(
        endpoints_told(port).await,
        vec![("127.0.0.1".to_string(), i32::from(port)); 3]
    );
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success());
}
