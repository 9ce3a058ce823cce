//! Property tests of alert folding (driven as the Alerter drives it: open alerts remembered
//! until a recovery closes them) and of the pool watch.

use super::*;
use proptest::prelude::*;

fn event() -> impl Strategy<Value = AlertEvent> {
    (
        prop::sample::select(Kind::ALL.to_vec()),
        prop::sample::select(vec!["service:a", "service:b", "pool"]),
        0i64..120_000,
    )
        .prop_map(|(kind, key, at)| AlertEvent::new(kind, key, Severity::Warning, "m", at))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn folding_says_each_thing_once_per_cooldown_and_recoveries_close_it(
        cooldown in 0i64..60_000,
        gaps_and_events in prop::collection::vec((0i64..30_000, event()), 0..80),
    ) {
        let mut open: Vec<OpenAlert> = Vec::new();
        let mut next_id = 1i64;
        let mut now = 0i64;
        for (gap, mut e) in gaps_and_events {
            now += gap;
            e.at = now;
            let same = |a: &OpenAlert| a.key == e.key && a.kind == e.kind;
            match fold(&open, &e, cooldown) {
                Fold::New => {
                    prop_assert!(e.kind != Kind::ServiceRecovered);
                    if e.kind != Kind::DailyReport {
                        prop_assert!(
                            !open.iter().any(|a| same(a) && now - a.created_at < cooldown),
                            "a second message within the cooldown: {e:?} with {open:?}"
                        );
                    }
                    if opens(e.kind) {
                        open.push(OpenAlert {
                            id: next_id,
                            kind: e.kind,
                            key: e.key.clone(),
                            created_at: now,
                            repeats: 1,
                        });
                    }
                    next_id += 1;
                }
                Fold::Repeat { id, repeats } => {
                    prop_assert!(!matches!(e.kind, Kind::ServiceRecovered | Kind::DailyReport));
                    let a = open.iter_mut().find(|a| a.id == id);
                    prop_assert!(a.is_some(), "folded into an alert that is not open");
                    let a = a.unwrap();
                    prop_assert!(a.key == e.key && a.kind == e.kind);
                    prop_assert!(now - a.created_at < cooldown, "folded after the cooldown");
                    prop_assert_eq!(repeats, a.repeats + 1);
                    a.repeats = repeats;
                }
                Fold::Recover { close } => {
                    prop_assert_eq!(e.kind, Kind::ServiceRecovered);
                    prop_assert!(!close.is_empty());
                    for id in &close {
                        prop_assert!(open.iter().any(|a| a.id == *id && a.key == e.key));
                    }
                    open.retain(|a| !close.contains(&a.id));
                    prop_assert!(!open.iter().any(|a| a.key == e.key), "a recovery closes its key");
                    next_id += 1;
                }
                Fold::Drop => {
                    prop_assert_eq!(e.kind, Kind::ServiceRecovered);
                    prop_assert!(!open.iter().any(|a| a.key == e.key), "a recovery dropped with alerts open");
                }
            }
        }
    }

    #[test]
    fn the_pool_watch_alternates_alerts_and_recoveries(
        minimum in 1usize..5,
        counts in prop::collection::vec((0usize..8, any::<bool>()), 0..80),
    ) {
        let mut w = PoolWatch::default();
        let mut alerted = false;
        let mut served = false;
        let mut checked_once = false;
        for (serving, checked) in counts {
            let checked = checked_once || checked;
            checked_once = checked;
            served |= serving > 0;
            match w.observe(serving, minimum, checked) {
                None => {}
                Some(PoolAlert::Recovered { serving: s, minimum: m }) => {
                    prop_assert!(alerted, "a recovery without an alert");
                    prop_assert!(s >= m && s == serving && m == minimum);
                    alerted = false;
                }
                Some(PoolAlert::BelowMinimum { serving: s, .. }) => {
                    prop_assert!(!alerted, "alerted twice without a recovery");
                    prop_assert!(s < minimum && s > 0);
                    alerted = true;
                }
                Some(PoolAlert::Empty) => {
                    prop_assert!(served && serving == 0 && checked);
                    alerted = true;
                }
            }
        }
    }
}
