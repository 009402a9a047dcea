//! The accept loops (one per listener) and the broker's lifetime: background maintenance, graceful shutdown (stop
//! accepting, let in-flight requests finish, checkpoint and flush, return).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::condition::Condition;
use crate::config::Listener;
use crate::connection;
use crate::log::now_ms;

/// How long shutdown waits for connections to finish their current request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often idle producer ids are expired and time-based flushes are checked.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);

static AT_MAX_CONNECTIONS: Condition = Condition::new("max.connections reached");
static PER_IP_LIMIT: Condition = Condition::new("max.connections.per.ip exceeded");
static ACCEPT_FAILING: Condition = Condition::new("accepting connections fails");
static SCHEDULED_FSYNC_FAILED: Condition = Condition::new("scheduled fsyncs failed");

/// A connection's share of `max.connections.per.ip` and `max.connections`, given back on drop.
struct IpSlot {
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The connection limits every listener shares: `max.connections` and `max.connections.per.ip`.
#[derive(Clone)]
struct Admission {
    slots: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Serves every listener until `shutdown` completes, then drains and closes the broker.
pub async fn run(
    broker: Arc<Broker>,
    listeners: Vec<(TcpListener, Arc<Listener>)>,
    shutdown: impl Future<Output = ()>,
) {
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(maintenance(broker.clone(), stop.clone()));
    tracker.spawn(broker.groups.clone().run_timers(stop.clone()));
    tracker.spawn(crate::metrics::sample(broker.clone(), stop.clone()));
    tracker.spawn(crate::housekeeping::run(broker.clone(), stop.clone()));
    let admission = Admission {
        slots: Arc::new(Semaphore::new(
            broker.config.max_connections.min(Semaphore::MAX_PERMITS),
        )),
        per_ip: Arc::default(),
    };
    let stop_accepting = CancellationToken::new();
    let accepting = TaskTracker::new();
    for (socket, listener) in listeners {
        accepting.spawn(accept(
            socket,
            listener,
            broker.clone(),
            admission.clone(),
            tracker.clone(),
            stop.clone(),
            stop_accepting.clone(),
        ));
    }
    accepting.close();
    shutdown.await;
    stop_accepting.cancel();
    accepting.wait().await;
    tracing::info!("shutting down: no longer accepting connections");
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within {DRAIN_TIMEOUT:?}");
    }
    // A log dir move in progress finishes (or fails safely) before the logs are closed.
    broker.background.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, broker.background.wait())
        .await
        .is_err()
    {
        tracing::warn!("a log dir move did not finish within {DRAIN_TIMEOUT:?}; closing anyway (start-up recovers it)");
    }
    let b = broker.clone();
    let _ = tokio::task::spawn_blocking(move || b.close()).await;
    tracing::info!("shutdown complete");
}

/// Accepts connections on one listener until `stop_accepting`, serving each in `tracker`.
async fn accept(
    socket: TcpListener,
    listener: Arc<Listener>,
    broker: Arc<Broker>,
    admission: Admission,
    tracker: TaskTracker,
    stop: CancellationToken,
    stop_accepting: CancellationToken,
) {
    loop {
        // max.connections: stop accepting (as Kafka does) until a connection closes. The slot is
        // only waited for here, not held while no client comes: listeners share the limit.
        if admission.slots.available_permits() == 0 {
            metrics::counter!("gregor_connection_accept_waits_total").increment(1);
            AT_MAX_CONNECTIONS.occurred(|| {
                format!(
                    "{} connections open (max.connections): accepting waits for one to close",
                    broker.config.max_connections
                )
            });
            tokio::select! {
                p = admission.slots.acquire() => drop(p),
                _ = stop_accepting.cancelled() => return,
            }
        }
        AT_MAX_CONNECTIONS.cleared();
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Another listener may have taken the last slot meanwhile: this connection
                    // waits for the next (Kafka's acceptors race the same way).
                    let permit = match admission.slots.clone().try_acquire_owned() {
                        Ok(p) => p,
                        Err(_) => tokio::select! {
                            p = admission.slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                            _ = stop_accepting.cancelled() => return,
                        },
                    };
                    if ACCEPT_FAILING.is_active() {
                        ACCEPT_FAILING.cleared();
                    }
                    let ip = peer.ip();
                    let admitted = {
                        let mut counts = admission.per_ip.lock().unwrap_or_else(|p| p.into_inner());
                        let n = counts.entry(ip).or_insert(0);
                        (*n < broker.config.max_connections_per_ip).then(|| *n += 1).is_some()
                    };
                    if !admitted {
                        metrics::counter!("gregor_connections_rejected_total", "reason" => "max.connections.per.ip").increment(1);
                        PER_IP_LIMIT.occurred(|| format!(
                            "closing connections from {ip}: more than max.connections.per.ip ({})",
                            broker.config.max_connections_per_ip
                        ));
                        drop(stream);
                        continue;
                    }
                    let (broker, stop, listener) = (broker.clone(), stop.clone(), listener.clone());
                    let per_ip = admission.per_ip.clone();
                    tracker.spawn(async move {
                        // Released however the connection ends (a panic included).
                        let _slot = IpSlot { per_ip, ip, _permit: permit };
                        connection::serve(stream, peer, listener, broker, stop).await;
                    });
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning, and say
                    // so once (then counted), not ten times a second.
                    metrics::counter!("gregor_connection_accept_errors_total").increment(1);
                    ACCEPT_FAILING.occurred(|| format!("accepting a connection failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop_accepting.cancelled() => return,
        }
    }
}

/// Periodic work: expire idle producer ids, honour `flush.ms` (topic) / `log.flush.interval.ms`;
/// the scan runs on the blocking pool, the fsyncs through `sync_to` (group-committed with produces).
async fn maintenance(broker: Arc<Broker>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let b = broker.clone();
        let due = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            crate::housekeeping::partitions(&b)
                .into_iter()
                .filter(|p| {
                    p.retry_sealed();
                    let expired = p.expire_producers(now);
                    if expired > 0 {
                        tracing::debug!(topic = %p.topic, partition = p.key.partition, expired, "expired idle producer ids");
                    }
                    let flush_ms = p.config().flush_interval_ms;
                    flush_ms != i64::MAX && p.flush_due(now, flush_ms)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for p in due {
            if let Err(e) = p.sync_to(p.log_end_offset() - 1).await {
                // Retried every second: logged once, then counted.
                SCHEDULED_FSYNC_FAILED.occurred(|| {
                    format!(
                        "scheduled fsync of {}-{} failed: {e}",
                        p.topic, p.key.partition
                    )
                });
            }
        }
    }
}
