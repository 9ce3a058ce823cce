//! Dead proxies get their second chance on the backoff schedule; blacklisted ones never again.

use crate::farm_config;
use crate::support::app::{sqlite_db, TestApp};
use crate::support::farm::{Anonymity, Behaviour, Farm};
use crate::support::source::SourceServer;
use crate::support::wait;
use std::time::Duration;

fn config(db: &str, list: &str, farm: &Farm) -> String {
    farm_config(db, list, farm, "").replace(
        "delays_secs = [1, 3600]",
        "delays_secs = [0.3, 0.3]\nblacklist_after_deaths = 3",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_proxy_that_works_again_is_resurrected() {
    let farm = Farm::start(&[(Behaviour::Good, Anonymity::Elite, 0)]).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (url, _db) = sqlite_db();
    // Many deaths allowed: however long the switch back takes on a loaded machine, the proxy
    // is still being retried (not blacklisted) when it works again.
    let config = config(&url, &source.url("/list.txt"), &farm).replace(
        "blacklist_after_deaths = 3",
        "blacklist_after_deaths = 1000",
    );
    let app = TestApp::start(&config).await;
    let proxy = farm.proxies[0].url();
    wait::until("the proxy to serve", Duration::from_secs(20), || async {
        (app.serving().await == [proxy.clone()]).then_some(())
    })
    .await;

    farm.proxies[0]
        .set_behaviour_and_wait(Behaviour::Refuse)
        .await;
    wait::until("the proxy to die", Duration::from_secs(10), || async {
        let (_, s) = app.get_json("/api/resurrection/stats").await;
        (s["dead"] == 1).then_some(())
    })
    .await;
    farm.proxies[0]
        .set_behaviour_and_wait(Behaviour::Good)
        .await;
    wait::until(
        "the proxy to be resurrected and served",
        Duration::from_secs(10),
        || async {
            let served = app.serving().await == [proxy.clone()];
            let (_, s) = app.get_json("/api/resurrection/stats").await;
            (served && s["successes"].as_u64() >= Some(1)).then_some(s)
        },
    )
    .await;
    let (_, s) = app.get_json("/api/resurrection/stats").await;
    assert!(s["successes"].as_u64().unwrap() >= 1, "{s}");
    assert!(
        s["attempts"].as_u64().unwrap() >= s["successes"].as_u64().unwrap(),
        "{s}"
    );
    assert_eq!(s["dead"], 0, "{s}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_keeps_failing_is_blacklisted_and_never_checked_again() {
    let farm = Farm::start(&[(Behaviour::Error, Anonymity::Elite, 0)]).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&config(&url, &source.url("/list.txt"), &farm)).await;
    // Death 1 at the first check, deaths 2 and 3 after 0.3 s each: blacklisted.
    wait::until(
        "the proxy to be blacklisted",
        Duration::from_secs(10),
        || async {
            let (_, s) = app.get_json("/api/resurrection/stats").await;
            (s["blacklisted"] == 1).then_some(())
        },
    )
    .await;
    let (_, s) = app.get_json("/api/resurrection/stats").await;
    assert_eq!(s["attempts"], 2, "{s}");
    assert_eq!(s["successes"], 0, "{s}");
    let hits = farm.proxies[0].hits();
    assert_eq!(hits, 3, "one check per death");
    // An absence can only be watched for a while: ten times the resurrection delay.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        farm.proxies[0].hits(),
        hits,
        "a blacklisted proxy was checked again"
    );
    app.stop().await;
}
