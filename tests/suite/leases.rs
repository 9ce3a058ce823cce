//! Leases: never over capacity under concurrency, sticky sessions, expiry, renew, release, and
//! durability across a restart.

use crate::support::app::{postgres_db, sqlite_db, TestApp, TestDb};
use crate::support::wait;
use crate::{start_serving, start_serving_on, Running};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const CAPACITY: &str = "[allocation]\nmax_leases_per_proxy = 5\n";

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.post_json(path, &body).await
}

async fn thousand_concurrent_requests_stay_within_capacity(db: (String, TestDb)) {
    let Running { app, db: _db, .. } = start_serving_on(db, &[0, 0, 0], |c| c + CAPACITY).await;
    let requests =
        (0..1000).map(|_| post(&app, "/api/leases", json!({"count": 1, "ttl_secs": 60})));
    let answers = futures_util::future::join_all(requests).await;
    let mut per_proxy: HashMap<String, usize> = HashMap::new();
    for (status, body) in &answers {
        assert_eq!(*status, 201, "{body}");
        assert_eq!(body["requested"], 1);
        let allocated = body["allocated"].as_u64().unwrap();
        assert_eq!(body["shortfall"].as_u64().unwrap(), 1 - allocated);
        for p in body["proxies"].as_array().unwrap() {
            *per_proxy
                .entry(p.as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(per_proxy.len(), 3);
    assert!(per_proxy.values().all(|&n| n == 5), "{per_proxy:?}");
    let (_, alloc) = app.get_json("/api/allocation").await;
    assert_eq!(alloc["current_leases"], 15, "{alloc}");
    assert_eq!(alloc["total_capacity"], 15);
    assert_eq!(alloc["available_capacity"], 0);
    for (url, n) in &per_proxy {
        assert_eq!(alloc["proxies"][url]["current"], *n as u64);
        assert_eq!(alloc["proxies"][url]["max"], 5);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_lease_requests_never_exceed_capacity_on_sqlite() {
    thousand_concurrent_requests_stay_within_capacity(sqlite_db()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_lease_requests_never_exceed_capacity_on_postgres() {
    let Some(db) = postgres_db("leases") else {
        return;
    };
    thousand_concurrent_requests_stay_within_capacity(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_sticky_expire_renew_release_and_survive_a_restart() {
    let Running {
        farm,
        source: _source,
        app,
        db: _db,
        config,
    } = start_serving(&[0, 30, 60], |c| c + CAPACITY).await;

    // Least loaded first: three single leases land on three different proxies.
    let mut first = Vec::new();
    for _ in 0..3 {
        let (_, l) = post(&app, "/api/leases", json!({"count": 1})).await;
        first.push(l["proxies"][0].as_str().unwrap().to_string());
    }
    first.sort();
    first.dedup();
    assert_eq!(first.len(), 3, "{first:?}");

    // A session key returns the same lease while it lives.
    let (s1, a) = post(
        &app,
        "/api/leases",
        json!({"count": 2, "session": "user-7"}),
    )
    .await;
    let (_, b) = post(
        &app,
        "/api/leases",
        json!({"count": 2, "session": "user-7"}),
    )
    .await;
    assert_eq!(s1, 201);
    assert_eq!(a["lease_id"], b["lease_id"]);
    assert_eq!(a["proxies"], b["proxies"]);

    // More than the pool holds: what it can, with a shortfall, not an error.
    let (status, big) = post(&app, "/api/leases", json!({"count": 50, "ttl_secs": 0.3})).await;
    assert_eq!(status, 201);
    assert_eq!(big["allocated"], 3);
    assert_eq!(big["shortfall"], 47);
    // ...and it frees its slots by itself.
    let (_, alloc) = app.get_json("/api/allocation").await;
    assert_eq!(alloc["current_leases"], 8, "{alloc}");
    wait::until(
        "the short lease to expire",
        Duration::from_secs(5),
        || async {
            let (_, alloc) = app.get_json("/api/allocation").await;
            (alloc["current_leases"] == 5).then_some(())
        },
    )
    .await;

    // Renew and release.
    let id = a["lease_id"].as_str().unwrap();
    let (status, renewed) = post(
        &app,
        &format!("/api/leases/{id}/renew"),
        json!({"ttl_secs": 600}),
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    assert!(renewed["expires_at"].as_str().unwrap() > a["expires_at"].as_str().unwrap());
    let (status, _) = post(&app, "/api/leases/nope/renew", json!({})).await;
    assert_eq!(status, 404);
    let r = app
        .client
        .delete(app.url(&format!("/api/leases/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .client
        .delete(app.url(&format!("/api/leases/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Bad bodies.
    for bad in [
        json!({"count": 0}),
        json!({"count": "x"}),
        json!({"count": 1, "ttl_secs": -1}),
        json!({"count": 1, "ttl_secs": 1e12}),
        json!({"count": 1, "strategy": "bogus"}),
        json!({"count": 1, "colour": "red"}),
        json!({"count": 1, "session": ""}),
    ] {
        let (status, body) = post(&app, "/api/leases", bad.clone()).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_eq!(body["error"]["code"], "bad_request");
    }

    // The three first leases (default TTL, 300 s) survive a restart.
    let (_, before) = app.get_json("/api/allocation").await;
    assert_eq!(before["current_leases"], 3, "{before}");
    app.stop().await;
    let app = TestApp::start(&config).await;
    let after = wait::until(
        "the leases to be restored",
        Duration::from_secs(5),
        || async {
            let (_, after) = app.get_json("/api/allocation").await;
            (after["current_leases"] == 3).then_some(after)
        },
    )
    .await;
    for p in &farm.proxies {
        assert_eq!(after["proxies"][p.url()]["current"], 1, "{after}");
    }
    app.stop().await;
}
