//! One client connection: length-prefixed frames with a size limit, read ahead while requests are
//! handled (clients pipeline, up to `READ_AHEAD` frames and `READ_AHEAD_BYTES`), handled one at a
//! time and answered strictly in order, as Kafka does. As Kafka's `connections.max.idle.ms`, a
//! connection neither sending nor taking bytes for that long is closed: a client that stops
//! reading its responses holds one request and one response, and only for that long.

mod read;
mod write;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::condition::Condition;
use crate::config::Listener;
use crate::dispatch::{self, Outcome};
use crate::security::authorizer::{Session, ANONYMOUS};
use crate::security::principal;
use crate::security::sasl::{Authenticator, Route, Step};
use read::{read_frames, Limits, Queued, ReadEnd};
use write::{write_chunks, ResponseWriter};

/// Connections closed for a bad frame, an unsupported request or a failed write: logged once,
/// then counted (see `condition`).
static CLOSED_ON_ERROR: Condition = Condition::new("connections closed on error");

/// Failed TLS handshakes (plaintext clients on a TLS listener, untrusted certificates).
static TLS_FAILED: Condition = Condition::new("failed TLS handshakes");

/// How long closing a connection may wait for its last bytes to leave.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Requests read ahead of the one being handled.
const READ_AHEAD: usize = 8;

/// Serves one connection until the client leaves, a bad frame closes it, or shutdown; on a TLS
/// listener, once the TLS handshake has completed (within `connections.max.idle.ms`).
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
    let close_reason = match &listener.tls {
        None => {
            let (rd, wr) = stream.into_split();
            let session = Session::new(ANONYMOUS.to_string(), peer);
            serve_stream(rd, wr, session, &listener, &broker, stop).await
        }
        Some(tls) => {
            let idle = std::time::Duration::from_millis(broker.config.connections_max_idle_ms);
            let handshake = tokio::select! {
                h = tokio::time::timeout(idle, tls.acceptor.accept(stream)) => h,
                _ = stop.cancelled() => Ok(Err(std::io::Error::other("the broker is shutting down"))),
            };
            match handshake {
                Ok(Ok(tls_stream)) => match certificate_principal(&tls_stream, tls) {
                    Ok(principal) => {
                        let (rd, wr) = tokio::io::split(tls_stream);
                        let session = Session::new(principal, peer);
                        serve_stream(rd, wr, session, &listener, &broker, stop).await
                    }
                    Err(why) => Some(tls_failed(&listener, peer, &why)),
                },
                Ok(Err(e)) => Some(tls_failed(&listener, peer, &e.to_string())),
                Err(_) => Some(tls_failed(
                    &listener,
                    peer,
                    "no TLS handshake within connections.max.idle.ms",
                )),
            }
        }
    };
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

/// A failed TLS handshake: counted as Kafka counts it (a failed authentication); the reason.
fn tls_failed(listener: &Listener, peer: SocketAddr, why: &str) -> String {
    metrics::counter!("kafka_server_socket_server_metrics_failed_authentication_total", "listener" => listener.name.clone()).increment(1);
    TLS_FAILED.occurred(|| {
        format!(
            "failed TLS handshake with {peer} on listener {}: {why}",
            listener.name
        )
    });
    format!("TLS handshake failed: {why}")
}

/// The principal of a TLS client: `User:` and its certificate's mapped subject, or ANONYMOUS
/// when it sent none (Kafka's DefaultKafkaPrincipalBuilder).
fn certificate_principal(
    stream: &tokio_rustls::server::TlsStream<TcpStream>,
    tls: &crate::security::tls::Tls,
) -> Result<String, String> {
    match stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    {
        None => Ok(ANONYMOUS.to_string()),
        Some(cert) => {
            let dn = principal::subject_dn(cert)?;
            Ok(format!("User:{}", tls.principals.name(&dn)?))
        }
    }
}

/// Serves requests over a connection's two halves (a socket's, or a TLS stream's) until the
/// client leaves, a bad frame closes it, or shutdown; the reason when it is closed on an error.
async fn serve_stream<R, W>(
    rd: R,
    mut wr: W,
    session: Session,
    listener: &Arc<Listener>,
    broker: &Arc<Broker>,
    stop: CancellationToken,
) -> Option<String>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: ResponseWriter,
{
    let broker = broker.clone();
    let listener = listener.clone();
    let peer: SocketAddr = session.peer;
    let mut session = Arc::new(session);
    let (tx, mut rx) = mpsc::channel::<Queued>(READ_AHEAD);
    let gone = CancellationToken::new();
    let idle = std::time::Duration::from_millis(broker.config.connections_max_idle_ms);
    let full_frame = broker.config.socket_request_max_bytes;
    let mut auth = listener
        .sasl
        .clone()
        .map(|config| Authenticator::new(config, listener.clone()));
    let limits = Arc::new(Limits {
        max_frame: AtomicUsize::new(
            auth.as_ref()
                .map_or(full_frame, |a| a.max_frame(full_frame)),
        ),
        authenticating: AtomicBool::new(auth.is_some()),
    });
    let reading = read_frames(
        rd,
        limits.clone(),
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
                        limits.max_frame.store(full_frame, Ordering::Release);
                        limits.authenticating.store(false, Ordering::Release);
                        if let Some(user) = a.user() {
                            let principal = format!("User:{user}");
                            if session.principal != principal {
                                session = Arc::new(Session::new(principal, peer));
                            }
                        }
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
                    &session,
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
    // A TLS stream's shutdown sends close_notify and flushes what is pending into a socket the
    // client may never drain: bounded, and never holding up the broker's shutdown.
    tokio::select! {
        biased;
        _ = tokio::time::timeout(SHUTDOWN_GRACE, wr.shutdown()) => {}
        _ = stop.cancelled() => {}
    }
    close_reason
}
