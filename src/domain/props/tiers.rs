//! Property tests of the rebalance: primary never holds more than `primary_target`, only
//! eligible proxies are promoted, and a balanced pool stays as it is.

use super::*;
use crate::domain::lifecycle::test_rules;
use proptest::prelude::*;

fn health() -> impl Strategy<Value = Health> {
    (
        prop::sample::select(vec![
            Tier::Primary,
            Tier::Standby,
            Tier::Emergency,
            Tier::Fresh,
            Tier::Dead,
            Tier::Blacklisted,
        ]),
        0u32..5,
        0u64..10,
        0u64..10,
        prop::option::of(prop::sample::select(vec![
            10u32, 100, 1000, 1999, 2000, 2001, 5000,
        ])),
    )
        .prop_map(|(tier, passes, ok, failed, latency_ms)| Health {
            tier,
            consecutive_passes: passes,
            checks_ok: ok,
            checks_total: ok + failed,
            latency_ms,
            ..Health::default()
        })
}

fn apply(pool: &mut [Health], r: &Rebalance<usize>) {
    for &i in &r.promote {
        pool[i].tier = Tier::Primary;
    }
    for &i in &r.demote {
        pool[i].tier = Tier::Standby;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn primary_is_the_best_eligible_up_to_its_target(
        mut pool in prop::collection::vec(health(), 0..40),
        target in 0usize..12,
    ) {
        let rules = test_rules();
        let before = pool.clone();
        let r = rebalance(pool.iter().enumerate(), target, &rules);
        let mut seen = std::collections::HashSet::new();
        for &i in r.promote.iter().chain(&r.demote) {
            prop_assert!(seen.insert(i), "{i} moved twice: {r:?}");
        }
        for &i in &r.promote {
            prop_assert!(before[i].eligible_for_primary(&rules), "promoted a non-eligible {:?}", before[i]);
            prop_assert!(before[i].tier != Tier::Primary);
        }
        for &i in &r.demote {
            prop_assert_eq!(before[i].tier, Tier::Primary);
        }
        apply(&mut pool, &r);
        let primary: Vec<usize> = (0..pool.len()).filter(|&i| pool[i].tier == Tier::Primary).collect();
        let eligible = before.iter().filter(|h| h.eligible_for_primary(&rules)).count();
        prop_assert!(primary.len() <= target, "{} primaries over a target of {target}", primary.len());
        prop_assert_eq!(primary.len(), eligible.min(target), "primary is filled up to its target");
        for &i in &primary {
            prop_assert!(pool[i].eligible_for_primary(&rules));
            // No eligible proxy left out scores strictly better than one kept in.
            for (j, h) in pool.iter().enumerate() {
                if h.tier != Tier::Primary && h.eligible_for_primary(&rules) {
                    prop_assert!(
                        by_score(h, &pool[i]) != std::cmp::Ordering::Less,
                        "{j} ({h:?}) is better than primary {i} ({:?})", pool[i]
                    );
                }
            }
        }
        // A balanced pool stays balanced: no swapping on every round.
        let again = rebalance(pool.iter().enumerate(), target, &rules);
        prop_assert_eq!(again, Rebalance::default());
    }
}
