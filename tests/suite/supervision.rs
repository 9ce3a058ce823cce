//! The Supervisor restarts an actor that panics, with its state reloaded, while the API keeps
//! answering.

use crate::support::app::TestApp;
use crate::support::farm::Behaviour;
use crate::support::wait;
use crate::{start_serving, Running};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn actor(app: &TestApp, name: &str) -> Value {
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    health["actors"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_actor_is_restarted_while_the_api_keeps_serving() {
    let Running {
        farm, app, db: _db, ..
    } = start_serving(&[0, 20, 40], |c| {
        c + "[supervision]\nfault_injection = true\n"
    })
    .await;
    let app = Arc::new(app);

    // A client keeps asking for proxies through every crash.
    let stop = Arc::new(AtomicBool::new(false));
    let (asked, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (app, stop, asked, failed) = (app.clone(), stop.clone(), asked.clone(), failed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = app.get_json("/api/proxy/alive?count=3").await;
                asked.fetch_add(1, Ordering::Relaxed);
                if status != 200 || body["count"] != 3 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    for name in [
        "tier_balancer",
        "validator_pool",
        "resurrection_manager",
        "allocator",
        "source_fetcher",
        "alerter",
        "service_monitor",
        "accountant",
    ] {
        let (status, _) = app
            .admin_post(&format!("/api/admin/actors/{name}/crash"))
            .await;
        assert_eq!(status, 202, "{name}");
        let a = wait::until(
            &format!("{name} to be restarted"),
            Duration::from_secs(5),
            || async {
                let a = actor(&app, name).await;
                (a["restarts"] == 1 && a["status"] == "running").then_some(a)
            },
        )
        .await;
        assert!(a["last_heartbeat"].is_string(), "{a}");
    }
    let (status, _) = app.admin_post("/api/admin/actors/nobody/crash").await;
    assert_eq!(status, 404);

    // The restarted actors still do their work: a proxy that dies now leaves the pool.
    farm.proxies[2]
        .set_behaviour_and_wait(Behaviour::Refuse)
        .await;
    let dead = farm.proxies[2].url();
    wait::until(
        "the restarted pipeline to notice a dead proxy",
        Duration::from_secs(10),
        || async {
            let serving = app.serving().await;
            (serving.len() == 2 && !serving.contains(&dead)).then_some(())
        },
    )
    .await;

    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert!(asked.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the crashes"
    );
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("app still shared"),
    }
}

/// A hung actor (its thread blocked) stops beating; the Supervisor treats it as crashed and
/// starts a fresh one on a new thread, while the other actors, on their own threads, go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_actor_is_restarted_on_a_new_thread() {
    let Running {
        farm, app, db: _db, ..
    } = start_serving(&[0, 20, 40], |c| {
        c + "[supervision]\nfault_injection = true\nhang_after_secs = 2\n"
    })
    .await;
    let before = actor(&app, "validator_pool").await["last_heartbeat"].clone();
    let (status, _) = app
        .admin_post("/api/admin/actors/tier_balancer/crash?mode=hang&secs=8")
        .await;
    assert_eq!(status, 202);
    let a = wait::until(
        "the hung balancer to be replaced",
        Duration::from_secs(10),
        || async {
            let a = actor(&app, "tier_balancer").await;
            (a["hangs"] == 1 && a["status"] == "running").then_some(a)
        },
    )
    .await;
    assert_eq!(a["restarts"], 1, "{a}");
    let validator = actor(&app, "validator_pool").await;
    assert_ne!(
        validator["last_heartbeat"], before,
        "others beat on: {validator}"
    );
    assert_eq!(validator["restarts"], 0);
    // Serving never stopped, and the new balancer does the work.
    assert_eq!(app.serving().await.len(), 3);
    farm.proxies[0]
        .set_behaviour_and_wait(Behaviour::Refuse)
        .await;
    let dead = farm.proxies[0].url();
    wait::until(
        "the new balancer to notice a dead proxy",
        Duration::from_secs(10),
        || async {
            let serving = app.serving().await;
            (serving.len() == 2 && !serving.contains(&dead)).then_some(())
        },
    )
    .await;
    app.stop().await;
}

/// An admin restart stops the actor and starts it anew at once; it is not a crash, so it never
/// trips the restart intensity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_restart_actors_without_tripping_the_intensity() {
    let Running { app, db: _db, .. } =
        start_serving(&[0], |c| c + "[supervision]\nmax_restarts = 1\n").await;
    for n in 1..=3 {
        let (status, body) = app.admin_post("/api/admin/actors/allocator/restart").await;
        assert_eq!(status, 202, "{body}");
        wait::until(
            "the allocator to be back",
            Duration::from_secs(5),
            || async {
                let a = actor(&app, "allocator").await;
                (a["restarts"] == n && a["status"] == "running").then_some(())
            },
        )
        .await;
    }
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    assert_eq!(health["status"], "ok", "{health}");
    // The restarted allocator still takes leases.
    let (status, lease) = app
        .post_json("/api/leases", &serde_json::json!({"count": 1}))
        .await;
    assert_eq!(
        (status, lease["allocated"].clone()),
        (201, 1.into()),
        "{lease}"
    );
    let (status, _) = app.admin_post("/api/admin/actors/nobody/restart").await;
    assert_eq!(status, 404);
    let (status, _) = app
        .send(
            reqwest::Method::POST,
            "/api/admin/actors/allocator/restart",
            None,
            None,
        )
        .await;
    assert_eq!(status, 401);
    // Fault injection is off here: the crash endpoint does not exist.
    let (status, _) = app.admin_post("/api/admin/actors/allocator/crash").await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// Restart requests that arrive close together (a script retrying, two admins) are restarts,
/// never crashes: one arriving between the stop and the Supervisor noticing it used to undo the
/// request, so the stop was counted as a crash and tripped the intensity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_requests_close_together_are_never_counted_as_crashes() {
    let Running { app, db: _db, .. } =
        start_serving(&[0], |c| c + "[supervision]\nmax_restarts = 1\n").await;
    for _ in 0..8 {
        // Spread over more than one watch period of the Supervisor (100 ms).
        for _ in 0..8 {
            let (status, body) = app.admin_post("/api/admin/actors/allocator/restart").await;
            assert_eq!(status, 202, "{body}");
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let a = actor(&app, "allocator").await;
            if a["status"] == "running" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the allocator is not back: {a}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let a = actor(&app, "allocator").await;
    assert!(a["restarts"].as_u64() >= Some(8), "{a}");
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    assert_eq!(health["status"], "ok", "{health}");
    let (_, alerts) = app.get_json("/api/alerts").await;
    assert!(
        !alerts.to_string().contains("actor_failed"),
        "a restart was taken for a crash: {alerts}"
    );
    app.stop().await;
}

/// A panic in an actor's timer restarts it like one in a handler; a panic inside a check (a
/// spawned task) is caught and counted as a failed check, and the ValidatorPool goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_in_timers_and_checks_are_caught() {
    let Running { app, db: _db, .. } =
        start_serving(&[0, 0], |c| c + "[supervision]\nfault_injection = true\n").await;
    let (status, _) = app
        .admin_post("/api/admin/actors/resurrection_manager/crash?mode=timer")
        .await;
    assert_eq!(status, 202);
    wait::until("the manager to be back", Duration::from_secs(5), || async {
        let a = actor(&app, "resurrection_manager").await;
        (a["restarts"] == 1 && a["status"] == "running").then_some(())
    })
    .await;

    let checks = |h: Value| h["checks_total"].as_u64().unwrap_or(0);
    let (status, _) = app
        .admin_post("/api/admin/actors/validator_pool/crash?mode=check")
        .await;
    assert_eq!(status, 202);
    wait::until(
        "the panicking check to be reported",
        Duration::from_secs(10),
        || async {
            let (_, logs) = app
                .send(
                    reqwest::Method::GET,
                    "/api/logs?limit=1000&level=error",
                    Some(crate::support::app::ADMIN_TOKEN),
                    None,
                )
                .await;
            logs.to_string()
                .contains("panicked; counted as a failed check")
                .then_some(())
        },
    )
    .await;
    let before = checks(app.get_json("/api/ultra/stats").await.1);
    wait::until("checks to go on", Duration::from_secs(10), || async {
        (checks(app.get_json("/api/ultra/stats").await.1) > before + 2).then_some(())
    })
    .await;
    let v = actor(&app, "validator_pool").await;
    assert_eq!(
        v["restarts"], 0,
        "a check's panic does not take the pool down: {v}"
    );
    let (status, _) = app
        .admin_post("/api/admin/actors/allocator/crash?mode=check")
        .await;
    assert_eq!(status, 400, "only the validator has checks");
    app.stop().await;
}
