//! Check profiles (`[[validation.profiles]]`): extra checks of a proxy against a user's own
//! target site. Which results a proxy keeps, which proxies a profile serves and in what order.
//!
//! Profile results live in memory only (never in the store): the rolling revalidation re-checks
//! every serving proxy, and each passing check runs the profile checks again.

use super::selection::{Filter, Selection, Served, Strategy};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::HashMap;

/// One profile check of a proxy, as the ValidatorPool reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileOutcome {
    /// Index of the profile in `validation.profiles`.
    pub index: usize,
    pub ok: bool,
    pub latency_ms: u32,
}

/// A proxy's latest result on one profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileResult {
    pub ok: bool,
    pub latency_ms: u32,
    /// Unix ms of the check.
    pub at: i64,
}

/// A proxy's latest results, by profile index (`None`: not checked on that profile yet).
pub type ProfileResults = Vec<Option<ProfileResult>>;

/// Takes in the profile outcomes of one check of a proxy. A failing main check forgets every
/// profile result: a proxy serves a profile again only after a passing main check has re-run it.
/// A passing check without profile outcomes (a client's report) keeps the results it had.
pub fn record(results: &mut ProfileResults, main_ok: bool, outcomes: &[ProfileOutcome], at: i64) {
    if !main_ok {
        results.clear();
        return;
    }
    for o in outcomes {
        if results.len() <= o.index {
            results.resize(o.index + 1, None);
        }
        results[o.index] = Some(ProfileResult {
            ok: o.ok,
            latency_ms: o.latency_ms,
            at,
        });
    }
}

/// For each profile index, the indices into `serving` of the proxies whose latest result on that
/// profile passed, fastest on the profile first (ties keep the `serving` order). `results` pairs
/// a proxy's URL with its results; URLs not in `serving` are ignored. Profiles past the last one
/// anybody has a result for get no list (read them as empty).
pub fn passers<'a, K: AsRef<str>>(
    serving: &[Served],
    results: impl IntoIterator<Item = (K, &'a [Option<ProfileResult>])>,
) -> Vec<Vec<u32>> {
    let mut lists: Vec<Vec<(u32, u32)>> = Vec::new();
    let mut index: Option<HashMap<&str, u32>> = None;
    for (url, res) in results {
        if !res.iter().flatten().any(|r| r.ok) {
            continue;
        }
        let index = index.get_or_insert_with(|| {
            serving
                .iter()
                .enumerate()
                .map(|(i, s)| (s.url.as_str(), i as u32))
                .collect()
        });
        let Some(&i) = index.get(url.as_ref()) else {
            continue;
        };
        for (p, r) in res.iter().enumerate() {
            if let Some(r) = r.filter(|r| r.ok) {
                if lists.len() <= p {
                    lists.resize_with(p + 1, Vec::new);
                }
                lists[p].push((r.latency_ms, i));
            }
        }
    }
    lists
        .into_iter()
        .map(|mut l| {
            l.sort_unstable();
            l.into_iter().map(|(_, i)| i).collect()
        })
        .collect()
}

/// Picks `count` proxies for a profile: only its passers (`passers`, as [`passers`] orders them),
/// narrowed by `filter`, never filled from dead proxies; `degraded` when fewer than asked.
/// Order by strategy:
/// - `fastest`: latency on the profile (the tier does not matter: every passer is serving);
/// - `cheapest`: (last check failing, `priority`, `cost_per_gb`), then latency on the profile;
/// - `least_loaded`: fewest leases (`load`), then latency on the profile;
/// - `random`: a uniform sample of the passers.
pub fn select<'a, R: Rng>(
    serving: &'a [Served],
    passers: &[u32],
    filter: &Filter,
    count: usize,
    strategy: Strategy,
    load: impl Fn(&Served) -> u32,
    rng: &mut R,
) -> Selection<'a> {
    let mut order: Vec<&Served> = passers
        .iter()
        .filter_map(|&i| serving.get(i as usize))
        .filter(|s| filter.matches(s))
        .collect();
    // The sorts are stable: ties stay fastest on the profile first.
    match strategy {
        Strategy::Fastest => {}
        Strategy::Cheapest => order.sort_by(|a, b| {
            a.failing
                .cmp(&b.failing)
                .then_with(|| a.priority.cmp(&b.priority))
                .then_with(|| a.cost_per_gb.total_cmp(&b.cost_per_gb))
        }),
        Strategy::LeastLoaded => order.sort_by_key(|s| load(s)),
        Strategy::Random => order.shuffle(rng),
    }
    order.truncate(count);
    Selection {
        degraded: order.len() < count,
        proxies: order,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::Tier;
    use crate::domain::proxy::Protocol;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    fn s(url: &str, tier: Tier, latency: u32) -> Served {
        crate::domain::selection::test_served(url, tier, latency)
    }

    fn res(ok: bool, latency_ms: u32) -> Option<ProfileResult> {
        Some(ProfileResult {
            ok,
            latency_ms,
            at: 1,
        })
    }

    fn urls<'a>(sel: &Selection<'a>) -> Vec<&'a str> {
        sel.proxies.iter().map(|s| s.url.as_str()).collect()
    }

    fn outcome(index: usize, ok: bool, latency_ms: u32) -> ProfileOutcome {
        ProfileOutcome {
            index,
            ok,
            latency_ms,
        }
    }

    #[test]
    fn a_passing_check_records_outcomes_and_a_failing_one_forgets_them() {
        let mut r = ProfileResults::new();
        record(&mut r, true, &[outcome(1, true, 40)], 5);
        let passed = ProfileResult {
            ok: true,
            latency_ms: 40,
            at: 5,
        };
        assert_eq!(r, vec![None, Some(passed)]);
        record(
            &mut r,
            true,
            &[outcome(0, false, 9), outcome(1, true, 70)],
            6,
        );
        assert_eq!(
            r,
            vec![
                Some(ProfileResult {
                    ok: false,
                    latency_ms: 9,
                    at: 6
                }),
                Some(ProfileResult {
                    ok: true,
                    latency_ms: 70,
                    at: 6
                }),
            ]
        );
        // A passing client report carries no profile outcomes: the results stay.
        let before = r.clone();
        record(&mut r, true, &[], 7);
        assert_eq!(r, before);
        // A failing main check: no profile serves this proxy any more.
        record(&mut r, false, &[], 8);
        assert!(r.is_empty());
    }

    #[test]
    fn passers_are_the_serving_proxies_that_passed_fastest_on_the_profile_first() {
        // `serving` is in the fastest order of the main check.
        let serving = [
            s("a", Tier::Primary, 10),
            s("b", Tier::Primary, 20),
            s("c", Tier::Standby, 30),
            s("d", Tier::Emergency, 40),
        ];
        let ra = vec![res(true, 300), res(false, 5)];
        let rb = vec![res(false, 1), res(true, 50)];
        let rc = vec![res(true, 100)];
        let rd = vec![res(true, 100), None, res(true, 1)];
        let gone = vec![res(true, 1), res(true, 1)];
        let none: Vec<Option<ProfileResult>> = vec![];
        let lists = passers(
            &serving,
            [
                ("d", rd.as_slice()),
                ("a", ra.as_slice()),
                ("gone", gone.as_slice()),
                ("b", rb.as_slice()),
                ("c", rc.as_slice()),
                ("a", none.as_slice()),
            ],
        );
        // Profile 0: c and d tie at 100 ms (serving order), a is slowest; b failed it.
        assert_eq!(lists[0], [2, 3, 0]);
        assert_eq!(lists[1], [1]);
        assert_eq!(lists[2], [3]);
        assert_eq!(lists.len(), 3);
        assert!(passers(&serving, [("a", none.as_slice())]).is_empty());
    }

    #[test]
    fn a_profile_serves_only_its_passers_by_latency_on_it_and_never_fills() {
        let serving = [
            s("a", Tier::Primary, 10),
            s("b", Tier::Primary, 20),
            s("c", Tier::Standby, 30),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let pick = |passers: &[u32], count, strategy, rng: &mut rand::rngs::StdRng| {
            select(
                &serving,
                passers,
                &Filter::default(),
                count,
                strategy,
                |_| 0,
                rng,
            )
        };
        let sel = pick(&[2, 0], 5, Strategy::Fastest, &mut rng);
        assert_eq!(urls(&sel), ["c", "a"]);
        assert!(sel.degraded, "fewer than asked");
        let sel = pick(&[2, 0], 1, Strategy::Fastest, &mut rng);
        assert_eq!((urls(&sel), sel.degraded), (vec!["c"], false));
        let sel = pick(&[], 3, Strategy::Fastest, &mut rng);
        assert_eq!((sel.proxies.len(), sel.degraded), (0, true));
        // Indices past `serving` (a stale list) are ignored.
        let sel = pick(&[7, 1], 2, Strategy::Fastest, &mut rng);
        assert_eq!(urls(&sel), ["b"]);
    }

    #[test]
    fn strategies_and_filters_apply_within_the_passers() {
        let mut serving = vec![
            s("a", Tier::Primary, 10),
            s("b", Tier::Primary, 20),
            s("c", Tier::Standby, 30),
            s("d", Tier::Standby, 40),
        ];
        serving[3].priority = 1;
        serving[3].cost_per_gb = 2.0;
        serving[1].priority = 1;
        serving[1].cost_per_gb = 1.0;
        serving[2].protocol = Protocol::Socks5;
        let passers = [2, 3, 0, 1]; // c, d, a, b by latency on the profile
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let all = Filter::default();
        let loads = |x: &Served| {
            if x.url == "c" {
                3
            } else {
                u32::from(x.url == "a")
            }
        };
        let sel = select(
            &serving,
            &passers,
            &all,
            4,
            Strategy::Cheapest,
            loads,
            &mut rng,
        );
        assert_eq!(urls(&sel), ["b", "d", "c", "a"]);
        let sel = select(
            &serving,
            &passers,
            &all,
            4,
            Strategy::LeastLoaded,
            loads,
            &mut rng,
        );
        assert_eq!(urls(&sel), ["d", "b", "a", "c"]);
        let socks = Filter {
            protocol: Some(Protocol::Socks5),
            ..Filter::default()
        };
        let sel = select(
            &serving,
            &passers,
            &socks,
            2,
            Strategy::Fastest,
            loads,
            &mut rng,
        );
        assert_eq!((urls(&sel), sel.degraded), (vec!["c"], true));
        // Random: distinct passers only, every passer reachable.
        let mut seen = BTreeSet::new();
        for _ in 0..50 {
            let sel = select(
                &serving,
                &[0, 2],
                &all,
                1,
                Strategy::Random,
                loads,
                &mut rng,
            );
            assert!(!sel.degraded);
            seen.insert(urls(&sel)[0]);
        }
        assert_eq!(seen, BTreeSet::from(["a", "c"]));
        let sel = select(
            &serving,
            &[0, 2],
            &all,
            3,
            Strategy::Random,
            loads,
            &mut rng,
        );
        let got: BTreeSet<_> = urls(&sel).into_iter().collect();
        assert_eq!((got, sel.degraded), (BTreeSet::from(["a", "c"]), true));
    }
}
