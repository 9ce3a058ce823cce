//! A validation round: from the first check of proxies that are new (fresh) until none is left
//! unchecked, and how its time compares with the bound a list of that shape allows.
//!
//! The bound is `timeout + fast work / concurrency`: the checks that can only time out all wait
//! together (at most one timeout, however many they are), and the checks that answer share the
//! `concurrency` permits. "Fast work" is the summed duration of the checks that ended before the
//! timeout (passed, refused, wrong answer); a round whose checks all answered has no timeout
//! term, only its slowest check.

/// What a round has seen so far. Times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round {
    pub started_at: i64,
    pub checked: u64,
    pub passed: u64,
    /// Checks that lasted the whole timeout.
    pub timed_out: u64,
    /// Summed duration of the other checks.
    pub fast_work_ms: u64,
    /// The longest of the other checks.
    pub slowest_fast_ms: u64,
}

impl Round {
    pub fn start(at: i64) -> Round {
        Round {
            started_at: at,
            checked: 0,
            passed: 0,
            timed_out: 0,
            fast_work_ms: 0,
            slowest_fast_ms: 0,
        }
    }

    /// Counts one check that took `duration_ms` (a check lasting `timeout_ms` or more timed out).
    pub fn record(&mut self, ok: bool, duration_ms: u64, timeout_ms: u64) {
        self.checked += 1;
        self.passed += u64::from(ok);
        if duration_ms >= timeout_ms {
            self.timed_out += 1;
        } else {
            self.fast_work_ms += duration_ms;
            self.slowest_fast_ms = self.slowest_fast_ms.max(duration_ms);
        }
    }

    /// The shortest time these checks could take with `concurrency` of them exchanging at once.
    pub fn bound_ms(&self, timeout_ms: u64, concurrency: usize) -> u64 {
        let shared = self.fast_work_ms / concurrency.max(1) as u64;
        let wait = if self.timed_out > 0 {
            timeout_ms
        } else {
            self.slowest_fast_ms
        };
        wait + shared
    }

    /// The line logged when the round ends at `now`.
    pub fn summary(&self, now: i64, timeout_ms: u64, concurrency: usize) -> String {
        let took = (now - self.started_at).max(0) as u64;
        let bound = self.bound_ms(timeout_ms, concurrency);
        let ratio = if bound == 0 {
            String::new()
        } else {
            format!(", {:.2} × the bound", took as f64 / bound as f64)
        };
        format!(
            "validation round done: {} checks ({} passed, {} timed out) in {:.2} s; bound for \
             this list {:.2} s ({} of waiting + {:.1} s of answered checks over {} permits){ratio}",
            self.checked,
            self.passed,
            self.timed_out,
            took as f64 / 1000.0,
            bound as f64 / 1000.0,
            if self.timed_out > 0 {
                format!("one timeout, {:.1} s,", timeout_ms as f64 / 1000.0)
            } else {
                format!(
                    "the slowest check, {:.2} s,",
                    self.slowest_fast_ms as f64 / 1000.0
                )
            },
            self.fast_work_ms as f64 / 1000.0,
            concurrency,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_cost_one_timeout_however_many_they_are() {
        let mut r = Round::start(0);
        for _ in 0..750 {
            r.record(false, 3_000, 3_000);
        }
        assert_eq!(r.bound_ms(3_000, 500), 3_000);
        for _ in 0..1_000 {
            r.record(true, 100, 3_000);
        }
        // 100 s of answered checks over 500 permits: 0.2 s more.
        assert_eq!(r.bound_ms(3_000, 500), 3_200);
        assert_eq!((r.checked, r.passed, r.timed_out), (1_750, 1_000, 750));
    }

    #[test]
    fn without_timeouts_the_slowest_check_waits() {
        let mut r = Round::start(0);
        r.record(true, 40, 3_000);
        r.record(false, 900, 3_000);
        assert_eq!(r.bound_ms(3_000, 500), 901);
    }

    #[test]
    fn when_the_answered_work_dominates_it_is_the_bound() {
        let mut r = Round::start(0);
        for _ in 0..10_000 {
            r.record(true, 1_000, 3_000);
        }
        // 10,000 s over 10 permits = 1,000 s, plus the 1 s the last of them lasts.
        assert_eq!(r.bound_ms(3_000, 10), 1_001_000);
    }

    #[test]
    fn the_summary_names_time_bound_and_ratio() {
        let mut r = Round::start(1_000);
        r.record(false, 3_000, 3_000);
        r.record(true, 500, 3_000);
        let line = r.summary(4_300, 3_000, 1);
        assert!(
            line.contains("2 checks (1 passed, 1 timed out) in 3.30 s"),
            "{line}"
        );
        assert!(line.contains("bound for this list 3.50 s"), "{line}");
        assert!(line.contains("0.94 × the bound"), "{line}");
    }
}
