//! Property tests of the resurrection schedule, alone and with the lifecycle that feeds it.

use super::*;
use crate::domain::lifecycle::{apply_check, CheckResult, Health, Rules, Tier};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_re_check_is_never_due_before_the_death(
        deaths in any::<u32>(),
        dead_since in any::<i64>(),
        delays in prop::collection::vec(any::<u64>(), 0..6),
    ) {
        let due = due_at(deaths, dead_since, &delays);
        prop_assert!(due >= dead_since);
        let i = (deaths.max(1) as usize - 1).min(delays.len().saturating_sub(1));
        let delay = delays.get(i).copied().unwrap_or(0);
        prop_assert_eq!(due, dead_since.saturating_add(delay.min(i64::MAX as u64) as i64));
    }

    /// A proxy that keeps failing: each death is scheduled no earlier than it happened, with
    /// its own delay; death number `blacklist_after_deaths` blacklists it and nothing is
    /// scheduled after that, whatever the re-checks say.
    #[test]
    fn deaths_up_to_the_blacklist_are_scheduled_then_never(
        blacklist in 1u32..7,
        delays in prop::collection::vec(0u64..10_000_000, 1..5),
        outcomes in prop::collection::vec(any::<bool>(), 1..60),
    ) {
        let rules = Rules {
            slow_threshold_ms: 2000,
            flaky_below: 0.5,
            promote_after_passes: 2,
            dead_after_failures: 1,
            blacklist_after_deaths: blacklist,
        };
        let mut h = Health::default();
        let mut now = 0i64;
        let mut scheduled: Vec<(u32, i64)> = Vec::new();
        for ok in outcomes {
            // The manager re-checks a dead proxy when it is due; others are checked now.
            if h.tier == Tier::Dead {
                let due = due_at(h.deaths, h.dead_since.unwrap(), &delays);
                prop_assert!(due >= h.dead_since.unwrap());
                scheduled.push((h.deaths, due));
                now = now.max(due);
            }
            now += 1;
            apply_check(&mut h, CheckResult { ok, latency_ms: 10, status: None, at: now }, &rules);
            if h.deaths >= blacklist {
                prop_assert_eq!(h.tier, Tier::Blacklisted);
            }
        }
        for (n, _) in &scheduled {
            prop_assert!(*n >= 1 && *n < blacklist, "death {n} scheduled with blacklist at {blacklist}");
        }
    }
}
