//! Which proxies a serving request gets: the strategy's order over the serving tiers, the
//! filters, a check profile's passers, and the never-empty fill from recently working dead
//! proxies.

use super::profiles;
use super::selection::{self, Filter, Selection, Served, Strategy};
use rand::Rng;

/// A parsed serving request.
#[derive(Clone, Debug)]
pub struct Ask {
    pub count: usize,
    pub strategy: Strategy,
    pub filter: Filter,
    /// Index of the asked check profile in `validation.profiles`.
    pub profile: Option<usize>,
    /// Add the proxies' details to the answer.
    pub detail: bool,
}

/// The serving pool as a published snapshot holds it.
#[derive(Clone, Copy)]
pub struct Pool<'a> {
    /// Serving proxies, in the `fastest` order.
    pub serving: &'a [Served],
    /// Indices into `serving`, in the `cheapest` order.
    pub cheapest: &'a [u32],
    /// Per check profile, indices into `serving` of its passers, fastest on it first.
    pub profiles: &'a [Vec<u32>],
    /// Dead proxies that once worked, most recently working first.
    pub fill: &'a [Served],
}

/// Picks proxies for `ask`; `load` is the leases a proxy holds (by URL). The fill from dead
/// proxies applies when `allow_fill`, and never to a profile: an empty, degraded answer rather
/// than proxies not known to work on that target.
pub fn pick<'a, R: Rng>(
    pool: Pool<'a>,
    ask: &Ask,
    load: impl Fn(&str) -> u32,
    allow_fill: bool,
    rng: &mut R,
) -> Selection<'a> {
    if let Some(i) = ask.profile {
        return profiles::select(
            pool.serving,
            pool.profiles.get(i).map_or(&[][..], Vec::as_slice),
            &ask.filter,
            ask.count,
            ask.strategy,
            |s| load(&s.url),
            rng,
        );
    }
    let select = |order: Vec<&'a Served>| {
        selection::select(
            order.into_iter(),
            pool.fill,
            &ask.filter,
            ask.count,
            allow_fill,
        )
    };
    match ask.strategy {
        Strategy::LeastLoaded => {
            // Fewest leases first; the sort is stable, so ties stay fastest first.
            let mut order: Vec<&Served> = pool.serving.iter().collect();
            order.sort_by_key(|s| load(&s.url));
            select(order)
        }
        Strategy::Fastest => select(pool.serving.iter().collect()),
        Strategy::Cheapest => select(
            pool.cheapest
                .iter()
                .map(|&i| &pool.serving[i as usize])
                .collect(),
        ),
        Strategy::Random => select(selection::sample(pool.serving, &ask.filter, ask.count, rng)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::Tier;
    use crate::domain::selection::test_served;

    fn ask(count: usize, strategy: Strategy) -> Ask {
        Ask {
            count,
            strategy,
            filter: Filter::default(),
            profile: None,
            detail: false,
        }
    }

    #[test]
    fn strategies_order_the_serving_pool_and_the_fill_completes_it() {
        let serving = vec![
            test_served("http://a:1", Tier::Primary, 10),
            test_served("http://b:1", Tier::Primary, 20),
            test_served("http://c:1", Tier::Standby, 5),
        ];
        let fill = vec![test_served("http://dead:1", Tier::Dead, 1)];
        let cheapest = [2, 1, 0];
        let pool = Pool {
            serving: &serving,
            cheapest: &cheapest,
            profiles: &[],
            fill: &fill,
        };
        let urls = |s: Selection| s.proxies.iter().map(|p| p.url.clone()).collect::<Vec<_>>();
        let rng = &mut rand::rng();
        let no_load = |_: &str| 0;
        assert_eq!(
            urls(pick(pool, &ask(2, Strategy::Fastest), no_load, true, rng)),
            ["http://a:1", "http://b:1"]
        );
        assert_eq!(
            urls(pick(pool, &ask(2, Strategy::Cheapest), no_load, true, rng)),
            ["http://c:1", "http://b:1"]
        );
        let loaded = |u: &str| if u == "http://a:1" { 3 } else { 0 };
        assert_eq!(
            urls(pick(
                pool,
                &ask(3, Strategy::LeastLoaded),
                loaded,
                true,
                rng
            )),
            ["http://b:1", "http://c:1", "http://a:1"]
        );
        let more = pick(pool, &ask(4, Strategy::Fastest), no_load, true, rng);
        assert!(more.degraded);
        assert_eq!(more.proxies.last().unwrap().url, "http://dead:1");
        let no_fill = pick(pool, &ask(4, Strategy::Random), no_load, false, rng);
        assert_eq!((no_fill.proxies.len(), no_fill.degraded), (3, true));
        // A profile nobody passes: empty and degraded, never the fill.
        let mut profiled = ask(2, Strategy::Fastest);
        profiled.profile = Some(0);
        let none = pick(pool, &profiled, no_load, true, rng);
        assert!(none.proxies.is_empty() && none.degraded);
    }
}
