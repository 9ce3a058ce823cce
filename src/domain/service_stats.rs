//! What a watched service's owner wants to know: time-weighted uptime, response times (average
//! and p95), checks, repairs and the last repair.

use super::service_health::{RepairKind, Status};
use std::collections::VecDeque;

/// Response times kept for the p95.
pub const RECENT: usize = 1000;

/// One repair, as `GET /api/monitors` shows the last one.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RepairRecord {
    pub kind: RepairKind,
    pub predictive: bool,
    /// By an admin (`POST /api/admin/monitors/{name}/restart`).
    pub manual: bool,
    pub started_at: i64,
    pub took_ms: Option<i64>,
    /// `None` while it runs.
    pub succeeded: Option<bool>,
    pub error: Option<String>,
}

/// What is stored of the stats (not the recent answer times, nor the current state: a restarted
/// service starts `unknown`, and the time it was not running counts for neither side).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Saved {
    pub checks_total: u64,
    pub checks_ok: u64,
    pub latency_sum_ms: u64,
    pub latency_count: u64,
    pub available_ms: i64,
    pub unavailable_ms: i64,
    pub repairs: u64,
    pub predictive_restarts: u64,
    pub last_repair: Option<RepairRecord>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub checks_total: u64,
    pub checks_ok: u64,
    latency_sum_ms: u64,
    latency_count: u64,
    recent: VecDeque<u32>,
    /// Time spent answering (up, degraded) and not (down, recovering); unknown counts for neither.
    available_ms: i64,
    unavailable_ms: i64,
    /// The status since `since` (unix ms).
    status: Status,
    since: Option<i64>,
    pub repairs: u64,
    pub predictive_restarts: u64,
    pub last_repair: Option<RepairRecord>,
}

impl Stats {
    /// A check's answer time (only answers that came count).
    pub fn on_check(&mut self, ok: bool, latency_ms: Option<u64>) {
        self.checks_total += 1;
        if ok {
            self.checks_ok += 1;
        }
        if let Some(ms) = latency_ms {
            let ms = ms.min(u32::MAX as u64) as u32;
            self.latency_sum_ms += ms as u64;
            self.latency_count += 1;
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(ms);
        }
    }

    /// The status is `status` from `now` on.
    pub fn on_status(&mut self, status: Status, now: i64) {
        self.close(now);
        self.status = status;
        self.since = Some(now);
    }

    fn close(&mut self, now: i64) {
        if let Some(since) = self.since {
            let d = (now - since).max(0);
            match self.status {
                Status::Unknown => {}
                s if s.is_available() => self.available_ms += d,
                _ => self.unavailable_ms += d,
            }
        }
    }

    /// The stored form, with the current state's time counted up to `now`.
    pub fn saved(&self, now: i64) -> Saved {
        let mut s = self.clone();
        s.close(now);
        Saved {
            checks_total: s.checks_total,
            checks_ok: s.checks_ok,
            latency_sum_ms: s.latency_sum_ms,
            latency_count: s.latency_count,
            available_ms: s.available_ms,
            unavailable_ms: s.unavailable_ms,
            repairs: s.repairs,
            predictive_restarts: s.predictive_restarts,
            last_repair: s.last_repair,
        }
    }

    /// Stats carried on from a stored form, in state `unknown` from `now`.
    pub fn restored(saved: Saved, now: i64) -> Stats {
        Stats {
            checks_total: saved.checks_total,
            checks_ok: saved.checks_ok,
            latency_sum_ms: saved.latency_sum_ms,
            latency_count: saved.latency_count,
            available_ms: saved.available_ms,
            unavailable_ms: saved.unavailable_ms,
            repairs: saved.repairs,
            predictive_restarts: saved.predictive_restarts,
            last_repair: saved.last_repair,
            since: Some(now),
            ..Stats::default()
        }
    }

    /// Time answering over time known, as a percentage to two decimals; `None` before any of it.
    pub fn uptime_percent(&self, now: i64) -> Option<f64> {
        let mut s = self.clone();
        s.close(now);
        s.since = Some(now);
        let total = s.available_ms + s.unavailable_ms;
        (total > 0).then(|| (s.available_ms as f64 * 10_000.0 / total as f64).round() / 100.0)
    }

    pub fn avg_response_ms(&self) -> Option<u64> {
        (self.latency_count > 0).then(|| self.latency_sum_ms / self.latency_count)
    }

    /// The 95th percentile of the last `RECENT` answer times (nearest rank).
    pub fn p95_response_ms(&self) -> Option<u32> {
        if self.recent.is_empty() {
            return None;
        }
        let mut v: Vec<u32> = self.recent.iter().copied().collect();
        v.sort_unstable();
        let rank = (v.len() * 95).div_ceil(100).max(1);
        Some(v[rank - 1])
    }

    pub fn repair_started(&mut self, kind: RepairKind, predictive: bool, manual: bool, now: i64) {
        self.repairs += 1;
        if predictive {
            self.predictive_restarts += 1;
        }
        self.last_repair = Some(RepairRecord {
            kind,
            predictive,
            manual,
            started_at: now,
            took_ms: None,
            succeeded: None,
            error: None,
        });
    }

    pub fn repair_finished(&mut self, succeeded: bool, error: Option<String>, now: i64) {
        if let Some(r) = &mut self.last_repair {
            r.took_ms = Some(now - r.started_at);
            r.succeeded = Some(succeeded);
            r.error = error;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_is_weighted_by_time_and_ignores_unknown() {
        let mut s = Stats::default();
        assert_eq!(s.uptime_percent(0), None);
        s.on_status(Status::Unknown, 0);
        s.on_status(Status::Up, 10_000);
        s.on_status(Status::Down, 40_000);
        s.on_status(Status::Recovering, 45_000);
        s.on_status(Status::Degraded, 50_000);
        // Up 30 s, down 10 s, degraded (answering) 10 s so far.
        assert_eq!(s.uptime_percent(60_000), Some(80.0));
        assert_eq!(
            s.uptime_percent(60_000),
            Some(80.0),
            "asking changes nothing"
        );
    }

    #[test]
    fn stored_stats_carry_on_after_a_restart() {
        let mut s = Stats::default();
        s.on_status(Status::Up, 0);
        s.on_check(true, Some(40));
        s.repair_started(RepairKind::Restart, false, false, 500);
        s.on_status(Status::Down, 9_000);
        let saved = s.saved(10_000);
        assert_eq!((saved.available_ms, saved.unavailable_ms), (9_000, 1_000));
        // Not running from 10 s to 60 s: that time counts for neither side.
        let mut r = Stats::restored(saved.clone(), 60_000);
        assert_eq!(r.uptime_percent(60_000), Some(90.0));
        r.on_status(Status::Up, 60_000);
        assert_eq!(r.uptime_percent(70_000), Some(95.0));
        assert_eq!(
            (r.checks_total, r.repairs, r.avg_response_ms()),
            (1, 1, Some(40))
        );
        assert_eq!(r.last_repair, saved.last_repair);
    }

    #[test]
    fn response_times_average_and_p95() {
        let mut s = Stats::default();
        assert_eq!((s.avg_response_ms(), s.p95_response_ms()), (None, None));
        for ms in 1..=100 {
            s.on_check(true, Some(ms));
        }
        s.on_check(false, None);
        assert_eq!((s.checks_ok, s.checks_total), (100, 101));
        assert_eq!(s.avg_response_ms(), Some(50));
        assert_eq!(s.p95_response_ms(), Some(95));
        for _ in 0..RECENT {
            s.on_check(true, Some(7));
        }
        assert_eq!(s.p95_response_ms(), Some(7), "only the recent ones");
    }

    #[test]
    fn repairs_are_counted_and_the_last_one_kept() {
        let mut s = Stats::default();
        s.repair_started(RepairKind::Restart, true, false, 1000);
        s.repair_finished(true, None, 1500);
        s.repair_started(RepairKind::Redeploy, false, false, 9000);
        assert_eq!((s.repairs, s.predictive_restarts), (2, 1));
        let last = s.last_repair.clone().unwrap();
        assert_eq!((last.kind, last.succeeded), (RepairKind::Redeploy, None));
        s.repair_finished(false, Some("HTTP 500".into()), 9400);
        let last = s.last_repair.unwrap();
        assert_eq!(
            (last.took_ms, last.succeeded, last.error.as_deref()),
            (Some(400), Some(false), Some("HTTP 500"))
        );
    }
}
