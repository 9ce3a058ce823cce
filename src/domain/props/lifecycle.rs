//! Property tests of the proxy lifecycle: no sequence of checks (and balancer moves) breaks
//! its invariants.

use super::*;
use proptest::prelude::*;

fn rules() -> impl Strategy<Value = Rules> {
    (1u32..3000, 0.0f64..=1.0, 1u32..5, 0u32..5, 0u32..7).prop_map(
        |(slow, flaky, promote, dead, blacklist)| Rules {
            slow_threshold_ms: slow,
            flaky_below: flaky,
            promote_after_passes: promote,
            dead_after_failures: dead,
            blacklist_after_deaths: blacklist,
        },
    )
}

/// What can happen to a proxy: a check, or a move of the TierBalancer.
#[derive(Clone, Debug)]
enum Event {
    Check {
        ok: bool,
        latency_ms: u32,
        gap_ms: i64,
    },
    /// The balancer promotes an eligible proxy.
    Promote,
    /// The balancer sends a primary back to standby.
    Demote,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => (any::<bool>(), 0u32..5000, 0i64..10_000)
            .prop_map(|(ok, latency_ms, gap_ms)| Event::Check { ok, latency_ms, gap_ms }),
        1 => Just(Event::Promote),
        1 => Just(Event::Demote),
    ]
}

/// The tier moves `apply_check` may make (promotion to primary is the balancer's, never a
/// check's).
fn allowed(from: Tier, to: Tier) -> bool {
    use Tier::*;
    from == to
        || matches!(
            (from, to),
            (Fresh | Dead, Standby | Emergency)
                | (
                    Fresh | Dead | Primary | Standby | Emergency,
                    Dead | Blacklisted
                )
                | (Primary | Standby, Emergency)
                | (Emergency, Standby)
        )
}

/// Invariants of one proxy's health whatever happened before.
fn check_invariants(h: &Health, rules: &Rules, latency_sum: u64) -> Result<(), TestCaseError> {
    prop_assert!(h.checks_ok <= h.checks_total, "{h:?}");
    prop_assert!(
        h.consecutive_passes == 0 || h.consecutive_failures == 0,
        "{h:?}"
    );
    prop_assert!(h.consecutive_failures as u64 <= h.checks_total);
    prop_assert_eq!(h.latency_total_ms, latency_sum);
    if h.tier.is_serving() {
        prop_assert!(h.ever_passed(), "only a proxy that passed serves: {h:?}");
        prop_assert!(h.dead_since.is_none(), "{h:?}");
        prop_assert!(
            h.consecutive_failures < rules.dead_after_failures.max(1),
            "a serving proxy with too many failures: {h:?}"
        );
    }
    if h.tier == Tier::Dead {
        prop_assert!(h.deaths >= 1 && h.dead_since.is_some(), "{h:?}");
        prop_assert!(h.deaths < rules.blacklist_after_deaths.max(1), "{h:?}");
    }
    if h.tier == Tier::Blacklisted {
        prop_assert!(h.deaths >= rules.blacklist_after_deaths.max(1), "{h:?}");
    }
    if h.tier == Tier::Primary {
        prop_assert!(h.ever_passed());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_sequence_of_checks_breaks_the_lifecycle(
        rules in rules(),
        events in prop::collection::vec(event(), 0..80),
    ) {
        let mut h = Health::default();
        let mut now = 1_000i64;
        let mut latency_sum = 0u64;
        for e in events {
            match e {
                Event::Promote => {
                    if h.eligible_for_primary(&rules) {
                        h.tier = Tier::Primary;
                    }
                }
                Event::Demote => {
                    if h.tier == Tier::Primary {
                        h.tier = Tier::Standby;
                    }
                }
                Event::Check { ok, latency_ms, gap_ms } => {
                    now += gap_ms;
                    let before = h.clone();
                    let r = CheckResult { ok, latency_ms, status: None, at: now };
                    let m = apply_check(&mut h, r, &rules);
                    if before.tier == Tier::Blacklisted {
                        prop_assert_eq!(m, Move::Stayed);
                        prop_assert_eq!(&h, &before, "a blacklisted proxy never changes");
                        continue;
                    }
                    if ok {
                        latency_sum += latency_ms as u64;
                    }
                    prop_assert_eq!(h.checks_total, before.checks_total + 1);
                    prop_assert_eq!(h.checks_ok, before.checks_ok + ok as u64);
                    prop_assert_eq!(h.last_checked_at, Some(now));
                    prop_assert!(
                        allowed(before.tier, h.tier),
                        "{:?} → {:?} is not an edge of the lifecycle", before.tier, h.tier
                    );
                    prop_assert!(h.deaths == before.deaths || h.deaths == before.deaths + 1);
                    match m {
                        Move::Died => prop_assert_eq!(h.tier, Tier::Dead),
                        Move::Blacklisted => prop_assert_eq!(h.tier, Tier::Blacklisted),
                        Move::Demoted => prop_assert_eq!(h.tier, Tier::Emergency),
                        Move::Recovered => prop_assert_eq!(h.tier, Tier::Standby),
                        Move::Joined => {
                            prop_assert!(!before.tier.is_serving() && h.tier.is_serving())
                        }
                        Move::Stayed => prop_assert_eq!(h.tier, before.tier),
                    }
                    if matches!(m, Move::Died | Move::Blacklisted) {
                        prop_assert_eq!(h.deaths, before.deaths + 1);
                        prop_assert_eq!(h.dead_since, Some(now));
                    }
                    if ok {
                        prop_assert!(h.tier.is_serving(), "a pass always serves: {:?}", h);
                    }
                }
            }
            check_invariants(&h, &rules, latency_sum)?;
        }
    }

    #[test]
    fn dead_after_failures_in_a_row_from_any_serving_tier(
        rules in rules(),
        warm_up in prop::collection::vec(event(), 0..40),
    ) {
        let mut h = Health::default();
        let mut now = 0i64;
        for e in warm_up {
            match e {
                Event::Check { ok, latency_ms, gap_ms } => {
                    now += gap_ms;
                    apply_check(&mut h, CheckResult { ok, latency_ms, status: None, at: now }, &rules);
                }
                Event::Promote if h.eligible_for_primary(&rules) => h.tier = Tier::Primary,
                _ => {}
            }
        }
        prop_assume!(h.tier.is_serving());
        let deaths = h.deaths;
        // The failures in a row so far count: the proxy dies at the `dead_after_failures`-th.
        let left = rules.dead_after_failures.max(1) - h.consecutive_failures;
        for i in 0..left {
            prop_assert!(h.tier.is_serving(), "died after {i} of {left} failures: {h:?}");
            now += 1;
            apply_check(&mut h, CheckResult { ok: false, latency_ms: 0, status: None, at: now }, &rules);
        }
        prop_assert!(matches!(h.tier, Tier::Dead | Tier::Blacklisted), "{h:?}");
        prop_assert_eq!(h.deaths, deaths + 1, "dies exactly once");
    }
}
