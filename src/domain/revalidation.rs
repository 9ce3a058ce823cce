//! Rolling revalidation: every serving proxy is re-checked once per interval, spread evenly over
//! it instead of in bursts.

/// Is a proxy last checked at `last_checked_at` due for its re-check at `now` (unix ms)?
pub fn is_due(last_checked_at: Option<i64>, interval_ms: u64, now: i64) -> bool {
    match last_checked_at {
        None => true,
        Some(t) => now.saturating_sub(t) >= interval_ms as i64,
    }
}

/// How many due proxies one tick of `tick_ms` may send for re-checking so that `serving` proxies
/// are covered once per `interval_ms`. Twice the even share, so a backlog (after a restart)
/// drains within half an interval and never as one burst.
pub fn budget(serving: usize, interval_ms: u64, tick_ms: u64) -> usize {
    let interval_ms = interval_ms.max(1);
    let share = (serving as u128 * tick_ms as u128).div_ceil(interval_ms as u128);
    (share.max(1) * 2) as usize
}

/// The due proxies to re-check now, oldest check first, at most `limit`.
pub fn pick_due<K: Clone>(
    candidates: impl IntoIterator<Item = (K, Option<i64>)>,
    interval_ms: u64,
    now: i64,
    limit: usize,
) -> Vec<K> {
    let mut due: Vec<(K, i64)> = candidates
        .into_iter()
        .filter(|(_, t)| is_due(*t, interval_ms, now))
        .map(|(k, t)| (k, t.unwrap_or(i64::MIN)))
        .collect();
    if due.len() > limit {
        due.select_nth_unstable_by_key(limit, |(_, t)| *t);
        due.truncate(limit);
    }
    due.sort_by_key(|(_, t)| *t);
    due.into_iter().map(|(k, _)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_interval() {
        assert!(is_due(None, 1000, 0));
        assert!(!is_due(Some(500), 1000, 1499));
        assert!(is_due(Some(500), 1000, 1500));
    }

    #[test]
    fn budget_spreads_checks_over_the_interval() {
        // 1200 proxies over 1200 s with 1 s ticks: 1 a tick, doubled.
        assert_eq!(budget(1200, 1_200_000, 1000), 2);
        assert_eq!(budget(0, 1000, 250), 2);
        assert_eq!(budget(10_000, 1000, 1000), 20_000);
    }

    #[test]
    fn oldest_due_first_within_limit() {
        let c = [
            ("a", Some(10)),
            ("b", None),
            ("c", Some(5)),
            ("d", Some(999)),
        ];
        assert_eq!(pick_due(c, 100, 1000, 2), vec!["b", "c"]);
        assert_eq!(pick_due(c, 100, 1000, 10), vec!["b", "c", "a"]);
    }
}
