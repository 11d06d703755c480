//! A token bucket per device, in memory: enough for one server; a restart
//! only refills the buckets.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::error::ApiFailure;

/// Buckets kept before idle full ones are forgotten.
const PRUNE_ABOVE: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-device request rate limiter.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket (refilled at `per_sec`, holding at
    /// most `burst`), or says in how many seconds one will be there.
    pub fn check(&self, key: &str, per_sec: u32, burst: u32) -> Result<(), ApiFailure> {
        self.check_at(key, f64::from(per_sec.max(1)), burst, Instant::now())
    }

    /// [`RateLimiter::check`] with a rate per minute (for rare calls such as
    /// enrolment, keyed by client address).
    pub fn check_per_minute(&self, key: &str, per_min: u32, burst: u32) -> Result<(), ApiFailure> {
        self.check_at(key, f64::from(per_min.max(1)) / 60.0, burst, Instant::now())
    }

    fn check_at(&self, key: &str, rate: f64, burst: u32, now: Instant) -> Result<(), ApiFailure> {
        let cap = f64::from(burst.max(1));
        let mut map = self
            .buckets
            .lock()
            .map_err(|_| ApiFailure::Internal(anyhow::anyhow!("rate limiter lock poisoned")))?;
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < cap);
        }
        let b = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - b.tokens) / rate).ceil();
            // `wait` is at most 1/rate seconds (60 s at one a minute).
            Err(ApiFailure::RateLimited(wait.clamp(1.0, 3600.0) as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_applies_per_device() {
        let l = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.check_at("a", 2.0, 5, t0).is_ok());
        }
        assert!(matches!(
            l.check_at("a", 2.0, 5, t0),
            Err(ApiFailure::RateLimited(1))
        ));
        assert!(
            l.check_at("b", 2.0, 5, t0).is_ok(),
            "buckets are per device"
        );
        let later = t0 + Duration::from_millis(500);
        assert!(l.check_at("a", 2.0, 5, later).is_ok(), "refilled at 2/s");
        assert!(l.check_at("a", 2.0, 5, later).is_err());
    }
}
