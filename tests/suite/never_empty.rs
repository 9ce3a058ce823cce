//! Never empty: when the whole farm dies under a running service, answers are filled with the
//! most recently working dead proxies and say `degraded`; health turns critical.

use crate::support::farm::Behaviour;
use crate::support::wait;
use crate::{start_serving, Running};
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_farm_still_gets_answers_marked_degraded() {
    let Running {
        farm, app, db: _db, ..
    } = start_serving(&[0, 0, 0], |c| c).await;
    let (code, health) = app.get_json("/api/health/comprehensive").await;
    assert_eq!((code, &health["status"]), (200, &"ok".into()), "{health}");

    for p in &farm.proxies {
        p.set_behaviour_and_wait(Behaviour::Refuse).await;
    }
    wait::until(
        "every proxy to leave the serving tiers",
        Duration::from_secs(15),
        || async { app.serving().await.is_empty().then_some(()) },
    )
    .await;
    let (status, body) = app.get_json("/api/proxy/alive?count=3").await;
    assert_eq!(status, 200);
    assert_eq!(body["degraded"], true);
    assert_eq!(body["count"], 3);
    assert_eq!(body["tiers_used"]["dead"], 3);
    let served: BTreeSet<&str> = body["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let farm_urls: Vec<String> = farm.proxies.iter().map(|p| p.url()).collect();
    assert_eq!(served, farm_urls.iter().map(String::as_str).collect());
    let (_, legacy) = app.get_json("/api/proxies?count=2").await;
    assert_eq!(legacy.as_array().unwrap().len(), 2);
    // Serving-only endpoints say so.
    assert_eq!(app.get("/random").await.status(), 503);
    let (code, health) = app.get_json("/api/health/comprehensive").await;
    assert_eq!(
        (code, &health["status"]),
        (503, &"critical".into()),
        "{health}"
    );
    app.stop().await;
}
