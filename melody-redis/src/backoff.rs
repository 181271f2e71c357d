//! Pauses between connection attempts: doubling from the minimum to the maximum, each
//! drawn between half and all of the current step, so that nodes restarted together
//! spread their attempts out.

use std::time::Duration;

pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
    /// xorshift state: jitter needs no quality, only spread.
    seed: u64,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            min,
            max,
            step: min,
            seed: seed | 1,
        }
    }

    /// The next pause: never above the maximum.
    pub(crate) fn next_pause(&mut self) -> Duration {
        let step = self.step.min(self.max);
        self.step = step.saturating_mul(2).min(self.max);
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let half = step / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let extra = if spread == 0 {
            0
        } else {
            self.seed % (spread + 1)
        };
        (half + Duration::from_nanos(extra)).min(self.max)
    }

    /// After a success: start again from the minimum.
    pub(crate) fn reset(&mut self) {
        self.step = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_bound_and_never_past_it() {
        let max = Duration::from_millis(800);
        let mut backoff = Backoff::new(Duration::from_millis(100), max, 42);
        let pauses: Vec<Duration> = (0..12).map(|_| backoff.next_pause()).collect();
        assert!(pauses.iter().all(|p| *p <= max), "{pauses:?}");
        assert!(pauses[0] >= Duration::from_millis(50), "{pauses:?}");
        assert!(pauses[11] >= max / 2, "{pauses:?}");
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 7);
        for _ in 0..10 {
            backoff.next_pause();
        }
        backoff.reset();
        assert!(backoff.next_pause() <= Duration::from_millis(10));
    }
}
