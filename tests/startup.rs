//! The `gregor` binary's start-up contract: a stock Kafka server.properties starts it (with one
//! warning per key not honoured yet), invalid values stop it naming key and value, a newer storage
//! format is refused, and SIGTERM exits 0.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_gregor");

fn spawn(args: &[String]) -> Child {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "broker did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(mut child: Child) -> (i32, String) {
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (status.code().unwrap_or(-1), out)
}

#[test]
fn stock_kafka_server_properties_starts_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = spawn(&[
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kafka-4-server.properties"
        )
        .to_string(),
        "--override".into(),
        format!("listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://:9093"),
        "--override".into(),
        format!("log.dirs={}", dir.path().display()),
        "--override".into(),
        "no.such.key=1".into(),
    ]);
    wait_for_port(port);
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

/// Sends a signal with the `kill` command (no unsafe code in tests).
fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
