//! Sources. A hostile source (garbage, binary, 10 MB of junk, 500, a slow answer) never panics the
//! service and never empties the pool; health names the failing source.

use crate::farm_config;
use crate::support::app::{sqlite_db, TestApp};
use crate::support::farm::{Anonymity, Behaviour, Farm};
use crate::support::source::SourceServer;
use crate::support::wait;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// The named source's entry in health.
async fn source_named(app: &TestApp, name: &str) -> Value {
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    health["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

async fn source_status(app: &TestApp) -> Value {
    source_named(app, "farm").await
}

/// Asks for a fetch now and waits until the source reports a fetch newer than the last one.
async fn fetch_and_wait(app: &TestApp) -> Value {
    let before = source_status(app).await["last_fetch_at"].clone();
    let (status, _) = app.admin_post("/api/admin/sources/farm/fetch").await;
    assert_eq!(status, 202);
    wait::until(
        "the source to be fetched again",
        Duration::from_secs(10),
        || async {
            let s = source_status(app).await;
            (s["last_fetch_at"] != before && !s["last_fetch_at"].is_null()).then_some(s)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_keep_the_pool_and_are_reported() {
    let farm = Farm::start(&[
        (Behaviour::Good, Anonymity::Elite, 0),
        (Behaviour::Good, Anonymity::Elite, 10),
    ])
    .await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&farm_config(&url, &source.url("/list.txt"), &farm, "")).await;
    let good: BTreeSet<String> = farm.proxies.iter().map(|p| p.url()).collect();
    wait::until(
        "the farm's proxies to be served",
        Duration::from_secs(20),
        || async {
            let serving: BTreeSet<String> = app.serving().await.into_iter().collect();
            (serving == good).then_some(())
        },
    )
    .await;

    let mut junk = Vec::with_capacity(10 * 1024 * 1024);
    while junk.len() < 10 * 1024 * 1024 {
        junk.extend_from_slice(b"\x00\xffnot-a-proxy:::\n\x1b[31m");
    }
    let mut binary: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    binary.extend_from_slice(b"\n\n");
    type MakeHostile<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, MakeHostile)> = vec![
        (
            "garbage lines",
            Box::new(|| source.set_body("/list.txt", "hello\n<html>\n1.2.3:4:5\n::::\n")),
        ),
        (
            "binary",
            Box::new(|| source.set_body("/list.txt", binary.clone())),
        ),
        (
            "10 MB of junk",
            Box::new(|| source.set_body("/list.txt", junk.clone())),
        ),
        ("HTTP 500", Box::new(|| source.set_status("/list.txt", 500))),
        (
            "a slow answer",
            Box::new(|| {
                source.set_body("/list.txt", farm.plain_list());
                source.set_slow("/list.txt", Duration::from_secs(3));
            }),
        ),
    ];
    for (what, make_hostile) in cases {
        make_hostile();
        let status = fetch_and_wait(&app).await;
        assert_eq!(status["status"], "error", "{what}: {status}");
        assert!(
            !status["error"].as_str().unwrap_or("").is_empty(),
            "{what}: {status}"
        );
        let serving: BTreeSet<String> = app.serving().await.into_iter().collect();
        assert_eq!(serving, good, "{what} changed the pool");
        let (code, health) = app.get_json("/api/health/comprehensive").await;
        assert_eq!(code, 200, "{what}: {health}");
        assert_eq!(health["status"], "degraded", "{what}: {health}");
    }

    // The source recovers: a good answer clears the error.
    source.set_slow("/list.txt", Duration::ZERO);
    source.set_body("/list.txt", farm.plain_list());
    let status = fetch_and_wait(&app).await;
    assert_eq!(status["status"], "ok", "{status}");
    assert_eq!(status["proxies"], 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_lists_are_fetched_conditionally_and_bad_lines_are_skipped() {
    let farm = Farm::start(&[(Behaviour::Good, Anonymity::Elite, 0)]).await;
    let source = SourceServer::start().await;
    source.set_body(
        "/list.txt",
        format!("# comment\n{}junk line\n300.1.1.1:x\n", farm.plain_list()),
    );
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&farm_config(&url, &source.url("/list.txt"), &farm, "")).await;
    let status = wait::until("the first fetch", Duration::from_secs(10), || async {
        let s = source_status(&app).await;
        (s["status"] == "ok").then_some(s)
    })
    .await;
    assert_eq!(status["proxies"], 1);
    assert_eq!(status["skipped"], 2);
    let status = fetch_and_wait(&app).await;
    assert_eq!(status["status"], "not_modified", "{status}");
    assert_eq!(source.conditional_hits("/list.txt"), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_deduplicated_and_their_metadata_filters_answers() {
    let farm = Farm::start(&[
        (Behaviour::Good, Anonymity::Elite, 0),
        (Behaviour::Good, Anonymity::Elite, 0),
    ])
    .await;
    let socks = crate::support::socks::Socks5Proxy::start(None).await;
    let source = SourceServer::start().await;
    let (p1, p2) = (farm.proxies[0].addr.port(), farm.proxies[1].addr.port());
    source.set_body("/list.txt", farm.plain_list());
    source.set_body(
        "/geo.json",
        format!(
            r#"[{{"ip":"127.0.0.1","port":{p1},"protocol":"http","anonymity":"elite","geolocation":{{"country":"DE"}}}},
                {{"ip":"127.0.0.1","port":"{}","protocol":"socks5","geolocation":{{"country":"US"}}}},
                {{"ip":"127.0.0.1"}}]"#,
            socks.addr.port()
        ),
    );
    let extra = format!(
        "[[sources]]\nname = \"geo\"\nkind = \"json\"\nurl = \"{}\"\n",
        source.url("/geo.json")
    );
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&farm_config(&url, &source.url("/list.txt"), &farm, &extra)).await;
    wait::until(
        "three distinct proxies to serve",
        Duration::from_secs(20),
        || async { (app.serving().await.len() == 3).then_some(()) },
    )
    .await;
    let (_, stats) = app.get_json("/stats").await;
    assert_eq!(
        stats["total_proxies"], 3,
        "the proxy both sources list counts once"
    );

    let urls = |body: &Value| -> Vec<String> {
        body["proxies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let (_, de) = app.get_json("/api/proxy/alive?count=1&country=DE").await;
    assert_eq!(urls(&de), [format!("http://127.0.0.1:{p1}")]);
    let (_, us) = app
        .get_json("/api/proxy/alive?count=1&country=us&protocol=socks5")
        .await;
    assert_eq!(urls(&us), [socks.url()]);
    let (_, http) = app.get_json("/api/proxy/alive?count=3&protocol=http").await;
    let mut got = urls(&http);
    got.sort();
    let mut want = vec![
        format!("http://127.0.0.1:{p1}"),
        format!("http://127.0.0.1:{p2}"),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        http["degraded"], true,
        "only two http proxies for three asked"
    );
    let (_, fr) = app.get_json("/api/proxy/alive?count=1&country=FR").await;
    assert!(urls(&fr).is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxifly_lists_are_skipped_while_their_meta_file_is_unchanged() {
    let farm = Farm::start(&[(Behaviour::Good, Anonymity::Elite, 0)]).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", "");
    let port = farm.proxies[0].addr.port();
    source.set_body(
        "/all/data.json",
        format!(r#"[{{"proxy":"http://127.0.0.1:{port}","protocol":"http","ip":"127.0.0.1","port":{port},"anonymity":"elite","geolocation":{{"country":"NL"}}}}]"#),
    );
    source.set_body("/meta/data.json", r#"{"updated":"1"}"#);
    let extra = format!(
        "[[sources]]\nname = \"pf\"\nkind = \"proxifly\"\nurl = \"{}\"\nmeta_url = \"{}\"\n",
        source.url("/all/data.json"),
        source.url("/meta/data.json")
    );
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&farm_config(&url, &source.url("/list.txt"), &farm, &extra)).await;
    let pf = |app| source_named(app, "pf");
    wait::until(
        "the proxifly list to be read",
        Duration::from_secs(10),
        || async { (pf(&app).await["status"] == "ok").then_some(()) },
    )
    .await;
    assert_eq!(source.hits("/all/data.json"), 1);

    let before = pf(&app).await["last_fetch_at"].clone();
    let (status, _) = app.admin_post("/api/admin/sources/pf/fetch").await;
    assert_eq!(status, 202);
    let s = wait::until("the second fetch", Duration::from_secs(10), || async {
        let s = pf(&app).await;
        (s["last_fetch_at"] != before).then_some(s)
    })
    .await;
    assert_eq!(s["status"], "unchanged");
    assert_eq!(
        source.hits("/all/data.json"),
        1,
        "the list was fetched although meta was unchanged"
    );
    assert_eq!(source.hits("/meta/data.json"), 2);

    // The proxy's country from the list is served.
    wait::until(
        "the proxy to serve by its country",
        Duration::from_secs(10),
        || async {
            let (_, nl) = app.get_json("/api/proxy/alive?count=1&country=NL").await;
            (nl["count"] == 1).then_some(())
        },
    )
    .await;
    app.stop().await;
}
