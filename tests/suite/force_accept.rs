//! `POST /api/force/accept`: a long validation round is stopped; what it has is served, the
//! checks still queued are dropped, and the unchecked proxies wait for the next list.

use crate::farm_config;
use crate::support::app::{sqlite_db, TestApp};
use crate::support::farm::{Anonymity, Behaviour, Farm};
use crate::support::source::SourceServer;
use crate::support::wait;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn stats(app: &TestApp) -> Value {
    app.get_json("/api/ultra/stats").await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_accept_stops_the_round_and_serves_what_it_has() {
    // 4 good proxies among 40 that only time out, checked two at a time: a 20 s round.
    let mut spec = vec![(Behaviour::Good, Anonymity::Elite, 0); 4];
    spec.extend(vec![(Behaviour::Blackhole, Anonymity::Elite, 0); 40]);
    let farm = Farm::start(&spec).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (db_url, _db) = sqlite_db();
    let config = farm_config(&db_url, &source.url("/list.txt"), &farm, "")
        .replace("concurrency = 50", "concurrency = 2")
        .replace(
            "revalidate_interval_secs = 1",
            "revalidate_interval_secs = 3600",
        );
    let app = TestApp::start(&config).await;
    wait::until("a first checked proxy", WAIT, || async {
        let s = stats(&app).await;
        (s["checks_total"].as_u64()? >= 1 && s["checks_queued"].as_u64()? > 10).then_some(())
    })
    .await;

    let (code, _) = app
        .send(reqwest::Method::POST, "/api/force/accept", None, None)
        .await;
    assert_eq!(code, 401);
    let (code, body) = app.admin_post("/api/force/accept").await;
    assert_eq!(code, 200, "{body}");
    assert!(body["cancelled"].as_u64().unwrap() > 10, "{body}");
    assert!(body["deferred"].as_u64().unwrap() > 10, "{body}");

    // Nothing is queued or started again: the round is over. The verdicts of the checks
    // that were running when it stopped come in a little after them: the count of fresh
    // proxies is read once it has held still for half a second with nothing running.
    let deadline = std::time::Instant::now() + WAIT;
    let mut held: Option<(Value, std::time::Instant)> = None;
    let s = loop {
        let s = stats(&app).await;
        let idle = s["checks_running"] == 0 && s["checks_queued"] == 0;
        let fresh = s["tiers"]["fresh"].clone();
        match &held {
            Some((f, since)) if idle && *f == fresh => {
                if since.elapsed() >= Duration::from_millis(500) {
                    break s;
                }
            }
            _ => held = idle.then(|| (fresh, std::time::Instant::now())),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the running checks did not end: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let fresh = s["tiers"]["fresh"].as_u64().unwrap();
    assert!(fresh > 10, "{s}");
    let (_, again) = app.get_json("/api/ultra/stats").await;
    assert_eq!(
        again["tiers"]["fresh"], fresh,
        "unchecked proxies wait: {again}"
    );

    // The next list from the source starts a new round.
    source.set_body("/list.txt", format!("{}# new round\n", farm.plain_list()));
    let (code, _) = app.admin_post("/api/admin/sources/farm/fetch").await;
    assert_eq!(code, 202);
    wait::until("fresh proxies to be checked again", WAIT, || async {
        let s = stats(&app).await;
        (s["tiers"]["fresh"].as_u64()? < fresh).then_some(())
    })
    .await;
    app.stop().await;
}
