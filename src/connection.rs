//! One client connection: length-prefixed frames with a size limit, read ahead while requests are
//! handled (clients pipeline, up to `READ_AHEAD` frames and `READ_AHEAD_BYTES`), handled one at a
//! time and answered strictly in order, as Kafka does. As Kafka's `connections.max.idle.ms`, a
//! connection neither sending nor taking bytes for that long is closed: a client that stops
//! reading its responses holds one request and one response, and only for that long.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use std::io::IoSlice;
use std::time::Instant;
use tokio::io::{AsyncWriteExt, Interest};

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::codec;
use crate::condition::Condition;
use crate::config::Listener;
use crate::dispatch::{self, Outcome};
use crate::log::OpenRegion;
use crate::request_memory::Held;
use crate::security::sasl::{Authenticator, Route, Step};
use crate::wire::Chunk;

/// Connections closed for a bad frame, an unsupported request or a failed write: logged once,
/// then counted (see `condition`).
static CLOSED_ON_ERROR: Condition = Condition::new("connections closed on error");

/// Requests read ahead of the one being handled.
const READ_AHEAD: usize = 8;
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

/// A request frame as it leaves the reader: when it arrived, its bytes, and the share of
/// `queued.max.request.bytes` and of the connection's read-ahead it holds until it has been
/// handled. Boxed, so the channel's slots (allocated for every connection, idle or not) stay
/// small.
type Queued = Box<(Instant, Bytes, Held, OwnedSemaphorePermit)>;

/// Why the reader stopped.
enum ReadEnd {
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
async fn read_frames(
    rd: OwnedReadHalf,
    max_frame: Arc<AtomicUsize>,
    idle: std::time::Duration,
    receive_timeout: std::time::Duration,
    tx: mpsc::Sender<Queued>,
    stop: CancellationToken,
    broker: Arc<Broker>,
) -> ReadEnd {
    let memory = &broker.request_memory;
    let ahead = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    let mut buf = BytesMut::new();
    // The budgets of the frame at the front of `buf`, once its length is known: its share of the
    // read-ahead (taken first: it waits while the handler is behind) and of the broker's memory.
    let mut held: Option<(Held, OwnedSemaphorePermit)> = None;
    // When the frame being assembled started (its budget granted).
    let mut started: Option<tokio::time::Instant> = None;
    loop {
        // Smaller until a SASL client has authenticated (`sasl.server.max.receive.size`).
        let max_frame = max_frame.load(Ordering::Relaxed);
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
        };
        // A frame must arrive within `receive_timeout`, plus a second for every `MIN_RECEIVE_RATE`
        // bytes of it received: a slow link that keeps sending gets there, a trickle does not.
        let deadline = started.map(|t| {
            t + receive_timeout
                + std::time::Duration::from_secs_f64(buf.len() as f64 / MIN_RECEIVE_RATE as f64)
        });
        tokio::select! {
            r = tokio::time::timeout(idle, rd.readable()) => match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return ReadEnd::Closed(format!("read error: {e}")),
                Err(_) => {
                    metrics::counter!("gregor_connections_closed_idle_total").increment(1);
                    return ReadEnd::Closed(format!("idle for {} ms (connections.max.idle.ms)", idle.as_millis()));
                }
            },
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                metrics::counter!("gregor_connections_closed_slow_request_total").increment(1);
                return ReadEnd::Closed(format!(
                    "a request of {} bytes not received within {} ms (gregor.request.receive.timeout.ms) plus 1 s per {} bytes received ({} so far)",
                    codec::frame_len(&buf, max_frame).ok().flatten().unwrap_or(0),
                    receive_timeout.as_millis(),
                    MIN_RECEIVE_RATE,
                    buf.len()
                ));
            }
            _ = stop.cancelled() => return ReadEnd::Stopped,
        }
        buf.reserve(want);
        match rd.try_read_buf(&mut (&mut buf).limit(want)) {
            Ok(0) if buf.is_empty() => return ReadEnd::Eof,
            Ok(0) => {
                return ReadEnd::Closed(format!(
                    "connection closed in the middle of a frame ({} bytes pending)",
                    buf.len()
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return ReadEnd::Closed(format!("read error: {e}")),
        }
    }
}

/// Writes a response's chunks in order: runs of chunks in memory with as few vectored writes as
/// the socket allows, file regions with `sendfile` from the page cache. Fails when the socket
/// takes no byte for `idle` (the client stopped reading).
async fn write_chunks(
    wr: &mut OwnedWriteHalf,
    chunks: &[Chunk],
    idle: std::time::Duration,
) -> std::io::Result<()> {
    let mut rest = chunks;
    while let Some(first) = rest.first() {
        match first {
            Chunk::File(region) => {
                send_region(wr.as_ref(), region, idle).await?;
                rest = &rest[1..];
            }
            Chunk::Memory(_) => {
                let run = rest
                    .iter()
                    .position(|c| matches!(c, Chunk::File(_)))
                    .unwrap_or(rest.len());
                write_memory(wr, &rest[..run], idle).await?;
                rest = &rest[run..];
            }
        }
    }
    Ok(())
}

/// `io`, failing when it makes no progress for `idle`.
async fn progress<T>(
    idle: std::time::Duration,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(idle, io).await.unwrap_or_else(|_| {
        metrics::counter!("gregor_connections_closed_idle_total").increment(1);
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "the client took no response bytes for {} ms (connections.max.idle.ms)",
                idle.as_millis()
            ),
        ))
    })
}

async fn write_memory(
    wr: &mut OwnedWriteHalf,
    chunks: &[Chunk],
    idle: std::time::Duration,
) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks
        .iter()
        .filter_map(|c| match c {
            Chunk::Memory(b) => Some(IoSlice::new(b)),
            Chunk::File(_) => None,
        })
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = progress(idle, wr.write_vectored(rest)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// Sends a file region to the socket without copying it through userspace.
async fn send_region(
    socket: &TcpStream,
    region: &OpenRegion,
    idle: std::time::Duration,
) -> std::io::Result<()> {
    let mut position = region.position;
    let end = region.position + region.len;
    while position < end {
        progress(idle, socket.writable()).await?;
        let want = usize::try_from(end - position).unwrap_or(usize::MAX);
        let sent = socket.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(socket, &*region.file, Some(&mut position), want)
                .map_err(std::io::Error::from)
        });
        match sent {
            Ok(0) => {
                // A region is below the high watermark of a file only ever appended to (or kept
                // open after deletion), so this means the file was cut behind the broker's back.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "segment file ended {} bytes before the records being sent",
                        end - position
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Serves one connection until the client leaves, a bad frame closes it, or shutdown.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<Listener>,
    broker: Arc<Broker>,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    metrics::counter!("gregor_connections_created_total").increment(1);
    metrics::gauge!("gregor_connections_open").increment(1.0);
    tracing::debug!(%peer, "connection opened");
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Queued>(READ_AHEAD);
    let gone = CancellationToken::new();
    let idle = std::time::Duration::from_millis(broker.config.connections_max_idle_ms);
    let full_frame = broker.config.socket_request_max_bytes;
    let mut auth = listener
        .sasl
        .clone()
        .map(|config| Authenticator::new(config, listener.clone()));
    let max_frame = Arc::new(AtomicUsize::new(
        auth.as_ref()
            .map_or(full_frame, |a| a.max_frame(full_frame)),
    ));
    let reading = read_frames(
        rd,
        max_frame.clone(),
        idle,
        std::time::Duration::from_millis(broker.config.request_receive_timeout_ms),
        tx,
        stop.clone(),
        broker.clone(),
    );
    let peer_gone = gone.clone();
    let reader = tokio::spawn(async move {
        let end = reading.await;
        if !matches!(end, ReadEnd::Stopped) {
            peer_gone.cancel();
        }
        end
    });
    let mut close_reason = None;
    while let Some(queued) = rx.recv().await {
        let (arrived, frame, held, turn) = *queued;
        let api = dispatch::api_label(&frame);
        metrics::histogram!("gregor_request_queue_seconds", "api" => api)
            .record(arrived.elapsed().as_secs_f64());
        metrics::gauge!("gregor_requests_in_flight").increment(1.0);
        // A SASL client's frames go to its authenticator until it has authenticated.
        let step = match auth.as_mut() {
            Some(a) => match a.route(&frame) {
                Route::Authenticator => {
                    let step = a.take(&broker, frame).await;
                    if a.done() {
                        max_frame.store(full_frame, Ordering::Relaxed);
                    }
                    step
                }
                Route::Dispatch => Step::Dispatch(frame),
                Route::Expired => Step::Answer(Outcome::Close(
                    "its SASL session expired (connections.max.reauth.ms) and it did not re-authenticate".into(),
                )),
            },
            None => Step::Dispatch(frame),
        };
        let outcome = match step {
            // Boxed: the largest handler future is then allocated while a request runs, not
            // for the life of every (mostly idle) connection.
            Step::Dispatch(frame) => {
                Box::pin(dispatch::dispatch(
                    &broker,
                    peer,
                    &listener,
                    gone.clone(),
                    frame,
                ))
                .await
            }
            Step::Answer(outcome) => outcome,
        };
        drop(held);
        metrics::gauge!("gregor_requests_in_flight").decrement(1.0);
        match outcome {
            Outcome::Respond(chunks) => {
                let sending = Instant::now();
                if let Err(e) = write_chunks(&mut wr, &chunks, idle).await {
                    close_reason = Some(format!("write error: {e}"));
                    break;
                }
                metrics::histogram!("gregor_response_send_seconds", "api" => api)
                    .record(sending.elapsed().as_secs_f64());
                // Read-ahead resumes once the response is out: a client that does not read its
                // responses gets no more requests read.
                drop(turn);
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                close_reason = Some(reason);
                break;
            }
            Outcome::RespondThenClose(chunks, reason) => {
                let _ = write_chunks(&mut wr, &chunks, idle).await;
                close_reason = Some(reason);
                break;
            }
        }
    }
    drop(rx);
    reader.abort();
    if close_reason.is_none() {
        if let Ok(ReadEnd::Closed(reason)) = reader.await {
            close_reason = Some(reason);
        }
    }
    let _ = wr.shutdown().await;
    match close_reason {
        Some(reason) => {
            // A client that retries what gets it closed would otherwise write a line per try.
            CLOSED_ON_ERROR.occurred(|| format!("closing connection from {peer}: {reason}"));
            metrics::counter!("gregor_connections_closed_on_error_total").increment(1);
        }
        None => tracing::debug!(%peer, "connection closed"),
    }
    metrics::gauge!("gregor_connections_open").decrement(1.0);
    metrics::counter!("gregor_connections_closed_total").increment(1);
}
