//! A condition worth an operator's attention that may occur many times a second (storage errors,
//! exhausted budgets): the first occurrence is logged with its context, then at most one line a
//! minute saying how many more there were, and one line when it is over. Callers count every
//! occurrence in their own metric.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often an ongoing condition is logged again.
const REMIND_EVERY: Duration = Duration::from_secs(60);

pub struct Condition {
    what: &'static str,
    /// Whether the condition is ongoing (checked without the lock on every success).
    active: AtomicBool,
    state: Mutex<State>,
}

struct State {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl Condition {
    pub const fn new(what: &'static str) -> Condition {
        Condition {
            what,
            active: AtomicBool::new(false),
            state: Mutex::new(State {
                last_logged: None,
                unlogged: 0,
            }),
        }
    }

    /// One occurrence; `context` is only built when a line is logged.
    pub fn occurred(&self, context: impl FnOnce() -> String) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let active = self.active.swap(true, Ordering::AcqRel);
        let due = !active || st.last_logged.is_none_or(|t| t.elapsed() >= REMIND_EVERY);
        if !due {
            st.unlogged += 1;
            return;
        }
        let more = std::mem::take(&mut st.unlogged);
        st.last_logged = Some(Instant::now());
        drop(st);
        let context = context();
        if more == 0 {
            tracing::warn!(condition = self.what, "{context}");
        } else {
            tracing::warn!(
                condition = self.what,
                repeated = more,
                "{context} (and {more} more since the last report)"
            );
        }
    }

    /// The condition is over (an operation that would have hit it succeeded).
    pub fn cleared(&self) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !self.active.swap(false, Ordering::AcqRel) {
            return;
        }
        let more = std::mem::take(&mut st.unlogged);
        drop(st);
        tracing::info!(
            condition = self.what,
            unreported = more,
            "{}: over",
            self.what
        );
    }

    /// Whether the condition is currently reported as ongoing.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }
}

/// Storage operations failing (disk full, I/O errors): one condition per kind of operation, each
/// occurrence counted in `gregor_storage_errors_total{op}`.
pub static STORAGE_WRITES: Condition = Condition::new("log writes failing");
pub static STORAGE_READS: Condition = Condition::new("log reads failing");
pub static META_WRITES: Condition = Condition::new("meta store writes failing");

/// Transactional clients refused because gregor has no transaction coordinator yet; each occurrence
/// counted in `gregor_transactions_refused_total`.
pub static TRANSACTIONS_REFUSED: Condition =
    Condition::new("transactional clients refused (transactions are not supported)");

/// Counts and reports one failed storage operation `op` (the metric label) under `condition`.
pub fn storage_error(condition: &Condition, op: &'static str, context: impl FnOnce() -> String) {
    metrics::counter!("gregor_storage_errors_total", "op" => op).increment(1);
    condition.occurred(context);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_the_first_occurrence_then_counts_until_cleared() {
        let c = Condition::new("test condition");
        let built = std::cell::Cell::new(0);
        for _ in 0..5 {
            c.occurred(|| {
                built.set(built.get() + 1);
                "context".into()
            });
        }
        assert_eq!(built.get(), 1, "context built for the logged line only");
        assert!(c.is_active());
        assert_eq!(c.state.lock().unwrap().unlogged, 4);
        c.cleared();
        assert!(!c.is_active());
        c.occurred(|| {
            built.set(built.get() + 1);
            "again".into()
        });
        assert_eq!(built.get(), 2, "a new episode is logged");
    }
}
