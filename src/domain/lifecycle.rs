//! The proxy lifecycle of the design: fresh → standby → primary, emergency, dead, blacklisted.
//! `apply_check` is the only place a check result changes a proxy's tier.

use serde::Serialize;

/// A proxy's place in the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Primary,
    Standby,
    Emergency,
    Fresh,
    Dead,
    Blacklisted,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Standby => "standby",
            Self::Emergency => "emergency",
            Self::Fresh => "fresh",
            Self::Dead => "dead",
            Self::Blacklisted => "blacklisted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "primary" => Self::Primary,
            "standby" => Self::Standby,
            "emergency" => Self::Emergency,
            "fresh" => Self::Fresh,
            "dead" => Self::Dead,
            "blacklisted" => Self::Blacklisted,
            _ => return None,
        })
    }

    /// Tiers whose proxies are handed to clients.
    pub fn is_serving(self) -> bool {
        matches!(self, Self::Primary | Self::Standby | Self::Emergency)
    }
}

/// The thresholds of `[tiers]` and `[resurrection]` that the lifecycle needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub slow_threshold_ms: u32,
    pub flaky_below: f64,
    pub promote_after_passes: u32,
    pub dead_after_failures: u32,
    pub blacklist_after_deaths: u32,
}

/// Fewer checks than this and the success rate is not judged (one early failure is not flakiness).
pub const FLAKY_MIN_CHECKS: u64 = 4;

/// Everything the lifecycle knows about one proxy. Times are unix milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    pub tier: Tier,
    /// Times the proxy has died; death n waits `delays_secs[n-1]` before its re-check.
    pub deaths: u32,
    pub consecutive_passes: u32,
    pub consecutive_failures: u32,
    pub checks_total: u64,
    pub checks_ok: u64,
    /// Latency of the last passing check.
    pub latency_ms: Option<u32>,
    pub last_checked_at: Option<i64>,
    pub last_ok_at: Option<i64>,
    /// When the proxy last entered `dead`.
    pub dead_since: Option<i64>,
    /// The HTTP status the check target answered through the proxy at the last check, if any.
    pub last_status: Option<u16>,
    /// Sum of the latencies of passed checks (their mean is `latency_total_ms / checks_ok`).
    pub latency_total_ms: u64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            tier: Tier::Fresh,
            deaths: 0,
            consecutive_passes: 0,
            consecutive_failures: 0,
            checks_total: 0,
            checks_ok: 0,
            latency_ms: None,
            last_checked_at: None,
            last_ok_at: None,
            dead_since: None,
            last_status: None,
            latency_total_ms: 0,
        }
    }
}

impl Health {
    pub fn success_rate(&self) -> f64 {
        if self.checks_total == 0 {
            0.0
        } else {
            self.checks_ok as f64 / self.checks_total as f64
        }
    }

    pub fn is_slow(&self, rules: &Rules) -> bool {
        self.latency_ms.is_some_and(|l| l > rules.slow_threshold_ms)
    }

    pub fn is_flaky(&self, rules: &Rules) -> bool {
        self.checks_total >= FLAKY_MIN_CHECKS && self.success_rate() < rules.flaky_below
    }

    /// Has this proxy ever passed a check? Only such proxies may fill a degraded answer.
    pub fn ever_passed(&self) -> bool {
        self.checks_ok > 0
    }

    /// May the balancer put this proxy in primary?
    pub fn eligible_for_primary(&self, rules: &Rules) -> bool {
        matches!(self.tier, Tier::Standby | Tier::Primary)
            && self.consecutive_passes >= rules.promote_after_passes
            && !self.is_slow(rules)
            && !self.is_flaky(rules)
    }
}

/// The outcome of one check as the lifecycle sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckResult {
    pub ok: bool,
    pub latency_ms: u32,
    /// What the check target answered through the proxy, when it answered.
    pub status: Option<u16>,
    pub at: i64,
}

/// What a check did to a proxy's tier, for counters and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    Stayed,
    /// fresh or dead → a serving tier.
    Joined,
    /// Slow or flaky → emergency.
    Demoted,
    /// emergency → standby again.
    Recovered,
    Died,
    Blacklisted,
}

/// Applies one check result to a proxy (the design's § Proxy lifecycle).
pub fn apply_check(h: &mut Health, r: CheckResult, rules: &Rules) -> Move {
    if h.tier == Tier::Blacklisted {
        return Move::Stayed;
    }
    h.checks_total += 1;
    h.last_checked_at = Some(r.at);
    h.last_status = r.status;
    if r.ok {
        h.checks_ok += 1;
        h.latency_total_ms += r.latency_ms as u64;
        h.consecutive_passes += 1;
        h.consecutive_failures = 0;
        h.latency_ms = Some(r.latency_ms);
        h.last_ok_at = Some(r.at);
        let before = h.tier;
        if matches!(before, Tier::Fresh | Tier::Dead) {
            h.tier = Tier::Standby;
            h.dead_since = None;
        }
        let poor = h.is_slow(rules) || h.is_flaky(rules);
        match (h.tier, poor) {
            (Tier::Emergency, false) => {
                h.tier = Tier::Standby;
                return Move::Recovered;
            }
            (Tier::Primary | Tier::Standby, true) => {
                h.tier = Tier::Emergency;
                return if before.is_serving() {
                    Move::Demoted
                } else {
                    Move::Joined
                };
            }
            _ => {}
        }
        if before.is_serving() {
            Move::Stayed
        } else {
            Move::Joined
        }
    } else {
        h.consecutive_passes = 0;
        h.consecutive_failures += 1;
        match h.tier {
            Tier::Fresh | Tier::Dead => die(h, r.at, rules),
            t if t.is_serving() => {
                if h.consecutive_failures >= rules.dead_after_failures.max(1) {
                    die(h, r.at, rules)
                } else if t != Tier::Emergency && h.is_flaky(rules) {
                    h.tier = Tier::Emergency;
                    Move::Demoted
                } else {
                    Move::Stayed
                }
            }
            _ => Move::Stayed,
        }
    }
}

fn die(h: &mut Health, at: i64, rules: &Rules) -> Move {
    h.deaths += 1;
    h.dead_since = Some(at);
    if h.deaths >= rules.blacklist_after_deaths.max(1) {
        h.tier = Tier::Blacklisted;
        Move::Blacklisted
    } else {
        h.tier = Tier::Dead;
        Move::Died
    }
}

/// The default thresholds of the design, for unit tests of the rules.
/// Whether `stored` is a later check of a proxy than `local` (in a cluster, what another
/// instance checked after this one replaces this one's view).
pub fn later_check(stored: &Health, local: &Health) -> bool {
    stored.last_checked_at > local.last_checked_at
}

#[cfg(test)]
pub fn test_rules() -> Rules {
    Rules {
        slow_threshold_ms: 2000,
        flaky_below: 0.5,
        promote_after_passes: 2,
        dead_after_failures: 3,
        blacklist_after_deaths: 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        test_rules()
    }
    fn pass(ms: u32) -> CheckResult {
        CheckResult {
            ok: true,
            latency_ms: ms,
            status: Some(204),
            at: 1,
        }
    }
    fn fail() -> CheckResult {
        CheckResult {
            ok: false,
            latency_ms: 0,
            status: None,
            at: 2,
        }
    }

    #[test]
    fn fresh_pass_joins_standby_and_fail_dies_once() {
        let mut h = Health::default();
        assert_eq!(apply_check(&mut h, pass(100), &rules()), Move::Joined);
        assert_eq!(h.tier, Tier::Standby);
        let mut h = Health::default();
        assert_eq!(apply_check(&mut h, fail(), &rules()), Move::Died);
        assert_eq!((h.tier, h.deaths, h.dead_since), (Tier::Dead, 1, Some(2)));
    }

    #[test]
    fn slow_pass_goes_to_emergency_and_fast_pass_brings_it_back() {
        let mut h = Health::default();
        apply_check(&mut h, pass(2500), &rules());
        assert_eq!(h.tier, Tier::Emergency);
        assert_eq!(apply_check(&mut h, pass(100), &rules()), Move::Recovered);
        assert_eq!(h.tier, Tier::Standby);
    }

    #[test]
    fn serving_proxy_dies_after_consecutive_failures_only() {
        let mut h = Health::default();
        for _ in 0..6 {
            apply_check(&mut h, pass(100), &rules());
        }
        apply_check(&mut h, fail(), &rules());
        apply_check(&mut h, fail(), &rules());
        assert_eq!(h.tier, Tier::Standby);
        assert_eq!(apply_check(&mut h, fail(), &rules()), Move::Died);
        assert_eq!(h.deaths, 1);
    }

    #[test]
    fn flaky_proxy_is_demoted() {
        let mut h = Health::default();
        apply_check(&mut h, pass(100), &rules());
        apply_check(&mut h, fail(), &rules());
        apply_check(&mut h, fail(), &rules());
        // 1 of 3: not judged yet (fewer than FLAKY_MIN_CHECKS)
        assert_eq!(h.tier, Tier::Standby);
        assert_eq!(apply_check(&mut h, pass(100), &rules()), Move::Stayed);
        // 2 of 4 = 0.5: not below 0.5
        assert_eq!(h.tier, Tier::Standby);
        assert_eq!(apply_check(&mut h, fail(), &rules()), Move::Demoted);
        assert_eq!(h.tier, Tier::Emergency);
    }

    #[test]
    fn blacklisted_after_last_death_and_never_changes() {
        let mut h = Health::default();
        for _ in 0..5 {
            apply_check(&mut h, fail(), &rules());
        }
        assert_eq!(h.tier, Tier::Blacklisted);
        assert_eq!(apply_check(&mut h, pass(10), &rules()), Move::Stayed);
        assert_eq!(h.tier, Tier::Blacklisted);
    }

    #[test]
    fn eligibility_needs_passes_in_a_row_and_speed() {
        let mut h = Health::default();
        apply_check(&mut h, pass(100), &rules());
        assert!(!h.eligible_for_primary(&rules()));
        apply_check(&mut h, pass(100), &rules());
        assert!(h.eligible_for_primary(&rules()));
    }

    #[test]
    fn a_later_check_replaces_an_earlier_one() {
        let mut local = Health::default();
        let mut stored = Health::default();
        assert!(!later_check(&stored, &local));
        stored.last_checked_at = Some(101);
        assert!(later_check(&stored, &local));
        local.last_checked_at = Some(101);
        assert!(!later_check(&stored, &local));
    }
}

#[cfg(test)]
#[path = "props/lifecycle.rs"]
mod props;
