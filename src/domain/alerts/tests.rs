//! The rules of alerts, tested together.

use super::*;
use crate::domain::managed::Status;

fn ev(kind: Kind, key: &str, at: i64) -> AlertEvent {
    AlertEvent::new(kind, key, Severity::Critical, "m", at)
}

fn open(id: i64, kind: Kind, key: &str, created_at: i64) -> OpenAlert {
    OpenAlert {
        id,
        kind,
        key: key.into(),
        created_at,
        repeats: 1,
    }
}

#[test]
fn repeats_within_the_cooldown_fold_into_the_open_alert() {
    let book = vec![open(1, Kind::ServiceDown, "service:api", 1_000)];
    let e = ev(Kind::ServiceDown, "service:api", 1_000 + 299_999);
    assert_eq!(fold(&book, &e, 300_000), Fold::Repeat { id: 1, repeats: 2 });
    // After the cooldown, a new message.
    let late = ev(Kind::ServiceDown, "service:api", 1_000 + 300_000);
    assert_eq!(fold(&book, &late, 300_000), Fold::New);
    // Another kind or key is news.
    assert_eq!(
        fold(
            &book,
            &ev(Kind::ServiceDegraded, "service:api", 2_000),
            300_000
        ),
        Fold::New
    );
    assert_eq!(
        fold(&book, &ev(Kind::ServiceDown, "service:web", 2_000), 300_000),
        Fold::New
    );
    // Cooldown 0 folds nothing.
    assert_eq!(
        fold(&book, &ev(Kind::ServiceDown, "service:api", 1_000), 0),
        Fold::New
    );
    // The newest open alert of the key and kind takes the repeat.
    let two = vec![
        open(1, Kind::ServiceDown, "k", 0),
        OpenAlert {
            repeats: 4,
            ..open(7, Kind::ServiceDown, "k", 500)
        },
    ];
    assert_eq!(
        fold(&two, &ev(Kind::ServiceDown, "k", 600), 1_000),
        Fold::Repeat { id: 7, repeats: 5 }
    );
    // Daily reports never fold.
    let reports = vec![open(3, Kind::DailyReport, "daily_report", 0)];
    assert_eq!(
        fold(&reports, &ev(Kind::DailyReport, "daily_report", 1), 1_000),
        Fold::New
    );
}

#[test]
fn a_recovery_closes_the_open_alerts_of_its_key_once() {
    let book = vec![
        open(1, Kind::ServiceDown, "service:api", 0),
        open(2, Kind::RepairFailed, "service:api", 10),
        open(3, Kind::ServiceDown, "service:web", 0),
    ];
    let r = ev(Kind::ServiceRecovered, "service:api", 50);
    assert_eq!(
        fold(&book, &r, 300_000),
        Fold::Recover { close: vec![1, 2] }
    );
    let after: Vec<OpenAlert> = book
        .into_iter()
        .filter(|a| a.key != "service:api")
        .collect();
    assert_eq!(
        fold(&after, &r, 300_000),
        Fold::Drop,
        "a second recovery is dropped"
    );
    assert!(!opens(Kind::ServiceRecovered) && !opens(Kind::DailyReport) && opens(Kind::PoolEmpty));
}

#[test]
fn retries_back_off_doubling_capped_and_honour_retry_after() {
    assert_eq!(retry_delay_ms(1, None), 1_000);
    assert_eq!(retry_delay_ms(2, None), 2_000);
    assert_eq!(retry_delay_ms(4, None), 8_000);
    assert_eq!(retry_delay_ms(9, None), 256_000);
    assert_eq!(retry_delay_ms(10, None), RETRY_CAP_MS);
    assert_eq!(retry_delay_ms(u32::MAX, None), RETRY_CAP_MS);
    assert_eq!(
        retry_delay_ms(5, Some(1_000)),
        1_000,
        "the channel's word wins"
    );
    assert_eq!(retry_delay_ms(1, Some(-5)), 0);
    assert_eq!(retry_delay_ms(1, Some(i64::MAX)), RETRY_AFTER_CAP_MS);

    let retry = Err(SendError::Retry {
        reason: "down".into(),
        retry_after_ms: None,
    });
    assert_eq!(after_attempt(&Ok(()), 1, 0, 10), Next::Sent);
    assert_eq!(after_attempt(&retry, 1, 0, 10), Next::RetryAt(1_010));
    assert_eq!(after_attempt(&retry, 3, 0, 10), Next::RetryAt(4_010));
    assert_eq!(
        after_attempt(&Err(SendError::Permanent("401".into())), 1, 0, 10),
        Next::Failed
    );
    assert_eq!(
        after_attempt(&retry, 50, 0, GIVE_UP_AFTER_MS),
        Next::Failed,
        "given up after a day"
    );
}

fn out(message: &str, severity: Severity, repeats: u32) -> Outgoing {
    Outgoing {
        id: 1,
        kind: Kind::ServiceDown,
        key: "service:api".into(),
        severity,
        message: message.into(),
        repeats,
        created_at: 0,
    }
}

#[test]
fn the_first_line_is_the_kind() {
    let a = out("api answers 502", Severity::Critical, 1);
    assert_eq!(plain_text(&a), "[CRITICAL] service_down\napi answers 502");
    assert_eq!(
        email_subject(&a),
        "Proxyvisor [CRITICAL] service_down (service:api)"
    );
    let a = out("x", Severity::Info, 3);
    assert_eq!(plain_text(&a), "[INFO] service_down\nx\n(repeated 3 times)");
    assert!(Severity::Info.silent() && !Severity::Warning.silent() && !Severity::Critical.silent());
    for k in Kind::ALL {
        assert_eq!(Kind::parse(k.as_str()), Some(k));
    }
    assert_eq!(Severity::parse("warning"), Some(Severity::Warning));
    assert_eq!(Severity::parse("loud"), None);
}

#[test]
fn telegram_text_is_escaped_and_cut_by_chars() {
    let a = out("<b>5 & 6</b> \"q\"", Severity::Warning, 1);
    assert_eq!(
        telegram_text(&a),
        "[WARNING] service_down\n&lt;b&gt;5 &amp; 6&lt;/b&gt; &quot;q&quot;"
    );
    // Multi-byte characters count once each.
    let a = out(&"я".repeat(5000), Severity::Warning, 1);
    let t = telegram_text(&a);
    assert_eq!(t.chars().count(), TELEGRAM_MAX_CHARS);
    assert!(t.ends_with('…') && t.starts_with("[WARNING] service_down\nя"));
    // Never cut inside an entity.
    let a = out(&"&".repeat(5000), Severity::Warning, 1);
    let t = telegram_text(&a);
    assert!(t.chars().count() <= TELEGRAM_MAX_CHARS);
    assert!(
        t.trim_end_matches('…').ends_with("&amp;"),
        "{}",
        &t[t.len() - 10..]
    );
    // Exactly at the limit: untouched.
    let head = "[WARNING] service_down\n".chars().count();
    let a = out(&"x".repeat(TELEGRAM_MAX_CHARS - head), Severity::Warning, 1);
    assert!(!telegram_text(&a).ends_with('…'));
}

#[test]
fn the_daily_report_is_due_at_its_utc_time() {
    let at = DailyAt::parse("09:00").unwrap().unwrap();
    let day = 86_400_000;
    let nine = 9 * 3_600_000;
    assert_eq!(at.next_after(20 * day), 20 * day + nine);
    assert_eq!(at.next_after(20 * day + nine - 1), 20 * day + nine);
    assert_eq!(
        at.next_after(20 * day + nine),
        21 * day + nine,
        "strictly after"
    );
    assert_eq!(at.next_after(20 * day + 23 * 3_600_000), 21 * day + nine);
    let late = DailyAt::parse("23:59").unwrap().unwrap();
    assert_eq!(late.next_after(0), (23 * 60 + 59) * 60_000);
    assert_eq!(
        DailyAt::parse("7:05").unwrap(),
        Some(DailyAt { hour: 7, minute: 5 })
    );
    assert_eq!(DailyAt::parse(" ").unwrap(), None);
    for bad in [
        "24:00", "12:60", "9", "09:0", "09:000", "a:b", "-1:00", "09:00Z",
    ] {
        assert!(DailyAt::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_daily_report_sums_the_pool_and_the_day() {
    let r = ReportInput {
        primary: 3,
        standby: 2,
        emergency: 1,
        fresh: 4,
        dead: 5,
        blacklisted: 6,
        minimum_guaranteed: 10,
        alerts: vec![
            Kind::PoolEmpty,
            Kind::Test,
            Kind::PoolEmpty,
            Kind::DailyReport,
        ],
        open_alerts: 2,
        gateway: None,
    };
    let t = daily_report(&r);
    assert!(t.starts_with("Pool: 6 serving (3 primary, 2 standby, 1 emergency), 4 fresh, 5 dead, 6 blacklisted; minimum 10 NOT met."), "{t}");
    assert!(
        t.contains("Alerts in the last 24 h: 3 (pool_empty 2, test 1)."),
        "{t}"
    );
    assert!(t.ends_with("Open alerts: 2."));
    assert!(daily_report(&ReportInput::default()).contains("none"));
    assert!(
        !t.contains("Gateway"),
        "no gateway line while it is off: {t}"
    );
}

#[test]
fn the_daily_report_tells_the_gateways_day_and_its_top_proxy() {
    use crate::domain::usage::Tally;
    let tally = |requests, up, down, cost| Tally {
        requests,
        failures: 1,
        bytes_up: up,
        bytes_down: down,
        cost,
    };
    let day = DayTraffic::of(vec![
        ("http://a:1".into(), tally(3, 1_000, 2_000_000, 0.5)),
        ("http://b:2".into(), tally(2, 5_000_000, 0, 0.25)),
        ("http://c:3".into(), tally(1, 0, 0, 0.0)),
    ]);
    assert_eq!(day.top.as_ref().unwrap().0, "http://b:2");
    let r = ReportInput {
        gateway: Some(day),
        open_alerts: 1,
        ..Default::default()
    };
    let t = daily_report(&r);
    assert!(
        t.contains("Gateway in the last 24 h: 6 requests, 3 failed attempts, 5.00 MB up, 2.00 MB down, cost 0.7500; top proxy http://b:2 (5.00 MB, cost 0.2500)."),
        "{t}"
    );
    assert!(t.ends_with("Open alerts: 1."), "{t}");
    let quiet = daily_report(&ReportInput {
        gateway: Some(DayTraffic::of(Vec::new())),
        ..Default::default()
    });
    assert!(
        quiet.contains("Gateway in the last 24 h: 0 requests, 0 failed attempts, 0 B up, 0 B down, cost 0.0000."),
        "{quiet}"
    );
}

#[test]
fn the_pool_alerts_once_per_crossing_and_only_after_checks() {
    let mut w = PoolWatch::default();
    assert_eq!(w.observe(0, 5, false), None, "nothing checked yet");
    assert_eq!(w.observe(0, 5, true), None, "never served: not news");
    assert_eq!(w.observe(3, 5, true), None, "below, but never met");
    assert_eq!(w.observe(6, 5, true), None);
    assert_eq!(
        w.observe(4, 5, true),
        Some(PoolAlert::BelowMinimum {
            serving: 4,
            minimum: 5
        })
    );
    assert_eq!(w.observe(3, 5, true), None, "once per crossing");
    assert_eq!(w.observe(0, 5, true), Some(PoolAlert::Empty));
    assert_eq!(w.observe(0, 5, true), None);
    assert_eq!(w.observe(2, 5, true), None);
    assert_eq!(w.observe(0, 5, true), Some(PoolAlert::Empty), "empty again");
    assert_eq!(
        w.observe(5, 5, true),
        Some(PoolAlert::Recovered {
            serving: 5,
            minimum: 5
        })
    );
    assert_eq!(w.observe(7, 5, true), None);
    // A stored pool that served before any check still counts as having served.
    let mut w = PoolWatch::default();
    assert_eq!(w.observe(2, 0, false), None);
    assert_eq!(
        w.observe(0, 0, true),
        Some(PoolAlert::Empty),
        "minimum 0 still alerts empty"
    );
    assert_eq!(PoolAlert::Empty.event(5).severity, Severity::Critical);
    assert_eq!(PoolAlert::Empty.event(5).kind, Kind::PoolEmpty);
}

#[test]
fn managed_status_changes_alert_except_from_or_to_unknown() {
    use Status::*;
    assert!(managed_status_alert("dc", None, Healthy, 0).is_none());
    assert!(managed_status_alert("dc", Some(Unknown), Down, 0).is_none());
    assert!(managed_status_alert("dc", Some(Healthy), Unknown, 0).is_none());
    assert!(managed_status_alert("dc", Some(Healthy), Healthy, 0).is_none());
    let e = managed_status_alert("dc", Some(Healthy), Down, 7).unwrap();
    assert_eq!(
        (e.kind, e.severity, e.at),
        (Kind::ManagedProxyStatus, Severity::Critical, 7)
    );
    assert_eq!(e.message, "managed proxy `dc` is down (was healthy)");
    let back = managed_status_alert("dc", Some(Down), Healthy, 8).unwrap();
    assert_eq!(back.severity, Severity::Info);
    assert_ne!(
        back.key, e.key,
        "a flap is not folded into the alert it ends"
    );
    assert_eq!(
        managed_status_alert("dc", Some(Healthy), Degraded, 0)
            .unwrap()
            .severity,
        Severity::Warning
    );
    assert!(managed_status_alert("dc", Some(Degraded), Blocked, 0).is_some());
}
