//! Bad parameters answer 400 with the error JSON; an empty pool answers honestly.

use crate::support::app::{sqlite_db, TestApp};

fn empty_pool_config(db_url: &str) -> String {
    format!(
        r#"
sources = []
[database]
url = "{db_url}"
[server]
max_count = 500
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_answer_400_with_the_error_json() {
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&empty_pool_config(&url)).await;
    let huge = format!("/api/proxy/alive?count={}", "9".repeat(5000));
    let cases = [
        "/api/proxy/alive?count=0",
        "/api/proxy/alive?count=-1",
        "/api/proxy/alive?count=abc",
        "/api/proxy/alive?count=10000000",
        "/api/proxy/alive?count=501",
        "/api/proxy/alive?count=1.5",
        huge.as_str(),
        "/api/proxy/alive?strategy=slowest",
        "/api/proxy/alive?protocol=gopher",
        "/api/proxy/alive?anonymity=very",
        "/api/proxy/alive?country=Germany",
        "/api/proxy/alive?profile=nope",
        "/api/proxy/alive?detail=maybe",
        "/api/proxy/alive?count=%FF%FE",
        "/api/proxies?count=0",
        "/api/proxies?strategy=bogus",
        "/list?limit=0",
        "/list?limit=abc",
        "/list?limit=501",
    ];
    for path in cases {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, 400, "{path} → {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{path} → {body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "{path}: no message");
        assert!(
            message.len() < 300,
            "{path}: the message echoes too much input"
        );
    }
    // The bounds themselves are fine.
    for path in [
        "/api/proxy/alive?count=1",
        "/api/proxy/alive?count=500",
        "/list?limit=500",
    ] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_pool_answers_empty_and_degraded_and_random_is_503() {
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&empty_pool_config(&url)).await;
    let (status, body) = app
        .get_json("/api/proxy/alive?count=5&strategy=cheapest")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["proxies"].as_array().unwrap().len(), 0);
    assert_eq!(body["count"], 0);
    assert_eq!(body["requested"], 5);
    assert_eq!(body["degraded"], true);
    let (status, body) = app.get_json("/random").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(app.get("/list").await.text().await.unwrap(), "");
    let (status, body) = app.get_json("/no/such/endpoint").await;
    assert_eq!((status, &body["error"]["code"]), (404, &"not_found".into()));
    for path in ["/health", "/api/health"] {
        let (status, body) = app.get_json(path).await;
        assert_eq!((status, &body["status"]), (200, &"ok".into()));
    }
    // Admin endpoints want the token; fault injection is off by default.
    let r = app
        .client
        .post(app.url("/api/admin/actors/validator_pool/crash"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (status, _) = app
        .admin_post("/api/admin/actors/validator_pool/crash")
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_guards_the_serving_endpoints() {
    let (url, _db) = sqlite_db();
    let config = format!(
        "{}client_token = \"client-secret\"\n",
        empty_pool_config(&url)
    );
    let app = TestApp::start(&config).await;
    for path in ["/api/proxy/alive", "/api/proxies", "/list", "/random"] {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(body["error"]["code"], "unauthorized");
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth("client-secret")
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 401, "{path}");
    }
    // Liveness stays open.
    assert_eq!(app.get("/health").await.status(), 200);
    app.stop().await;
}
