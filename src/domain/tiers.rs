//! Keeping primary at its target: the best-scored eligible proxies are primary, the rest standby.

use super::lifecycle::{Health, Rules, Tier};
use std::cmp::Ordering;

/// Orders proxies best first: lower latency, then higher success rate.
pub fn by_score(a: &Health, b: &Health) -> Ordering {
    let la = a.latency_ms.unwrap_or(u32::MAX);
    let lb = b.latency_ms.unwrap_or(u32::MAX);
    la.cmp(&lb).then_with(|| {
        b.success_rate()
            .partial_cmp(&a.success_rate())
            .unwrap_or(Ordering::Equal)
    })
}

/// Which proxies change tier so that primary holds the best `primary_target` eligible ones.
#[derive(Debug, Default, PartialEq)]
pub struct Rebalance<K> {
    pub promote: Vec<K>,
    pub demote: Vec<K>,
}

/// `primary_target` is a cap: the best N eligible proxies are primary, every other primary
/// goes back to standby.
pub fn rebalance<'a, K: Clone + 'a>(
    pool: impl IntoIterator<Item = (K, &'a Health)>,
    primary_target: usize,
    rules: &Rules,
) -> Rebalance<K> {
    let mut eligible = Vec::new();
    let mut out = Rebalance {
        promote: Vec::new(),
        demote: Vec::new(),
    };
    for (k, h) in pool {
        if h.eligible_for_primary(rules) {
            eligible.push((k, h));
        } else if h.tier == Tier::Primary {
            out.demote.push(k);
        }
    }
    // Incumbents win ties so that equal proxies do not swap places on every round.
    eligible.sort_by(|(_, a), (_, b)| {
        by_score(a, b).then_with(|| (b.tier == Tier::Primary).cmp(&(a.tier == Tier::Primary)))
    });
    for (i, (k, h)) in eligible.into_iter().enumerate() {
        match (i < primary_target, h.tier == Tier::Primary) {
            (true, false) => out.promote.push(k),
            (false, true) => out.demote.push(k),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        crate::domain::lifecycle::test_rules()
    }
    fn h(tier: Tier, passes: u32, latency: u32) -> Health {
        Health {
            tier,
            consecutive_passes: passes,
            checks_total: passes as u64,
            checks_ok: passes as u64,
            latency_ms: Some(latency),
            ..Health::default()
        }
    }

    #[test]
    fn best_eligible_fill_primary_up_to_target() {
        let pool = [
            h(Tier::Standby, 3, 300),
            h(Tier::Standby, 3, 100),
            h(Tier::Standby, 1, 10), // not proven yet
            h(Tier::Primary, 5, 500),
            h(Tier::Emergency, 9, 50),
        ];
        let r = rebalance(pool.iter().enumerate(), 2, &rules());
        assert_eq!(r.promote, vec![1, 0]);
        assert_eq!(r.demote, vec![3]);
    }

    #[test]
    fn primary_that_lost_eligibility_is_demoted() {
        let pool = [h(Tier::Primary, 0, 100)];
        let r = rebalance(pool.iter().enumerate(), 10, &rules());
        assert_eq!(r.demote, vec![0]);
        assert!(r.promote.is_empty());
    }

    #[test]
    fn incumbent_keeps_its_place_on_a_tie() {
        let pool = [h(Tier::Standby, 3, 100), h(Tier::Primary, 3, 100)];
        let r = rebalance(pool.iter().enumerate(), 1, &rules());
        assert_eq!(r, Rebalance::default());
    }
}

#[cfg(test)]
#[path = "props/tiers.rs"]
mod props;
