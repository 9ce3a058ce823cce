//! The `anonymity` and `country` filters, end to end: anonymity as the judge page saw each
//! proxy; countries from `[geoip] path` for proxies whose source gives none (a file that cannot
//! be read stops the start with exit code 2).

use crate::support::app::{sqlite_db, TestApp};
use crate::support::farm::{Anonymity, Behaviour, Farm};
use crate::support::source::SourceServer;
use crate::support::wait;
use crate::{farm_config, start_serving};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// Every judge shape (header lines, httpbin's JSON, PHP's `HTTP_*` lines) grades the same farm
/// the same way: transparent only when our own address (as the judge saw it) is forwarded; an
/// `X-Forwarded-For` holding `unknown` or another address is anonymous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anonymity_filter_serves_what_the_judge_saw() {
    for judge in ["/judge", "/judge.json", "/judge.php"] {
        anonymity_judged_through(judge).await;
    }
}

async fn anonymity_judged_through(judge: &str) {
    let farm = Farm::start(&[
        (Behaviour::Good, Anonymity::Transparent, 0),
        (Behaviour::Good, Anonymity::Anonymous, 0),
        (Behaviour::Good, Anonymity::Elite, 0),
        (Behaviour::Good, Anonymity::Elite, 0),
        (Behaviour::Good, Anonymity::ForwardsOther, 0),
    ])
    .await;
    let source = SourceServer::start().await;
    // A plain list says nothing of anonymity: only the judge can.
    source.set_body("/list.txt", farm.plain_list());
    let (db_url, _db) = sqlite_db();
    let config = farm_config(&db_url, &source.url("/list.txt"), &farm, "").replace(
        &format!("judge_url = \"{}\"", farm.origin.url("/judge")),
        &format!("judge_url = \"{}\"", farm.origin.url(judge)),
    );
    assert!(config.contains(judge), "{config}");
    let app = TestApp::start(&config).await;
    let by_level = |level: &'static str| {
        let app = &app;
        async move {
            let path = format!("/api/proxy/alive?anonymity={level}&count=10");
            let (_, body) = app.get_json(&path).await;
            let mut urls: Vec<String> = serde_json::from_value(body["proxies"].clone()).ok()?;
            urls.sort();
            Some(urls)
        }
    };
    let graded = || async {
        let (_, body) = app.get_json("/api/proxy/alive?count=10&detail=true").await;
        let details = body["details"].as_array()?.clone();
        let graded = details
            .iter()
            .filter(|d| d["anonymity"].is_string())
            .count();
        (graded == 5).then_some(())
    };
    wait::until(
        &format!("all five proxies to be judged through {judge}"),
        Duration::from_secs(20),
        graded,
    )
    .await;
    let mut elite = vec![farm.proxies[2].url(), farm.proxies[3].url()];
    elite.sort();
    let mut anonymous = vec![farm.proxies[1].url(), farm.proxies[4].url()];
    anonymous.sort();
    assert_eq!(by_level("elite").await.unwrap(), elite, "{judge}");
    assert_eq!(by_level("anonymous").await.unwrap(), anonymous, "{judge}");
    assert_eq!(
        by_level("transparent").await.unwrap(),
        [farm.proxies[0].url()],
        "{judge}"
    );
    app.stop().await;
    farm.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn countries_come_from_the_geoip_file_when_the_source_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("countries.csv");
    // DB-IP "ip-to-country-lite" layout; the farm lives on 127.0.0.1.
    std::fs::write(
        &csv,
        "\"1.0.0.0\",\"1.0.0.255\",\"AU\"\n127.0.0.0,127.255.255.255,NL\n",
    )
    .unwrap();
    let geoip = format!("[geoip]\npath = \"{}\"\n", csv.display());
    let running = start_serving(&[0, 0, 0], |c| c + &geoip).await;
    let app = &running.app;

    let (code, body) = app
        .get_json("/api/proxy/alive?country=nl&count=10&detail=true")
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["count"], 3, "{body}");
    let countries: Vec<&Value> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["country"])
        .collect();
    assert!(countries.iter().all(|c| *c == "NL"), "{body}");

    let (code, body) = app.get_json("/api/proxy/alive?country=AU&count=10").await;
    assert_eq!(code, 200);
    assert_eq!(
        (body["count"].clone(), body["degraded"].clone()),
        (0.into(), true.into()),
        "{body}"
    );
    let (code, body) = app.get_json("/api/proxy/alive?country=Netherlands").await;
    assert_eq!((code, &body["error"]["code"]), (400, &"bad_request".into()));
    running.app.stop().await;
}

#[test]
fn an_unreadable_geoip_file_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxyvisor.toml");
    let db = dir.path().join("proxyvisor.db");
    let garbage = dir.path().join("geo.csv");
    std::fs::write(&garbage, "not,a,geoip,file\nat all\n").unwrap();
    for path in [dir.path().join("missing.mmdb"), garbage] {
        std::fs::write(
            &config,
            format!(
                "sources = []\n[server]\nbind = \"127.0.0.1:0\"\n\
                 [database]\nurl = \"sqlite://{}\"\n[geoip]\npath = \"{}\"\n",
                db.display(),
                path.display()
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_proxyvisor"))
            .arg("--config")
            .arg(&config)
            .env_remove("DATABASE_URL")
            .env_remove("PORT")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("geoip.path"), "{stderr}");
    }
}
