//! Property tests of the lease book, driven as the Allocator drives it (expire first, then the
//! request): no proxy over its capacity, loads are the sum over live leases, expired leases
//! free their slots.

use super::*;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

const PROXIES: [&str; 5] = ["a", "b", "c", "d", "e"];

#[derive(Clone, Debug)]
enum Op {
    /// `serving` picks which proxies are candidates now (the pool changes), in that order.
    Allocate {
        count: usize,
        ttl: i64,
        serving: Vec<usize>,
        session: Option<u8>,
    },
    Renew {
        lease: usize,
        ttl: i64,
    },
    Release {
        lease: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (
            0usize..7,
            1i64..5_000,
            prop::sample::subsequence((0..PROXIES.len()).collect::<Vec<_>>(), 0..=PROXIES.len())
                .prop_shuffle(),
            prop::option::of(0u8..3),
        )
            .prop_map(|(count, ttl, serving, session)| Op::Allocate { count, ttl, serving, session }),
        1 => (any::<prop::sample::Index>(), 1i64..5_000)
            .prop_map(|(i, ttl)| Op::Renew { lease: i.index(1 << 16), ttl }),
        1 => any::<prop::sample::Index>().prop_map(|i| Op::Release { lease: i.index(1 << 16) }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_sequence_of_requests_overfills_a_proxy(
        caps in prop::collection::vec(0u32..4, PROXIES.len()),
        ops in prop::collection::vec((0i64..2_000, op()), 0..60),
    ) {
        let cap: HashMap<&str, u32> = PROXIES.iter().copied().zip(caps.iter().copied()).collect();
        let mut book = LeaseBook::default();
        // The model: every lease handed out and not released, with its expiry.
        let mut live: HashMap<String, i64> = HashMap::new();
        let mut ids: Vec<String> = Vec::new();
        let mut now = 0i64;
        for (n, (gap, op)) in ops.into_iter().enumerate() {
            now += gap;
            let expired: HashSet<String> = book.expire(now).into_iter().collect();
            let due: HashSet<String> =
                live.iter().filter(|(_, &at)| at <= now).map(|(id, _)| id.clone()).collect();
            prop_assert_eq!(&expired, &due, "expire removes exactly the expired leases");
            live.retain(|id, _| !due.contains(id));
            match op {
                Op::Allocate { count, ttl, serving, session } => {
                    let session = session.map(|s| format!("s{s}"));
                    if let Some(l) = session.as_deref().and_then(|s| book.by_session(s, now)) {
                        prop_assert!(live.contains_key(&l.id), "a session answers a live lease");
                        continue;
                    }
                    let free = serving
                        .iter()
                        .filter(|&&i| book.load_of(PROXIES[i]) < cap[PROXIES[i]])
                        .count();
                    let candidates: Vec<(&str, u32)> =
                        serving.iter().map(|&i| (PROXIES[i], cap[PROXIES[i]])).collect();
                    let id = format!("l{n}");
                    let lease = book.allocate(id.clone(), candidates, count, now + ttl, session);
                    prop_assert_eq!(lease.proxies.len(), count.min(free), "takes what is free");
                    let distinct: HashSet<&String> = lease.proxies.iter().collect();
                    prop_assert_eq!(distinct.len(), lease.proxies.len(), "a proxy once per lease");
                    for p in &lease.proxies {
                        prop_assert!(serving.iter().any(|&i| PROXIES[i] == p.as_str()));
                    }
                    live.insert(id.clone(), now + ttl);
                    ids.push(id);
                }
                Op::Renew { lease, ttl } => {
                    if ids.is_empty() { continue; }
                    let id = &ids[lease % ids.len()];
                    let renewed = book.renew(id, now + ttl).is_some();
                    prop_assert_eq!(renewed, live.contains_key(id), "only live leases renew");
                    if renewed {
                        live.insert(id.clone(), now + ttl);
                    }
                }
                Op::Release { lease } => {
                    if ids.is_empty() { continue; }
                    let id = &ids[lease % ids.len()];
                    let released = book.release(id).is_some();
                    prop_assert_eq!(released, live.remove(id).is_some(), "only live leases release");
                }
            }
            // The invariants, after every request.
            prop_assert_eq!(book.len(), live.len());
            let mut sum: HashMap<String, u32> = HashMap::new();
            for id in live.keys() {
                let l = book.get(id).expect("a live lease is in the book");
                prop_assert_eq!(l.expires_at, live[id]);
                for p in &l.proxies {
                    *sum.entry(p.clone()).or_default() += 1;
                }
            }
            let loads: HashMap<String, u32> =
                book.loads().iter().filter(|(_, &n)| n > 0).map(|(p, &n)| (p.clone(), n)).collect();
            prop_assert_eq!(&loads, &sum, "loads are the sum over live leases");
            for p in PROXIES {
                prop_assert!(book.load_of(p) <= cap[p], "{p} holds {} over {}", book.load_of(p), cap[p]);
            }
        }
        // Once every lease is past its expiry, every slot is free again.
        book.expire(i64::MAX);
        prop_assert!(book.is_empty());
        for p in PROXIES {
            prop_assert_eq!(book.load_of(p), 0);
        }
    }
}
