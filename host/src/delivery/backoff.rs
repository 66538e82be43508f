//! How long a connector waits before trying again: exponential in the
//! number of failures in a row, capped, with random jitter added so that
//! connectors failing together do not retry in lock-step.

use std::time::Duration;

use crate::config::RetryPolicy;

#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    /// Failures since the last success.
    failures: u32,
}

impl Backoff {
    pub fn new(policy: RetryPolicy) -> Backoff {
        Backoff { policy, failures: 0 }
    }

    /// Counts a failure and returns the wait before the next attempt.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let base = self.base_delay(self.failures);
        base.mul_f64(1.0 + self.policy.jitter * fastrand::f64())
    }

    /// A success: the next failure waits the initial delay again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// The wait after `failures` failures in a row, without jitter.
    fn base_delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(64) as i32;
        let secs = self.policy.initial_backoff.as_secs_f64() * self.policy.multiplier.powi(exponent);
        let cap = self.policy.max_backoff.as_secs_f64();
        Duration::from_secs_f64(secs.min(cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_initial_delay_up_to_the_cap_and_resets_after_a_success() {
        let mut backoff = Backoff::new(RetryPolicy { jitter: 0.0, ..RetryPolicy::default() });
        let waits: Vec<u64> = (0..12).map(|_| backoff.failed().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), Duration::from_secs(1));
    }

    #[test]
    fn jitter_adds_at_most_its_fraction() {
        let mut backoff = Backoff::new(RetryPolicy::default());
        for _ in 0..200 {
            backoff.succeeded();
            let wait = backoff.failed();
            assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_millis(1250), "{wait:?}");
        }
    }
}
