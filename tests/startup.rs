//! The `gregor` binary's start-up contract: a stock Kafka server.properties starts it (with one
//! warning per key not honoured yet), invalid values stop it naming key and value, a newer storage
//! format is refused, and SIGTERM exits 0.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::process::{send_signal, spawn_limited, start_listening, BIN};
use common::{finish, free_port};

fn spawn(args: &[String]) -> Child {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn stock_kafka_server_properties_starts_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (child, _) = start_listening(1, |p| {
        spawn(&[
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/kafka-4-server.properties"
            )
            .to_string(),
            "--override".into(),
            format!(
                "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://:9093",
                p[0]
            ),
            "--override".into(),
            format!("log.dirs={}", dir.path().display()),
            "--override".into(),
            "no.such.key=1".into(),
        ])
    });
    send_signal(child.id(), "TERM");
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("gregor started"), "{out}");
    assert_eq!(out.matches("key=num.network.threads").count(), 1, "{out}");
    assert!(
        out.contains("unknown config key") && out.contains("key=no.such.key"),
        "{out}"
    );
    // Every stock key is a Kafka key: only the one we added is unknown.
    assert_eq!(out.matches("unknown config key").count(), 1, "{out}");
    assert!(out.contains("shutdown complete"), "{out}");
    assert!(dir.path().join("gregor.properties").exists());
}

#[test]
fn invalid_value_stops_start_up_naming_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn(&[
        "--override".into(),
        format!("log.dirs={}", dir.path().display()),
        "--override".into(),
        "message.max.bytes=lots".into(),
    ]);
    let (code, out) = finish(child);
    assert_ne!(code, 0);
    assert!(
        out.contains("message.max.bytes") && out.contains("lots"),
        "{out}"
    );
}

#[test]
fn a_newer_storage_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gregor.properties"),
        "format.version=999\ncluster.id=abc\n",
    )
    .unwrap();
    let port = free_port();
    let child = spawn(&[
        "--override".into(),
        format!("log.dirs={}", dir.path().display()),
        "--override".into(),
        format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
    ]);
    let (code, out) = finish(child);
    assert_ne!(code, 0);
    assert!(out.contains("format version 999"), "{out}");
}

/// Issue 16 item 0: under an address-space limit (`ulimit -v`, as hardened hosts and some
/// container runtimes enforce memory), a request whose array count, string or bytes length claims
/// more than the frame holds must not make the decoder ask for that much memory: it aborted the
/// whole broker (`memory allocation of 154618822584 bytes failed`) from a 4-byte Metadata body.
/// Each such frame now closes only its own connection.
#[test]
fn lying_counts_under_an_address_space_limit_close_only_their_connection() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn_limited("ulimit -v 8388608", dir.path(), &[]);
    // (api key, version, flexible header, body)
    let lies: [(i16, i16, bool, &[u8]); 4] = [
        // Metadata v1: topics array of 2^31-1 elements.
        (3, 1, false, &[0x7f, 0xff, 0xff, 0xff]),
        // Metadata v12: compact topics array of 2^32-2 elements.
        (3, 12, true, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        // CreateTopics v5: one topic whose compact name claims 4 GiB.
        (19, 5, true, &[0x02, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        // DescribeConfigs v1: resources array of 2^31-1 elements.
        (32, 1, false, &[0x7f, 0xff, 0xff, 0xff]),
    ];
    // And a lie inside a large frame: Produce v3 whose topics array claims 2^31-1 elements with
    // 100 MiB of zeros after it (reserving one element per remaining byte still asked for 10 GB).
    let mut produce = Vec::new();
    produce.extend((-1i16).to_be_bytes());
    produce.extend(1i16.to_be_bytes());
    produce.extend(1000i32.to_be_bytes());
    produce.extend(i32::MAX.to_be_bytes());
    produce.resize(100 * 1024 * 1024 - 64, 0);
    let lies = lies
        .iter()
        .copied()
        .chain([(0i16, 3i16, false, produce.as_slice())]);
    for (api, version, flexible, body) in lies {
        let mut frame = Vec::new();
        frame.extend(api.to_be_bytes());
        frame.extend(version.to_be_bytes());
        frame.extend(7i32.to_be_bytes());
        frame.extend((-1i16).to_be_bytes());
        if flexible {
            frame.push(0);
        }
        frame.extend_from_slice(body);
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(&(frame.len() as i32).to_be_bytes()).unwrap();
        s.write_all(&frame).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(
            child.try_wait().unwrap().is_none(),
            "api {api} v{version} killed the broker: {}",
            finish(child).1
        );
        assert!(rest.is_empty(), "api {api} v{version} was answered");
    }
    // The broker still answers: ApiVersions v0.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut frame = Vec::new();
    frame.extend(18i16.to_be_bytes());
    frame.extend(0i16.to_be_bytes());
    frame.extend(9i32.to_be_bytes());
    frame.extend((-1i16).to_be_bytes());
    s.write_all(&(frame.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&frame).unwrap();
    let mut head = [0u8; 8];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_exact(&mut head).unwrap();
    assert_eq!(i32::from_be_bytes(head[4..8].try_into().unwrap()), 9);
    send_signal(child.id(), "TERM");
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
}

/// The harness's readiness check: a port found free can be bound by another test's broker before
/// this one binds it. Connecting used to count as ready, so a test talked to the other broker and
/// failed when that broker stopped (CI: "Connection reset by peer" on the first request). Readiness
/// is now the child's own listening socket, and a child that exits because its port was taken is
/// started again on fresh ports.
#[test]
fn a_port_taken_by_another_process_is_not_mistaken_for_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let mut thief = None;
    let (child, ports) = start_listening(1, |p| {
        if thief.is_none() {
            thief = Some(std::net::TcpListener::bind(("127.0.0.1", p[0])).unwrap());
        }
        spawn(&[
            "--override".into(),
            format!("log.dirs={}", dir.path().display()),
            "--override".into(),
            format!("listeners=PLAINTEXT://127.0.0.1:{}", p[0]),
            "--override".into(),
            "metrics.address=127.0.0.1:0".into(),
        ])
    });
    let taken = thief.unwrap().local_addr().unwrap().port();
    assert_ne!(ports[0], taken);
    send_signal(child.id(), "TERM");
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("127.0.0.1:{}", ports[0])), "{out}");
}
