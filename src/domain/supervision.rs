//! Restart intensity in OTP's sense: more than `max_restarts` crashes within `within_ms`
//! means the child is `failed`; it is still restarted, but after an exponential (capped) backoff
//! so that a broken actor never spins the CPU.

use std::collections::VecDeque;

pub const BACKOFF_BASE_MS: i64 = 200;
pub const BACKOFF_CAP_MS: i64 = 30_000;

#[derive(Clone, Debug)]
pub struct RestartIntensity {
    pub max_restarts: u32,
    pub within_ms: i64,
    crashes: VecDeque<i64>,
}

/// What to do about one crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Wait this long before the restart.
    pub delay_ms: i64,
    /// The intensity is exceeded: show the child as failed.
    pub failed: bool,
    /// This crash is the one that exceeded it (the moment for the `actor_failed` alert).
    pub newly_failed: bool,
}

impl RestartIntensity {
    pub fn new(max_restarts: u32, within_ms: i64) -> Self {
        RestartIntensity {
            max_restarts,
            within_ms,
            crashes: VecDeque::new(),
        }
    }

    fn forget_old(&mut self, now: i64) {
        while self
            .crashes
            .front()
            .is_some_and(|&t| now - t > self.within_ms)
        {
            self.crashes.pop_front();
        }
    }

    pub fn on_crash(&mut self, now: i64) -> Decision {
        self.forget_old(now);
        self.crashes.push_back(now);
        let n = self.crashes.len() as u32;
        if n <= self.max_restarts {
            return Decision {
                delay_ms: 0,
                failed: false,
                newly_failed: false,
            };
        }
        let excess = (n - self.max_restarts - 1).min(20);
        Decision {
            delay_ms: (BACKOFF_BASE_MS << excess).min(BACKOFF_CAP_MS),
            failed: true,
            newly_failed: n == self.max_restarts + 1,
        }
    }

    /// Still over the intensity at `now`? (A failed child that stays up long enough recovers.)
    pub fn is_failed(&mut self, now: i64) -> bool {
        self.forget_old(now);
        self.crashes.len() as u32 > self.max_restarts
    }
}

/// Hung: no heartbeat for `hang_after_ms`, counted from the last beat or, before the first
/// one, from the (re)start.
pub fn is_hung(last_beat: Option<i64>, started_at: i64, now: i64, hang_after_ms: i64) -> bool {
    let since = last_beat.map_or(started_at, |b| b.max(started_at));
    now - since > hang_after_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hung_is_counted_from_the_last_beat_or_the_start() {
        assert!(!is_hung(None, 1000, 5000, 10_000), "just started");
        assert!(is_hung(None, 1000, 12_000, 10_000), "never beat");
        assert!(!is_hung(Some(20_000), 0, 25_000, 10_000));
        assert!(is_hung(Some(20_000), 0, 31_000, 10_000));
        assert!(
            !is_hung(Some(0), 30_000, 31_000, 10_000),
            "a beat of the instance before the restart does not count"
        );
    }

    #[test]
    fn restarts_at_once_until_the_intensity_is_exceeded_then_backs_off() {
        let mut r = RestartIntensity::new(2, 1000);
        assert_eq!(r.on_crash(0).delay_ms, 0);
        assert_eq!(r.on_crash(10).delay_ms, 0);
        let d = r.on_crash(20);
        assert!(d.failed && d.newly_failed);
        assert_eq!(d.delay_ms, BACKOFF_BASE_MS);
        let d = r.on_crash(30);
        assert_eq!(d.delay_ms, BACKOFF_BASE_MS * 2);
        assert!(d.failed && !d.newly_failed, "the alert is raised once");
        for t in 0..40 {
            assert!(r.on_crash(40 + t).delay_ms <= BACKOFF_CAP_MS);
        }
        assert!(r.is_failed(500));
        assert!(!r.is_failed(5000));
    }

    #[test]
    fn old_crashes_are_forgotten() {
        let mut r = RestartIntensity::new(1, 100);
        assert!(!r.on_crash(0).failed);
        assert!(!r.on_crash(500).failed);
    }
}
