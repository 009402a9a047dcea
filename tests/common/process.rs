//! The `gregor` binary run as a separate process: started under resource limits, signalled, and
//! spoken to over a blocking socket.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub const BIN: &str = env!("CARGO_BIN_EXE_gregor");

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "broker did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a signal with the `kill` command (no unsafe code in tests).
pub fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Starts the broker on `data` from a shell that first runs `limit` (a `ulimit` command), as an
/// operator's service script would; returns it once it listens, with its port.
pub fn spawn_limited(limit: &str, data: &std::path::Path, overrides: &[&str]) -> (Child, u16) {
    let port = free_port();
    let log_dirs = format!("log.dirs={}", data.display());
    let listeners = format!("listeners=PLAINTEXT://127.0.0.1:{port}");
    let script = format!("{limit} && exec \"$0\" \"$@\"");
    let mut args = vec!["-c", &script, BIN];
    for o in [log_dirs.as_str(), &listeners, "metrics.address=127.0.0.1:0"]
        .into_iter()
        .chain(overrides.iter().copied())
    {
        args.extend(["--override", o]);
    }
    let child = Command::new("sh")
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(port);
    (child, port)
}

/// Sends one request over a blocking socket and decodes its answer.
pub fn request<Req, Resp>(s: &mut TcpStream, api: i16, version: i16, body: &Req) -> Resp
where
    Req: kafka_protocol::protocol::Encodable,
    Resp: kafka_protocol::protocol::Decodable,
{
    use bytes::{Buf, BufMut, BytesMut};
    use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable};
    use std::io::Write;
    let key = ApiKey::try_from(api).unwrap();
    let mut header = RequestHeader::default();
    header.request_api_key = api;
    header.request_api_version = version;
    header.correlation_id = 1;
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    s.write_all(&buf).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut frame = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut frame).unwrap();
    let mut frame = bytes::Bytes::from(frame);
    ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
    let resp = Resp::decode(&mut frame, version).unwrap();
    assert_eq!(frame.remaining(), 0);
    resp
}
