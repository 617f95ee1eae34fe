//! Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and
//! Jitter"): sleep a uniform random time in [0, min(cap, base·2^attempt)]. Full jitter spreads
//! 5-10 concurrent writers apart instead of having them retry in lock-step after a throttle.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based), at least `floor` (a server's Retry-After).
    pub fn delay(&self, retry: u32, floor: Option<Duration>) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let jittered = Duration::from_nanos(fastrand::u64(0..=ceiling.as_nanos() as u64));
        jittered.max(floor.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_the_exponential_ceiling_and_the_cap() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(300),
            max_attempts: 5,
        };
        for retry in 1..20 {
            let ceiling = Duration::from_millis(10 * 2u64.pow(retry.min(20))).min(policy.max_delay);
            for _ in 0..50 {
                assert!(policy.delay(retry, None) <= ceiling);
            }
        }
    }

    #[test]
    fn delays_are_jittered_not_fixed() {
        let policy = RetryPolicy::default();
        let samples: std::collections::HashSet<_> =
            (0..20).map(|_| policy.delay(4, None)).collect();
        assert!(samples.len() > 10);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let policy = RetryPolicy::default();
        let floor = Duration::from_secs(3);
        assert!(policy.delay(1, Some(floor)) >= floor);
    }
}
