//! Check profiles: `?profile=NAME` serves only the proxies that pass that profile's check (the
//! user's own target site), fastest on it first, never the dead fill; the results follow the
//! rolling revalidation.

use crate::farm_config;
use crate::support::app::{sqlite_db, TestApp};
use crate::support::farm::{Anonymity, Behaviour, Farm, Origin, ORIGIN_BODY};
use crate::support::source::SourceServer;
use crate::support::wait;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

/// Latency of each farm proxy (ms), by index.
const LATENCIES: [u64; 5] = [300, 0, 0, 100, 150];
/// Proxies the shop refuses (403): the two fastest on the main check among them.
const REFUSED_BY_SHOP: [usize; 2] = [1, 3];
/// Proxy 2 is fast on the main check but slow on the shop.
const SLOW_AT_SHOP: (usize, u64) = (2, 400);
/// The proxies that pass `shop`, fastest on the shop first (not fastest on the main check).
const SHOP_ORDER: [usize; 3] = [4, 0, 2];

fn urls(body: &Value) -> Vec<String> {
    body["proxies"]
        .as_array()
        .unwrap_or_else(|| panic!("no proxies in {body}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_serves_only_the_proxies_that_pass_its_target_fastest_first() {
    let spec: Vec<_> = LATENCIES
        .iter()
        .map(|&ms| (Behaviour::Good, Anonymity::Elite, ms))
        .collect();
    let farm = Farm::start(&spec).await;
    // The user's target sites: a shop that refuses some proxies, a forum that refuses them all.
    let shop = Origin::start().await;
    let forum = Origin::start().await;
    farm.block_target_on(&REFUSED_BY_SHOP, shop.port(), 403);
    farm.proxies[SLOW_AT_SHOP.0].delay_target(shop.port(), SLOW_AT_SHOP.1);
    farm.block_target_on(&[0, 1, 2, 3, 4], forum.port(), 429);
    let url_of = |i: usize| farm.proxies[i].url();
    let shop_urls: Vec<String> = SHOP_ORDER.iter().map(|&i| url_of(i)).collect();

    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (db_url, _db) = sqlite_db();
    let profiles = format!(
        r#"
[[validation.profiles]]
name = "shop"
check_url = "{shop}"
expect_status = 200
expect_body = "{ORIGIN_BODY}"

[[validation.profiles]]
name = "forum"
check_url = "{forum}"
"#,
        shop = shop.url("/ok"),
        forum = forum.url("/ok"),
    );
    let config = farm_config(&db_url, &source.url("/list.txt"), &farm, &profiles);
    let app = TestApp::start(&config).await;
    wait::until("the farm to serve", DEADLINE, || async {
        (app.serving().await.len() == LATENCIES.len()).then_some(())
    })
    .await;

    // Every proxy that passes the shop, and only those, fastest on the shop first.
    let body = wait::until("the shop's passers to be served", DEADLINE, || async {
        let (status, body) = app
            .get_json("/api/proxy/alive?profile=shop&count=5&detail=true")
            .await;
        assert_eq!(status, 200, "{body}");
        (urls(&body) == shop_urls).then_some(body)
    })
    .await;
    assert_eq!(body["degraded"], true, "3 of 5 asked: {body}");
    assert_eq!(
        (body["count"].as_u64(), body["requested"].as_u64()),
        (Some(3), Some(5))
    );
    assert_eq!(body["tiers_used"]["dead"], 0, "{body}");
    assert_eq!(body["details"].as_array().map(Vec::len), Some(3), "{body}");
    assert!(shop.hits() > 0, "the profile checks went to the shop");

    let (_, body) = app.get_json("/api/proxy/alive?profile=shop&count=2").await;
    assert_eq!(urls(&body), shop_urls[..2], "{body}");
    assert_eq!(body["degraded"], false, "{body}");
    // Free proxies all cost the same: `cheapest` keeps the order on the profile.
    let (_, body) = app
        .get_json("/api/proxy/alive?profile=shop&count=3&strategy=cheapest")
        .await;
    assert_eq!(urls(&body), shop_urls, "{body}");
    let (_, body) = app
        .get_json("/api/proxy/alive?profile=shop&count=2&strategy=random")
        .await;
    let sampled: BTreeSet<String> = urls(&body).into_iter().collect();
    assert_eq!(sampled.len(), 2, "{body}");
    assert!(sampled.iter().all(|u| shop_urls.contains(u)), "{body}");
    let (status, legacy) = app.get_json("/api/proxies?profile=shop&count=5").await;
    assert_eq!(status, 200);
    assert_eq!(legacy, serde_json::json!(shop_urls));

    // Nobody passes the forum: an empty, degraded answer, while the pool itself serves.
    let (status, body) = app.get_json("/api/proxy/alive?profile=forum&count=3").await;
    assert_eq!(status, 200);
    assert_eq!(urls(&body), Vec::<String>::new(), "{body}");
    assert_eq!(body["degraded"], true, "{body}");
    assert_eq!(forum.hits(), 0, "the forum refused them at the proxies");
    let (_, body) = app.get_json("/api/proxy/alive?count=3").await;
    assert_eq!(
        (urls(&body).len(), &body["degraded"]),
        (3, &false.into()),
        "{body}"
    );

    // An unknown profile is a bad request.
    let (status, body) = app.get_json("/api/proxy/alive?profile=nope").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &"bad_request".into())
    );
    assert!(body["error"]["message"].as_str().is_some(), "{body}");

    // The revalidation keeps the results current: the shop lets proxy 1 in and shuts out 2.
    farm.proxies[1].unblock_target(shop.port());
    farm.proxies[2].block_target(shop.port(), 403);
    let expected: Vec<String> = [1, 4, 0].iter().map(|&i| url_of(i)).collect();
    wait::until("the shop's new passers to be served", DEADLINE, || async {
        let (_, body) = app.get_json("/api/proxy/alive?profile=shop&count=5").await;
        (urls(&body) == expected).then_some(())
    })
    .await;
    // A proxy that stops working leaves the profile with the serving tiers.
    farm.proxies[1]
        .set_behaviour_and_wait(Behaviour::Refuse)
        .await;
    wait::until(
        "the dead proxy to leave the shop's answer",
        DEADLINE,
        || async {
            let (_, body) = app.get_json("/api/proxy/alive?profile=shop&count=5").await;
            (urls(&body) == expected[1..]).then_some(())
        },
    )
    .await;
    app.stop().await;
}

async fn shop_count(app: &TestApp) -> usize {
    let (_, body) = app.get_json("/api/proxy/alive?profile=shop&count=5").await;
    urls(&body).len()
}

/// Profile results live in memory: after a restart, serving proxies are checked on the profiles
/// at once, not when their revalidation comes (an hour here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_profiles_serve_again_without_waiting_for_revalidation() {
    let farm = Farm::start(&[(Behaviour::Good, Anonymity::Elite, 0); 3]).await;
    let shop = Origin::start().await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (db_url, _db) = sqlite_db();
    let profile = format!(
        "[[validation.profiles]]\nname = \"shop\"\ncheck_url = \"{}\"\n",
        shop.url("/ok")
    );
    let config = farm_config(&db_url, &source.url("/list.txt"), &farm, &profile).replace(
        "revalidate_interval_secs = 1",
        "revalidate_interval_secs = 3600",
    );
    let app = TestApp::start(&config).await;
    wait::until("the shop to be served", DEADLINE, || async {
        (shop_count(&app).await == 3).then_some(())
    })
    .await;
    app.stop().await;
    let before = shop.hits();
    let app = TestApp::start(&config).await;
    wait::until("the shop to be served again", DEADLINE, || async {
        (shop_count(&app).await == 3).then_some(())
    })
    .await;
    assert!(shop.hits() >= before + 3, "checked on the shop again");
    app.stop().await;
}
