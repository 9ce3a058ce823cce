//! No secret in any answer, the dashboard, `/metrics` or the log: the app runs with every kind of
//! secret the config can hold (client and admin tokens, the Telegram bot token, the SMTP
//! password, a managed proxy's credentials, a monitor's API key and webhook header; the last
//! three also given through the admin API), each one used for real against a loopback stand-in,
//! while something happens (a service crashes and is
//! repaired, alerts are sent, managed proxies are checked on demand). Then every status and admin
//! endpoint is read and each answer, and the in-process log ring at `trace`, is searched for
//! every secret. Only the serving endpoints hand the managed proxy's credentials to clients, by
//! design.

use crate::farm_config;
use crate::support::app::{sqlite_db, TestApp, ADMIN_TOKEN};
use crate::support::farm::{base64_encode, Anonymity, Behaviour, Farm, FarmProxy};
use crate::support::hosting::{HostedService, Mode, RenderApi, WebhookSink};
use crate::support::smtp::SmtpServer;
use crate::support::source::SourceServer;
use crate::support::telegram::TelegramServer;
use crate::support::wait;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const CLIENT_TOKEN: &str = "client-tok-S3CRET-a1";
const BOT_TOKEN: &str = "424242:BOT-S3CRET-b2";
const SMTP_PASSWORD: &str = "smtp-S3CRET-c3";
const PROXY_USER: &str = "paiduser";
const PROXY_PASSWORD: &str = "proxy-S3CRET-d4";
const RENDER_KEY: &str = "rnd-S3CRET-e5";
const HOOK_HEADER: &str = "hook-S3CRET-f6";
/// Given through the admin API rather than the config file.
const API_RENDER_KEY: &str = "rnd-api-S3CRET-g7";
const API_HOOK_HEADER: &str = "hook-api-S3CRET-h8";
const API_PROXY_PASSWORD: &str = "proxy-api-S3CRET-i9";

/// Every secret, in each form it could leak in (the proxy's credentials also as the Basic
/// header value), with what it is.
fn secrets() -> Vec<(&'static str, String)> {
    vec![
        ("client token", CLIENT_TOKEN.into()),
        ("admin token", ADMIN_TOKEN.into()),
        ("bot token", BOT_TOKEN.into()),
        ("bot token secret part", "BOT-S3CRET-b2".into()),
        ("SMTP password", SMTP_PASSWORD.into()),
        ("proxy password", PROXY_PASSWORD.into()),
        (
            "proxy Basic credentials",
            base64_encode(format!("{PROXY_USER}:{PROXY_PASSWORD}").as_bytes()),
        ),
        ("Render API key", RENDER_KEY.into()),
        ("webhook header", HOOK_HEADER.into()),
        // URLs may hold tokens too (a deploy hook's key, a health check's token).
        ("webhook URL key", "hookurl-S3CRET-j0".into()),
        ("monitor URL token", "monurl-S3CRET-k1".into()),
        ("source URL token", "srcurl-S3CRET-l2".into()),
        ("API-given Render key", API_RENDER_KEY.into()),
        ("API-given webhook header", API_HOOK_HEADER.into()),
        ("API-given proxy password", API_PROXY_PASSWORD.into()),
    ]
}

fn assert_clean(what: &str, text: &str, allowed: &[&str]) {
    for (name, secret) in secrets() {
        if allowed.contains(&name) {
            continue;
        }
        assert!(
            !text.contains(&secret),
            "{what} shows the {name} `{secret}`:\n{text}"
        );
    }
}

/// Any request, answering (status, body as text).
async fn call(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> (u16, String) {
    let body = (method == Method::POST && path == "/api/leases").then(|| json!({"count": 2}));
    call_with(app, method, path, token, body).await
}

async fn call_with(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let mut r = app.client.request(method, app.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request answered");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn json_of(app: &TestApp, path: &str) -> Value {
    let (_, body) = call(app, Method::GET, path, Some(ADMIN_TOKEN)).await;
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

async fn monitor(app: &TestApp, name: &str) -> Value {
    json_of(app, "/api/monitors").await["monitors"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_an_answer_the_dashboard_the_metrics_or_the_log() {
    proxyvisor::logbuf::install();
    let logged_before = proxyvisor::logbuf::ring().total();
    // The world: a farm proxy and a paid proxy that requires credentials, two watched services
    // (repaired through Render with an API key, and through a webhook with a secret header),
    // Telegram and an SMTP relay (which offers no AUTH: every email attempt fails, with an error
    // text that must be redacted).
    let farm = Farm::start(&[(Behaviour::Good, Anonymity::Elite, 0)]).await;
    let paid = FarmProxy::start(Behaviour::Good, Anonymity::Elite, 0).await;
    paid.require_auth(PROXY_USER, PROXY_PASSWORD);
    let paid_by_api = FarmProxy::start(Behaviour::Good, Anonymity::Elite, 0).await;
    paid_by_api.require_auth("apiuser", API_PROXY_PASSWORD);
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let backend = HostedService::start().await;
    let render = RenderApi::start(RENDER_KEY).await;
    render.heals(&backend, 200);
    let worker = HostedService::start().await;
    let hook = WebhookSink::start().await;
    hook.heals(&worker, 200);
    let telegram = TelegramServer::start(BOT_TOKEN).await;
    let smtp = SmtpServer::start().await;
    let db = sqlite_db();
    let extra = format!(
        r#"
[server]
client_token = "{CLIENT_TOKEN}"

# A source that cannot be reached, its URL holding a token (its error is shown in health).
[[sources]]
name = "gone"
kind = "plain"
url = "http://127.0.0.1:9/list.txt?token=srcurl-S3CRET-l2"
timeout_ms = 500

[[managed_proxies]]
name = "paid"
url = "http://{PROXY_USER}:{PROXY_PASSWORD}@{paid_addr}"
priority = 1

[alerts]
cooldown_secs = 0
daily_report_at = ""
[alerts.telegram]
bot_token = "{BOT_TOKEN}"
chat_id = 4242
api_base = "{tg}"
[alerts.email]
smtp_url = "smtp://mailer:{SMTP_PASSWORD}@{smtp_addr}"
to = ["ops@example.test"]

[[monitors]]
name = "backend"
url = "{backend_url}"
interval_secs = 1
timeout_ms = 500
failures_before_down = 2
[monitors.recovery]
action = "render"
service_id = "srv-backend"
api_key = "{RENDER_KEY}"
api_base = "{render_base}"
cooldown_secs = 1

[[monitors]]
name = "worker"
url = "{worker_url}"
interval_secs = 1
timeout_ms = 500
failures_before_down = 2
[monitors.recovery]
action = "webhook"
url = "{hook_url}"
headers = {{ "X-Hook-Token" = "{HOOK_HEADER}" }}
cooldown_secs = 1
"#,
        paid_addr = paid.host_port(),
        tg = telegram.api_base(),
        smtp_addr = smtp.addr,
        backend_url = backend.url("/health?token=monurl-S3CRET-k1"),
        render_base = render.base_url(),
        worker_url = worker.url("/health"),
        hook_url = hook.url("/restart?key=hookurl-S3CRET-j0"),
    );
    let list_url = source.url("/list.txt?token=srcurl-S3CRET-l2");
    let config = farm_config(&db.0, &list_url, &farm, &extra);
    let app = TestApp::start(&config).await;

    // The paid proxy passes its checks only with its credentials.
    wait::until("the paid proxy to be healthy", WAIT, || async {
        let body = json_of(&app, "/api/v1/proxy/status").await;
        let healthy = body["proxies"]
            .as_array()?
            .iter()
            .any(|p| p["name"] == "paid" && p["status"] == "healthy");
        healthy.then_some(())
    })
    .await;
    wait::until("the unreachable source to fail", WAIT, || async {
        let health = json_of(&app, "/api/health/comprehensive").await;
        health["sources"]
            .as_array()?
            .iter()
            .any(|s| s["name"] == "gone" && s["status"] == "error" && s["error"].is_string())
            .then_some(())
    })
    .await;
    for name in ["backend", "worker"] {
        wait::until(&format!("{name} up"), WAIT, || async {
            (monitor(&app, name).await["status"] == "up").then_some(())
        })
        .await;
    }

    // Activity: both services crash and are repaired; a test alert; an on-demand check of the
    // managed proxies; a manual restart. Every admin answer is kept to be searched too.
    backend.set_mode_and_wait(Mode::Crashed).await;
    worker.set_mode_and_wait(Mode::Error(500)).await;
    let mut answers: Vec<(String, String)> = Vec::new();
    for path in [
        "/api/admin/alerts/test",
        "/api/v1/proxy/health-check",
        "/api/admin/sources/farm/fetch",
    ] {
        let (status, body) = call(&app, Method::POST, path, Some(ADMIN_TOKEN)).await;
        assert!(status < 300, "POST {path} → {status} {body}");
        answers.push((format!("POST {path}"), body));
    }
    // Secrets given through the admin API: a monitor with an API key, one with a webhook
    // header (both watching a service that stays up), a managed proxy with credentials; and
    // refused ones (no answer echoes them).
    let steady = HostedService::start().await;
    let added = [
        (
            "/api/admin/monitors",
            json!({"name": "api-render", "url": steady.url("/health"), "interval_secs": 1,
                   "recovery": {"action": "render", "service_id": "srv-api",
                                "api_key": API_RENDER_KEY, "api_base": render.base_url()}}),
            201,
        ),
        (
            "/api/admin/monitors",
            json!({"name": "api-hook", "url": steady.url("/health"), "interval_secs": 1,
                   "recovery": {"action": "webhook", "url": hook.url("/restart"),
                                "headers": {"X-Hook-Token": API_HOOK_HEADER}}}),
            201,
        ),
        (
            "/api/admin/monitors",
            json!({"name": "api-bad", "url": steady.url("/health"), "interval_secs": 0,
                   "recovery": {"action": "webhook", "url": hook.url("/restart"),
                                "headers": {"X-Hook-Token": API_HOOK_HEADER}}}),
            400,
        ),
        (
            // A header written as a string: refused without repeating it.
            "/api/admin/monitors",
            json!({"name": "api-bad2", "url": steady.url("/health"), "interval_secs": 1,
                   "recovery": {"action": "webhook", "url": hook.url("/restart"),
                                "headers": format!("X-Hook-Token: {API_HOOK_HEADER}")}}),
            400,
        ),
        (
            "/api/admin/monitors",
            json!({"name": "api-bad3", "url": steady.url("/health"), "interval_secs": 1,
                   "recovery": {"action": "render", "service_id": "srv-api",
                                "api_key": [API_RENDER_KEY]}}),
            400,
        ),
        (
            "/api/admin/proxies",
            json!({"name": "api-bad2", "url": {"href": format!("http://apiuser:{API_PROXY_PASSWORD}@127.0.0.1:1")}}),
            400,
        ),
        (
            "/api/admin/proxies",
            json!({"name": "api-paid",
                   "url": format!("http://apiuser:{API_PROXY_PASSWORD}@{}", paid_by_api.host_port())}),
            201,
        ),
        (
            "/api/admin/proxies",
            json!({"name": "api-bad",
                   "url": format!("ftp://apiuser:{API_PROXY_PASSWORD}@127.0.0.1:1")}),
            400,
        ),
    ];
    for (path, body, want) in added {
        let (status, answer) =
            call_with(&app, Method::POST, path, Some(ADMIN_TOKEN), Some(body)).await;
        assert_eq!(status, want, "POST {path}: {answer}");
        answers.push((format!("POST {path}"), answer));
    }
    let path = "/api/v1/proxy/health-check";
    let (status, checked) = call(&app, Method::POST, path, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{checked}");
    let results: Value = serde_json::from_str(&checked).unwrap();
    let passed = |name: &str| {
        results["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["name"] == name && r["ok"] == true))
    };
    assert!(
        passed("paid") && passed("api-paid"),
        "both paid proxies pass with their credentials: {checked}"
    );
    answers.push((format!("POST {path} (again)"), checked));
    for name in ["backend", "worker"] {
        wait::until(&format!("{name} repaired and up again"), WAIT, || async {
            let m = monitor(&app, name).await;
            (m["repairs"].as_u64() >= Some(1) && m["status"] == "up").then_some(())
        })
        .await;
    }
    // Manual restarts: the API-given key is refused by Render (a failed repair with an error
    // text), the API-given header reaches the webhook.
    for name in ["backend", "api-render", "api-hook"] {
        let path = format!("/api/admin/monitors/{name}/restart");
        let (status, body) = call(&app, Method::POST, &path, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 202, "{path}: {body}");
        answers.push((format!("POST {path}"), body));
    }
    for name in ["api-render", "api-hook"] {
        wait::until(&format!("{name}'s manual repair"), WAIT, || async {
            monitor(&app, name).await["last_repair"]["succeeded"]
                .is_boolean()
                .then_some(())
        })
        .await;
    }
    assert_eq!(
        monitor(&app, "api-render").await["last_repair"]["succeeded"],
        false
    );
    let used = |path: &str, key: &str| {
        render
            .calls()
            .iter()
            .any(|c| c.path.contains(path) && c.authorization == Some(format!("Bearer {key}")))
    };
    assert!(used("srv-backend", RENDER_KEY) && used("srv-api", API_RENDER_KEY));
    let hooked = |header: &str| {
        hook.calls()
            .iter()
            .any(|c| c.header("x-hook-token") == Some(header))
    };
    assert!(hooked(HOOK_HEADER) && hooked(API_HOOK_HEADER));
    // Telegram delivered (with the bot token in its URL), email was attempted (the relay
    // refuses the login) with a stored error text.
    wait::until("Telegram to get the alerts", WAIT, || async {
        let texts: Vec<String> = telegram.messages().into_iter().map(|m| m.text).collect();
        let got = |k: &str| texts.iter().any(|t| t.contains(k));
        (got("test") && got("service_down")).then_some(())
    })
    .await;
    wait::until("an email attempt with its error", WAIT, || async {
        let alerts = json_of(&app, "/api/alerts?limit=100").await;
        alerts["alerts"]
            .as_array()?
            .iter()
            .any(|a| a["deliveries"]["email"]["last_error"].is_string())
            .then_some(())
    })
    .await;

    // Serving endpoints hand the paid proxy out with its credentials: by design, and only there.
    let with_creds = format!("http://{PROXY_USER}:{PROXY_PASSWORD}@{}", paid.host_port());
    let serving = [
        (Method::GET, "/api/proxy/alive?count=10&detail=true"),
        (Method::GET, "/api/proxy/alive?count=10&strategy=cheapest"),
        (Method::GET, "/api/proxies?count=10"),
        (Method::GET, "/list"),
        (Method::POST, "/api/leases"),
    ];
    let mut handed = false;
    for (method, path) in serving {
        let (status, body) = call(&app, method.clone(), path, Some(CLIENT_TOKEN)).await;
        assert!(status < 300, "{method} {path} → {status} {body}");
        handed |= body.contains(&with_creds);
        assert_clean(
            &format!("{method} {path}"),
            &body,
            &["proxy password", "API-given proxy password"],
        );
        // Without the client token: refused, and nothing shown.
        let (status, body) = call(&app, method.clone(), path, None).await;
        assert_eq!(
            status, 401,
            "{method} {path} without the client token: {body}"
        );
        assert_clean(&format!("{method} {path} (no token)"), &body, &[]);
    }
    assert!(
        handed,
        "no serving answer handed out the paid proxy with its credentials"
    );

    // Everything else: status, admin, metrics, the dashboard and the logs, with the admin token.
    let everything = [
        "/",
        "/metrics",
        "/health",
        "/api/health",
        "/stats",
        "/api/health/comprehensive",
        "/api/ultra/stats",
        "/api/ultra/demo?count=10",
        "/api/resurrection/stats",
        "/api/allocation",
        "/api/v1/proxy/status",
        "/api/monitors",
        "/api/alerts?limit=1000",
        "/api/logs?limit=1000&level=trace",
        "/no/such/endpoint",
    ];
    for path in everything {
        let (status, body) = call(&app, Method::GET, path, Some(ADMIN_TOKEN)).await;
        assert!(
            status < 500 || path == "/api/health/comprehensive",
            "{path} → {status}"
        );
        assert_clean(&format!("GET {path}"), &body, &[]);
        answers.push((format!("GET {path}"), body));
    }
    for (what, body) in &answers {
        assert_clean(what, body, &[]);
    }
    // What these answers must show, so that the search above means something.
    let get = |path: &str| {
        answers
            .iter()
            .find(|(w, _)| w == &format!("GET {path}"))
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    };
    assert!(get("/").contains("Live logs"));
    assert!(get("/metrics").contains("proxyvisor_monitor_repairs_total{name=\"backend\"}"));
    let logs: Value = serde_json::from_str(&get("/api/logs?limit=1000&level=trace")).unwrap();
    assert!(logs["count"].as_u64() > Some(0), "{logs}");
    let status = get("/api/v1/proxy/status");
    assert!(status.contains(&paid.host_port()) && status.contains("\"credentials\":true"));

    // The in-process log ring, at trace: everything the app (and its libraries) logged.
    let ring = proxyvisor::logbuf::ring();
    let records = ring.all();
    // The ring still holds every record since this test began.
    let logged = ring.total() - logged_before;
    assert!(
        logged <= records.len() as u64,
        "{logged} records logged during the test, only {} kept",
        records.len()
    );
    let text: String = records
        .iter()
        .map(|e| format!("{} {} {}\n", e.level, e.target, e.message))
        .collect();
    assert!(
        text.contains("backend"),
        "the ring holds the repairs' lines"
    );
    assert!(
        records.iter().any(|e| e.level == log::Level::Trace),
        "the ring keeps trace records"
    );
    assert_clean("the log ring", &text, &[]);
    app.stop().await;
}

/// A config mistake next to a secret stops start-up naming the line and key, without printing
/// the line (toml's excerpt would show an unquoted bot token, say).
#[test]
fn a_bad_config_line_is_named_without_showing_its_secret() {
    let cases = [
        (
            "sources = []\n[alerts.telegram]\nbot_token = 123456:BOT-S3CRET\nchat_id = 1\n",
            "`bot_token`",
        ),
        (
            "sources = []\n[server]\nclient_token = [\"S3CRET-in-a-list\"]\n",
            "`client_token`",
        ),
        (
            "sources = []\n[alerts]\ncooldown_secs = \"S3CRET-where-a-number-goes\"\n",
            "`cooldown_secs`",
        ),
    ];
    for (text, culprit) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxyvisor.toml");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_proxyvisor"))
            .arg("--config")
            .arg(&path)
            .env_remove("DATABASE_URL")
            .env_remove("PORT")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(culprit), "{text:?}: {stderr}");
        assert!(!stderr.contains("S3CRET"), "{text:?}: {stderr}");
    }
}
