//! `Backoff`: the delays between retries of a loop that reconnects or re-reads after a
//! failure — exponential (doubling) from a first delay up to a cap, back to the first
//! delay after a success.

use std::time::Duration;

/// Exponential backoff with a cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Delays `first`, `2 × first`, `4 × first`, … never more than `max` (a `max` below
    /// `first` caps every delay at `max`).
    pub fn new(first: Duration, max: Duration) -> Self {
        let first = first.min(max);
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait now; the next one is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        now
    }

    /// After a success: the next delay is the first one again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(ms(200), ms(1_000));
        let delays: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(
            delays,
            [ms(200), ms(400), ms(800), ms(1_000), ms(1_000), ms(1_000)]
        );
        b.reset();
        assert_eq!((b.next_delay(), b.next_delay()), (ms(200), ms(400)));
    }

    #[test]
    fn extreme_settings_stay_bounded() {
        let mut capped = Backoff::new(ms(500), ms(100));
        assert_eq!(
            (capped.next_delay(), capped.next_delay()),
            (ms(100), ms(100))
        );
        let mut huge = Backoff::new(Duration::MAX / 2, Duration::MAX);
        let delays: Vec<Duration> = (0..4).map(|_| huge.next_delay()).collect();
        assert!(delays.is_sorted(), "{delays:?}");
        assert_eq!(delays[3], Duration::MAX, "saturates instead of overflowing");
        let mut zero = Backoff::new(Duration::ZERO, ms(10));
        assert_eq!(zero.next_delay(), Duration::ZERO);
    }
}
