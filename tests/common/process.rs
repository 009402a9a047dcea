//! The `gregor` binary run as a separate process: started under resource limits, signalled, and
//! spoken to over a blocking socket.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub const BIN: &str = env!("CARGO_BIN_EXE_gregor");

/// Starts a broker with `start`, given `ports` free ports, and returns it once it listens on every
/// one of them. A port found free can be taken by another test's broker before this one binds it,
/// and connecting would then reach that other broker: readiness is the child's own listening
/// socket, and a child that exits because its port was taken is started again on fresh ports.
pub fn start_listening(ports: usize, mut start: impl FnMut(&[u16]) -> Child) -> (Child, Vec<u16>) {
    for _ in 0..5 {
        let chosen: Vec<u16> = (0..ports).map(|_| free_port()).collect();
        let mut child = start(&chosen);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if chosen.iter().all(|p| listens(child.id(), *p)) {
                return (child, chosen);
            }
            if child.try_wait().unwrap().is_some() {
                let (_, out) = super::finish(child);
                assert!(out.contains("in use"), "the broker exited: {out}");
                break;
            }
            assert!(Instant::now() < deadline, "broker did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("five sets of free ports were all taken before the broker bound them")
}

/// Whether process `pid` holds a socket listening on TCP `port` (from /proc).
fn listens(pid: u32, port: u16) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let sockets: std::collections::HashSet<String> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .any(|f| {
                f.len() > 9 && f[1].ends_with(&local) && f[3] == "0A" && sockets.contains(f[9])
            })
    })
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
    let (child, ports) = start_listening(1, |ports| {
        let log_dirs = format!("log.dirs={}", data.display());
        let listeners = format!("listeners=PLAINTEXT://127.0.0.1:{}", ports[0]);
        let script = format!("{limit} && exec \"$0\" \"$@\"");
        let mut args = vec!["-c", &script, BIN];
        for o in [log_dirs.as_str(), &listeners, "metrics.address=127.0.0.1:0"]
            .into_iter()
            .chain(overrides.iter().copied())
        {
            args.extend(["--override", o]);
        }
        Command::new("sh")
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    });
    (child, ports[0])
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
