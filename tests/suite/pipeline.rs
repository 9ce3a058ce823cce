//! Fetch → validate → tier → serve, end to end, on SQLite and on PostgreSQL; and the warm start.

use crate::farm_config;
use crate::support::app::{postgres_db, sqlite_db, TestApp};
use crate::support::farm::{Anonymity, Behaviour, Farm};
use crate::support::socks::{Socks4Proxy, Socks5Proxy};
use crate::support::source::SourceServer;
use crate::support::wait;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

/// The farm of the pipeline tests: what each proxy does, and the list that announces them.
struct World {
    farm: Farm,
    socks5: Socks5Proxy,
    socks4: Socks4Proxy,
    source: SourceServer,
}

// Indices into `farm.proxies`.
const FAST_ELITE: usize = 0;
const MID_ANONYMOUS: usize = 1;
const LATE_TRANSPARENT: usize = 2;
const TUNNEL: usize = 3; // listed as https://: checked through CONNECT
const BAD: [usize; 5] = [4, 5, 6, 7, 8];

impl World {
    async fn start() -> World {
        let farm = Farm::start(&[
            (Behaviour::Good, Anonymity::Elite, 0),
            (Behaviour::Good, Anonymity::Anonymous, 60),
            (Behaviour::Good, Anonymity::Transparent, 150),
            (Behaviour::Good, Anonymity::Elite, 0),
            (Behaviour::Slow, Anonymity::Elite, 0),
            (Behaviour::Refuse, Anonymity::Elite, 0),
            (Behaviour::Blackhole, Anonymity::Elite, 0),
            (Behaviour::Garbage, Anonymity::Elite, 0),
            (Behaviour::Error, Anonymity::Elite, 0),
        ])
        .await;
        let socks5 = Socks5Proxy::start(Some(("user".into(), "s3cret".into()))).await;
        let socks4 = Socks4Proxy::start().await;
        let source = SourceServer::start().await;
        let mut list = String::from("# the test farm\n");
        for (i, p) in farm.proxies.iter().enumerate() {
            if i == TUNNEL {
                list.push_str(&format!("https://{}\n", p.host_port()));
            } else {
                list.push_str(&format!("{}\n", p.host_port()));
            }
        }
        list.push_str(&format!(
            "socks5://user:s3cret@127.0.0.1:{}\n",
            socks5.addr.port()
        ));
        list.push_str(&format!("{}\n", socks4.url()));
        source.set_body("/list.txt", list);
        World {
            farm,
            socks5,
            socks4,
            source,
        }
    }

    fn url_of(&self, i: usize) -> String {
        let p = &self.farm.proxies[i];
        if i == TUNNEL {
            format!("https://{}", p.host_port())
        } else {
            p.url()
        }
    }

    /// What must be served: every proxy that passes, without credentials.
    fn good(&self) -> BTreeSet<String> {
        let mut s: BTreeSet<String> = [FAST_ELITE, MID_ANONYMOUS, LATE_TRANSPARENT, TUNNEL]
            .iter()
            .map(|&i| self.url_of(i))
            .collect();
        s.insert(format!("socks5://127.0.0.1:{}", self.socks5.addr.port()));
        s.insert(self.socks4.url());
        s
    }

    fn bad(&self) -> BTreeSet<String> {
        BAD.iter().map(|&i| self.url_of(i)).collect()
    }

    fn config(&self, db_url: &str, extra: &str) -> String {
        farm_config(db_url, &self.source.url("/list.txt"), &self.farm, extra)
    }
}

/// Waits until `/api/proxy/alive` serves exactly the good proxies, all in primary, checking on
/// every answer that no bad proxy is ever served. Returns the answer's details.
async fn wait_for_good_pool(app: &TestApp, world: &World) -> Vec<Value> {
    let good = world.good();
    let bad = world.bad();
    wait::until(
        "the good proxies to be served, all in primary",
        DEADLINE,
        || async {
            let (status, body) = app.get_json("/api/proxy/alive?count=100&detail=true").await;
            assert_eq!(status, 200, "{body}");
            let details = body["details"].as_array().cloned().unwrap_or_default();
            let serving: Vec<&Value> = details.iter().filter(|d| d["tier"] != "dead").collect();
            for d in &serving {
                let url = d["url"].as_str().unwrap();
                assert!(!bad.contains(url), "a failing proxy was served: {url}");
            }
            let urls: BTreeSet<String> = serving
                .iter()
                .map(|d| d["url"].as_str().unwrap().to_string())
                .collect();
            (urls == good && serving.iter().all(|d| d["tier"] == "primary")).then_some(details)
        },
    )
    .await
}

async fn pipeline_on(db_url: String) {
    let world = World::start().await;
    let app = TestApp::start(&world.config(&db_url, "")).await;
    let details = wait_for_good_pool(&app, &world).await;

    // Fastest first: latency never decreases down the answer, and the farm's delays show.
    let latencies: Vec<u64> = details
        .iter()
        .map(|d| d["latency_ms"].as_u64().unwrap())
        .collect();
    assert!(latencies.windows(2).all(|w| w[0] <= w[1]), "{latencies:?}");
    let position = |i: usize| {
        let url = world.url_of(i);
        details
            .iter()
            .position(|d| d["url"] == url.as_str())
            .unwrap()
    };
    assert!(position(FAST_ELITE) < position(MID_ANONYMOUS));
    assert!(position(MID_ANONYMOUS) < position(LATE_TRANSPARENT));
    assert_eq!(
        details.last().unwrap()["url"],
        world.url_of(LATE_TRANSPARENT).as_str()
    );

    // Anonymity as the judge page saw it; protocols as listed; no credentials anywhere.
    let field = |i: usize, f: &str| details[position(i)][f].clone();
    assert_eq!(field(FAST_ELITE, "anonymity"), "elite");
    assert_eq!(field(MID_ANONYMOUS, "anonymity"), "anonymous");
    assert_eq!(field(LATE_TRANSPARENT, "anonymity"), "transparent");
    assert_eq!(field(TUNNEL, "protocol"), "https");
    let text = app
        .get("/api/proxy/alive?count=100&detail=true")
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("s3cret"), "credentials leaked: {text}");

    // The other serving endpoints agree.
    let (_, legacy) = app.get_json("/api/proxies?count=3").await;
    assert_eq!(legacy.as_array().unwrap().len(), 3);
    let list = app.serving().await;
    assert_eq!(list.iter().cloned().collect::<BTreeSet<_>>(), world.good());
    let one = app.get("/random").await.text().await.unwrap();
    assert!(world.good().contains(one.trim()), "{one}");
    let (_, stats) = app.get_json("/stats").await;
    assert_eq!(stats["working_proxies"], 6);
    assert_eq!(stats["total_proxies"], 11);
    assert_eq!(stats["failed_proxies"], 5);
    let (_, ultra) = app.get_json("/api/ultra/stats").await;
    assert_eq!(ultra["tiers"]["primary"]["count"], 6);
    assert_eq!(ultra["tiers"]["dead"], 5);
    assert!(ultra["promotions"].as_u64().unwrap() >= 6);

    // Proxies that stop working leave the serving tiers: two failed re-checks, one a second.
    for i in [MID_ANONYMOUS, LATE_TRANSPARENT] {
        world.farm.proxies[i]
            .set_behaviour_and_wait(Behaviour::Refuse)
            .await;
    }
    let gone = [world.url_of(MID_ANONYMOUS), world.url_of(LATE_TRANSPARENT)];
    wait::until(
        "killed proxies to leave the serving tiers",
        Duration::from_secs(10),
        || async {
            let serving = app.serving().await;
            (!serving.iter().any(|u| gone.contains(u)) && serving.len() == 4).then_some(())
        },
    )
    .await;
    // A short answer is filled with them (most recently working first) and says so.
    let (_, body) = app.get_json("/api/proxy/alive?count=6").await;
    assert_eq!(body["degraded"], true);
    assert_eq!(body["count"], 6);
    assert_eq!(body["tiers_used"]["dead"], 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_serves_exactly_the_working_proxies_fastest_first_on_sqlite() {
    let (url, _db) = sqlite_db();
    pipeline_on(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_serves_exactly_the_working_proxies_fastest_first_on_postgres() {
    let Some((url, _db)) = postgres_db("pipeline") else {
        return;
    };
    pipeline_on(url).await;
}

async fn warm_start_on(db_url: String) {
    let world = World::start().await;
    let app = TestApp::start(&world.config(&db_url, "")).await;
    wait_for_good_pool(&app, &world).await;
    let before: BTreeSet<String> = app.serving().await.into_iter().collect();
    app.stop().await;

    // Everything outside is gone: the proxies refuse, the source fails.
    for p in &world.farm.proxies {
        p.set_behaviour_and_wait(Behaviour::Refuse).await;
    }
    world.socks4.shutdown();
    world.socks5.shutdown();
    world.source.set_status("/list.txt", 500);

    let started = std::time::Instant::now();
    let app = TestApp::start(&world.config(&db_url, "")).await;
    let path = format!("/api/proxy/alive?count={}", before.len());
    let (status, body) = app.get_json(&path).await;
    eprintln!(
        "warm start: first answer {:?} after start",
        started.elapsed()
    );
    assert_eq!(status, 200);
    let first: BTreeSet<String> = body["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        first, before,
        "the first answer after a restart holds the previous pool"
    );
    assert_eq!(body["degraded"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_start_serves_the_previous_pool_at_once_on_sqlite() {
    let (url, _db) = sqlite_db();
    warm_start_on(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_start_serves_the_previous_pool_at_once_on_postgres() {
    let Some((url, _db)) = postgres_db("warm") else {
        return;
    };
    warm_start_on(url).await;
}
