//! Traffic counted exactly (tunnels: every byte the origin read and wrote; plain requests: the
//! answer as the origin sent it, the request as sent upstream), cost = bytes × `cost_per_gb`,
//! kept across a restart; a `cost` alert once a day; a proxy past its cap skipped.

use super::{row, GatewayWorld, WAIT};
use crate::support::app::{TestApp, ADMIN_TOKEN};
use crate::support::wait;
use serde_json::Value;

const MB: usize = 1_000_000;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Waits until the usage of `session` is what the origin saw (`(read, written)` for a
/// tunnel), and answers the row.
async fn wait_row(w: &GatewayWorld, session: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait::until(&format!("the usage of session {session}"), WAIT, || async {
        let usage = w.usage("session").await;
        row(&usage, session).filter(|r| check(r)).cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_are_counted_exactly_cost_what_the_proxy_costs_and_survive_a_restart() {
    let w = GatewayWorld::start(1, "", "").await;
    // Plain HTTP: 1 MB down, 1 MB up.
    let plain = w.client("c-session-plain");
    let body = plain
        .get(w.origin.url(&format!("/bytes/{MB}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), MB);
    let answer = plain
        .post(w.origin.url("/upload"))
        .body(vec![1u8; MB])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(answer, format!("got {MB}"));
    let (_, origin_written) = w.origin.bytes();
    let r = wait_row(&w, "plain", |r| n(&r["bytes_down"]) == origin_written).await;
    assert_eq!(n(&r["requests"]), 2);
    // The request as it went upstream: the 1 MB body and two heads.
    let up = n(&r["bytes_up"]);
    assert!((MB as u64..MB as u64 + 4096).contains(&up), "{r}");

    // A TLS tunnel: 50 MB down and 50 MB up, every byte as the origin counted it.
    let tls = w.client("c-session-tls");
    let body = tls
        .get(w.tls.url(&format!("/bytes/{}", 50 * MB)))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 50 * MB);
    let answer = tls
        .post(w.tls.url("/upload"))
        .body(vec![2u8; 50 * MB])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(answer, format!("got {}", 50 * MB));
    drop(tls);
    let tunnel = wait::until("the TLS origin's count to settle", WAIT, || async {
        let usage = w.usage("session").await;
        let r = row(&usage, "tls")?.clone();
        let (read, written) = w.tls.bytes();
        (n(&r["bytes_up"]) == read && n(&r["bytes_down"]) == written).then_some(r)
    })
    .await;
    assert!(n(&tunnel["bytes_down"]) > 50 * MB as u64);
    assert!(n(&tunnel["bytes_up"]) > 50 * MB as u64);
    // Cost: bytes / 10^9 × cost_per_gb (4.0).
    let bytes = n(&tunnel["bytes_up"]) + n(&tunnel["bytes_down"]);
    let cost = tunnel["cost"].as_f64().unwrap();
    assert!((cost - bytes as f64 / 1e9 * 4.0).abs() < 1e-9, "{tunnel}");
    // By proxy: all of it through the paid proxy; the status shows today's traffic.
    let by_proxy = w.usage("proxy").await;
    let paid = format!("http://{}", w.paid.addr);
    let p = row(&by_proxy, &paid).expect("the paid proxy's row").clone();
    assert_eq!(
        n(&p["bytes_up"]),
        n(&r["bytes_up"]) + n(&tunnel["bytes_up"])
    );
    assert_eq!(n(&by_proxy["total"]["requests"]), 4);
    let (_, status) = w.app.get_json("/api/v1/proxy/status").await;
    let s = &status["proxies"][0];
    assert_eq!(
        n(&s["bytes_today"]),
        n(&p["bytes_up"]) + n(&p["bytes_down"]),
        "{s}"
    );
    assert!(
        s["cost_today"].as_f64().unwrap() > 0.0
            && s["cost_month"].as_f64() >= s["cost_today"].as_f64()
    );

    // More traffic, then at once a graceful stop (SIGTERM's path) and a start on the same store:
    // nothing is lost.
    let r = plain
        .get(w.origin.url("/bytes/12345"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 12345);
    let expected = n(&by_proxy["total"]["bytes_down"]) + 12345;
    let config = w.config();
    let GatewayWorld {
        app,
        farm,
        paid: _paid,
        origin: _o,
        tls: _t,
        source: _s,
        db: _db,
        ..
    } = w;
    app.stop().await;
    let app = TestApp::start(&config).await;
    let (status, usage) = app
        .send(
            reqwest::Method::GET,
            "/api/usage?group=proxy",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let down = n(&usage["total"]["bytes_down"]);
    assert!(
        down >= expected && down < expected + 1024,
        "after the restart: {usage}, expected about {expected}"
    );
    assert_eq!(n(&usage["total"]["requests"]), 5);

    // Ranges: a day, RFC 3339 with an offset, a range before any traffic; bad ones are 400.
    let get = |q: String| {
        let app = &app;
        async move { (app.send(reqwest::Method::GET, &q, Some(ADMIN_TOKEN), None)).await }
    };
    let today = usage["from"].as_str().unwrap()[..10].to_string();
    let (status, by_day) = get(format!("/api/usage?from={today}&group=day")).await;
    assert_eq!(
        (status, n(&by_day["total"]["bytes_down"])),
        (200, down),
        "{by_day}"
    );
    assert_eq!(by_day["rows"][0]["key"], today.as_str(), "{by_day}");
    let offset = format!("/api/usage?from={today}T02:00:00%2B02:00");
    let (status, shifted) = get(offset).await;
    assert_eq!(
        (status, n(&shifted["total"]["bytes_down"])),
        (200, down),
        "{shifted}"
    );
    let (status, before) = get("/api/usage?from=2000-01-01&to=2000-01-02".into()).await;
    assert_eq!(
        (status, n(&before["total"]["requests"])),
        (200, 0),
        "{before}"
    );
    assert_eq!(before["rows"], serde_json::json!([]));
    let (status, reversed) = get(format!("/api/usage?from={today}&to=2001-01-01")).await;
    assert_eq!(
        (status, n(&reversed["total"]["requests"])),
        (200, 0),
        "{reversed}"
    );
    for bad in ["from=", "from=yesterday", "to=2026-13-01", "group=week"] {
        let (status, body) = get(format!("/api/usage?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{bad}: {body}");
    }
    drop(farm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_alert_arrives_once_and_a_capped_proxy_is_skipped_for_the_day() {
    // 1 MB through the paid proxy costs 1.0: its limit alerts at 0.5, the gateway's at 1.5, the
    // cap stops it at 2.5.
    let w = GatewayWorld::start_with(
        1,
        "cost_alert_daily = 1.5",
        "",
        &[],
        "cost_per_gb = 1000.0\ndaily_cost_limit = 0.5\ndaily_cost_cap = 2.5",
    )
    .await;
    let client = w.client("c");
    let cost_alerts = || async {
        let (_, body) = w.app.get_json("/api/alerts?limit=100").await;
        let alerts = body["alerts"].as_array().cloned().unwrap_or_default();
        alerts
            .into_iter()
            .filter(|a| a["kind"] == "cost")
            .collect::<Vec<_>>()
    };
    let mut paid_requests = 0;
    loop {
        let before = w.paid.hits();
        let r = client
            .get(w.origin.url(&format!("/bytes/{MB}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.bytes().await.unwrap().len(), MB);
        if w.paid.hits() == before {
            break;
        }
        paid_requests += 1;
        assert!(paid_requests <= 10, "the cap never stopped the paid proxy");
        if paid_requests == 1 {
            let alerts = wait::until("a cost alert", WAIT, || async {
                let a = cost_alerts().await;
                (!a.is_empty()).then_some(a)
            })
            .await;
            let text = alerts[0]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(
                text.contains("paid") && text.contains("daily cost limit"),
                "{text}"
            );
        }
        // The Accountant marks the cap as the bytes come in: wait for it to have seen them.
        wait::until("the traffic to be counted", WAIT, || async {
            let (_, s) = w.app.get_json("/api/v1/proxy/status").await;
            (s["proxies"][0]["bytes_today"].as_u64() >= Some(paid_requests * MB as u64))
                .then_some(())
        })
        .await;
    }
    // 1.0 per request: the third passes 2.5, and the next request goes elsewhere.
    assert_eq!(paid_requests, 3);
    let (_, s) = w.app.get_json("/api/v1/proxy/status").await;
    assert_eq!(s["proxies"][0]["capped"], true, "{s}");
    let alerts = wait::until("the gateway's cost alert", WAIT, || async {
        let a = cost_alerts().await;
        a.iter().any(|a| a["key"] == "cost:gateway").then_some(a)
    })
    .await;
    let keys: Vec<&str> = alerts.iter().filter_map(|a| a["key"].as_str()).collect();
    assert_eq!(
        keys.len(),
        2,
        "one cost alert a day for each limit: {keys:?}"
    );
    assert!(keys.contains(&"cost:paid"), "{keys:?}");
    assert!(
        alerts.iter().all(|a| a["repeats"] == 1),
        "each sent once: {alerts:?}"
    );
}
