//! `log.cleaner.io.max.bytes.per.second`: the cleaner threads together read and write no faster
//! than the cap, sleeping (they run on blocking threads) when ahead of it (Kafka's `Throttler`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the measured rate is reset, so an idle period does not bank unlimited credit.
const WINDOW: Duration = Duration::from_millis(300);
/// Longest sleep between checks for an abort.
const NAP: Duration = Duration::from_millis(50);

pub(super) struct Throttle {
    bytes_per_second: f64,
    window: Mutex<(Instant, f64)>,
}

impl Throttle {
    pub(super) fn new(bytes_per_second: f64) -> Self {
        Throttle {
            bytes_per_second,
            window: Mutex::new((Instant::now(), 0.0)),
        }
    }

    /// Accounts `bytes` of cleaner I/O, sleeping as long as the cap requires, in short naps that
    /// end early once `aborted` says so (the caller then stops its pass).
    pub(super) fn consume(&self, bytes: u64, aborted: &dyn Fn() -> bool) {
        if !self.bytes_per_second.is_finite() || self.bytes_per_second >= f64::MAX / 2.0 {
            return;
        }
        let wait = {
            let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
            w.1 += bytes as f64;
            let elapsed = w.0.elapsed().as_secs_f64();
            let ahead = w.1 / self.bytes_per_second - elapsed;
            if elapsed >= WINDOW.as_secs_f64() && ahead <= 0.0 {
                *w = (Instant::now(), 0.0);
            }
            ahead
        };
        if wait > 0.0 {
            metrics::histogram!("gregor_log_cleaner_throttle_seconds").record(wait);
            let mut left = Duration::from_secs_f64(wait.min(3600.0));
            while !left.is_zero() && !aborted() {
                let nap = left.min(NAP);
                std::thread::sleep(nap);
                left -= nap;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_paces_the_cleaner() {
        let capped = Throttle::new(1_000_000.0);
        let t = Instant::now();
        for _ in 0..4 {
            capped.consume(50_000, &|| false);
        }
        // 200 kB at 1 MB/s: about 0.2 s of pacing.
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
    }
}
