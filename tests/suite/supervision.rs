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
