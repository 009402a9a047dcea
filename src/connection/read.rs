//! The reading side of a connection: frames off the socket (or TLS stream), each holding its share
//! of `queued.max.request.bytes` and of the connection's read-ahead until it has been handled.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::codec;
use crate::request_memory::Held;

/// Bytes of requests read ahead of the one being handled; a larger request is read ahead alone.
/// What a client that stops reading its responses can make the broker hold (Kafka holds one
/// request per connection: it reads none while a response is unsent).
const READ_AHEAD_BYTES: usize = 1 << 20;
/// Most bytes of the frame being assembled read from the socket at once (its budget is held).
const READ_CHUNK: usize = 16 << 20;
/// Bytes per second a request must arrive at, on average, once `gregor.request.receive.timeout.ms`
/// has passed (16 KiB/s: a 10 MB request on a 2 Mbit/s link is fine, a byte now and then is not).
const MIN_RECEIVE_RATE: usize = 16 * 1024;
/// Bytes read beyond the frame being assembled (the starts of pipelined requests): the only
/// buffered bytes not covered by `queued.max.request.bytes`.
const SLACK: usize = 16 * 1024;

/// What the reader may take from a client, changed by the request loop when a SASL client
/// authenticates.
pub(super) struct Limits {
    pub(super) max_frame: AtomicUsize,
    /// The client has not authenticated yet (SASL listeners).
    pub(super) authenticating: AtomicBool,
}

/// A request frame as it leaves the reader: when it arrived, its bytes, and the share of
/// `queued.max.request.bytes` and of the connection's read-ahead it holds until it has been
/// handled. Boxed, so the channel's slots (allocated for every connection, idle or not) stay
/// small.
pub(super) type Queued = Box<(Instant, Bytes, Held, OwnedSemaphorePermit)>;

/// Why the reader stopped.
pub(super) enum ReadEnd {
    /// The client closed the connection (or the handling side stopped taking requests).
    Eof,
    /// The broker is shutting down: requests in progress finish and are answered.
    Stopped,
    Closed(String),
}

/// Reads frames off the socket. As Kafka does, a frame takes its whole size from
/// `queued.max.request.bytes` once its length prefix has arrived, waiting while the budget is
/// spent (the bytes stay in the socket: back-pressure), and then is read to its end without
/// waiting again, so frames being assembled always complete; a frame not complete within
/// `receive_timeout` of that (extended while its bytes keep coming at `MIN_RECEIVE_RATE`) closes
/// the connection: a client announcing a request and not sending it holds its budget no longer.
pub(super) async fn read_frames<R: AsyncRead + Unpin>(
    mut rd: R,
    limits: Arc<Limits>,
    idle: std::time::Duration,
    receive_timeout: std::time::Duration,
    tx: mpsc::Sender<Queued>,
    stop: CancellationToken,
    broker: Arc<Broker>,
) -> ReadEnd {
    let max_frame = &limits.max_frame;
    let ahead = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    let mut buf = BytesMut::new();
    // The budgets of the frame at the front of `buf`, once its length is known: its share of the
    // read-ahead (taken first: it waits while the handler is behind) and of the broker's memory.
    let mut held: Option<(Held, OwnedSemaphorePermit)> = None;
    // When the frame being assembled started (its budget granted).
    let mut started: Option<tokio::time::Instant> = None;
    'frames: loop {
        // Smaller until a SASL client has authenticated (`sasl.server.max.receive.size`), whose
        // frames come from a budget of their own: unauthenticated clients announcing frames they
        // never send cannot make anyone else wait.
        let authenticating = limits.authenticating.load(Ordering::Acquire);
        let max_frame = max_frame.load(Ordering::Acquire);
        let memory = if authenticating {
            &broker.unauthenticated_memory
        } else {
            &broker.request_memory
        };
        let want = loop {
            let len = match codec::frame_len(&buf, max_frame) {
                Ok(Some(len)) => len,
                Ok(None) => break SLACK,
                Err(e) => return ReadEnd::Closed(e.to_string()),
            };
            if held.is_none() {
                let share = u32::try_from((4 + len).min(READ_AHEAD_BYTES)).expect("1 MiB");
                let turn = tokio::select! {
                    t = ahead.clone().acquire_many_owned(share) => t,
                    _ = stop.cancelled() => return ReadEnd::Stopped,
                };
                let Ok(turn) = turn else {
                    return ReadEnd::Eof;
                };
                let h = tokio::select! {
                    h = memory.reserve(4 + len) => h,
                    _ = stop.cancelled() => return ReadEnd::Stopped,
                };
                held = Some((h, turn));
                started = Some(tokio::time::Instant::now());
            }
            if buf.len() < 4 + len {
                break (4 + len - buf.len()).min(READ_CHUNK) + SLACK;
            }
            let frame = codec::split_frame(&mut buf, max_frame)
                .ok()
                .flatten()
                .expect("a whole frame is buffered");
            let (h, turn) = held.take().expect("reserved above");
            started = None;
            if tx
                .send(Box::new((Instant::now(), frame, h, turn)))
                .await
                .is_err()
            {
                return ReadEnd::Eof;
            }
            if authenticating {
                // Until authenticated, one frame at a time: the next is read under the limits the
                // answer to this one leaves (a request sent right behind the SaslAuthenticate
                // that completes may be as large as any).
                let all = u32::try_from(READ_AHEAD_BYTES).expect("1 MiB");
                let answered = tokio::select! {
                    a = ahead.acquire_many(all) => a,
                    _ = stop.cancelled() => return ReadEnd::Stopped,
                };
                if answered.is_err() {
                    return ReadEnd::Eof;
                }
                continue 'frames;
            }
        };
        // A frame must arrive within `receive_timeout`, plus a second for every `MIN_RECEIVE_RATE`
        // bytes of it received: a slow link that keeps sending gets there, a trickle does not.
        let deadline = started.map(|t| {
            t + receive_timeout
                + std::time::Duration::from_secs_f64(buf.len() as f64 / MIN_RECEIVE_RATE as f64)
        });
        let pending = buf.len();
        let announced = codec::frame_len(&buf, max_frame)
            .ok()
            .flatten()
            .unwrap_or(0);
        buf.reserve(want);
        let mut room = (&mut buf).limit(want);
        // `read_buf` reads nothing when another branch wins (cancel safe).
        let read = tokio::select! {
            r = tokio::time::timeout(idle, rd.read_buf(&mut room)) => r,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                metrics::counter!("gregor_connections_closed_slow_request_total").increment(1);
                return ReadEnd::Closed(format!(
                    "a request of {announced} bytes not received within {} ms (gregor.request.receive.timeout.ms) plus 1 s per {} bytes received ({pending} so far)",
                    receive_timeout.as_millis(),
                    MIN_RECEIVE_RATE,
                ));
            }
            _ = stop.cancelled() => return ReadEnd::Stopped,
        };
        match read {
            Ok(Ok(0)) if pending == 0 => return ReadEnd::Eof,
            Ok(Ok(0)) => {
                return ReadEnd::Closed(format!(
                    "connection closed in the middle of a frame ({pending} bytes pending)"
                ))
            }
            Ok(Ok(_)) => {}
            // Between requests, a TLS client closing without close_notify (most do) or a client
            // resetting its connection (one that left TLS 1.3 session tickets unread) just left.
            Ok(Err(e))
                if pending == 0
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                    ) =>
            {
                return ReadEnd::Eof
            }
            Ok(Err(e)) => return ReadEnd::Closed(format!("read error: {e}")),
            Err(_) => {
                metrics::counter!("gregor_connections_closed_idle_total").increment(1);
                return ReadEnd::Closed(format!(
                    "idle for {} ms (connections.max.idle.ms)",
                    idle.as_millis()
                ));
            }
        }
    }
}
