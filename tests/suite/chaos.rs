//! Chaos: while a client calls `/api/proxy/alive` without pause, every actor is crashed in turn
//! and PostgreSQL goes away and comes back. No request fails, every actor is back, and the
//! pool and the store agree at the end.

use crate::support::app::{postgres_db, TestApp};
use crate::support::relay::Relay;
use crate::support::wait;
use crate::{start_serving_on, Running};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every supervised actor on PostgreSQL (the coordinator runs only there).
const ACTORS: [&str; 9] = [
    "coordinator",
    "tier_balancer",
    "validator_pool",
    "resurrection_manager",
    "allocator",
    "source_fetcher",
    "alerter",
    "service_monitor",
    "accountant",
];

async fn health(app: &TestApp) -> Value {
    app.get_json("/api/health/comprehensive").await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_every_actor_and_losing_postgres_fails_no_request() {
    let Some((direct, db)) = postgres_db("chaos") else {
        return;
    };
    let (relay, relayed) = Relay::in_front_of(&direct).await;
    let Running { app, db: _db, .. } = start_serving_on((relayed, db), &[0, 0, 0, 0], |c| {
        // Restarts are counted exactly below: a reload that waits out the store's connect
        // timeout on a loaded machine must not also count as a hang.
        c + "[supervision]\nfault_injection = true\nmax_restarts = 20\nhang_after_secs = 60\n"
    })
    .await;
    let app = Arc::new(app);

    let stop = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let load = {
        let (app, stop, asked, failures) =
            (app.clone(), stop.clone(), asked.clone(), failures.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = app.get_json("/api/proxy/alive?count=4").await;
                asked.fetch_add(1, Ordering::Relaxed);
                if status != 200 || body["count"] != 4 {
                    failures.lock().unwrap().push(format!("{status} {body}"));
                }
            }
        })
    };

    for name in ACTORS {
        let (status, _) = app
            .admin_post(&format!("/api/admin/actors/{name}/crash"))
            .await;
        assert_eq!(status, 202, "{name}");
        wait::until(
            &format!("{name} to be back"),
            Duration::from_secs(10),
            || async {
                let h = health(&app).await;
                let a = h["actors"]
                    .as_array()?
                    .iter()
                    .find(|a| a["name"] == name)?
                    .clone();
                (a["restarts"] == 1 && a["status"] == "running").then_some(())
            },
        )
        .await;
    }
    relay.cut();
    wait::until(
        "the store to show degraded",
        Duration::from_secs(30),
        || async { (health(&app).await["store"]["status"] == "degraded").then_some(()) },
    )
    .await;
    // The balancer is crashed while the store is away: it comes back without its store.
    let (status, _) = app
        .admin_post("/api/admin/actors/tier_balancer/crash")
        .await;
    assert_eq!(status, 202);
    relay.restore().await;
    wait::until(
        "the store and every actor to be back",
        Duration::from_secs(30),
        || async {
            let h = health(&app).await;
            let all_running = h["actors"]
                .as_array()?
                .iter()
                .all(|a| a["status"] == "running");
            (all_running && h["store"]["status"] == "ok" && h["status"] == "ok").then_some(h)
        },
    )
    .await;
    let before = asked.load(Ordering::Relaxed);
    wait::until(
        "more load after the chaos",
        Duration::from_secs(10),
        || async { (asked.load(Ordering::Relaxed) > before + 50).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    // On failure, what the pool's actor said (the ring is the test process's: other tests'
    // lines may be among them).
    let said = || -> Vec<String> {
        let ring = proxyvisor::logbuf::ring();
        let lines = ring.recent(ring.capacity(), log::LevelFilter::Info);
        (lines.into_iter())
            .filter(|e| e.target.contains("tier_balancer") || e.target.contains("supervisor"))
            .map(|e| format!("{} {}", e.at, e.message))
            .rev()
            .take(60)
            .collect()
    };
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}\n{:#?}",
        failures.len(),
        asked.load(Ordering::Relaxed),
        &failures[..failures.len().min(5)],
        said()
    );

    // Counts are right: each actor restarted once (the balancer twice), and the store holds the
    // pool the service serves.
    let h = health(&app).await;
    for a in h["actors"].as_array().unwrap() {
        let want = if a["name"] == "tier_balancer" { 2 } else { 1 };
        assert_eq!(a["restarts"], want, "{a}");
    }
    let serving = app.serving().await;
    assert_eq!(serving.len(), 4);
    let url = direct.clone();
    let rows = tokio::task::spawn_blocking(move || {
        proxyvisor::store::Store::open(&url)
            .unwrap()
            .load_proxies()
            .unwrap()
    })
    .await
    .unwrap();
    for s in &serving {
        let row = rows
            .iter()
            .find(|r| &r.url == s)
            .expect("every served proxy is stored");
        assert!(
            matches!(row.tier.as_str(), "primary" | "standby"),
            "{}",
            row.tier
        );
    }
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("app still shared"),
    }
}
