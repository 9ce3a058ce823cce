//! Property tests of a watched service's state machine, driven as the ServiceMonitor drives it
//! (repair outcomes only for a running repair): repairs never overlap, none starts in the
//! warm-up unless an admin forces it, the attempts are bounded, and a fast answer is `up`.

use super::*;
use proptest::prelude::*;

fn rules() -> impl Strategy<Value = Rules> {
    (
        1u32..4,
        1u64..1000,
        1u32..4,
        any::<bool>(),
        0i64..20_000,
        1u32..4,
        any::<bool>(),
    )
        .prop_map(
            |(down, slow, degr, can_repair, cooldown, max, redeploy)| Rules {
                failures_before_down: down,
                slow_threshold_ms: slow,
                degradation_threshold: degr,
                can_repair,
                cooldown_ms: cooldown,
                max_attempts: max,
                then: if redeploy {
                    Then::Redeploy
                } else {
                    Then::Alert
                },
            },
        )
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Ok(u64),
    Fail,
    /// The running repair ends (ignored when none runs): 0 done, 1 failed, 2 rate limited.
    RepairDone(u8, i64),
    Force,
}

fn event(force: bool) -> BoxedStrategy<Event> {
    let base = prop_oneof![
        3 => (0u64..2000).prop_map(Event::Ok),
        4 => Just(Event::Fail),
        2 => (0u8..3, -5_000i64..60_000).prop_map(|(k, after)| Event::RepairDone(k, after)),
    ];
    if force {
        prop_oneof![9 => base, 1 => Just(Event::Force)].boxed()
    } else {
        base.boxed()
    }
}

fn run(
    rules: &Rules,
    events: Vec<(i64, Event)>,
    forced_allowed: bool,
) -> Result<(), TestCaseError> {
    let mut s = Service::default();
    let mut now = 0i64;
    let mut running: Option<RepairKind> = None;
    for (gap, e) in events {
        now += gap;
        let before = s.clone();
        let fx = match e {
            Event::Ok(latency_ms) => s.on_check(&Check::Ok { latency_ms }, now, rules, "svc"),
            Event::Fail => s.on_check(
                &Check::Failed {
                    reason: "refused".into(),
                },
                now,
                rules,
                "svc",
            ),
            Event::RepairDone(k, after) => {
                let Some(kind) = running.take() else { continue };
                let outcome = match k {
                    0 => RepairOutcome::Done,
                    1 => RepairOutcome::Failed {
                        reason: "HTTP 500".into(),
                    },
                    _ => RepairOutcome::RateLimited {
                        retry_after_ms: after,
                    },
                };
                let fx = s.on_repair_done(kind, &outcome, now, rules, "svc");
                prop_assert!(fx.repair.is_none());
                prop_assert!(!s.repair_running);
                prop_assert!(
                    s.quiet_until >= now,
                    "the warm-up runs from the repair's end"
                );
                fx
            }
            Event::Force => {
                match s.force_repair(now, rules) {
                    Some(r) => {
                        prop_assert!(running.is_none(), "a forced repair while one runs");
                        running = Some(r.kind);
                    }
                    None => {
                        prop_assert!(running.is_some(), "a forced repair refused while none runs")
                    }
                }
                prop_assert!(s.repair_running == running.is_some());
                continue;
            }
        };
        if let Some(r) = fx.repair {
            prop_assert!(
                running.is_none(),
                "a repair started while one runs: {before:?}"
            );
            prop_assert!(rules.can_repair, "an alert-only monitor repaired");
            prop_assert!(
                now >= before.quiet_until,
                "a repair in the warm-up: {before:?} at {now}"
            );
            prop_assert!(!before.gave_up, "a repair after giving up");
            if !forced_allowed {
                let cap = match rules.then {
                    Then::Redeploy => 2 * rules.max_attempts,
                    Then::Alert => rules.max_attempts,
                };
                prop_assert!(
                    before.repairs_since_up < cap,
                    "repair {} over {cap}",
                    before.repairs_since_up + 1
                );
                if r.kind == RepairKind::Redeploy {
                    prop_assert_eq!(rules.then, Then::Redeploy);
                    prop_assert!(
                        before.repairs_since_up >= rules.max_attempts,
                        "redeploy before the restarts ran out"
                    );
                }
            }
            running = Some(r.kind);
        }
        prop_assert_eq!(s.repair_running, running.is_some());
        if !forced_allowed {
            prop_assert!(s.repairs_since_up <= 2 * rules.max_attempts, "{s:?}");
        }
        if let Event::Ok(latency_ms) = e {
            if latency_ms <= rules.slow_threshold_ms {
                prop_assert_eq!(s.status, Status::Up, "a fast answer is up");
                prop_assert!(s.repairs_since_up == 0 && !s.gave_up && s.down_since.is_none());
            } else {
                prop_assert_eq!(s.status, Status::Degraded, "a slow answer is degraded");
            }
        }
        if let Some((from, to)) = fx.changed {
            prop_assert_eq!(from, before.status);
            prop_assert_eq!(to, s.status);
            prop_assert!(from != to);
        } else {
            prop_assert_eq!(s.status, before.status);
        }
        if matches!(s.status, Status::Down | Status::Recovering) {
            prop_assert!(s.down_since.is_some(), "{s:?}");
        }
        if s.status == Status::Recovering {
            prop_assert!(rules.can_repair);
        }
    }
    Ok(())
}

fn timed(force: bool) -> impl Strategy<Value = Vec<(i64, Event)>> {
    prop::collection::vec((0i64..15_000, event(force)), 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn automatic_repairs_keep_every_rule(rules in rules(), events in timed(false)) {
        run(&rules, events, false)?;
    }

    #[test]
    fn forced_repairs_never_overlap(rules in rules(), events in timed(true)) {
        run(&rules, events, true)?;
    }
}
