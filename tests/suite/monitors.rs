//! Watched services: a crash is detected, the hosting provider's API is called to restart it,
//! the service comes back and the state goes up; slowness gets a predictive restart; the warm-up
//! and `max_attempts` stop a restart loop; admins add, remove and restart monitors.

use crate::support::app::{sqlite_db, TestApp, TestDb, ADMIN_TOKEN};
use crate::support::hosting::{HostedService, Mode, RailwayApi, RenderApi, WebhookSink};
use crate::support::smtp::SmtpServer;
use crate::support::telegram::TelegramServer;
use crate::support::wait;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// A config with no proxy sources and these tables.
fn config(db: &(String, TestDb), tables: &str) -> String {
    format!(
        "sources = []\n[database]\nurl = \"{}\"\nflush_interval_ms = 200\n{tables}",
        db.0
    )
}

/// A `[[monitors]]` table checking `url` every second.
fn monitor(name: &str, url: &str, extra: &str, recovery: &str) -> String {
    format!(
        "[[monitors]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval_secs = 1\ntimeout_ms = 500\n\
         failures_before_down = 2\n{extra}\n[monitors.recovery]\n{recovery}\n"
    )
}

async fn monitor_of(app: &TestApp, name: &str) -> Value {
    let (code, body) = app.get_json("/api/monitors").await;
    assert_eq!(code, 200, "{body}");
    body["monitors"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// Waits until the monitor passes `test`; answers it.
async fn wait_for(app: &TestApp, name: &str, what: &str, test: impl Fn(&Value) -> bool) -> Value {
    wait::until(&format!("{name}: {what}"), WAIT, || async {
        let m = monitor_of(app, name).await;
        test(&m).then_some(m)
    })
    .await
}

fn status_is(want: &'static str) -> impl Fn(&Value) -> bool {
    move |m: &Value| m["status"] == want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_repaired_through_render_and_the_service_comes_back() {
    let svc = HostedService::start().await;
    let render = RenderApi::start("rnd-test-key").await;
    render.heals(&svc, 300);
    let telegram = TelegramServer::start("123:tg-token").await;
    let smtp = SmtpServer::start().await;
    let db = sqlite_db();
    let recovery = format!(
        "action = \"render\"\nservice_id = \"srv-backend\"\napi_key = \"rnd-test-key\"\n\
         api_base = \"{}\"\ncooldown_secs = 2\n",
        render.base_url()
    );
    let alerts = format!(
        "[alerts]\ndaily_report_at = \"\"\n[alerts.telegram]\nbot_token = \"123:tg-token\"\n\
         chat_id = 42\napi_base = \"{}\"\n[alerts.email]\nsmtp_url = \"{}\"\n\
         to = [\"ops@example.test\"]\n",
        telegram.api_base(),
        smtp.url()
    );
    let tables = monitor("backend", &svc.url("/health"), "", &recovery) + &alerts;
    let app = TestApp::start(&config(&db, &tables)).await;
    wait_for(&app, "backend", "up", status_is("up")).await;

    svc.set_mode_and_wait(Mode::Crashed).await;
    let crashed = Instant::now();
    // Two failed checks a second apart, each failing at once (refused): down within about
    // interval × failures_before_down + timeout.
    let m = wait_for(&app, "backend", "a repair", |m| m["repairs"] == 1).await;
    let detected = crashed.elapsed();
    assert!(
        detected < Duration::from_millis(2 * 1000 + 500 + 1500),
        "detected after {detected:?}"
    );
    assert!(m["down_since"].is_string(), "{m}");
    let calls = render.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, "/v1/services/srv-backend/restart");
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some("Bearer rnd-test-key")
    );
    assert_eq!(
        calls[0].json(),
        json!({}),
        "Render's restart takes an empty JSON body"
    );

    // The stand-in restarts the service; the next check finds it up.
    let m = wait_for(&app, "backend", "up again", status_is("up")).await;
    assert_eq!(m["repairs"], 1, "{m}");
    assert_eq!(m["last_repair"]["kind"], "restart");
    assert_eq!(m["last_repair"]["succeeded"], true);
    assert_eq!(m["predictive_restarts"], 0);
    let uptime = m["uptime_percent"].as_f64().unwrap();
    assert!(uptime > 0.0 && uptime < 100.0, "{m}");
    assert!(m["checks_ok"].as_u64() < m["checks_total"].as_u64(), "{m}");
    assert_eq!(render.restarts(), 1);
    assert_eq!(render.deploys(), 0);
    let body = app.get("/api/monitors").await.text().await.unwrap();
    assert!(!body.contains("rnd-test-key"), "{body}");

    // The admin hears of it on Telegram and by email: down, then recovered.
    let said = |texts: Vec<String>| {
        let down = texts
            .iter()
            .position(|t| t.contains("service_down") && t.contains("backend"));
        let back = texts
            .iter()
            .position(|t| t.contains("service_recovered") && t.contains("backend"));
        matches!((down, back), (Some(d), Some(b)) if d < b)
    };
    wait::until("Telegram to hear down and recovered", WAIT, || async {
        said(telegram.messages().into_iter().map(|m| m.text).collect()).then_some(())
    })
    .await;
    wait::until("email to hear down and recovered", WAIT, || async {
        said(smtp.mails().into_iter().map(|m| m.data).collect()).then_some(())
    })
    .await;
    let (_, alerts) = app.get_json("/api/alerts").await;
    assert!(!alerts.to_string().contains("rnd-test-key"), "{alerts}");

    // What it saw is stored: after a restart the figures carry on.
    let cfg = config(&db, &tables);
    let before = monitor_of(&app, "backend").await;
    app.stop().await;
    let app = TestApp::start(&cfg).await;
    let m = wait_for(&app, "backend", "reloaded", |m| m["repairs"] == 1).await;
    assert_eq!(m["last_repair"]["kind"], "restart", "{m}");
    assert!(
        m["checks_total"].as_u64() >= before["checks_total"].as_u64(),
        "{m}"
    );
    assert!(m["uptime_percent"].as_f64().unwrap() < 100.0, "{m}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_restart_waits_for_the_reset_and_does_not_count() {
    let svc = HostedService::start().await;
    let render = RenderApi::start("k").await;
    render.rate_limit_next(1, 1);
    render.heals(&svc, 0);
    let db = sqlite_db();
    // One attempt allowed: had the 429 counted, the second call would never come.
    let recovery = format!(
        "action = \"render\"\nservice_id = \"srv-1\"\napi_key = \"k\"\napi_base = \"{}\"\n\
         cooldown_secs = 30\nmax_attempts = 1\n",
        render.base_url()
    );
    let app = TestApp::start(&config(
        &db,
        &monitor("limited", &svc.url("/"), "", &recovery),
    ))
    .await;
    wait_for(&app, "limited", "up", status_is("up")).await;
    svc.set_mode_and_wait(Mode::Crashed).await;
    wait_for(&app, "limited", "repaired and up", |m| {
        m["status"] == "up" && m["last_repair"]["succeeded"] == true
    })
    .await;
    let calls = render.calls();
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 202],
        "{calls:?}"
    );
    let gap = calls[1].at.duration_since(calls[0].at);
    assert!(
        gap >= Duration::from_millis(1000),
        "the reset was not waited for: {gap:?}"
    );
    assert!(
        gap < Duration::from_secs(30),
        "waited the whole warm-up: {gap:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn railway_restarts_the_latest_deployment() {
    let svc = HostedService::start().await;
    let railway = RailwayApi::start("rw-token").await;
    railway.set_deployment_id("dep-42");
    railway.heals(&svc, 200);
    let db = sqlite_db();
    let recovery = format!(
        "action = \"railway\"\nservice_id = \"svc-voice\"\nenvironment_id = \"env-prod\"\n\
         api_key = \"rw-token\"\napi_base = \"{}\"\n",
        railway.base_url()
    );
    let app = TestApp::start(&config(
        &db,
        &monitor("voice", &svc.url("/health"), "", &recovery),
    ))
    .await;
    wait_for(&app, "voice", "up", status_is("up")).await;
    svc.set_mode_and_wait(Mode::Error(503)).await;
    wait_for(&app, "voice", "repaired and up", |m| {
        m["status"] == "up" && m["repairs"] == 1
    })
    .await;
    assert_eq!(
        railway.lookups(),
        [("svc-voice".to_string(), "env-prod".to_string())]
    );
    assert_eq!(railway.restarted_deployments(), ["dep-42"]);
    assert_eq!(railway.redeploys(), 0);
    assert!(railway
        .calls()
        .iter()
        .all(|c| c.path == "/graphql/v2" && c.authorization.as_deref() == Some("Bearer rw-token")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warm_up_and_max_attempts_stop_a_restart_loop() {
    let svc = HostedService::start().await;
    let render = RenderApi::start("k").await;
    render.does_not_heal();
    let db = sqlite_db();
    let recovery = format!(
        "action = \"render\"\nservice_id = \"srv-1\"\napi_key = \"k\"\napi_base = \"{}\"\n\
         cooldown_secs = 1.5\nmax_attempts = 2\nthen = \"redeploy\"\n",
        render.base_url()
    );
    let app = TestApp::start(&config(&db, &monitor("loop", &svc.url("/"), "", &recovery))).await;
    wait_for(&app, "loop", "up", status_is("up")).await;
    svc.set_mode_and_wait(Mode::Crashed).await;

    // Two restarts, then two redeploys, then it gives up: exactly four calls.
    let m = wait_for(&app, "loop", "repairs paused", |m| {
        m["repairs_paused"] == true
    })
    .await;
    assert_eq!(m["repairs"], 4, "{m}");
    assert_eq!((render.restarts(), render.deploys()), (2, 2));
    let calls = render.calls();
    for w in calls.windows(2) {
        let gap = w[1].at.duration_since(w[0].at);
        assert!(
            gap >= Duration::from_millis(1500),
            "warm-up not kept: {gap:?}"
        );
    }
    assert_eq!(calls[2].path, "/v1/services/srv-1/deploys");
    // Several more failed checks change nothing.
    let checks = m["checks_total"].as_u64().unwrap();
    wait_for(&app, "loop", "three more checks", |m| {
        m["checks_total"].as_u64().unwrap() >= checks + 3
    })
    .await;
    assert_eq!(render.calls().len(), 4);
    assert_eq!(monitor_of(&app, "loop").await["status"], "down");

    // Up again by itself: repairs are allowed again.
    svc.set_mode_and_wait(Mode::Up).await;
    let m = wait_for(&app, "loop", "up", status_is("up")).await;
    assert_eq!(m["repairs_paused"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_slowness_gets_a_predictive_restart() {
    let svc = HostedService::start().await;
    let render = RenderApi::start("k").await;
    render.heals(&svc, 0);
    let db = sqlite_db();
    let recovery = format!(
        "action = \"render\"\nservice_id = \"srv-1\"\napi_key = \"k\"\napi_base = \"{}\"\n",
        render.base_url()
    );
    let table = monitor(
        "slowpoke",
        &svc.url("/"),
        "slow_threshold_ms = 300\ndegradation_threshold = 2",
        &recovery,
    )
    .replace("timeout_ms = 500", "timeout_ms = 2000");
    let app = TestApp::start(&config(&db, &table)).await;
    wait_for(&app, "slowpoke", "up", status_is("up")).await;
    svc.set_mode_and_wait(Mode::Slow(600)).await;
    wait_for(&app, "slowpoke", "degraded", status_is("degraded")).await;
    let m = wait_for(&app, "slowpoke", "restarted and fast", |m| {
        m["predictive_restarts"] == 1 && m["status"] == "up"
    })
    .await;
    assert_eq!(m["last_repair"]["predictive"], true, "{m}");
    assert_eq!(render.restarts(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_service_never_delays_the_others_and_webhooks_and_commands_repair() {
    let hung = HostedService::start().await;
    let fine = HostedService::start().await;
    let broken = HostedService::start().await;
    let hook = WebhookSink::start().await;
    hook.heals(&hung, 0);
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("restarted");
    let db = sqlite_db();
    let tables = [
        monitor(
            "hung",
            &hung.url("/"),
            "",
            &format!(
                "action = \"webhook\"\nurl = \"{}\"\nmethod = \"PUT\"\nbody = '{{\"restart\":true}}'\n\
                 headers = {{ \"X-Hook-Token\" = \"hook-secret\" }}\n",
                hook.url("/restart")
            ),
        ),
        monitor("fine", &fine.url("/"), "", "action = \"none\""),
        monitor(
            "broken",
            &broken.url("/"),
            "",
            &format!("action = \"command\"\ncommand = \"touch {}\"\n", marker.display()),
        ),
    ]
    .concat();
    let app = TestApp::start(&config(&db, &tables)).await;
    for name in ["hung", "fine", "broken"] {
        wait_for(&app, name, "up", status_is("up")).await;
    }
    hung.set_mode_and_wait(Mode::Hang).await;
    broken.set_mode_and_wait(Mode::Error(500)).await;
    let before = monitor_of(&app, "fine").await["checks_total"]
        .as_u64()
        .unwrap();
    wait_for(&app, "hung", "repaired by the webhook", |m| {
        m["repairs"] == 1
    })
    .await;
    wait::until("the command to run", WAIT, || async {
        marker.exists().then_some(())
    })
    .await;
    // Meanwhile the healthy one was checked on its own schedule.
    let fine_now = monitor_of(&app, "fine").await;
    assert!(
        fine_now["checks_total"].as_u64().unwrap() >= before + 2,
        "{fine_now}"
    );
    assert_eq!(fine_now["status"], "up");
    let calls = hook.calls();
    assert_eq!(calls[0].method, "PUT");
    assert_eq!(calls[0].path, "/restart");
    assert_eq!(calls[0].header("x-hook-token"), Some("hook-secret"));
    assert_eq!(calls[0].json(), json!({"restart": true}));
    wait_for(&app, "hung", "up again", status_is("up")).await;
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    assert_eq!(health["monitors"]["count"], 3, "{health}");
    let text = health.to_string() + &app.get("/api/monitors").await.text().await.unwrap();
    assert!(!text.contains("hook-secret"), "{text}");
    app.stop().await;
}

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    app.send(method, path, Some(ADMIN_TOKEN), body.as_ref())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_add_restart_and_remove_monitors() {
    let svc = HostedService::start().await;
    let render = RenderApi::start("api-key").await;
    render.heals(&svc, 0);
    let db = sqlite_db();
    let cfg = config(
        &db,
        &monitor("from-file", &svc.url("/"), "", "action = \"none\""),
    );
    let app = TestApp::start(&cfg).await;
    let added = json!({
        "name": "api-made",
        "url": svc.url("/health"),
        "interval_secs": 1,
        "recovery": {
            "action": "render",
            "service_id": "srv-9",
            "api_key": "api-key",
            "api_base": render.base_url(),
        },
    });
    for (method, path) in [
        (Method::POST, "/api/admin/monitors"),
        (Method::DELETE, "/api/admin/monitors/from-file"),
        (Method::DELETE, "/api/admin/monitors/nobody"),
        (Method::POST, "/api/admin/monitors/nobody/restart"),
    ] {
        let (code, _) = app.send(method.clone(), path, None, Some(&added)).await;
        assert_eq!(code, 401, "{method} {path}");
    }
    let (code, body) = admin(
        &app,
        Method::POST,
        "/api/admin/monitors",
        Some(added.clone()),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        (
            body["monitor"]["origin"].clone(),
            body["monitor"]["action"].clone()
        ),
        (json!("api"), json!("render"))
    );
    assert!(!body.to_string().contains("api-key"), "{body}");
    let mut bad_action = added.clone();
    bad_action["recovery"]["action"] = json!("reboot");
    let mut command = added.clone();
    command["name"] = json!("shell");
    command["recovery"] = json!({"action": "command", "command": "true"});
    let mut fast = added.clone();
    fast["name"] = json!("fast");
    fast["interval_secs"] = json!(0.1);
    for (body, want) in [
        (added.clone(), 409),
        (bad_action, 400),
        (command, 400),
        (fast, 400),
        (json!({"name": "x"}), 400),
        (
            json!({"name": "x", "url": "http://127.0.0.1:1/", "colour": 1}),
            400,
        ),
    ] {
        let (code, answer) = admin(
            &app,
            Method::POST,
            "/api/admin/monitors",
            Some(body.clone()),
        )
        .await;
        assert_eq!(code, want, "{body} → {answer}");
        assert!(answer["error"]["message"].is_string());
    }
    wait_for(&app, "api-made", "up", status_is("up")).await;

    // A restart on request: the provider is called even though the service is up.
    let (code, body) = admin(
        &app,
        Method::POST,
        "/api/admin/monitors/api-made/restart",
        None,
    )
    .await;
    assert_eq!(
        (code, body["repair"].clone()),
        (202, json!("restart")),
        "{body}"
    );
    let m = wait_for(&app, "api-made", "the manual repair", |m| {
        m["last_repair"]["succeeded"] == true
    })
    .await;
    assert_eq!(m["last_repair"]["manual"], true);
    assert_eq!(render.calls()[0].path, "/v1/services/srv-9/restart");
    let (code, _) = admin(
        &app,
        Method::POST,
        "/api/admin/monitors/from-file/restart",
        None,
    )
    .await;
    assert_eq!(code, 409, "action none has nothing to run");
    let (code, _) = admin(
        &app,
        Method::POST,
        "/api/admin/monitors/nobody/restart",
        None,
    )
    .await;
    assert_eq!(code, 404);

    // Stored: still there after a restart; the config file's own cannot be removed.
    app.stop().await;
    let app = TestApp::start(&cfg).await;
    wait::until("both monitors after the restart", WAIT, || async {
        let (_, list) = app.get_json("/api/monitors").await;
        let names: Vec<String> = list["monitors"]
            .as_array()?
            .iter()
            .filter_map(|m| m["name"].as_str().map(str::to_string))
            .collect();
        (names == ["api-made", "from-file"]).then_some(())
    })
    .await;
    let (code, _) = admin(&app, Method::DELETE, "/api/admin/monitors/from-file", None).await;
    assert_eq!(code, 409);
    let (code, body) = admin(
        &app,
        Method::DELETE,
        "/api/admin/monitors?name=api-made",
        None,
    )
    .await;
    assert_eq!(
        (code, body["deleted"].clone()),
        (200, json!("api-made")),
        "{body}"
    );
    let (code, _) = admin(
        &app,
        Method::DELETE,
        "/api/admin/monitors",
        Some(json!({"name": "api-made"})),
    )
    .await;
    assert_eq!(code, 404);
    app.stop().await;
    let app = TestApp::start(&cfg).await;
    wait_for(&app, "from-file", "loaded", |m| m.is_object()).await;
    let (_, list) = app.get_json("/api/monitors").await;
    assert_eq!(list["count"], 1, "{list}");
    app.stop().await;
}

/// Three services down at once are repaired at once: each repair command waits until all three
/// have started, which only succeeds when they run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_down_together_are_repaired_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let names = ["svc-a", "svc-b", "svc-c"];
    let mut services = Vec::new();
    for _ in names {
        services.push(HostedService::start().await);
    }
    let all_started = names
        .iter()
        .map(|n| format!("[ -e {d}/{n} ]"))
        .collect::<Vec<_>>()
        .join(" && ");
    let db = sqlite_db();
    let tables: String = names
        .iter()
        .zip(&services)
        .map(|(n, s)| {
            let command = format!(
                "touch {d}/{n}; i=0; while [ $i -lt 100 ]; do if {all_started}; then exit 0; fi; \
                 sleep 0.1; i=$((i+1)); done; exit 1"
            );
            monitor(
                n,
                &s.url("/"),
                "",
                &format!("action = \"command\"\ncommand = '{command}'\ntimeout_secs = 15\n"),
            )
        })
        .collect();
    let app = TestApp::start(&config(&db, &tables)).await;
    for n in names {
        wait_for(&app, n, "up", status_is("up")).await;
    }
    for s in &services {
        s.set_mode(Mode::Crashed);
    }
    for n in names {
        let m = wait_for(&app, n, "its repair to finish", |m| {
            !m["last_repair"]["succeeded"].is_null()
        })
        .await;
        assert_eq!(m["last_repair"]["succeeded"], true, "{m}");
    }
    app.stop().await;
}
