//! One client connection: length-prefixed frames with a size limit, read ahead while requests are
//! handled (clients pipeline), handled one at a time and answered strictly in order, as Kafka does.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use std::io::IoSlice;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::dispatch::{self, Outcome};

/// Requests read ahead of the one being handled.
const READ_AHEAD: usize = 8;
/// Initial read buffer; it grows with the frames actually arriving, never with a claimed length.
const READ_CHUNK: usize = 64 * 1024;

/// Why the reader stopped.
enum ReadEnd {
    Eof,
    Closed(String),
}

async fn read_frames(
    mut rd: OwnedReadHalf,
    max_frame: usize,
    idle: std::time::Duration,
    tx: mpsc::Sender<(Instant, Bytes)>,
    stop: CancellationToken,
) -> ReadEnd {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        while buf.len() >= 4 {
            let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            if len < 0 || len as usize > max_frame {
                return ReadEnd::Closed(format!(
                    "frame of {len} bytes exceeds socket.request.max.bytes ({max_frame})"
                ));
            }
            let len = len as usize;
            if buf.len() < 4 + len {
                buf.reserve((4 + len - buf.len()).min(16 << 20));
                break;
            }
            buf.advance(4);
            let frame = buf.split_to(len).freeze();
            if tx.send((Instant::now(), frame)).await.is_err() {
                return ReadEnd::Eof;
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(READ_CHUNK);
        }
        let n = tokio::select! {
            r = tokio::time::timeout(idle, rd.read_buf(&mut buf)) => match r {
                Ok(r) => r,
                Err(_) => {
                    metrics::counter!("gregor_connections_closed_idle_total").increment(1);
                    return ReadEnd::Closed(format!("idle for {} ms (connections.max.idle.ms)", idle.as_millis()));
                }
            },
            _ = stop.cancelled() => return ReadEnd::Eof,
        };
        match n {
            Ok(0) if buf.is_empty() => return ReadEnd::Eof,
            Ok(0) => {
                return ReadEnd::Closed(format!(
                    "connection closed in the middle of a frame ({} bytes pending)",
                    buf.len()
                ))
            }
            Ok(_) => {}
            Err(e) => return ReadEnd::Closed(format!("read error: {e}")),
        }
    }
}

/// Writes a response's chunks in order with as few (vectored) writes as the socket allows.
async fn write_chunks(wr: &mut OwnedWriteHalf, chunks: &[Bytes]) -> std::io::Result<()> {
    if let [one] = chunks {
        return wr.write_all(one).await;
    }
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = wr.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// Serves one connection until the client leaves, a bad frame closes it, or shutdown.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    metrics::counter!("gregor_connections_created_total").increment(1);
    metrics::gauge!("gregor_connections_open").increment(1.0);
    tracing::debug!(%peer, "connection opened");
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(READ_AHEAD);
    let reader = tokio::spawn(read_frames(
        rd,
        broker.config.socket_request_max_bytes,
        std::time::Duration::from_millis(broker.config.connections_max_idle_ms),
        tx,
        stop.clone(),
    ));
    let mut close_reason = None;
    while let Some((arrived, frame)) = rx.recv().await {
        let api = dispatch::api_label(&frame);
        metrics::histogram!("gregor_request_queue_seconds", "api" => api)
            .record(arrived.elapsed().as_secs_f64());
        metrics::gauge!("gregor_requests_in_flight").increment(1.0);
        let outcome = dispatch::dispatch(&broker, peer, frame).await;
        metrics::gauge!("gregor_requests_in_flight").decrement(1.0);
        match outcome {
            Outcome::Respond(chunks) => {
                let sending = Instant::now();
                if let Err(e) = write_chunks(&mut wr, &chunks).await {
                    close_reason = Some(format!("write error: {e}"));
                    break;
                }
                metrics::histogram!("gregor_response_send_seconds", "api" => api)
                    .record(sending.elapsed().as_secs_f64());
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
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
            tracing::warn!(%peer, %reason, "closing connection");
            metrics::counter!("gregor_connections_closed_on_error_total").increment(1);
        }
        None => tracing::debug!(%peer, "connection closed"),
    }
    metrics::gauge!("gregor_connections_open").decrement(1.0);
    metrics::counter!("gregor_connections_closed_total").increment(1);
}
