//! Choosing which proxies answer a request: strategies, filters and the never-empty fill.

use super::lifecycle::Tier;
use super::proxy::{Anonymity, Protocol};
use rand::seq::IndexedRandom;
use rand::Rng;
use std::cmp::Ordering;

/// One proxy as the serving path sees it (a row of the published snapshot).
#[derive(Clone, Debug, PartialEq)]
pub struct Served {
    /// Public URL, never with credentials.
    pub url: String,
    pub protocol: Protocol,
    pub tier: Tier,
    pub latency_ms: Option<u32>,
    pub success_rate: f64,
    pub anonymity: Option<Anonymity>,
    pub country: Option<String>,
    pub kind: String,
    pub cost_per_gb: f64,
    pub priority: i32,
    pub last_checked_at: Option<i64>,
    pub last_ok_at: Option<i64>,
    /// The last check (or client report) failed.
    pub failing: bool,
    /// Capacity in leases when it differs from `allocation.max_leases_per_proxy`.
    pub max_leases: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Fastest,
    Cheapest,
    Random,
    LeastLoaded,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "fastest" => Self::Fastest,
            "cheapest" => Self::Cheapest,
            "random" => Self::Random,
            "least_loaded" => Self::LeastLoaded,
            _ => return None,
        })
    }
}

/// The `fastest` order: tier order (primary, standby, emergency), then latency.
pub fn fastest_order(a: &Served, b: &Served) -> Ordering {
    a.tier
        .cmp(&b.tier)
        .then_with(|| latency(a).cmp(&latency(b)))
        .then_with(|| a.url.cmp(&b.url))
}

/// The `cheapest` order: (priority, cost_per_gb, latency), with proxies whose last check failed
/// after every other: a failing paid proxy falls over to the next at once.
pub fn cheapest_order(a: &Served, b: &Served) -> Ordering {
    a.failing
        .cmp(&b.failing)
        .then_with(|| a.priority.cmp(&b.priority))
        .then_with(|| a.cost_per_gb.total_cmp(&b.cost_per_gb))
        .then_with(|| fastest_order(a, b))
}

/// Dead proxies used to fill a short answer: most recently working first.
pub fn fill_order(a: &Served, b: &Served) -> Ordering {
    b.last_ok_at
        .cmp(&a.last_ok_at)
        .then_with(|| a.url.cmp(&b.url))
}

fn latency(s: &Served) -> u32 {
    s.latency_ms.unwrap_or(u32::MAX)
}

/// Narrowing by `protocol`, `anonymity` and `country`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub protocol: Option<Protocol>,
    pub anonymity: Option<Anonymity>,
    pub country: Option<String>,
}

impl Filter {
    pub fn matches(&self, s: &Served) -> bool {
        self.protocol.is_none_or(|p| p == s.protocol)
            && self.anonymity.is_none_or(|a| Some(a) == s.anonymity)
            && self
                .country
                .as_deref()
                .is_none_or(|c| s.country.as_deref() == Some(c))
    }
}

/// Proxies picked for one answer.
#[derive(Debug, Default, PartialEq)]
pub struct Selection<'a> {
    pub proxies: Vec<&'a Served>,
    /// Serving tiers held fewer matching proxies than asked.
    pub degraded: bool,
}

/// Picks `count` proxies from `ordered` (already in the strategy's order, serving tiers only),
/// then fills the rest from `fill` (dead proxies, best first) when `allow_fill` is set.
pub fn select<'a>(
    ordered: impl Iterator<Item = &'a Served>,
    fill: &'a [Served],
    filter: &Filter,
    count: usize,
    allow_fill: bool,
) -> Selection<'a> {
    let mut proxies: Vec<&Served> = ordered.filter(|s| filter.matches(s)).take(count).collect();
    let degraded = proxies.len() < count;
    if degraded && allow_fill {
        let missing = count - proxies.len();
        proxies.extend(fill.iter().filter(|s| filter.matches(s)).take(missing));
    }
    Selection { proxies, degraded }
}

/// `count` distinct proxies chosen uniformly among those matching.
pub fn sample<'a, R: Rng>(
    serving: &'a [Served],
    filter: &Filter,
    count: usize,
    rng: &mut R,
) -> Vec<&'a Served> {
    let matching: Vec<&Served> = serving.iter().filter(|s| filter.matches(s)).collect();
    matching.choose_multiple(rng, count).copied().collect()
}

/// `/random`: 70% of the time from the fastest half, otherwise from all.
pub fn pick_one<'a, R: Rng>(
    serving_fastest_first: &'a [Served],
    rng: &mut R,
) -> Option<&'a Served> {
    let n = serving_fastest_first.len();
    if n == 0 {
        return None;
    }
    let upto = if rng.random_bool(0.7) {
        n.div_ceil(2)
    } else {
        n
    };
    serving_fastest_first[..upto].choose(rng)
}

/// A `count`/`limit` parameter: a whole number in `1..=max`.
pub fn parse_count(
    raw: Option<&str>,
    default: usize,
    max: usize,
    name: &str,
) -> Result<usize, String> {
    let Some(raw) = raw else {
        return Ok(default.min(max));
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if n >= 1 && n <= max as u64 => Ok(n as usize),
        _ => Err(format!(
            "`{name}` must be a whole number from 1 to {max}, got `{}`",
            raw.chars().take(32).collect::<String>()
        )),
    }
}

/// A served proxy for unit tests: free, HTTP, always passing.
#[cfg(test)]
pub fn test_served(url: &str, tier: Tier, latency: u32) -> Served {
    Served {
        url: url.into(),
        protocol: Protocol::Http,
        tier,
        latency_ms: Some(latency),
        success_rate: 1.0,
        anonymity: None,
        country: None,
        kind: "free".into(),
        cost_per_gb: 0.0,
        priority: 1000,
        last_checked_at: None,
        last_ok_at: None,
        failing: false,
        max_leases: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn s(url: &str, tier: Tier, latency: u32) -> Served {
        Served {
            last_ok_at: Some(latency as i64),
            ..test_served(url, tier, latency)
        }
    }

    #[test]
    fn fastest_is_tier_then_latency() {
        let mut v = [
            s("c", Tier::Emergency, 1),
            s("b", Tier::Standby, 50),
            s("a", Tier::Primary, 900),
            s("d", Tier::Standby, 10),
        ];
        v.sort_by(fastest_order);
        let urls: Vec<_> = v.iter().map(|x| x.url.as_str()).collect();
        assert_eq!(urls, ["a", "d", "b", "c"]);
    }

    #[test]
    fn cheapest_prefers_priority_then_cost() {
        let mut paid = s("paid", Tier::Standby, 500);
        paid.priority = 1;
        paid.cost_per_gb = 3.0;
        let mut cheaper = paid.clone();
        cheaper.url = "cheaper".into();
        cheaper.cost_per_gb = 1.0;
        let mut v = [s("free", Tier::Primary, 5), paid, cheaper];
        v.sort_by(cheapest_order);
        let urls: Vec<_> = v.iter().map(|x| x.url.as_str()).collect();
        assert_eq!(urls, ["cheaper", "paid", "free"]);
        // The cheapest fails its last check: the next one leads until it passes again.
        v[0].failing = true;
        v.sort_by(cheapest_order);
        let urls: Vec<_> = v.iter().map(|x| x.url.as_str()).collect();
        assert_eq!(urls, ["paid", "free", "cheaper"]);
    }

    #[test]
    fn short_answers_are_filled_from_dead_and_marked_degraded() {
        let serving = [s("a", Tier::Primary, 1)];
        let fill = [s("dead1", Tier::Dead, 9), s("dead2", Tier::Dead, 1)];
        let sel = select(serving.iter(), &fill, &Filter::default(), 2, true);
        assert!(sel.degraded);
        let urls: Vec<_> = sel.proxies.iter().map(|x| x.url.as_str()).collect();
        assert_eq!(urls, ["a", "dead1"]);
        let sel = select(serving.iter(), &fill, &Filter::default(), 1, true);
        assert!(!sel.degraded);
        let sel = select(serving.iter(), &fill, &Filter::default(), 3, false);
        assert_eq!(sel.proxies.len(), 1);
    }

    #[test]
    fn filters_narrow() {
        let mut socks = s("socks", Tier::Primary, 1);
        socks.protocol = Protocol::Socks5;
        socks.country = Some("DE".into());
        let serving = [s("a", Tier::Primary, 1), socks];
        let f = Filter {
            protocol: Some(Protocol::Socks5),
            country: Some("DE".into()),
            ..Filter::default()
        };
        let sel = select(serving.iter(), &[], &f, 5, false);
        assert_eq!(sel.proxies.len(), 1);
        assert_eq!(sel.proxies[0].url, "socks");
    }

    #[test]
    fn random_pick_prefers_fastest_half() {
        let serving: Vec<_> = (0..10)
            .map(|i| s(&i.to_string(), Tier::Primary, i))
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let fast = (0..1000)
            .filter(|_| pick_one(&serving, &mut rng).unwrap().latency_ms.unwrap() < 5)
            .count();
        // expected 0.7 + 0.3 * 0.5 = 85%
        assert!((780..=920).contains(&fast), "{fast}");
        assert!(pick_one(&[], &mut rng).is_none());
    }

    #[test]
    fn count_bounds() {
        assert_eq!(parse_count(None, 10, 100, "count"), Ok(10));
        assert_eq!(parse_count(Some("100"), 10, 100, "count"), Ok(100));
        for bad in [
            "0",
            "-1",
            "abc",
            "101",
            "10000000",
            "",
            "1.5",
            "99999999999999999999999",
        ] {
            assert!(parse_count(Some(bad), 10, 100, "count").is_err(), "{bad}");
        }
    }
}
