//! `queued.max.request.bytes`: one budget of request bytes for the whole broker, as in Kafka. A
//! connection takes a request's size from it once the length prefix has arrived, before reading
//! the rest, and gives it back once the request has been handled; while the budget is spent,
//! reading from clients waits (back-pressure through TCP) instead of memory growing. Idle
//! connections hold nothing.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::condition::Condition;

static EXHAUSTED: Condition = Condition::new("request memory exhausted");

pub struct RequestMemory {
    budget: Option<Arc<Semaphore>>,
    limit: usize,
}

/// Budget held for a request (nothing when the budget is unbounded); given back when dropped.
pub struct Held {
    _permit: Option<OwnedSemaphorePermit>,
}

impl RequestMemory {
    pub fn new(limit: Option<usize>) -> RequestMemory {
        RequestMemory {
            budget: limit.map(|l| Arc::new(Semaphore::new(l.min(Semaphore::MAX_PERMITS)))),
            limit: limit.unwrap_or(0),
        }
    }

    /// Takes `n` bytes of the budget, waiting while it is spent.
    pub async fn reserve(&self, n: usize) -> Held {
        let Some(budget) = &self.budget else {
            return Held { _permit: None };
        };
        let n = u32::try_from(n.min(self.limit)).unwrap_or(u32::MAX);
        match budget.clone().try_acquire_many_owned(n) {
            Ok(p) => {
                if EXHAUSTED.is_active() && budget.available_permits() >= self.limit / 2 {
                    EXHAUSTED.cleared();
                }
                Held { _permit: Some(p) }
            }
            Err(_) => {
                metrics::counter!("gregor_request_memory_waits_total").increment(1);
                EXHAUSTED.occurred(|| {
                    format!(
                        "all {} bytes of queued.max.request.bytes are buffered requests: reading from clients waits",
                        self.limit
                    )
                });
                Held {
                    _permit: budget.clone().acquire_many_owned(n).await.ok(),
                }
            }
        }
    }

    /// Bytes of the budget in use (for the gauge).
    pub fn in_use(&self) -> usize {
        self.budget
            .as_ref()
            .map_or(0, |b| self.limit.saturating_sub(b.available_permits()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_while_the_budget_is_spent() {
        let m = std::sync::Arc::new(RequestMemory::new(Some(100)));
        let a = m.reserve(60).await;
        assert_eq!(m.in_use(), 60);
        // A reservation beyond what is left waits until some comes back.
        let m2 = m.clone();
        let waiting = tokio::spawn(async move { m2.reserve(90).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(a);
        let b = waiting.await.unwrap();
        assert_eq!(m.in_use(), 90);
        drop(b);
        assert_eq!(m.in_use(), 0);
        // More than the whole budget is capped at it rather than waiting forever.
        drop(m.reserve(1000).await);
        let unbounded = RequestMemory::new(None);
        let _ = unbounded.reserve(1 << 40).await;
        assert_eq!(unbounded.in_use(), 0);
    }
}
