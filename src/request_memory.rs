//! `queued.max.request.bytes`: one budget of request bytes for the whole broker, as in Kafka. A
//! connection takes a request's size from it once the length prefix has arrived, before reading
//! the rest, and gives it back once the request has been handled; while the budget is spent,
//! reading from clients waits (back-pressure through TCP) instead of memory growing. Idle
//! connections hold nothing.
//!
//! Unlike Kafka, an eighth of the budget is kept for requests of at most `SMALL_REQUEST` bytes
//! (nearly every request: metadata, fetches, produces within Kafka's default `max.request.size`):
//! clients announcing huge requests and sending them slowly, or not at all, can make other large
//! requests wait (until `gregor.request.receive.timeout.ms` closes them) but never the small ones.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::condition::Condition;

static EXHAUSTED: Condition = Condition::new("request memory exhausted");

/// Requests up to this size may use the share of the budget kept for them.
pub const SMALL_REQUEST: usize = 1 << 20;

/// One share of the budget.
struct Pool {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Pool {
    fn new(limit: usize) -> Pool {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        Pool {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// Permits for `n` bytes (callers ask for at most `limit`).
    fn permits(&self, n: usize) -> u32 {
        u32::try_from(n.min(self.limit)).unwrap_or(u32::MAX)
    }

    fn try_take(&self, n: usize) -> Option<OwnedSemaphorePermit> {
        self.permits
            .clone()
            .try_acquire_many_owned(self.permits(n))
            .ok()
    }

    async fn take(&self, n: usize, total: usize) -> Option<OwnedSemaphorePermit> {
        metrics::counter!("gregor_request_memory_waits_total").increment(1);
        EXHAUSTED.occurred(|| {
            format!(
                "all {total} bytes of queued.max.request.bytes are buffered requests: reading from clients waits"
            )
        });
        self.permits
            .clone()
            .acquire_many_owned(self.permits(n))
            .await
            .ok()
    }

    fn in_use(&self) -> usize {
        self.limit.saturating_sub(self.permits.available_permits())
    }
}

pub struct RequestMemory {
    /// (for requests of at most `SMALL_REQUEST` bytes, for any request); `None`: unbounded.
    pools: Option<(Pool, Pool)>,
    limit: usize,
}

/// Budget held for a request (nothing when the budget is unbounded); given back when dropped.
pub struct Held {
    _permits: Vec<OwnedSemaphorePermit>,
}

impl RequestMemory {
    pub fn new(limit: Option<usize>) -> RequestMemory {
        RequestMemory {
            pools: limit.map(|l| (Pool::new(l / 8), Pool::new(l - l / 8))),
            limit: limit.unwrap_or(0),
        }
    }

    /// Takes `n` bytes of the budget (at most all of it), waiting while it is spent: a small
    /// request from its own share or, if that is spent, from the rest; a large one from the rest,
    /// and from the small requests' share too for what the rest cannot hold (a request larger than
    /// seven eighths of the budget: it holds all of the rest first, so only one such waits there).
    pub async fn reserve(&self, n: usize) -> Held {
        let Some((small, any)) = &self.pools else {
            return Held {
                _permits: Vec::new(),
            };
        };
        let n = n.min(self.limit);
        let is_small = n <= SMALL_REQUEST && n <= small.limit;
        let granted = if is_small {
            small.try_take(n).or_else(|| any.try_take(n))
        } else if n <= any.limit {
            any.try_take(n)
        } else {
            None
        };
        let mut permits = Vec::with_capacity(2);
        match granted {
            Some(p) => {
                if EXHAUSTED.is_active() && self.limit - self.in_use() >= self.limit / 2 {
                    EXHAUSTED.cleared();
                }
                permits.push(p);
            }
            None if is_small => permits.extend(small.take(n, self.limit).await),
            None => {
                permits.extend(any.take(n, self.limit).await);
                if n > any.limit {
                    permits.extend(small.take(n - any.limit, self.limit).await);
                }
            }
        }
        Held { _permits: permits }
    }

    /// Bytes of the budget in use (for the gauge).
    pub fn in_use(&self) -> usize {
        self.pools
            .as_ref()
            .map_or(0, |(small, any)| small.in_use() + any.in_use())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: usize = 1 << 20;

    #[tokio::test]
    async fn reservations_wait_while_the_budget_is_spent() {
        // 80 MB: 10 MB kept for small requests, 70 MB for any.
        let m = std::sync::Arc::new(RequestMemory::new(Some(80 * MB)));
        let a = m.reserve(40 * MB).await;
        assert_eq!(m.in_use(), 40 * MB);
        // A reservation beyond what is left waits until some comes back.
        let m2 = m.clone();
        let waiting = tokio::spawn(async move { m2.reserve(60 * MB).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(a);
        let b = waiting.await.unwrap();
        assert_eq!(m.in_use(), 60 * MB);
        drop(b);
        assert_eq!(m.in_use(), 0);
        // More than the whole budget is capped at it rather than waiting forever.
        drop(m.reserve(1000 * MB).await);
        let unbounded = RequestMemory::new(None);
        let _ = unbounded.reserve(1 << 40).await;
        assert_eq!(unbounded.in_use(), 0);
    }

    /// With a budget under 8 MiB the small requests' share holds less than a 1 MiB request: such a
    /// request is then a large one, and what is held is what is reported (it took 128 KiB and
    /// reported 1 MiB; under 8 bytes the share was empty and small requests were unbounded).
    #[tokio::test]
    async fn small_budgets_account_every_byte() {
        let m = RequestMemory::new(Some(MB));
        let a = m.reserve(MB).await;
        assert_eq!(
            m.in_use(),
            MB,
            "a request of the whole budget holds all of it"
        );
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(100), m.reserve(MB));
        assert!(
            waiting.await.is_err(),
            "no second 1 MiB request while the first is held"
        );
        drop(a);
        let tiny = RequestMemory::new(Some(7));
        let _t = tiny.reserve(5).await;
        assert_eq!(tiny.in_use(), 5);
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(100), tiny.reserve(5));
        assert!(waiting.await.is_err(), "7 bytes hold one 5-byte request");
    }

    /// Large requests holding (or waiting for) all they may take leave small requests their share.
    #[tokio::test]
    async fn large_requests_never_starve_small_ones() {
        let m = std::sync::Arc::new(RequestMemory::new(Some(80 * MB)));
        let large: Vec<Held> = vec![m.reserve(35 * MB).await, m.reserve(35 * MB).await];
        let m2 = m.clone();
        let queued = tokio::spawn(async move { m2.reserve(30 * MB).await });
        tokio::task::yield_now().await;
        assert!(!queued.is_finished(), "no room left for large requests");
        let mut small = Vec::new();
        for _ in 0..10 {
            let took = tokio::time::timeout(std::time::Duration::from_secs(5), m.reserve(MB));
            small.push(
                took.await
                    .expect("a small request waited behind large ones"),
            );
        }
        assert_eq!(
            m.in_use(),
            80 * MB,
            "ten 1 MB requests took the kept share at once"
        );
        drop(small);
        drop(large);
        drop(queued.await.unwrap());
    }
}
