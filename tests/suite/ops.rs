//! The admin surface: `GET /api/logs` (the in-memory log ring, admin only), `GET /metrics`
//! (Prometheus text) and `GET /` (the dashboard).

use crate::start_serving;
use crate::support::app::{sqlite_db, TestApp, ADMIN_TOKEN};
use crate::support::hosting::HostedService;
use crate::support::wait;
use reqwest::Method;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn logs(app: &TestApp, query: &str, token: Option<&str>) -> (u16, Value) {
    app.send(Method::GET, &format!("/api/logs{query}"), token, None)
        .await
}

fn messages(body: &Value) -> Vec<String> {
    body["logs"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_kept_in_memory_for_the_admin_filtered_by_level_newest_last() {
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&format!(
        "sources = []\n[database]\nurl = \"{url}\"\n[validation]\ncheck_url = \"http://127.0.0.1:9/\"\n"
    ))
    .await;
    // The test's own records go through the same logger as the app's (one per process).
    let tag = format!("ops-test-{}", std::process::id());
    log::warn!(target: "ops_test", "{tag} first (warn)");
    log::debug!(target: "ops_test", "{tag} second (debug)");
    log::error!(target: "ops_test", "{tag} third (error)");

    for (query, token) in [
        ("", None),
        ("?limit=10", Some("wrong-token")),
        ("?level=error", Some("")),
    ] {
        let (status, body) = logs(&app, query, token).await;
        assert_eq!(status, 401, "{query} with {token:?}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    for query in [
        "?level=loud",
        "?level=",
        "?limit=0",
        "?limit=1001",
        "?limit=x",
    ] {
        let (status, body) = logs(&app, query, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
    }

    let (status, body) = logs(&app, "?limit=1000&level=trace", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let all = messages(&body);
    let at = |needle: &str| all.iter().position(|m| m.contains(needle));
    let (first, second, third) = (
        at(&format!("{tag} first")),
        at(&format!("{tag} second")),
        at(&format!("{tag} third")),
    );
    assert!(
        first.is_some() && first < second && second < third,
        "oldest first, newest last: {first:?} {second:?} {third:?}"
    );
    let mine = &body["logs"][third.unwrap()];
    assert_eq!(mine["level"], "error");
    assert_eq!(mine["target"], "ops_test");
    assert!(
        humantime::parse_rfc3339(mine["at"].as_str().unwrap()).is_ok(),
        "{mine}"
    );
    // The app's own records are there too.
    assert!(
        body["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["target"].as_str().unwrap().starts_with("proxyvisor")),
        "{body}"
    );

    // `level` keeps that level and the more severe ones.
    let (_, warn) = logs(&app, "?limit=1000&level=WARN", Some(ADMIN_TOKEN)).await;
    let warn_msgs = messages(&warn);
    assert!(warn_msgs
        .iter()
        .any(|m| m.contains(&format!("{tag} first"))));
    assert!(warn_msgs
        .iter()
        .any(|m| m.contains(&format!("{tag} third"))));
    assert!(!warn_msgs
        .iter()
        .any(|m| m.contains(&format!("{tag} second"))));
    for e in warn["logs"].as_array().unwrap() {
        assert!(e["level"] == "warn" || e["level"] == "error", "{e}");
    }
    // `limit`: at most that many; 100 by default.
    let (_, one) = logs(&app, "?limit=1&level=error", Some(ADMIN_TOKEN)).await;
    assert_eq!(one["count"], 1, "{one}");
    assert_eq!(one["logs"].as_array().unwrap().len(), 1);
    let (_, default) = logs(&app, "", Some(ADMIN_TOKEN)).await;
    assert_eq!(default["limit"], 100);
    assert!(default["logs"].as_array().unwrap().len() <= 100);
    app.stop().await;
}

/// Parses the text format: every line is a comment or `name{labels} value`; every family has
/// one HELP and one TYPE before its samples. Answers samples as (name, labels, value).
fn parse_metrics(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let mut typed: HashSet<String> = HashSet::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(helped.insert(name.to_string()), "two HELP for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            let kind = parts.next().unwrap();
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "a counter named {name}");
            }
            assert!(typed.insert(name.to_string()), "two TYPE for {name}");
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "odd line `{line}`"
        );
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let value: f64 = match value {
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in `{line}`")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), HashMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                (name.to_string(), parse_labels(body))
            }
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{name}"
        );
        assert!(typed.contains(&name), "{name} sampled before its TYPE");
        samples.push((name, labels, value));
    }
    samples
}

/// `k="v",k2="v2"` with `\\`, `\"` and `\n` escapes.
fn parse_labels(body: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "label {key} is quoted");
        let mut value = String::new();
        loop {
            match chars.next().expect("the value ends") {
                '\\' => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => panic!("bad escape {other:?}"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key, value);
        match chars.next() {
            Some(',') => continue,
            None => break,
            other => panic!("after a label: {other:?}"),
        }
    }
    out
}

fn value_of(
    samples: &[(String, HashMap<String, String>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_pool_the_services_and_the_actors_in_prometheus_text() {
    const ODD: &str = "edge \"eu\" \\ 1";
    let svc = HostedService::start().await;
    let monitor = format!(
        "[[monitors]]\nname = '{ODD}'\nurl = \"{}\"\ninterval_secs = 1\ntimeout_ms = 500\n",
        svc.url("/health")
    );
    let w = start_serving(&[0, 0, 0], |c| c + &monitor).await;
    let app = &w.app;
    wait::until("the service up", WAIT, || async {
        let (_, m) = app.get_json("/api/monitors").await;
        (m["summary"]["up"] == 1 && m["monitors"][0]["checks_total"].as_u64() >= Some(2))
            .then_some(())
    })
    .await;
    let (status, lease) = app
        .post_json("/api/leases", &serde_json::json!({"count": 2}))
        .await;
    assert_eq!(status, 201, "{lease}");

    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    let samples = parse_metrics(&text);
    let (_, stats) = app.get_json("/api/ultra/stats").await;
    let v = |name: &str, labels: &[(&str, &str)]| {
        value_of(&samples, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}:\n{text}"))
    };
    let serving = v("proxyvisor_proxies", &[("tier", "primary")])
        + v("proxyvisor_proxies", &[("tier", "standby")])
        + v("proxyvisor_proxies", &[("tier", "emergency")]);
    assert_eq!(serving, 3.0);
    assert_eq!(v("proxyvisor_proxies_serving", &[]), 3.0);
    assert_eq!(v("proxyvisor_proxies", &[("tier", "dead")]), 0.0);
    assert!(v("proxyvisor_checks_total", &[]) >= 3.0);
    assert!(v("proxyvisor_checks_passed_total", &[]) >= 3.0);
    // Read before the stats: never ahead of them.
    assert!(v("proxyvisor_checks_total", &[]) <= stats["checks_total"].as_f64().unwrap());
    assert_eq!(v("proxyvisor_tier_target", &[("tier", "primary")]), 100.0);
    assert_eq!(v("proxyvisor_minimum_guaranteed_met", &[]), 1.0);
    assert_eq!(v("proxyvisor_leases", &[]), 1.0);
    assert_eq!(v("proxyvisor_lease_slots_used", &[]), 2.0);
    assert_eq!(v("proxyvisor_lease_capacity", &[]), 15.0);
    assert_eq!(v("proxyvisor_lease_available", &[]), 13.0);
    v("proxyvisor_resurrection_attempts_total", &[]);
    // The monitor, its odd name escaped (the parser above undoes the escapes).
    assert_eq!(v("proxyvisor_monitors", &[("status", "up")]), 1.0);
    assert_eq!(v("proxyvisor_monitors", &[("status", "down")]), 0.0);
    assert_eq!(v("proxyvisor_monitor_up", &[("name", ODD)]), 1.0);
    assert!(v("proxyvisor_monitor_checks_total", &[("name", ODD)]) >= 2.0);
    assert!(v("proxyvisor_monitor_uptime_percent", &[("name", ODD)]) > 0.0);
    assert_eq!(v("proxyvisor_monitor_repairs_total", &[("name", ODD)]), 0.0);
    assert_eq!(
        v(
            "proxyvisor_monitor_status",
            &[("name", ODD), ("status", "up")]
        ),
        1.0
    );
    assert!(
        text.contains(r#"proxyvisor_monitor_up{name="edge \"eu\" \\ 1"} 1"#),
        "{text}"
    );
    // Every actor health shows, with its restarts.
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    let actors = health["actors"].as_array().unwrap();
    assert!(actors.len() >= 5, "{health}");
    for a in actors {
        let name = a["name"].as_str().unwrap();
        assert_eq!(
            v("proxyvisor_actor_restarts_total", &[("actor", name)]),
            a["restarts"].as_f64().unwrap()
        );
        v("proxyvisor_actor_up", &[("actor", name)]);
    }
    assert_eq!(v("proxyvisor_source_up", &[("source", "farm")]), 1.0);
    assert_eq!(v("proxyvisor_source_proxies", &[("source", "farm")]), 3.0);
    assert_eq!(v("proxyvisor_store_up", &[]), 1.0);
    // No proxy URL in a label.
    assert!(!text.contains("127.0.0.1"), "{text}");
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_one_self_contained_page() {
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&format!(
        "sources = []\n[database]\nurl = \"{url}\"\n[validation]\ncheck_url = \"http://127.0.0.1:9/\"\n"
    ))
    .await;
    let r = app.get("/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let page = r.text().await.unwrap();
    for title in [
        "Pool tiers",
        "Actors",
        "Resurrection",
        "Watched services",
        "Recent alerts",
        "Managed proxies",
        "Emergency controls",
        "Live logs",
        "Admin token",
    ] {
        assert!(page.contains(title), "no `{title}` section");
    }
    // It reads the APIs it shows and offers the controls.
    for path in [
        "/api/health/comprehensive",
        "/api/ultra/stats",
        "/api/resurrection/stats",
        "/api/monitors",
        "/api/alerts",
        "/api/v1/proxy/status",
        "/api/logs",
        "/api/admin/sources/",
        "/api/admin/monitors/",
        "/api/admin/alerts/test",
        "/api/v1/proxy/health-check",
        "/api/force/accept",
        "sessionStorage",
    ] {
        assert!(page.contains(path), "the page never uses {path}");
    }
    assert!(!page.contains(ADMIN_TOKEN));
    assert!(!page.contains("innerHTML"));
    assert!(!page.contains("https://") && !page.contains("http://"));
    app.stop().await;
}
