//! Self-test of the hosting stand-ins (`support::hosting`): the watched service's modes, the
//! Render and Railway APIs and the webhook sink, through a plain reqwest client.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::app::http_client;
use crate::support::hosting::{HostedService, Mode, RailwayApi, RenderApi, WebhookSink};
use crate::support::wait;

const KEY: &str = "render-key";
const TOKEN: &str = "railway-token";

/// GET `url` with a 2 s timeout: `Ok((status, body))` or the client error.
async fn get(url: &str) -> Result<(u16, String), reqwest::Error> {
    let resp = http_client()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

/// Waits until `service` answers `/health` 200 `ok`.
async fn until_healthy(service: &HostedService) {
    let url = service.url("/health");
    wait::until("the service to answer ok", Duration::from_secs(3), || {
        let url = url.clone();
        async move { matches!(get(&url).await, Ok((200, body)) if body == "ok").then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn standins_hosted_up_answers_ok_on_any_path() {
    let service = HostedService::start().await;
    assert_eq!(service.mode(), Mode::Up);
    assert_eq!(
        get(&service.url("/health")).await.unwrap(),
        (200, "ok".into())
    );
    assert_eq!(
        get(&service.url("/x?y=1")).await.unwrap(),
        (200, "ok".into())
    );
    assert_eq!(service.hits(), 2);
}

#[tokio::test]
async fn standins_hosted_crash_refuses_then_comes_back_on_the_same_port() {
    let service = HostedService::start().await;
    let port = service.port();
    service.set_mode_and_wait(Mode::Crashed).await;
    let err = get(&service.url("/health")).await.unwrap_err();
    assert!(err.is_connect(), "expected a refused connection: {err:?}");
    assert_eq!(service.hits(), 0);

    service.set_mode_and_wait(Mode::Up).await;
    assert_eq!(service.port(), port);
    assert_eq!(
        get(&format!("http://127.0.0.1:{port}/health"))
            .await
            .unwrap(),
        (200, "ok".into())
    );

    // Started crashed: the port is reserved but refuses until it comes up.
    let down = HostedService::start_in(Mode::Crashed).await;
    assert!(get(&down.url("/health")).await.unwrap_err().is_connect());
    down.set_mode_and_wait(Mode::Up).await;
    assert_eq!(get(&down.url("/health")).await.unwrap().0, 200);
}

#[tokio::test]
async fn standins_hosted_hang_times_out_and_a_restart_drops_it() {
    let service = HostedService::start_in(Mode::Hang).await;
    let client = http_client();
    let started = Instant::now();
    let err = client
        .get(service.url("/health"))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "expected a timeout: {err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(service.hits(), 1);

    // A hung request ends (unanswered) when the mode changes; new ones are served.
    let pending = tokio::spawn(
        client
            .get(service.url("/health"))
            .timeout(Duration::from_secs(5))
            .send(),
    );
    wait::until("the request to arrive", Duration::from_secs(2), || async {
        (service.hits() == 2).then_some(())
    })
    .await;
    service.set_mode(Mode::Up);
    let err = pending.await.unwrap().unwrap_err();
    assert!(!err.is_timeout(), "dropped, not timed out: {err:?}");
    until_healthy(&service).await;
}

#[tokio::test]
async fn standins_hosted_slow_is_slow() {
    let service = HostedService::start_in(Mode::Slow(300)).await;
    let started = Instant::now();
    assert_eq!(
        get(&service.url("/health")).await.unwrap(),
        (200, "ok".into())
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    let err = http_client()
        .get(service.url("/health"))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn standins_hosted_error_answers_the_status() {
    let service = HostedService::start_in(Mode::Error(500)).await;
    assert_eq!(get(&service.url("/health")).await.unwrap().0, 500);
    service.set_mode(Mode::Error(503));
    assert_eq!(get(&service.url("/health")).await.unwrap().0, 503);
    service.set_mode(Mode::Up);
    assert_eq!(get(&service.url("/health")).await.unwrap().0, 200);
}

/// POST to a stand-in with an optional bearer token: (status, headers, JSON body).
async fn post(
    url: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = http_client()
        .post(url)
        .timeout(Duration::from_secs(2))
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("answered");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn standins_render_auth_restart_deploy_and_unknown_paths() {
    let render = RenderApi::start(KEY).await;
    let restart = render.url("/v1/services/srv-1/restart");

    let (status, _, body) = post(&restart, None, json!({})).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(post(&restart, Some("wrong"), json!({})).await.0, 401);
    assert_eq!(render.restarts(), 0);

    let (status, _, body) = post(&restart, Some(KEY), json!({})).await;
    assert_eq!(status, 202);
    assert_eq!(body["serviceId"], "srv-1");
    let deploys = render.url("/v1/services/srv-1/deploys");
    let (status, _, body) = post(&deploys, Some(KEY), json!({"clearCache": "clear"})).await;
    assert_eq!((status, body["id"].as_str()), (202, Some("dep-1")));
    assert_eq!((render.restarts(), render.deploys()), (1, 1));

    let unknown = render.url("/v1/services/srv-1/suspend");
    assert_eq!(post(&unknown, Some(KEY), json!({})).await.0, 404);
    assert_eq!(
        post(&render.url("/v1/services//restart"), Some(KEY), json!({}))
            .await
            .0,
        404
    );

    let calls = render.calls();
    assert_eq!(calls.len(), 6);
    let deploy = &calls[3];
    assert_eq!(deploy.method, "POST");
    assert_eq!(deploy.path, "/v1/services/srv-1/deploys");
    assert_eq!(deploy.authorization.as_deref(), Some("Bearer render-key"));
    assert_eq!(deploy.json(), json!({"clearCache": "clear"}));
    assert_eq!(deploy.status, 202);
    assert_eq!(calls[0].authorization, None);
    assert!(calls.windows(2).all(|w| w[0].at <= w[1].at));
}

#[tokio::test]
async fn standins_render_rate_limit_and_failure() {
    let render = RenderApi::start(KEY).await;
    let restart = render.url("/v1/services/srv-1/restart");
    render.rate_limit_next(2, 7);
    for _ in 0..2 {
        let (status, headers, _) = post(&restart, Some(KEY), json!({})).await;
        assert_eq!(status, 429);
        assert_eq!(headers["ratelimit-reset"], "7");
        assert_eq!(headers["retry-after"], "7");
    }
    assert_eq!(post(&restart, Some(KEY), json!({})).await.0, 202);

    render.fail_with(500);
    assert_eq!(post(&restart, Some(KEY), json!({})).await.0, 500);
    render.stop_failing();
    assert_eq!(post(&restart, Some(KEY), json!({})).await.0, 202);
    assert_eq!(render.restarts(), 2);
    let statuses: Vec<u16> = render.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 429, 202, 500, 202]);
}

#[tokio::test]
async fn standins_render_restart_heals_after_the_delay_unless_told_not_to() {
    let service = HostedService::start_in(Mode::Crashed).await;
    let render = RenderApi::start(KEY).await;
    let restart = render.url("/v1/services/srv-1/restart");

    render.heals(&service, 200);
    render.fail_with(500);
    post(&restart, Some(KEY), json!({})).await;
    assert_eq!(
        render.heals_scheduled(),
        0,
        "a failed restart heals nothing"
    );
    render.stop_failing();

    post(&restart, Some(KEY), json!({})).await;
    assert_eq!(render.heals_scheduled(), 1);
    assert_eq!(service.mode(), Mode::Crashed);
    until_healthy(&service).await;
    let at = render.calls()[1].at;
    assert!(at.elapsed() >= Duration::from_millis(200));

    // Restart loop: the API answers, the service stays down.
    service.set_mode_and_wait(Mode::Crashed).await;
    render.does_not_heal();
    post(&restart, Some(KEY), json!({})).await;
    post(
        &render.url("/v1/services/srv-1/deploys"),
        Some(KEY),
        json!({}),
    )
    .await;
    assert_eq!((render.restarts(), render.deploys()), (2, 1));
    assert_eq!(render.heals_scheduled(), 1);
    assert_eq!(service.mode(), Mode::Crashed);
}

const LOOKUP: &str = "query latest($serviceId: String!, $environmentId: String!) { \
    serviceInstance(serviceId: $serviceId, environmentId: $environmentId) { \
    latestDeployment { id } } }";
const RESTART: &str = "mutation deploymentRestart($id: String!) { deploymentRestart(id: $id) }";

#[tokio::test]
async fn standins_railway_lookup_then_restart_with_variables() {
    let railway = RailwayApi::start(TOKEN).await;
    let service = HostedService::start_in(Mode::Error(503)).await;
    railway.heals(&service, 50);
    railway.set_deployment_id("dep-42");
    let url = railway.endpoint();

    let vars = json!({"serviceId": "svc-a", "environmentId": "env-b"});
    let (status, _, body) = post(
        &url,
        Some(TOKEN),
        json!({"query": LOOKUP, "variables": vars}),
    )
    .await;
    assert_eq!(status, 200);
    let id = body["data"]["serviceInstance"]["latestDeployment"]["id"]
        .as_str()
        .unwrap();
    assert_eq!(id, "dep-42");
    assert_eq!(
        railway.lookups(),
        [("svc-a".to_string(), "env-b".to_string())]
    );

    let restart = json!({"query": RESTART, "variables": {"id": id}});
    let (status, _, body) = post(&url, Some(TOKEN), restart).await;
    assert_eq!(
        (status, body),
        (200, json!({"data": {"deploymentRestart": true}}))
    );
    assert_eq!(railway.restarted_deployments(), ["dep-42"]);
    until_healthy(&service).await;

    // A stale deployment id is not restarted.
    let stale = json!({"query": RESTART, "variables": {"id": "dep-1"}});
    let (_, _, body) = post(&url, Some(TOKEN), stale).await;
    assert_eq!(body["errors"][0]["message"], "Deployment not found");
    assert_eq!((railway.restarts(), railway.heals_scheduled()), (1, 1));
}

#[tokio::test]
async fn standins_railway_inline_arguments() {
    let railway = RailwayApi::start(TOKEN).await;
    let url = railway.endpoint();
    let lookup = r#"{ serviceInstance(serviceId: "svc-x", environmentId: "env-y") { latestDeployment { id } } }"#;
    let (_, _, body) = post(&url, Some(TOKEN), json!({"query": lookup})).await;
    assert_eq!(
        body["data"]["serviceInstance"]["latestDeployment"]["id"],
        "dep-1"
    );
    assert_eq!(
        railway.lookups(),
        [("svc-x".to_string(), "env-y".to_string())]
    );

    let restart = r#"mutation { deploymentRestart(id: "dep-1") }"#;
    let (_, _, body) = post(&url, Some(TOKEN), json!({"query": restart})).await;
    assert_eq!(body["data"]["deploymentRestart"], true);
    assert_eq!(railway.restarted_deployments(), ["dep-1"]);

    let incomplete = r#"{ serviceInstance(serviceId: "svc-x") { latestDeployment { id } } }"#;
    let (status, _, body) = post(&url, Some(TOKEN), json!({"query": incomplete})).await;
    assert_eq!(status, 200);
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("environmentId"));
}

#[tokio::test]
async fn standins_railway_wrong_token_and_failures() {
    let railway = RailwayApi::start(TOKEN).await;
    let url = railway.endpoint();
    let restart = json!({"query": RESTART, "variables": {"id": "dep-1"}});
    for token in [None, Some("wrong")] {
        let (status, _, body) = post(&url, token, restart.clone()).await;
        assert_eq!(
            (status, body),
            (200, json!({"errors": [{"message": "Not Authorized"}]}))
        );
    }
    assert_eq!(railway.restarts(), 0);
    assert_eq!(
        post(&railway.url("/graphql/v1"), Some(TOKEN), restart.clone())
            .await
            .0,
        404
    );

    railway.fail_with(502);
    let (status, _, body) = post(&url, Some(TOKEN), restart.clone()).await;
    assert_eq!(status, 502);
    assert!(body["errors"][0]["message"].is_string());
    railway.stop_failing();
    railway.rate_limit_next(1, 3);
    let (status, headers, _) = post(&url, Some(TOKEN), restart.clone()).await;
    assert_eq!(
        (status, &headers["ratelimit-reset"]),
        (429, &"3".parse().unwrap())
    );
    assert_eq!(post(&url, Some(TOKEN), restart).await.0, 200);
    assert_eq!(railway.restarts(), 1);
    assert_eq!(
        railway.calls().last().unwrap().authorization.as_deref(),
        Some("Bearer railway-token")
    );
}

#[tokio::test]
async fn standins_railway_redeploys_are_counted_and_heal() {
    let railway = RailwayApi::start(TOKEN).await;
    let service = HostedService::start_in(Mode::Hang).await;
    railway.heals(&service, 0);
    let url = railway.endpoint();
    let mutations = [
        r#"mutation { serviceInstanceRedeploy(serviceId: "s", environmentId: "e") }"#,
        r#"mutation { serviceInstanceDeployV2(serviceId: "s", environmentId: "e") }"#,
        r#"mutation { deploymentRedeploy(id: "dep-1") { id } }"#,
    ];
    for (n, query) in mutations.into_iter().enumerate() {
        let name = query[11..].split('(').next().unwrap();
        let (_, _, body) = post(&url, Some(TOKEN), json!({"query": query})).await;
        assert_eq!(body["data"][name], true, "{name}");
        assert_eq!(railway.redeploys(), n + 1);
    }
    assert_eq!((railway.restarts(), railway.heals_scheduled()), (0, 3));
    until_healthy(&service).await;
}

#[tokio::test]
async fn standins_webhook_records_requests_and_answers_the_status() {
    let sink = WebhookSink::start().await;
    let service = HostedService::start_in(Mode::Crashed).await;
    let resp = http_client()
        .put(sink.url("/hooks/restart?x=1"))
        .header("X-Token", "t0k")
        .body("restart please")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    sink.set_status(500);
    sink.heals(&service, 0);
    assert_eq!(post(&sink.url("/hook"), None, json!({"a": 1})).await.0, 500);
    assert_eq!(sink.heals_scheduled(), 0);
    sink.set_status(204);
    assert_eq!(post(&sink.url("/hook"), None, json!({"a": 2})).await.0, 204);
    assert_eq!(sink.heals_scheduled(), 1);
    until_healthy(&service).await;

    assert_eq!(sink.hits(), 3);
    let calls = sink.calls();
    assert_eq!(calls[0].method, "PUT");
    assert_eq!(calls[0].path, "/hooks/restart?x=1");
    assert_eq!(calls[0].header("x-token"), Some("t0k"));
    assert_eq!(calls[0].body, "restart please");
    assert_eq!(calls[2].json(), json!({"a": 2}));
    assert_eq!(calls[2].header("Content-Type"), Some("application/json"));
}
