//! A hostile source (garbage, binary, 10 MB of junk, 500, a slow answer) never panics the
//! service and never empties the pool; health names the failing source.

use crate::farm_config;
use crate::support::app::{sqlite_db, TestApp};
use crate::support::farm::{Anonymity, Behaviour, Farm};
use crate::support::source::SourceServer;
use crate::support::wait;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

async fn source_status(app: &TestApp) -> Value {
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    health["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "farm").cloned())
        .unwrap_or(Value::Null)
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
