//! The dashboard in a real browser: Debian's headless Chromium, driven through ChromeDriver
//! (WebDriver, with the fantoccini crate), against the app with a farm, a paid proxy, a watched
//! service and Telegram. The page loads with no console error; its tiers, actors, monitors and
//! alerts panels show what the JSON API says; the admin token shows the live logs; an emergency
//! control (fetch a source now) works; the gateway panel and the usage table show a request
//! made through the gateway. The screenshot it takes is the README's
//! (`PROXYVISOR_SCREENSHOT=docs/dashboard.png` writes it there).

use crate::support::app::{sqlite_db, TestApp, ADMIN_TOKEN};
use crate::support::process::free_port;
use crate::support::tools;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Chrome's console as ChromeDriver keeps it (`goog:loggingPrefs`).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// ChromeDriver on a free port, stopped (with its Chromium) when dropped.
struct Driver {
    child: std::process::Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(path: &std::path::Path) -> Driver {
    let port = free_port();
    let child = std::process::Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, port };
    let client = reqwest::Client::new();
    let status = format!("http://127.0.0.1:{port}/status");
    crate::support::wait::until("chromedriver to answer", Duration::from_secs(20), || {
        let (client, status) = (client.clone(), status.clone());
        async move {
            client
                .get(&status)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
        }
    })
    .await;
    driver
}

async fn browser(driver: &Driver, chromium: &std::path::Path, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1800",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

/// Runs `script` in the page and returns its JSON value.
async fn eval(page: &Client, script: &str) -> Value {
    page.execute(script, vec![]).await.expect("script runs")
}

/// Waits until `probe` gives a value, polling the page and the API; the last failure explains a
/// timeout.
async fn until<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match probe().await {
            Ok(()) => return,
            Err(why) if Instant::now() > deadline => panic!("{what}: {why}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

const TIERS_ON_PAGE: &str = r#"
    const out = {};
    for (const b of document.querySelectorAll('#tiers .bar')) {
        out[b.querySelector('.label').textContent] = parseInt(b.querySelector('.val').textContent, 10);
    }
    return out;"#;

const ACTORS_ON_PAGE: &str = r#"
    return [...document.querySelectorAll('#actors tr')].map((tr) => {
        const td = tr.querySelectorAll('td');
        return [td[0].textContent, td[1].textContent, parseInt(td[2].textContent, 10)];
    });"#;

const MONITORS_ON_PAGE: &str = r#"
    return [...document.querySelectorAll('#monitors .card')].map((c) =>
        [c.querySelector('.name').textContent, c.querySelector('.badge').textContent]);"#;

const ALERTS_ON_PAGE: &str = r#"
    return [...document.querySelectorAll('#alerts tr')].map((tr) => {
        const td = tr.querySelectorAll('td');
        return td.length > 2 ? td[2].textContent.split(' ')[0] : null;
    }).filter((k) => k);"#;

/// The gateway panel's `served` stat and the usage table's total requests.
const GATEWAY_ON_PAGE: &str = r#"
    const served = [...document.querySelectorAll('#gateway .stat')]
        .find((d) => d.querySelector('span').textContent === 'served');
    const total = document.querySelector('#usage tr.total td:nth-child(2)');
    return { served: served ? served.querySelector('b').textContent : null,
             requests: total ? total.textContent : null };"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_chromium_shows_what_the_api_says_and_its_controls_work() {
    let test = "the_dashboard_in_chromium_shows_what_the_api_says_and_its_controls_work";
    let install = "apt-get install chromium chromium-driver";
    let (Some(chromium), Some(chromedriver)) = (
        tools::find("chromium", test, install),
        tools::find("chromedriver", test, install),
    ) else {
        return;
    };
    let world = crate::World::start().await;
    let (farm, source) = (&world.farm, &world.source);
    let (db_url, _db) = sqlite_db();
    // The gateway on, and an origin to reach through it (the gateway panel and usage table).
    let origin = crate::support::origin::CountingOrigin::start().await;
    let extra = format!(
        "{}\n[gateway]\nenabled = true\ntoken = \"gw\"\nallow_private = true\nallowed_ports = [{}]\n",
        world.tables(1),
        origin.port()
    );
    let config = crate::farm_config(&db_url, &source.url("/list.txt"), farm, &extra).replace(
        "revalidate_interval_secs = 1",
        "revalidate_interval_secs = 3600",
    );
    let app = TestApp::start(&config).await;
    crate::support::wait::until("the farm to serve", Duration::from_secs(20), || async {
        (app.serving().await.len() == 3).then_some(())
    })
    .await;
    let (status, _) = app.admin_post("/api/admin/alerts/test").await;
    assert_eq!(status, 202);

    let driver = start_driver(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let page = browser(&driver, &chromium, profile.path()).await;
    page.goto(&app.url("/")).await.expect("the dashboard loads");
    assert_eq!(page.title().await.unwrap(), "Proxyvisor");

    // The tiers panel against /api/ultra/stats.
    until("the tiers panel to show /api/ultra/stats", || async {
        let shown = eval(&page, TIERS_ON_PAGE).await;
        let (_, stats) = app.get_json("/api/ultra/stats").await;
        let t = &stats["tiers"];
        let count = |x: &Value| x.get("count").unwrap_or(x).as_u64();
        let api: BTreeMap<&str, Option<u64>> = [
            "primary",
            "standby",
            "emergency",
            "fresh",
            "dead",
            "blacklisted",
        ]
        .into_iter()
        .map(|k| (k, count(&t[k])))
        .collect();
        let page: BTreeMap<&str, Option<u64>> =
            api.keys().map(|k| (*k, shown[*k].as_u64())).collect();
        (page == api && api["primary"].unwrap_or(0) + api["standby"].unwrap_or(0) > 0)
            .then_some(())
            .ok_or(format!("page {page:?}, API {api:?}"))
    })
    .await;

    // Actors against health.
    until("the actors panel to show health's actors", || async {
        let shown = eval(&page, ACTORS_ON_PAGE).await;
        let (_, health) = app.get_json("/api/health/comprehensive").await;
        let api: Vec<Value> = health["actors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| json!([a["name"], a["status"], a["restarts"]]))
            .collect();
        (shown.as_array() == Some(&api) && api.len() >= 6)
            .then_some(())
            .ok_or(format!("page {shown}, API {api:?}"))
    })
    .await;

    // Monitors against /api/monitors (the service is up once checked).
    until("the monitors panel to show /api/monitors", || async {
        let shown = eval(&page, MONITORS_ON_PAGE).await;
        let (_, monitors) = app.get_json("/api/monitors").await;
        let api: Vec<Value> = monitors["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| json!([m["name"], m["status"]]))
            .collect();
        (shown.as_array() == Some(&api) && api == [json!(["backend", "up"])])
            .then_some(())
            .ok_or(format!("page {shown}, API {api:?}"))
    })
    .await;

    // Alerts against /api/alerts (the test alert at least).
    until("the alerts panel to show /api/alerts", || async {
        let shown = eval(&page, ALERTS_ON_PAGE).await;
        let (_, alerts) = app.get_json("/api/alerts?limit=20").await;
        let api: Vec<Value> = alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["kind"].clone())
            .collect();
        (shown.as_array() == Some(&api) && api.contains(&json!("test")))
            .then_some(())
            .ok_or(format!("page {shown}, API {api:?}"))
    })
    .await;

    // Locked until the admin token is entered; then the live logs show.
    let logs = page.find(Locator::Id("logs")).await.unwrap();
    assert!(
        !logs.is_displayed().await.unwrap(),
        "logs shown without the token"
    );
    page.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(ADMIN_TOKEN)
        .await
        .unwrap();
    page.find(Locator::Id("token-save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("live logs to show", || async {
        let lines = eval(
            &page,
            "return document.querySelectorAll('#logs div').length;",
        )
        .await;
        let shown = logs.is_displayed().await.unwrap_or(false);
        (shown && lines.as_u64() > Some(0))
            .then_some(())
            .ok_or(format!("displayed {shown}, {lines} lines"))
    })
    .await;
    let state = page
        .find(Locator::Id("token-state"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(state, "admin");

    // The gateway panel and today's usage table against health and /api/usage, after a
    // request through the gateway.
    let gateway = app.gateway.expect("the gateway listens").http;
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(format!("http://u:gw@{gateway}")).unwrap())
        .build()
        .unwrap();
    let r = client.get(origin.url("/bytes/1234")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.bytes().await.unwrap().len()),
        (200, 1234)
    );
    until(
        "the gateway panel and usage table to show the request",
        || async {
            let shown = eval(&page, GATEWAY_ON_PAGE).await;
            let (_, health) = app.get_json("/api/health/comprehensive").await;
            let (_, usage) = app
                .send(reqwest::Method::GET, "/api/usage", Some(ADMIN_TOKEN), None)
                .await;
            let api = json!({
                "served": health["gateway"]["requests"]["ok"].to_string(),
                "requests": usage["total"]["requests"].to_string(),
            });
            (shown == api && api["served"] == "1" && api["requests"] == "1")
                .then_some(())
                .ok_or(format!("page {shown}, API {api}"))
        },
    )
    .await;

    // The cluster panel: one instance on SQLite, named as health names it.
    until("the cluster panel to name this instance", || async {
        let shown = eval(
            &page,
            "return document.querySelector('#cluster-note').textContent;",
        )
        .await;
        let (_, health) = app.get_json("/api/health/comprehensive").await;
        let want = format!(
            "one instance (SQLite): {}",
            health["cluster"]["instance_id"].as_str().unwrap_or("?")
        );
        (shown == json!(want) && health["cluster"]["role"] == "single")
            .then_some(())
            .ok_or(format!("page {shown}, API {}", health["cluster"]))
    })
    .await;

    // An emergency control: fetch the source now, from its row.
    let fetched_before = source.hits("/list.txt");
    let fetch = page
        .find(Locator::Css("#sources button.admin"))
        .await
        .expect("a fetch button on the source's row");
    fetch.click().await.unwrap();
    until("the fetch to be answered and done", || async {
        let result = page
            .find(Locator::Id("result"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (result.contains("/api/admin/sources/farm/fetch → 202")
            && source.hits("/list.txt") > fetched_before)
            .then_some(())
            .ok_or(format!(
                "result {result:?}, source hits {}",
                source.hits("/list.txt")
            ))
    })
    .await;

    // No console error from start to end (the page's own script, CSP, a failed load).
    let console = page.issue_cmd(BrowserLog).await.expect("the browser's log");
    let severe: Vec<&Value> = console
        .as_array()
        .map(|entries| entries.iter().filter(|e| e["level"] == "SEVERE").collect())
        .unwrap_or_default();
    assert!(severe.is_empty(), "console errors: {severe:?}");

    let png = page.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    if let Some(path) = std::env::var_os("PROXYVISOR_SCREENSHOT") {
        std::fs::write(&path, &png).expect("the screenshot is written");
    }
    page.close().await.unwrap();
    drop(driver);
    app.stop().await;
}
