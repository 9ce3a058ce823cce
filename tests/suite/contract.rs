//! Answers that must match the contract (DESIGN.md) word for word: the admin guard comes before
//! anything else, `/random`'s 70/30 split over `/list`'s order, the health summary's name, and
//! `/api/ultra/demo`.

use crate::start_serving;
use crate::support::app::{sqlite_db, TestApp, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::Value;
use std::collections::HashMap;

/// Every admin route, with what would be wrong with the request even with the token (a bad
/// body, an unknown name, a bad query, the wrong method, an oversized body): without a valid
/// token each answers 401 with the error JSON, and nothing else is said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_check_the_token_before_anything_else() {
    let (db_url, _db) = sqlite_db();
    let config = format!(
        "[database]\nurl = \"{db_url}\"\n[supervision]\nfault_injection = true\n\
         [[monitors]]\nname = \"shop\"\nurl = \"http://127.0.0.1:9/\"\ninterval_secs = 3600\n"
    );
    let app = TestApp::start(&config).await;
    let huge = "x".repeat(200 * 1024);
    let cases: Vec<(Method, &str, Option<&str>)> = vec![
        (Method::POST, "/api/admin/proxies", Some("{not json")),
        (Method::POST, "/api/admin/proxies", Some(r#"{"name":"x"}"#)),
        (Method::POST, "/api/admin/proxies", Some(&huge)),
        (Method::PATCH, "/api/admin/proxies/nosuch", Some("[]")),
        (Method::PATCH, "/api/admin/proxies", Some("{}")),
        (Method::DELETE, "/api/admin/proxies/nosuch", None),
        (Method::DELETE, "/api/admin/proxies?name=nosuch", None),
        (Method::GET, "/api/admin/proxies", None),
        (Method::POST, "/api/admin/monitors", Some("{not json")),
        (
            Method::POST,
            "/api/admin/monitors",
            Some(r#"{"name":"shop"}"#),
        ),
        (Method::DELETE, "/api/admin/monitors/shop", None),
        (Method::DELETE, "/api/admin/monitors/nosuch", None),
        (Method::POST, "/api/admin/monitors/shop/restart", None),
        (Method::POST, "/api/admin/monitors/nosuch/restart", None),
        (Method::POST, "/api/admin/alerts/test", Some("{not json")),
        (Method::POST, "/api/admin/sources/nosuch/fetch", None),
        (Method::POST, "/api/admin/actors/nosuch/restart", None),
        (
            Method::POST,
            "/api/admin/actors/alerter/crash?mode=bogus",
            None,
        ),
        (Method::POST, "/api/admin/actors/tier_balancer/crash", None),
        (Method::GET, "/api/admin/no/such/thing", None),
        (Method::GET, "/api/logs?limit=abc&level=nonsense", None),
        (Method::POST, "/api/logs", None),
        (Method::POST, "/api/force/accept", Some("garbage")),
        (
            Method::POST,
            "/api/v1/proxy/health-check",
            Some("{not json"),
        ),
        (Method::GET, "/api/usage?from=yesterday", None),
    ];
    let bad_auth: [Option<&str>; 4] = [
        None,
        Some("Bearer wrong-token"),
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer "),
    ];
    for (method, path, body) in &cases {
        for auth in bad_auth {
            let mut r = app.client.request(method.clone(), app.url(path));
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            if let Some(b) = body {
                r = r
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            let r = r.send().await.expect("answered");
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {text}");
            let v: Value = serde_json::from_str(&text).expect("error JSON");
            assert_eq!(v["error"]["code"], "unauthorized", "{method} {path}: {v}");
            assert!(
                !text.contains("shop") && !text.contains("nosuch"),
                "{method} {path} said something of the names: {text}"
            );
        }
    }
    // With the token the same requests reach their handlers: the body, the names and the
    // method are judged (so the 401s above were the guard, not the routes).
    for (method, path, want) in [
        (Method::POST, "/api/admin/proxies", 400),
        (Method::DELETE, "/api/admin/proxies/nosuch", 404),
        (Method::POST, "/api/admin/monitors/nosuch/restart", 404),
        (Method::GET, "/api/admin/proxies", 405),
        (Method::GET, "/api/logs?limit=abc", 400),
    ] {
        let body = (method == Method::POST).then(|| serde_json::json!({"name": 5}));
        let (status, v) = app
            .send(method.clone(), path, Some(ADMIN_TOKEN), body.as_ref())
            .await;
        assert_eq!(status, want, "{method} {path} with the token: {v}");
    }
    // No crash happened: the guard stopped the crash requests.
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    let restarts: u64 = health["actors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["restarts"].as_u64().unwrap())
        .sum();
    assert_eq!(restarts, 0, "{health}");
    app.stop().await;
}

/// `/random`: 70% of picks from the fastest half of `/list`'s order, 30% from all: about 85%
/// land in that half, and every pick is a serving proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_picks_land_in_the_fastest_half_of_list_85_percent_of_the_time() {
    // Latencies far apart so the order cannot change between checks; no re-check during the
    // count.
    let running = start_serving(&[0, 150, 300, 450, 600, 750], |c| {
        c.replace(
            "revalidate_interval_secs = 1",
            "revalidate_interval_secs = 3600",
        )
        .replace("slow_threshold_ms = 1000", "slow_threshold_ms = 5000")
    })
    .await;
    let app = &running.app;
    let list = app.serving().await;
    assert_eq!(list.len(), 6);
    let fastest_half: Vec<&String> = list.iter().take(3).collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let picks = 3000;
    for _ in 0..picks {
        let r = app.get("/random").await;
        assert_eq!(r.status(), 200);
        let url = r.text().await.unwrap().trim().to_string();
        assert!(
            list.contains(&url),
            "{url} is not served by /list: {list:?}"
        );
        *counts.entry(url).or_default() += 1;
    }
    assert_eq!(
        app.serving().await,
        list,
        "the order changed during the count"
    );
    let in_half: usize = fastest_half
        .iter()
        .map(|u| counts.get(*u).copied().unwrap_or(0))
        .sum();
    let share = in_half as f64 / picks as f64;
    // Binomial: σ ≈ 0.0065 at 3,000 picks; ±0.035 is over 5σ.
    assert!(
        (share - 0.85).abs() < 0.035,
        "{share:.3} of picks in /list's fastest half ({counts:?}, list {list:?})"
    );
    // The slow half is still picked (the 30% from all).
    let slow_half = picks - in_half;
    assert!(slow_half > picks / 10, "{counts:?}");
    running.app.stop().await;
}

/// `/api/health/comprehensive` names the tier summary `tiers`, as the contract does, and keeps
/// `pool` (the same object) for one release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_names_the_tier_summary_tiers() {
    let running = start_serving(&[0, 0], |c| c).await;
    let (status, health) = running.app.get_json("/api/health/comprehensive").await;
    assert!(status == 200 || status == 503, "{status}");
    let tiers = &health["tiers"];
    assert_eq!(tiers["serving"], 2, "{health}");
    assert!(tiers["primary"]["target"].is_number(), "{health}");
    assert!(tiers["minimum_guaranteed"]["met"].is_boolean(), "{health}");
    assert_eq!(health["pool"], *tiers, "the alias holds the same summary");
    running.app.stop().await;
}

/// `/api/ultra/demo?count=N`: up to N proxies of each tier with their timings, public URLs only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ultra_demo_samples_every_tier_with_timings() {
    let running = start_serving(&[0, 20, 40], |c| c).await;
    let app = &running.app;
    let (status, demo) = app.get_json("/api/ultra/demo?count=2").await;
    assert_eq!(status, 200, "{demo}");
    assert_eq!(demo["count"], 2, "{demo}");
    let tiers = demo["tiers"].as_object().expect("tiers");
    for tier in ["primary", "standby", "emergency", "dead"] {
        let t = &tiers[tier];
        let sample = t["sample"].as_array().expect("a sample per tier");
        assert!(sample.len() <= 2, "{demo}");
        assert!(t["count"].is_number(), "{demo}");
        for p in sample {
            assert_eq!(p["tier"], tier, "{demo}");
            assert!(p["url"].as_str().unwrap().starts_with("http://"), "{demo}");
            assert!(p["latency_ms"].is_number(), "{demo}");
            assert!(p["last_checked_at"].is_string(), "{demo}");
        }
    }
    let serving: u64 = ["primary", "standby", "emergency"]
        .iter()
        .map(|t| tiers[*t]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(serving, 3, "{demo}");
    let sampled: usize = ["primary", "standby", "emergency"]
        .iter()
        .map(|t| tiers[*t]["sample"].as_array().unwrap().len())
        .sum();
    assert!((2..=3).contains(&sampled), "{demo}");
    // The fastest of a tier first.
    for t in ["primary", "standby"] {
        let lat: Vec<u64> = tiers[t]["sample"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["latency_ms"].as_u64().unwrap())
            .collect();
        assert!(lat.windows(2).all(|w| w[0] <= w[1]), "{demo}");
    }
    for bad in ["count=0", "count=abc", "count=100000"] {
        let (status, body) = app.get_json(&format!("/api/ultra/demo?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    running.app.stop().await;
}
