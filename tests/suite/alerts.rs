//! Alerts reach the admin on Telegram and by email through a stored outbox: retried after a
//! 429's `retry_after`, kept while the SMTP relay is down (across a restart of the service too),
//! folded within the cooldown, raised when the pool empties, a managed proxy goes down or an actor
//! fails, and never showing a secret.

use crate::support::app::{postgres_db, sqlite_db, TestApp, TestDb, ADMIN_TOKEN};
use crate::support::farm::{Anonymity, Behaviour, FarmProxy};
use crate::support::smtp::SmtpServer;
use crate::support::telegram::TelegramServer;
use crate::support::wait;
use crate::{start_serving, Running};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "123456:TESTTOKEN-secret";
const CHAT: i64 = 4242;
const DEADLINE: Duration = Duration::from_secs(20);

/// `[alerts]` tables for the stand-ins given (no daily report: it must not fire mid-test).
fn alerts_toml(cooldown_secs: f64, tg: Option<&TelegramServer>, smtp_url: Option<&str>) -> String {
    let mut t = format!("[alerts]\ncooldown_secs = {cooldown_secs}\ndaily_report_at = \"\"\n");
    if let Some(tg) = tg {
        t += &format!(
            "[alerts.telegram]\nbot_token = \"{TOKEN}\"\nchat_id = {CHAT}\napi_base = \"{}\"\n",
            tg.api_base()
        );
    }
    if let Some(url) = smtp_url {
        t += &format!(
            "[alerts.email]\nsmtp_url = \"{url}\"\nfrom = \"Proxyvisor <alerts@example.test>\"\n\
             to = [\"ops@example.test\", \"oncall@example.test\"]\n"
        );
    }
    t
}

/// An app with no proxy sources (nothing to check) and these alert settings.
fn config(db_url: &str, alerts: &str) -> String {
    format!(
        "sources = []\n[database]\nurl = \"{db_url}\"\nflush_interval_ms = 200\n\
         [validation]\ncheck_url = \"http://127.0.0.1:9/ok\"\n{alerts}"
    )
}

async fn test_alert(app: &TestApp, body: Option<Value>) -> Value {
    let (status, answer) = app
        .send(
            Method::POST,
            "/api/admin/alerts/test",
            Some(ADMIN_TOKEN),
            body.as_ref(),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    answer
}

async fn alerts(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get_json("/api/alerts").await;
    assert_eq!(status, 200, "{body}");
    body["alerts"].as_array().cloned().unwrap_or_default()
}

/// Waits until the alert `id`'s delivery to `channel` satisfies `ok`, and returns the alert.
async fn wait_delivery(
    app: &TestApp,
    id: &Value,
    channel: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    wait::until(what, DEADLINE, || async {
        alerts(app)
            .await
            .into_iter()
            .find(|a| a["id"] == *id && ok(&a["deliveries"][channel]))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_alert_reaches_telegram_and_email() {
    let tg = TelegramServer::start(TOKEN).await;
    let smtp = SmtpServer::start().await;
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&config(
        &url,
        &alerts_toml(0.0, Some(&tg), Some(&smtp.url())),
    ))
    .await;

    let (status, body) = app.post_json("/api/admin/alerts/test", &json!({})).await;
    assert_eq!(status, 401, "no admin token: {body}");
    let (status, _) = (app.send(Method::POST, "/api/admin/alerts/test", Some("wrong"), None)).await;
    assert_eq!(status, 401);
    assert!(
        alerts(&app).await.is_empty(),
        "nothing raised without the token"
    );

    let first = test_alert(&app, None).await;
    assert_eq!(first["kind"], "test");
    assert_eq!(first["folded"], false);
    let id = first["id"].clone();
    assert!(id.is_i64(), "{first}");
    let msgs = wait::until("the Telegram message", DEADLINE, || async {
        let m = tg.messages();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(msgs[0].chat_id, CHAT.to_string());
    assert!(
        msgs[0].text.starts_with("[WARNING] test\n"),
        "{:?}",
        msgs[0].text
    );
    assert_eq!(msgs[0].parse_mode.as_deref(), Some("HTML"));
    assert!(!msgs[0].disable_notification, "a warning makes a sound");
    let mail = wait::until("the email", DEADLINE, || async {
        smtp.mails().first().cloned()
    })
    .await;
    assert_eq!(mail.from, "alerts@example.test");
    assert_eq!(mail.to, ["ops@example.test", "oncall@example.test"]);
    assert!(
        mail.data
            .contains("Subject: Proxyvisor [WARNING] test (test)"),
        "{}",
        mail.data
    );
    // One Message-ID per alert, the same at every attempt (mail systems fold a repeat).
    assert!(
        mail.data.contains(&format!("Message-ID: <alert-{id}-"))
            && mail.data.contains("@example.test>"),
        "{}",
        mail.data
    );
    assert!(
        mail.data
            .contains("[WARNING] test\r\nTest alert from Proxyvisor"),
        "{}",
        mail.data
    );

    // Both deliveries are recorded as sent, on the first attempt.
    let a = wait_delivery(&app, &id, "email", "both deliveries sent", |d| {
        d["state"] == "sent"
    })
    .await;
    let a = if a["deliveries"]["telegram"]["state"] == "sent" {
        a
    } else {
        wait_delivery(&app, &id, "telegram", "telegram sent", |d| {
            d["state"] == "sent"
        })
        .await
    };
    for ch in ["telegram", "email"] {
        assert_eq!(a["deliveries"][ch]["attempts"], 1, "{a}");
        assert_eq!(a["deliveries"][ch]["last_error"], Value::Null, "{a}");
    }
    assert_eq!(
        (a["severity"].as_str(), a["key"].as_str()),
        (Some("warning"), Some("test"))
    );
    assert_eq!(a["repeats"], 1);

    // An info alert is silent; its text is HTML-escaped for Telegram, plain in the email.
    let second = test_alert(
        &app,
        Some(json!({"severity": "info", "message": "<b>5 & 6</b>"})),
    )
    .await;
    assert_eq!(second["folded"], false, "cooldown 0 folds nothing");
    let m = wait::until("the info message", DEADLINE, || async {
        tg.messages().get(1).cloned()
    })
    .await;
    assert_eq!(m.text, "[INFO] test\n&lt;b&gt;5 &amp; 6&lt;/b&gt;");
    assert!(m.disable_notification);
    let mail = wait::until("the second email", DEADLINE, || async {
        smtp.mails().get(1).cloned()
    })
    .await;
    assert!(
        mail.data.contains("[INFO] test\r\n<b>5 & 6</b>"),
        "{}",
        mail.data
    );

    let (status, _) = (app.send(
        Method::POST,
        "/api/admin/alerts/test",
        Some(ADMIN_TOKEN),
        Some(&json!({"severity": "loud"})),
    ))
    .await;
    assert_eq!(status, 400);
    let (status, body) = app.get_json("/api/alerts?limit=0").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, body) = app.get_json("/api/alerts?limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(body["alerts"][0]["id"], second["id"], "newest first");

    let (_, health) = app.get_json("/api/health/comprehensive").await;
    for ch in ["telegram", "email"] {
        assert_eq!(health["alert_channels"][ch]["state"], "ok", "{health}");
    }
    assert_eq!(tg.messages().len(), 2);
    assert_eq!(smtp.mails().len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_429_is_retried_after_retry_after_and_arrives_once() {
    let tg = TelegramServer::start(TOKEN).await;
    // 2 s: longer than the first backoff step (1 s), so only an honoured retry_after passes.
    tg.answer_429(1, 2);
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&config(&url, &alerts_toml(300.0, Some(&tg), None))).await;

    let id = test_alert(&app, None).await["id"].clone();
    let a = wait_delivery(&app, &id, "telegram", "the delivery after the 429", |d| {
        d["state"] == "sent"
    })
    .await;
    assert_eq!(a["deliveries"]["telegram"]["attempts"], 2, "{a}");
    let msgs = tg.messages();
    assert_eq!(msgs.len(), 1, "exactly once");
    assert_eq!(tg.requests(), 2);
    let waited = msgs[0].at.duration_since(tg.refusals()[0]);
    assert!(
        waited >= Duration::from_millis(1950),
        "sent {waited:?} after the 429 that said retry_after = 2"
    );
    assert!(
        a["deliveries"].get("email").is_none(),
        "no email channel, no delivery"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_wait_for_the_relay_even_across_a_restart() {
    emails_wait_for_the_relay(sqlite_db()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_wait_for_the_relay_even_across_a_restart_on_postgres() {
    if let Some(db) = postgres_db("alerts_outbox") {
        emails_wait_for_the_relay(db).await;
    }
}

async fn emails_wait_for_the_relay((url, _db): (String, TestDb)) {
    let smtp = SmtpServer::start().await;
    smtp.stop().await;
    let config = config(&url, &alerts_toml(0.0, None, Some(&smtp.url())));
    let app = TestApp::start(&config).await;

    // Down, then up: the email arrives once the relay is back.
    let first = test_alert(&app, None).await["id"].clone();
    let a = wait_delivery(&app, &first, "email", "a failed attempt", |d| {
        d["attempts"].as_i64() >= Some(1) && d["last_error"].is_string()
    })
    .await;
    assert_eq!(a["deliveries"]["email"]["state"], "pending", "{a}");
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    assert_eq!(
        health["alert_channels"]["email"]["state"], "failing",
        "{health}"
    );
    smtp.start_again().await;
    wait::until("the first email", DEADLINE, || async {
        (smtp.mails().len() == 1).then_some(())
    })
    .await;
    wait_delivery(&app, &first, "email", "the first delivery recorded", |d| {
        d["state"] == "sent"
    })
    .await;

    // Down again, and the service restarts meanwhile: the stored outbox still delivers.
    smtp.stop().await;
    let second = test_alert(&app, Some(json!({"message": "second"}))).await["id"].clone();
    wait_delivery(&app, &second, "email", "a failed attempt", |d| {
        d["attempts"].as_i64() >= Some(1)
    })
    .await;
    app.stop().await;
    let app = TestApp::start(&config).await;
    smtp.start_again().await;
    let mail = wait::until("the second email after the restart", DEADLINE, || async {
        smtp.mails().get(1).cloned()
    })
    .await;
    assert!(mail.data.contains("\r\nsecond"), "{}", mail.data);
    let a = wait_delivery(
        &app,
        &second,
        "email",
        "the second delivery recorded",
        |d| d["state"] == "sent",
    )
    .await;
    assert!(
        a["deliveries"]["email"]["attempts"].as_i64() >= Some(2),
        "{a}"
    );
    assert_eq!(smtp.mails().len(), 2, "each email once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_within_the_cooldown_fold_into_one_message() {
    let tg = TelegramServer::start(TOKEN).await;
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&config(&url, &alerts_toml(300.0, Some(&tg), None))).await;

    let first = test_alert(&app, None).await;
    let again = test_alert(&app, None).await;
    let third = test_alert(&app, None).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(
        (again["folded"].as_bool(), third["folded"].as_bool()),
        (Some(true), Some(true))
    );
    let a = wait_delivery(&app, &first["id"], "telegram", "the one message", |d| {
        d["state"] == "sent"
    })
    .await;
    assert_eq!(a["repeats"], 3, "{a}");
    assert_eq!(a["deliveries"]["telegram"]["attempts"], 1);
    assert_eq!(alerts(&app).await.len(), 1);
    assert_eq!(tg.messages().len(), 1, "one message for three repeats");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_pool_a_down_managed_proxy_and_a_failed_actor_raise_alerts() {
    let tg = TelegramServer::start(TOKEN).await;
    let alerts_cfg = alerts_toml(300.0, Some(&tg), None);
    let Running {
        farm, app, db: _db, ..
    } = start_serving(&[0], |c| {
        c + &alerts_cfg + "[supervision]\nfault_injection = true\nmax_restarts = 1\n"
    })
    .await;
    // A managed proxy beside the farm's one.
    let paid = FarmProxy::start(Behaviour::Good, Anonymity::Elite, 0).await;
    let (status, body) = app
        .send(
            Method::POST,
            "/api/admin/proxies",
            Some(ADMIN_TOKEN),
            Some(&json!({"name": "dc", "url": paid.url()})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    wait::until("the managed proxy to be healthy", DEADLINE, || async {
        let (_, s) = app.get_json("/api/v1/proxy/status").await;
        (s["proxies"][0]["status"] == "healthy").then_some(())
    })
    .await;
    assert!(tg.messages().is_empty(), "a healthy pool says nothing");

    paid.set_behaviour_and_wait(Behaviour::Refuse).await;
    let m = wait::until("the managed proxy's down message", DEADLINE, || async {
        tg.messages()
            .into_iter()
            .find(|m| m.text.contains("managed proxy `dc` is down"))
    })
    .await;
    assert!(
        m.text.starts_with("[CRITICAL] managed_proxy_status\n"),
        "{}",
        m.text
    );
    for p in &farm.proxies {
        p.set_behaviour_and_wait(Behaviour::Refuse).await;
    }
    let m = wait::until("the pool_empty message", DEADLINE, || async {
        tg.messages()
            .into_iter()
            .find(|m| m.text.starts_with("[CRITICAL] pool_empty\n"))
    })
    .await;
    assert!(!m.disable_notification);
    let stored = alerts(&app).await;
    let empty = stored.iter().find(|a| a["kind"] == "pool_empty").unwrap();
    assert_eq!(
        (empty["severity"].as_str(), empty["key"].as_str()),
        (Some("critical"), Some("pool"))
    );
    assert!(
        !stored.iter().any(|a| a["kind"] == "pool_below_minimum"),
        "empty says it all: {stored:?}"
    );

    // An actor that crashes more than max_restarts times: one actor_failed alert.
    for n in 1..=3 {
        wait::until("the source fetcher running", DEADLINE, || async {
            let (status, _) = app
                .admin_post("/api/admin/actors/source_fetcher/crash")
                .await;
            (status == 202).then_some(())
        })
        .await;
        wait::until("the crash to be counted", DEADLINE, || async {
            let (_, h) = app.get_json("/api/health/comprehensive").await;
            let a = h["actors"]
                .as_array()?
                .iter()
                .find(|a| a["name"] == "source_fetcher")?
                .clone();
            (a["restarts"].as_i64() >= Some(n)).then_some(())
        })
        .await;
    }
    wait::until("the actor_failed message", DEADLINE, || async {
        tg.messages()
            .into_iter()
            .find(|m| m.text.starts_with("[CRITICAL] actor_failed\n"))
    })
    .await;
    let failed = alerts(&app).await;
    let failed: Vec<_> = failed
        .iter()
        .filter(|a| a["kind"] == "actor_failed")
        .collect();
    assert_eq!(failed.len(), 1, "once per crossing: {failed:?}");
    assert_eq!(failed[0]["key"], "actor:source_fetcher");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_shows_the_bot_token_or_the_smtp_password() {
    const PASSWORD: &str = "pa55word-secret";
    let tg = TelegramServer::start(TOKEN).await;
    // A hostile or careless server that echoes the token in its error.
    tg.answer_error(1, 401, &format!("Unauthorized: bot {TOKEN} is not known"));
    let smtp = SmtpServer::start().await;
    let smtp_url = format!("smtp://alerts:{PASSWORD}@{}", smtp.addr);
    let (url, _db) = sqlite_db();
    let app = TestApp::start(&config(&url, &alerts_toml(0.0, Some(&tg), Some(&smtp_url)))).await;

    let answer = test_alert(&app, None).await;
    let id = answer["id"].clone();
    let a = wait_delivery(
        &app,
        &id,
        "telegram",
        "the refused Telegram delivery",
        |d| d["state"] == "failed",
    )
    .await;
    let error = a["deliveries"]["telegram"]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("401") && error.contains("***"), "{error}");
    // The relay offers no AUTH: the attempt fails, with lettre's reason.
    wait_delivery(&app, &id, "email", "an email attempt", |d| {
        d["attempts"].as_i64() >= Some(1) && d["last_error"].is_string()
    })
    .await;

    let (_, health) = app.get_json("/api/health/comprehensive").await;
    assert_eq!(
        health["alert_channels"]["telegram"]["state"], "failing",
        "{health}"
    );
    let (_, listed) = app.get_json("/api/alerts").await;
    for (what, text) in [
        ("the test answer", answer.to_string()),
        ("/api/alerts", listed.to_string()),
        ("health", health.to_string()),
    ] {
        for secret in [TOKEN, "TESTTOKEN-secret", PASSWORD] {
            assert!(!text.contains(secret), "{what} shows `{secret}`: {text}");
        }
    }
    assert!(tg.messages().is_empty());
    app.stop().await;
}

/// Closed alerts older than `alerts.keep_days` are deleted; recent ones and open ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_closed_alerts_are_pruned() {
    use proxyvisor::store::alerts::NewAlertRow;
    let (url, _db) = sqlite_db();
    let day = 86_400_000i64;
    let now = proxyvisor::clock::now_ms();
    let row = |message: &str, age_days: i64, closed: bool| NewAlertRow {
        kind: "test".into(),
        key: format!("prune:{message}"),
        severity: "info".into(),
        message: message.into(),
        repeats: 1,
        created_at: now - age_days * day,
        updated_at: now - age_days * day,
        closed_at: closed.then_some(now - age_days * day),
    };
    let store = proxyvisor::store::Store::open(&url).unwrap();
    for (m, age, closed) in [
        ("old-closed", 40, true),
        ("new-closed", 2, true),
        ("old-open", 40, false),
    ] {
        store
            .insert_alert(&row(m, age, closed), &[], &[], 0)
            .unwrap();
    }
    drop(store);
    let app = TestApp::start(&config(
        &url,
        "[alerts]\nkeep_days = 30\ndaily_report_at = \"\"\n",
    ))
    .await;
    let messages = wait::until(
        "the old closed alert to go",
        Duration::from_secs(10),
        || async {
            let m: Vec<String> = alerts(&app)
                .await
                .iter()
                .filter_map(|a| a["message"].as_str().map(str::to_string))
                .collect();
            (!m.iter().any(|x| x == "old-closed")).then_some(m)
        },
    )
    .await;
    assert!(messages.contains(&"new-closed".to_string()), "{messages:?}");
    assert!(messages.contains(&"old-open".to_string()), "{messages:?}");
    app.stop().await;
}
