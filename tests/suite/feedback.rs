//! Client feedback: a proxy that users report broken leaves the serving tiers at once, without
//! waiting for its re-check.

use crate::support::app::TestApp;
use crate::support::wait;
use crate::{start_serving, Running};
use serde_json::{json, Value};
use std::time::Duration;

async fn report(app: &TestApp, body: Value) -> (u16, Value) {
    app.post_json("/api/proxy/report", &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_failures_count_as_checks() {
    // No re-checks during the test: only reports can move the proxies.
    let Running {
        farm, app, db: _db, ..
    } = start_serving(&[0, 0], |c| {
        c.replace(
            "revalidate_interval_secs = 1",
            "revalidate_interval_secs = 3600",
        )
        .replace("promote_after_passes = 2", "promote_after_passes = 1")
    })
    .await;
    let victim = farm.proxies[0].url();
    // Two failures in a row (dead_after_failures = 2); the farm proxy itself still works.
    for _ in 0..2 {
        let (status, body) = report(
            &app,
            json!({"proxy": victim, "ok": false, "target": "https://shop.example/?token=x"}),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    // The next published snapshot (every 100 ms) no longer serves it.
    let left = [farm.proxies[1].url()];
    wait::until(
        "the reported proxy to leave",
        Duration::from_secs(2),
        || async { (app.serving().await == left).then_some(()) },
    )
    .await;
    let (status, _) = report(&app, json!({"proxy": farm.proxies[1].url(), "ok": true})).await;
    assert_eq!(status, 202);

    // Unknown proxies are 404; malformed reports are 400.
    let (status, body) = report(&app, json!({"proxy": "http://10.9.9.9:1", "ok": false})).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    for bad in [
        json!({"proxy": "nonsense", "ok": false}),
        json!({"proxy": victim, "ok": "no"}),
        json!({"ok": false}),
        json!({"proxy": victim, "ok": false, "extra": 1}),
        json!([1, 2]),
    ] {
        let (status, body) = report(&app, bad.clone()).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_eq!(body["error"]["code"], "bad_request");
    }
    let r = app
        .client
        .post(app.url("/api/proxy/report"))
        .header("content-type", "text/plain")
        .body("proxy=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    app.stop().await;
}
