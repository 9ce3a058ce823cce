//! A watched service's health as a state machine: `unknown → up ⇄ degraded → down → recovering →
//! up`, and when to repair it. Pure: the ServiceMonitor feeds it check results and repair
//! outcomes with the time, and carries out the repairs and alerts it asks for.
//!
//! Against restart loops: a repair starts only when the service is down, no repair is running and
//! the warm-up (`cooldown`) of the last one has passed; after a repair the failure counters reset.
//! After `max_attempts` repairs that did not bring the service up it escalates to the `then`
//! action (a redeploy, again up to `max_attempts` times), then gives up with one alert and repairs
//! no more until the service is up again.

use super::alerts::{Kind, Severity};
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Unknown,
    Up,
    /// Answers, but slower than `slow_threshold_ms`.
    Degraded,
    /// `failures_before_down` failed checks in a row.
    Down,
    /// Down, and a repair was made; waiting for it to come back.
    Recovering,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Up => "up",
            Status::Degraded => "degraded",
            Status::Down => "down",
            Status::Recovering => "recovering",
        }
    }

    /// Answering (for uptime): up or degraded.
    pub fn is_available(self) -> bool {
        matches!(self, Status::Up | Status::Degraded)
    }
}

/// What a repair does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepairKind {
    Restart,
    Redeploy,
}

impl RepairKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RepairKind::Restart => "restart",
            RepairKind::Redeploy => "redeploy",
        }
    }
}

/// What happens after `max_attempts` restarts that did not help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    Redeploy,
    Alert,
}

/// The rules of one monitor, from its config.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub failures_before_down: u32,
    pub slow_threshold_ms: u64,
    pub degradation_threshold: u32,
    /// False for `action = "none"`: alerts only.
    pub can_repair: bool,
    pub cooldown_ms: i64,
    pub max_attempts: u32,
    pub then: Then,
}

/// The result of one check.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// The expected answer, after this long.
    Ok { latency_ms: u64 },
    /// No answer, the wrong status or body, or a timeout.
    Failed { reason: String },
}

/// How a repair call went.
#[derive(Clone, Debug, PartialEq)]
pub enum RepairOutcome {
    /// The provider took it.
    Done,
    Failed {
        reason: String,
    },
    /// The provider's rate limit: try again after this long (the attempt does not count).
    RateLimited {
        retry_after_ms: i64,
    },
    /// Not called: the repair was already claimed within the warm-up (by the leader before
    /// this one), or this instance no longer leads. As `Done` for the state machine.
    Claimed,
    /// Not called: this instance follows, and the leader repairs. As a rate limit for the
    /// state machine (not an attempt; asked again after this long, when this instance may
    /// lead).
    Deferred {
        retry_after_ms: i64,
    },
}

/// A repair to carry out now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repair {
    pub kind: RepairKind,
    /// Started on sustained slowness rather than on failure.
    pub predictive: bool,
}

/// An alert to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub kind: Kind,
    pub severity: Severity,
    pub message: String,
}

/// What a step asks of the actor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effects {
    /// `(from, to)` when the status changed.
    pub changed: Option<(Status, Status)>,
    pub repair: Option<Repair>,
    pub notices: Vec<Notice>,
}

/// The state of one watched service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Service {
    pub status: Status,
    pub consecutive_failures: u32,
    pub slow_streak: u32,
    /// Repairs since the service was last up (restarts and redeploys).
    pub repairs_since_up: u32,
    pub escalation: Option<RepairKind>,
    /// Gave up repairing until the service is up again.
    pub gave_up: bool,
    pub repair_running: bool,
    /// Unix ms until which no repair starts (the warm-up after the last one).
    pub quiet_until: i64,
    pub down_since: Option<i64>,
    pub last_reason: Option<String>,
}

fn notice(kind: Kind, severity: Severity, message: String) -> Notice {
    Notice {
        kind,
        severity,
        message,
    }
}

/// `95 s`, `3 min 5 s`, `2 h 4 min`.
pub fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

impl Service {
    fn set(&mut self, to: Status, fx: &mut Effects) {
        if self.status != to {
            let from = fx.changed.map_or(self.status, |(f, _)| f);
            fx.changed = Some((from, to));
            self.status = to;
        }
    }

    /// Takes one check result at `now` (unix ms).
    pub fn on_check(&mut self, check: &Check, now: i64, rules: &Rules, name: &str) -> Effects {
        let mut fx = Effects::default();
        match check {
            Check::Ok { latency_ms } => {
                self.consecutive_failures = 0;
                self.last_reason = None;
                if matches!(self.status, Status::Down | Status::Recovering) {
                    let took = self.down_since.map_or(0, |d| now - d);
                    fx.notices.push(notice(
                        Kind::ServiceRecovered,
                        Severity::Info,
                        format!("{name} is back up after {} down", human_duration(took)),
                    ));
                }
                self.down_since = None;
                if *latency_ms <= rules.slow_threshold_ms {
                    self.slow_streak = 0;
                    self.repairs_since_up = 0;
                    self.escalation = None;
                    self.gave_up = false;
                    self.set(Status::Up, &mut fx);
                    return fx;
                }
                self.slow_streak += 1;
                if self.status != Status::Degraded {
                    fx.notices.push(notice(
                        Kind::ServiceDegraded,
                        Severity::Warning,
                        format!(
                            "{name} is slow: {latency_ms} ms (threshold {} ms)",
                            rules.slow_threshold_ms
                        ),
                    ));
                }
                self.set(Status::Degraded, &mut fx);
                if self.slow_streak >= rules.degradation_threshold && self.may_repair(now, rules) {
                    self.slow_streak = 0;
                    if self.repairs_since_up >= rules.max_attempts {
                        self.gave_up = true;
                        fx.notices.push(notice(
                            Kind::RepairFailed,
                            Severity::Critical,
                            format!(
                                "{name} is still slow after {} restarts; no more automatic \
                                 restarts until it is fast again",
                                self.repairs_since_up
                            ),
                        ));
                        return fx;
                    }
                    fx.notices.push(notice(
                        Kind::PredictiveRestart,
                        Severity::Warning,
                        format!(
                            "{name}: {} slow answers in a row, restarting it before it fails",
                            rules.degradation_threshold
                        ),
                    ));
                    fx.repair = Some(self.start_repair(RepairKind::Restart, true, now, rules));
                }
            }
            Check::Failed { reason } => {
                self.consecutive_failures += 1;
                self.slow_streak = 0;
                self.last_reason = Some(reason.clone());
                let is_down = matches!(self.status, Status::Down | Status::Recovering);
                if !is_down && self.consecutive_failures >= rules.failures_before_down {
                    self.down_since = Some(now);
                    fx.notices.push(notice(
                        Kind::ServiceDown,
                        Severity::Critical,
                        format!(
                            "{name} is down: {} failed checks in a row ({reason})",
                            self.consecutive_failures
                        ),
                    ));
                    self.set(Status::Down, &mut fx);
                }
                if matches!(self.status, Status::Down | Status::Recovering)
                    && self.consecutive_failures >= rules.failures_before_down
                {
                    self.plan_repair(now, rules, name, &mut fx);
                }
            }
        }
        fx
    }

    fn may_repair(&self, now: i64, rules: &Rules) -> bool {
        rules.can_repair && !self.repair_running && !self.gave_up && now >= self.quiet_until
    }

    fn start_repair(
        &mut self,
        kind: RepairKind,
        predictive: bool,
        now: i64,
        rules: &Rules,
    ) -> Repair {
        self.repair_running = true;
        self.repairs_since_up += 1;
        self.quiet_until = now + rules.cooldown_ms;
        Repair { kind, predictive }
    }

    /// A down service: repair it, escalate, or give up.
    fn plan_repair(&mut self, now: i64, rules: &Rules, name: &str, fx: &mut Effects) {
        if !self.may_repair(now, rules) {
            return;
        }
        let kind = self.escalation.unwrap_or(RepairKind::Restart);
        let tried = match kind {
            RepairKind::Restart => self.repairs_since_up,
            RepairKind::Redeploy => self.repairs_since_up.saturating_sub(rules.max_attempts),
        };
        let kind = if tried < rules.max_attempts {
            kind
        } else if kind == RepairKind::Restart && rules.then == Then::Redeploy {
            self.escalation = Some(RepairKind::Redeploy);
            RepairKind::Redeploy
        } else {
            self.gave_up = true;
            self.set(Status::Down, fx);
            fx.notices.push(notice(
                Kind::RepairFailed,
                Severity::Critical,
                format!(
                    "{name} is still down after {} repairs; no more automatic repairs until it is \
                     up again: it needs a person",
                    self.repairs_since_up
                ),
            ));
            return;
        };
        fx.notices.push(notice(
            Kind::RepairStarted,
            Severity::Warning,
            format!(
                "{name}: {} (attempt {}{})",
                kind.as_str(),
                self.repairs_since_up + 1,
                self.last_reason
                    .as_deref()
                    .map(|r| format!("; last check: {r}"))
                    .unwrap_or_default()
            ),
        ));
        fx.repair = Some(self.start_repair(kind, false, now, rules));
        self.set(Status::Recovering, fx);
    }

    /// A repair an admin asked for: it runs unless one is running, whatever the warm-up.
    pub fn force_repair(&mut self, now: i64, rules: &Rules) -> Option<Repair> {
        if self.repair_running {
            return None;
        }
        self.gave_up = false;
        Some(self.start_repair(RepairKind::Restart, false, now, rules))
    }

    /// Takes the outcome of the running repair. After it the failure counters reset and the
    /// warm-up runs from now.
    pub fn on_repair_done(
        &mut self,
        kind: RepairKind,
        outcome: &RepairOutcome,
        now: i64,
        rules: &Rules,
        name: &str,
    ) -> Effects {
        let mut fx = Effects::default();
        self.repair_running = false;
        self.consecutive_failures = 0;
        self.slow_streak = 0;
        match outcome {
            RepairOutcome::Done | RepairOutcome::Claimed => {
                self.quiet_until = now + rules.cooldown_ms
            }
            RepairOutcome::Failed { reason } => {
                self.quiet_until = now + rules.cooldown_ms;
                // Nothing is coming back from a repair that did not happen.
                if self.status == Status::Recovering {
                    self.set(Status::Down, &mut fx);
                }
                fx.notices.push(notice(
                    Kind::RepairFailed,
                    Severity::Critical,
                    format!("{name}: the {} call failed: {reason}", kind.as_str()),
                ));
            }
            RepairOutcome::RateLimited { retry_after_ms }
            | RepairOutcome::Deferred { retry_after_ms } => {
                // Not an attempt: the provider did not look at it.
                self.repairs_since_up = self.repairs_since_up.saturating_sub(1);
                self.quiet_until = now + (*retry_after_ms).max(0);
                if self.status == Status::Recovering {
                    self.set(Status::Down, &mut fx);
                }
            }
        }
        fx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            failures_before_down: 2,
            slow_threshold_ms: 500,
            degradation_threshold: 3,
            can_repair: true,
            cooldown_ms: 10_000,
            max_attempts: 2,
            then: Then::Redeploy,
        }
    }

    fn fail() -> Check {
        Check::Failed {
            reason: "connection refused".into(),
        }
    }

    fn ok(ms: u64) -> Check {
        Check::Ok { latency_ms: ms }
    }

    fn kinds(fx: &Effects) -> Vec<Kind> {
        fx.notices.iter().map(|n| n.kind).collect()
    }

    #[test]
    fn down_after_enough_failures_then_repaired_and_recovered() {
        let r = rules();
        let mut s = Service::default();
        let fx = s.on_check(&ok(10), 0, &r, "api");
        assert_eq!(fx.changed, Some((Status::Unknown, Status::Up)));
        assert!(fx.notices.is_empty());
        let fx = s.on_check(&fail(), 1000, &r, "api");
        assert_eq!(
            (fx.changed, s.status),
            (None, Status::Up),
            "one failure is not down"
        );
        let fx = s.on_check(&fail(), 2000, &r, "api");
        assert_eq!(fx.changed, Some((Status::Up, Status::Recovering)));
        assert_eq!(kinds(&fx), [Kind::ServiceDown, Kind::RepairStarted]);
        assert_eq!(
            fx.repair,
            Some(Repair {
                kind: RepairKind::Restart,
                predictive: false
            })
        );
        assert_eq!(s.down_since, Some(2000));
        let fx = s.on_repair_done(RepairKind::Restart, &RepairOutcome::Done, 2500, &r, "api");
        assert!(fx.notices.is_empty());
        assert_eq!(s.consecutive_failures, 0, "counters reset after a repair");
        let fx = s.on_check(&ok(20), 65_000, &r, "api");
        assert_eq!(fx.changed, Some((Status::Recovering, Status::Up)));
        assert_eq!(kinds(&fx), [Kind::ServiceRecovered]);
        assert!(
            fx.notices[0].message.contains("1 min 3 s"),
            "{:?}",
            fx.notices
        );
        assert_eq!((s.repairs_since_up, s.down_since), (0, None));
    }

    #[test]
    fn the_warm_up_and_max_attempts_stop_a_restart_loop() {
        let r = rules();
        let mut s = Service::default();
        let mut repairs = Vec::new();
        let mut alerts = Vec::new();
        // A service that never comes back, checked every second for ten minutes.
        for t in 0..600 {
            let now = t * 1000;
            let fx = s.on_check(&fail(), now, &r, "api");
            alerts.extend(kinds(&fx));
            if let Some(rep) = fx.repair {
                repairs.push((now, rep.kind));
                s.on_repair_done(rep.kind, &RepairOutcome::Done, now + 100, &r, "api");
            }
        }
        let kinds_only: Vec<RepairKind> = repairs.iter().map(|r| r.1).collect();
        assert_eq!(
            kinds_only,
            [
                RepairKind::Restart,
                RepairKind::Restart,
                RepairKind::Redeploy,
                RepairKind::Redeploy
            ]
        );
        for w in repairs.windows(2) {
            assert!(
                w[1].0 - w[0].0 >= r.cooldown_ms,
                "warm-up kept: {repairs:?}"
            );
        }
        assert_eq!(
            alerts.iter().filter(|k| **k == Kind::ServiceDown).count(),
            1
        );
        assert_eq!(
            alerts.iter().filter(|k| **k == Kind::RepairFailed).count(),
            1,
            "gives up once"
        );
        assert!(s.gave_up);
        assert_eq!(s.status, Status::Down, "nobody is repairing it");
        // Up again: repairs are allowed again from scratch.
        s.on_check(&ok(10), 700_000, &r, "api");
        assert!(!s.gave_up && s.repairs_since_up == 0 && s.escalation.is_none());
    }

    #[test]
    fn without_a_then_it_gives_up_after_max_attempts_restarts() {
        let r = Rules {
            then: Then::Alert,
            ..rules()
        };
        let mut s = Service::default();
        let mut repairs = 0;
        for t in 0..200 {
            let fx = s.on_check(&fail(), t * 1000, &r, "api");
            if let Some(rep) = fx.repair {
                repairs += 1;
                s.on_repair_done(rep.kind, &RepairOutcome::Done, t * 1000, &r, "api");
            }
        }
        assert_eq!(repairs, r.max_attempts);
        assert!(s.gave_up);
    }

    #[test]
    fn sustained_slowness_makes_a_predictive_restart() {
        let r = rules();
        let mut s = Service::default();
        s.on_check(&ok(10), 0, &r, "api");
        let fx = s.on_check(&ok(900), 1000, &r, "api");
        assert_eq!(fx.changed, Some((Status::Up, Status::Degraded)));
        assert_eq!(kinds(&fx), [Kind::ServiceDegraded]);
        let fx = s.on_check(&ok(900), 2000, &r, "api");
        assert!(fx.notices.is_empty(), "degraded is said once");
        let fx = s.on_check(&ok(900), 3000, &r, "api");
        assert_eq!(kinds(&fx), [Kind::PredictiveRestart]);
        assert_eq!(
            fx.repair,
            Some(Repair {
                kind: RepairKind::Restart,
                predictive: true
            })
        );
        s.on_repair_done(RepairKind::Restart, &RepairOutcome::Done, 3100, &r, "api");
        // Still slow during the warm-up: no second restart yet.
        for t in 4..10 {
            assert_eq!(s.on_check(&ok(900), t * 1000, &r, "api").repair, None);
        }
        // Still slow after the warm-up: one more restart (max_attempts = 2), then it gives up.
        let mut later = Vec::new();
        for t in 10..100 {
            let fx = s.on_check(&ok(900), t * 1000, &r, "api");
            later.extend(kinds(&fx));
            if let Some(rep) = fx.repair {
                s.on_repair_done(rep.kind, &RepairOutcome::Done, t * 1000, &r, "api");
            }
        }
        assert_eq!(later, [Kind::PredictiveRestart, Kind::RepairFailed]);
        let fx = s.on_check(&ok(10), 100_000, &r, "api");
        assert_eq!(fx.changed, Some((Status::Degraded, Status::Up)));
        assert!(!s.gave_up && s.repairs_since_up == 0);
    }

    #[test]
    fn alert_only_monitors_never_repair() {
        let r = Rules {
            can_repair: false,
            ..rules()
        };
        let mut s = Service::default();
        for t in 0..10 {
            assert_eq!(s.on_check(&fail(), t, &r, "api").repair, None);
            assert_eq!(s.on_check(&ok(900), t, &r, "api").repair, None);
        }
        let mut s = Service::default();
        s.on_check(&fail(), 0, &r, "api");
        let fx = s.on_check(&fail(), 1, &r, "api");
        assert_eq!(fx.changed, Some((Status::Unknown, Status::Down)));
        assert_eq!(kinds(&fx), [Kind::ServiceDown]);
    }

    #[test]
    fn a_rate_limited_repair_is_retried_after_the_reset_and_not_counted() {
        let r = rules();
        let mut s = Service::default();
        s.on_check(&fail(), 0, &r, "api");
        let fx = s.on_check(&fail(), 1000, &r, "api");
        let rep = fx.repair.unwrap();
        s.on_repair_done(
            rep.kind,
            &RepairOutcome::RateLimited {
                retry_after_ms: 30_000,
            },
            1100,
            &r,
            "api",
        );
        assert_eq!(s.repairs_since_up, 0);
        s.on_check(&fail(), 20_000, &r, "api");
        assert_eq!(
            s.on_check(&fail(), 21_000, &r, "api").repair,
            None,
            "before the reset"
        );
        s.on_check(&fail(), 31_000, &r, "api");
        let fx = s.on_check(&fail(), 32_000, &r, "api");
        assert_eq!(fx.repair.map(|r| r.kind), Some(RepairKind::Restart));
        assert_eq!(s.repairs_since_up, 1);
    }

    #[test]
    fn a_failed_repair_call_is_alerted_and_waits_the_warm_up() {
        let r = rules();
        let mut s = Service::default();
        s.on_check(&fail(), 0, &r, "api");
        let rep = s.on_check(&fail(), 1000, &r, "api").repair.unwrap();
        let fx = s.on_repair_done(
            rep.kind,
            &RepairOutcome::Failed {
                reason: "HTTP 500".into(),
            },
            1100,
            &r,
            "api",
        );
        assert_eq!(kinds(&fx), [Kind::RepairFailed]);
        assert_eq!(fx.changed, Some((Status::Recovering, Status::Down)));
        s.on_check(&fail(), 2000, &r, "api");
        assert_eq!(s.on_check(&fail(), 3000, &r, "api").repair, None);
    }

    #[test]
    fn an_admin_restart_runs_during_the_warm_up_but_not_twice_at_once() {
        let r = rules();
        let mut s = Service::default();
        assert!(s.force_repair(0, &r).is_some());
        assert!(s.force_repair(1, &r).is_none(), "one at a time");
        s.on_repair_done(RepairKind::Restart, &RepairOutcome::Done, 5, &r, "api");
        assert!(
            s.force_repair(6, &r).is_some(),
            "warm-up does not stop an admin"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(59_999), "59 s");
        assert_eq!(human_duration(185_000), "3 min 5 s");
        assert_eq!(human_duration(7_440_000), "2 h 4 min");
    }
}

#[cfg(test)]
#[path = "props/service_health.rs"]
mod props;
