//! The store going away does not stop serving: writes wait and are retried, health shows the
//! store degraded, what needs the store to be acknowledged answers 503 rather than pretend, and
//! when the store is back everything catches up.

use crate::support::app::{postgres_db, sqlite_db, ADMIN_TOKEN};
use crate::support::farm::Behaviour;
use crate::support::hosting::{HostedService, Mode};
use crate::support::relay::Relay;
use crate::support::telegram::TelegramServer;
use crate::support::wait;
use crate::{start_serving_on, Running};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

async fn cluster_status(app: &crate::support::app::TestApp) -> Value {
    let (_, h) = app.get_json("/api/health/comprehensive").await;
    h["cluster"].clone()
}

async fn store_status(app: &crate::support::app::TestApp) -> Value {
    let (_, h) = app.get_json("/api/health/comprehensive").await;
    h["store"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_goes_on_while_postgres_is_away_and_the_pool_catches_up() {
    let Some((direct, db)) = postgres_db("outage") else {
        return;
    };
    let (relay, relayed) = Relay::in_front_of(&direct).await;
    // A watched service and a Telegram channel: an alert raised while the store is away.
    let svc = HostedService::start().await;
    let telegram = TelegramServer::start("1:tok").await;
    let extra = format!(
        "[[monitors]]\nname = \"web\"\nurl = \"{}\"\ninterval_secs = 1\ntimeout_ms = 500\n\
         [alerts]\ndaily_report_at = \"\"\n[alerts.telegram]\nbot_token = \"1:tok\"\nchat_id = 7\n\
         api_base = \"{}\"\n",
        svc.url("/"),
        telegram.api_base()
    );
    let Running {
        farm, app, db: _db, ..
    } = start_serving_on((relayed, db), &[0, 0, 0], |c| c + &extra).await;
    wait::until("a first write", WAIT, || async {
        (store_status(&app).await["rows_written"].as_u64()? >= 3).then_some(())
    })
    .await;

    // PostgreSQL goes away; a proxy dies and the watched service goes down meanwhile.
    relay.cut();
    farm.proxies[0]
        .set_behaviour_and_wait(Behaviour::Refuse)
        .await;
    svc.set_mode_and_wait(Mode::Crashed).await;
    let dead = farm.proxies[0].url();
    wait::until("the store to show degraded", WAIT, || async {
        (store_status(&app).await["status"] == "degraded").then_some(())
    })
    .await;
    wait::until(
        "the pool to drop the dead proxy without the store",
        WAIT,
        || async {
            let serving = app.serving().await;
            (serving.len() == 2 && !serving.contains(&dead)).then_some(())
        },
    )
    .await;
    let (code, body) = app.get_json("/api/proxy/alive?count=2").await;
    assert_eq!(
        (code, body["count"].clone(), body["degraded"].clone()),
        (200, json!(2), json!(false)),
        "{body}"
    );
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    assert!(health["problems"].to_string().contains("store"), "{health}");
    wait::until("the service to be seen down", WAIT, || async {
        let (_, m) = app.get_json("/api/monitors").await;
        (m["monitors"][0]["status"] == "down").then_some(())
    })
    .await;
    wait::until("the down alert to wait for the store", WAIT, || async {
        (store_status(&app).await["alerts_waiting"].as_u64()? >= 1).then_some(())
    })
    .await;
    // What would need the store to be acknowledged is refused, not pretended.
    let (code, body) = app.post_json("/api/leases", &json!({"count": 1})).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let managed = json!({"name": "paid", "url": "http://127.0.0.1:1"});
    let (code, body) = app
        .send(
            reqwest::Method::POST,
            "/api/admin/proxies",
            Some(ADMIN_TOKEN),
            Some(&managed),
        )
        .await;
    assert_eq!(code, 503, "{body}");
    // Back: the writes catch up.
    relay.restore().await;
    wait::until("the store to be ok again", WAIT, || async {
        (store_status(&app).await["status"] == "ok").then_some(())
    })
    .await;
    let url = direct.clone();
    let rows = tokio::task::spawn_blocking(move || {
        proxyvisor::store::Store::open(&url)
            .unwrap()
            .load_proxies()
            .unwrap()
    })
    .await
    .unwrap();
    let row = rows
        .iter()
        .find(|r| r.url == dead)
        .expect("the dead proxy's row");
    assert_eq!(
        row.tier, "dead",
        "the change made during the outage was written"
    );
    let (code, body) = app.post_json("/api/leases", &json!({"count": 1})).await;
    assert_eq!(code, 201, "{body}");
    // The alert raised during the outage was kept, stored and sent once the store was back.
    wait::until("the down alert to reach Telegram", WAIT, || async {
        telegram
            .messages()
            .iter()
            .any(|m| m.text.contains("service_down") && m.text.contains("web"))
            .then_some(())
    })
    .await;
    app.stop().await;
}

/// SQLite locked by another process: writes wait and are retried; serving goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_goes_on_while_the_sqlite_file_is_locked() {
    let (url, db) = sqlite_db();
    let path = url.trim_start_matches("sqlite://").to_string();
    let Running {
        farm, app, db: _db, ..
    } = start_serving_on((url, db), &[0, 0, 0], |c| c).await;
    let (code, lease) = app.post_json("/api/leases", &json!({"count": 3})).await;
    assert_eq!(code, 201, "{lease}");
    let release = format!("/api/leases/{}", lease["lease_id"].as_str().unwrap());
    // Another writer holds the file: an exclusive transaction, kept open.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut c = diesel::SqliteConnection::establish(&path).unwrap();
        c.batch_execute("BEGIN EXCLUSIVE").unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().ok();
        c.batch_execute("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    farm.proxies[1]
        .set_behaviour_and_wait(Behaviour::Refuse)
        .await;
    let dead = farm.proxies[1].url();
    wait::until("the store to show degraded", WAIT, || async {
        (store_status(&app).await["status"] == "degraded").then_some(())
    })
    .await;
    wait::until("the pool to drop the dead proxy", WAIT, || async {
        let serving = app.serving().await;
        (serving.len() == 2 && !serving.contains(&dead)).then_some(())
    })
    .await;
    // A release the store cannot take is refused, and the lease keeps its slots.
    let (code, body) = app
        .send(reqwest::Method::DELETE, &release, None, None)
        .await;
    assert_eq!(code, 503, "{body}");
    let (_, alloc) = app.get_json("/api/allocation").await;
    assert_eq!(alloc["current_leases"], 3, "{alloc}");
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    wait::until("the store to catch up", WAIT, || async {
        let s = store_status(&app).await;
        (s["status"] == "ok" && s["pending_writes"] == 0).then_some(())
    })
    .await;
    let (code, body) = app
        .send(reqwest::Method::DELETE, &release, None, None)
        .await;
    assert_eq!(code, 204, "{body}");
    let (_, alloc) = app.get_json("/api/allocation").await;
    assert_eq!(alloc["current_leases"], 0, "{alloc}");
    app.stop().await;
}

/// PostgreSQL unreachable without a refusal (packets dropped: connections hang until the
/// store's connect timeout): once the store shows degraded, a stream of admin changes that
/// must be stored is refused at once (503, the pool's actor refuses them without trying the
/// store) instead of each holding that actor for the timeout, which would have it restarted
/// as hung.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_are_refused_at_once_while_the_store_hangs() {
    let Some((direct, _db)) = crate::support::app::postgres_db("outage_hang") else {
        return;
    };
    let (relay, relayed) = Relay::in_front_of(&direct).await;
    let farm = crate::support::farm::Farm::start(
        &[(
            crate::support::farm::Behaviour::Good,
            crate::support::farm::Anonymity::Elite,
            0,
        ); 2],
    )
    .await;
    let source = crate::support::source::SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let config = crate::farm_config(&relayed, &source.url("/list.txt"), &farm, "");
    let app = crate::support::app::TestApp::start(&config).await;
    wait::until("the farm to serve", WAIT, || async {
        (app.serving().await.len() == 2).then_some(())
    })
    .await;
    relay.stall();
    wait::until("the store to show degraded", WAIT, || async {
        (store_status(&app).await["status"] == "degraded").then_some(())
    })
    .await;
    let changes = (0..12).map(|i| {
        let managed =
            json!({"name": format!("paid-{i}"), "url": format!("http://127.0.0.1:{}", 1000 + i)});
        let app = &app;
        async move {
            let started = std::time::Instant::now();
            let code = app
                .send(
                    reqwest::Method::POST,
                    "/api/admin/proxies",
                    Some(ADMIN_TOKEN),
                    Some(&managed),
                )
                .await
                .0;
            (code, started.elapsed())
        }
    });
    let answers = futures_util::future::join_all(changes).await;
    assert!(answers.iter().all(|(c, _)| *c == 503), "{answers:?}");
    let (_, health) = app.get_json("/api/health/comprehensive").await;
    let balancer = (health["actors"].as_array().unwrap().iter())
        .find(|a| a["name"] == "tier_balancer")
        .cloned()
        .unwrap();
    assert_eq!(balancer["restarts"], 0, "{balancer}");
    relay.restore().await;
    app.stop().await;
}

/// An alert raised while PostgreSQL is away waits in the journal (a file in the data
/// directory): the process killed before the store is back, it is delivered by the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_waiting_for_the_store_outlives_a_kill_and_is_sent_after_the_restart() {
    use crate::support::process::{free_port, ServiceProcess};
    let Some((direct, _db)) = postgres_db("journal") else {
        return;
    };
    let (relay, relayed) = Relay::in_front_of(&direct).await;
    let telegram = TelegramServer::start("1:tok").await;
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "sources = []\n[database]\nurl = \"{relayed}\"\ndata_dir = \"{}\"\n\
         [supervision]\nfault_injection = true\nmax_restarts = 1\n\
         [alerts]\ndaily_report_at = \"\"\n[alerts.telegram]\nbot_token = \"1:tok\"\nchat_id = 7\n\
         api_base = \"{}\"\n",
        data.path().display(),
        telegram.api_base()
    );
    let server = format!("admin_token = \"{ADMIN_TOKEN}\"");
    let port = free_port();
    let mut svc = ServiceProcess::start_on(port, &config, &server, "info").await;
    let client = crate::support::app::http_client();
    let health = |svc: &ServiceProcess| {
        let (client, url) = (client.clone(), svc.url("/api/health/comprehensive"));
        async move {
            let v: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            Some(v)
        }
    };

    relay.cut();
    // An actor crashing past its restart intensity: one actor_failed alert, nowhere to go.
    for n in 1..=2 {
        wait::until("the source fetcher running", WAIT, || async {
            let crash = (client.post(svc.url("/api/admin/actors/source_fetcher/crash")))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .ok()?;
            (crash.status() == 202).then_some(())
        })
        .await;
        wait::until("the crash to be counted", WAIT, || async {
            let h = health(&svc).await?;
            let a = (h["actors"].as_array()?.iter()).find(|a| a["name"] == "source_fetcher")?;
            (a["restarts"].as_i64() >= Some(n)).then_some(())
        })
        .await;
    }
    wait::until("the alert to wait for the store", WAIT, || async {
        (health(&svc).await?["store"]["alerts_waiting"].as_u64()? >= 1).then_some(())
    })
    .await;
    // One journal, named after this instance (`hostname:port` by default).
    let files: Vec<_> = (std::fs::read_dir(data.path()).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("journal-")
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let journal = files[0].clone();
    assert!(
        journal
            .to_string_lossy()
            .ends_with(&format!("_{port}.json")),
        "{journal:?}"
    );
    let kept = std::fs::read_to_string(&journal).expect("the journal file");
    assert!(kept.contains("actor_failed"), "{kept}");
    svc.kill9().await;
    assert!(telegram.messages().is_empty(), "nothing could be sent");

    relay.restore().await;
    let mut svc = ServiceProcess::start_on(port, &config, &server, "info").await;
    let m = wait::until("the kept alert to reach Telegram", WAIT, || async {
        (telegram.messages().into_iter()).find(|m| m.text.starts_with("[CRITICAL] actor_failed\n"))
    })
    .await;
    assert!(m.text.contains("source_fetcher"), "{}", m.text);
    wait::until("the journal emptied", WAIT, || async {
        (!journal.exists()).then_some(())
    })
    .await;
    let sent = (telegram.messages().iter())
        .filter(|m| m.text.contains("actor_failed"))
        .count();
    assert_eq!(sent, 1, "{:?}", telegram.messages());
    svc.terminate().await;
}

/// An idle instance (nothing to write) learns that PostgreSQL is away from its cluster
/// heartbeat: admin changes are refused at once from then on, none waits for a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_instance_refuses_admin_changes_at_once_once_its_heartbeat_misses_the_store() {
    let Some((direct, _db)) = crate::support::app::postgres_db("outage_idle") else {
        return;
    };
    let (relay, relayed) = Relay::in_front_of(&direct).await;
    let config = format!(
        "sources = []\n[database]\nurl = \"{relayed}\"\n\
         [cluster]\nheartbeat_secs = 0.25\nfailover_secs = 2\n"
    );
    let app = crate::support::app::TestApp::start(&config).await;
    wait::until("the heartbeat to reach the store", WAIT, || async {
        (cluster_status(&app).await["reachable"] == true).then_some(())
    })
    .await;
    relay.stall();
    wait::until("the heartbeat to miss the store", WAIT, || async {
        (cluster_status(&app).await["reachable"] == false).then_some(())
    })
    .await;
    for i in 0..6 {
        let monitor = json!({"name": format!("m-{i}"), "url": "http://127.0.0.1:9/"});
        let managed =
            json!({"name": format!("p-{i}"), "url": format!("http://127.0.0.1:{}", 1000 + i)});
        for (path, body) in [
            ("/api/admin/monitors", monitor),
            ("/api/admin/proxies", managed),
        ] {
            let started = std::time::Instant::now();
            let (code, answer) =
                (app.send(reqwest::Method::POST, path, Some(ADMIN_TOKEN), Some(&body))).await;
            assert_eq!(code, 503, "{path}: {answer}");
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{path} waited {:?}",
                started.elapsed()
            );
        }
    }
    relay.restore().await;
    wait::until("the store to be ok again", WAIT, || async {
        (store_status(&app).await["status"] == "ok").then_some(())
    })
    .await;
    let monitor = json!({"name": "after", "url": "http://127.0.0.1:9/"});
    let (code, answer) = app
        .send(
            reqwest::Method::POST,
            "/api/admin/monitors",
            Some(ADMIN_TOKEN),
            Some(&monitor),
        )
        .await;
    assert_eq!(code, 201, "{answer}");
    app.stop().await;
}
