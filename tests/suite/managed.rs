//! Managed (paid) proxies: from the config file and the admin API, checked with their
//! credentials, served cost-first with failover, held to their own `max_leases`, reported by
//! status (`healthy`, `degraded`, `down`, `blocked`), and never showing their credentials
//! anywhere but in what clients are handed.

use crate::farm_config;
use crate::support::app::{postgres_db, sqlite_db, TestApp, TestDb, ADMIN_TOKEN};
use crate::support::farm::{Anonymity, Behaviour, Farm, FarmProxy};
use crate::support::source::SourceServer;
use crate::support::wait;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Free proxies listed by a source, and proxies started apart to be managed ones.
struct World {
    farm: Farm,
    managed: Vec<FarmProxy>,
    _source: SourceServer,
    db_url: String,
    _db: TestDb,
}

async fn world(db: (String, TestDb), free: usize, managed: usize) -> World {
    let farm = Farm::start(&vec![(Behaviour::Good, Anonymity::Elite, 0); free]).await;
    let mut m = Vec::new();
    for _ in 0..managed {
        m.push(FarmProxy::start(Behaviour::Good, Anonymity::Elite, 0).await);
    }
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    World {
        farm,
        managed: m,
        _source: source,
        db_url: db.0,
        _db: db.1,
    }
}

impl World {
    fn config(&self, extra: &str) -> String {
        farm_config(
            &self.db_url,
            &self._source.url("/list.txt"),
            &self.farm,
            extra,
        )
    }

    /// `http://user:pass@127.0.0.1:PORT` for managed proxy `i`.
    fn url_with(&self, i: usize, user: &str, pass: &str) -> String {
        format!("http://{user}:{pass}@{}", self.managed[i].addr)
    }
}

/// The managed proxies as `GET /api/v1/proxy/status` shows them, by name.
async fn status_of(app: &TestApp) -> (Value, Vec<Value>) {
    let (code, body) = app.get_json("/api/v1/proxy/status").await;
    assert_eq!(code, 200, "{body}");
    let proxies = body["proxies"].as_array().cloned().unwrap_or_default();
    (body["summary"].clone(), proxies)
}

async fn wait_status(app: &TestApp, name: &str, want: &str) -> Value {
    wait::until(&format!("{name} to be {want}"), WAIT, || async {
        let (_, proxies) = status_of(app).await;
        proxies
            .into_iter()
            .find(|p| p["name"] == name && p["status"] == want)
    })
    .await
}

async fn cheapest(app: &TestApp, count: usize) -> Vec<String> {
    let (code, body) = app
        .get_json(&format!("/api/proxy/alive?strategy=cheapest&count={count}"))
        .await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_value(body["proxies"].clone()).unwrap()
}

async fn lease(app: &TestApp, count: usize) -> Value {
    let (code, body) = app
        .post_json(
            "/api/leases",
            &json!({"count": count, "ttl_secs": 600, "strategy": "cheapest"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    body
}

/// GETs every status endpoint (everything but what clients are handed) and asserts none shows
/// `secret`.
async fn assert_nowhere(app: &TestApp, secret: &str) {
    for p in [
        "/api/v1/proxy/status",
        "/api/health/comprehensive",
        "/stats",
        "/api/ultra/stats",
        "/api/ultra/demo?count=10",
        "/api/resurrection/stats",
        "/api/allocation",
    ] {
        let body = app.get(p).await.text().await.unwrap();
        assert!(!body.contains(secret), "{p} shows a credential: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_managed_proxies_are_served_cost_first_and_fail_over() {
    let w = world(sqlite_db(), 2, 2).await;
    // Both paid proxies refuse requests without their credentials (407).
    w.managed[0].require_auth("alice", "pw-zero-secret");
    w.managed[1].require_auth("bob", "pw-one-secret");
    let extra = format!(
        r#"
[[managed_proxies]]
name = "dc-cheap"
url = "{}"
kind = "datacenter"
cost_per_gb = 0.5
priority = 1
max_leases = 2

[[managed_proxies]]
name = "resi"
url = "{}"
kind = "residential"
cost_per_gb = 4.0
priority = 2
"#,
        w.url_with(0, "alice", "pw-zero-secret"),
        w.url_with(1, "bob", "pw-one-secret"),
    );
    let app = TestApp::start(&w.config(&extra)).await;
    wait_status(&app, "dc-cheap", "healthy").await;
    let resi = wait_status(&app, "resi", "healthy").await;
    assert_eq!(resi["url"], w.managed[1].url(), "public URL only");
    assert_eq!(resi["credentials"], true);
    assert_eq!(
        (resi["kind"].clone(), resi["priority"].clone()),
        (json!("residential"), json!(2))
    );
    assert_eq!(
        w.managed[0].auth_failures() + w.managed[1].auth_failures(),
        0
    );
    wait::until("the free proxies to serve", WAIT, || async {
        (app.serving().await.len() == 4).then_some(())
    })
    .await;

    // Cost-first: priority 1, then 2, then the free ones (priority 1000), each handed out
    // with its credentials.
    let order = cheapest(&app, 4).await;
    assert_eq!(
        order[..2],
        [
            w.url_with(0, "alice", "pw-zero-secret"),
            w.url_with(1, "bob", "pw-one-secret")
        ]
    );
    let (summary, _) = status_of(&app).await;
    assert_eq!(summary["preferred"], "dc-cheap");
    assert_eq!(
        (summary["healthy"].clone(), summary["total"].clone()),
        (json!(2), json!(2))
    );
    assert_nowhere(&app, "secret").await;

    // `max_leases = 2` holds for dc-cheap while the others take the default 5.
    for _ in 0..2 {
        assert_eq!(lease(&app, 4).await["allocated"], 4);
    }
    let third = lease(&app, 4).await;
    assert_eq!(
        (third["allocated"].clone(), third["shortfall"].clone()),
        (json!(3), json!(1))
    );
    let given: Vec<String> = serde_json::from_value(third["proxies"].clone()).unwrap();
    assert!(!given.iter().any(|p| p.contains("alice")), "{given:?}");
    assert!(
        given.contains(&w.url_with(1, "bob", "pw-one-secret")),
        "{given:?}"
    );
    let (_, alloc) = app.get_json("/api/allocation").await;
    assert_eq!(
        alloc["proxies"][w.managed[0].url()],
        json!({"current": 2, "max": 2})
    );
    assert_eq!(alloc["total_capacity"], 2 + 5 * 3);

    // The cheapest one dies: the next one leads at once, and it is reported down.
    w.managed[0].set_behaviour_and_wait(Behaviour::Refuse).await;
    let resi_first = w.url_with(1, "bob", "pw-one-secret");
    wait::until("resi to lead", WAIT, || async {
        (cheapest(&app, 1).await == [resi_first.clone()]).then_some(())
    })
    .await;
    let down = wait_status(&app, "dc-cheap", "down").await;
    assert!(down["failures"].as_u64().unwrap() >= 2, "{down}");
    assert!(down["uptime_percent"].as_f64().unwrap() < 100.0, "{down}");

    // The next one is refused by the target (403): blocked, and the free ones lead.
    w.managed[1].block_target(w.farm.origin.port(), 403);
    let blocked = wait_status(&app, "resi", "blocked").await;
    assert_eq!(blocked["last_status"], 403);
    wait::until("a free proxy to lead", WAIT, || async {
        let first = cheapest(&app, 1).await;
        first
            .first()
            .is_some_and(|u| w.farm.proxies.iter().any(|p| &p.url() == u))
            .then_some(())
    })
    .await;
    let (summary, _) = status_of(&app).await;
    assert_eq!(
        (summary["down"].clone(), summary["blocked"].clone()),
        (json!(1), json!(1)),
        "{summary}"
    );
    assert_nowhere(&app, "secret").await;
    app.stop().await;
}

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    app.send(method, path, Some(ADMIN_TOKEN), body.as_ref())
        .await
}

async fn admin_api_manages_proxies_on(db: (String, TestDb)) {
    let w = world(db, 1, 3).await;
    w.managed[0].require_auth("carol", "pw-api-secret");
    let from_config = format!(
        "[[managed_proxies]]\nname = \"in-config\"\nurl = \"{}\"\n",
        w.managed[2].url()
    );
    let config = w.config(&from_config);
    let app = TestApp::start(&config).await;
    let vps = json!({
        "name": "vps-1",
        "url": w.url_with(0, "carol", "pw-api-secret"),
        "kind": "vps",
        "cost_per_gb": 0.2,
        "priority": 5,
        "max_leases": 3,
    });

    // Without the admin token: 401, whether or not the proxy exists.
    for (method, path) in [
        (Method::POST, "/api/admin/proxies"),
        (Method::PATCH, "/api/admin/proxies/vps-1"),
        (Method::PATCH, "/api/admin/proxies/nobody"),
        (Method::DELETE, "/api/admin/proxies/in-config"),
        (Method::DELETE, "/api/admin/proxies/nobody"),
        (Method::POST, "/api/v1/proxy/health-check"),
    ] {
        let (code, body) = app
            .send(method.clone(), path, Some("wrong"), Some(&vps))
            .await;
        assert_eq!(
            (code, &body["error"]["code"]),
            (401, &json!("unauthorized")),
            "{method} {path}"
        );
    }

    let (code, body) = admin(&app, Method::POST, "/api/admin/proxies", Some(vps.clone())).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["proxy"]["url"], w.managed[0].url());
    assert_eq!(body["proxy"]["credentials"], true);
    assert_eq!(body["proxy"]["max_leases"], 3);
    assert!(!body.to_string().contains("pw-api-secret"), "{body}");

    // Refused: taken name or URL (409), bad fields (400, never echoing the password).
    let mut same_url = vps.clone();
    same_url["name"] = json!("vps-2");
    let mut bad_kind = vps.clone();
    bad_kind["kind"] = json!("mainframe");
    let mut bad_url = vps.clone();
    bad_url["url"] = json!("ftp://carol:pw-api-secret@127.0.0.1:1");
    let mut negative = vps.clone();
    negative["cost_per_gb"] = json!(-1);
    let mut unknown = vps.clone();
    unknown["colour"] = json!("red");
    for (body, want) in [
        (vps.clone(), 409),
        (same_url, 409),
        (bad_kind, 400),
        (bad_url, 400),
        (negative, 400),
        (unknown, 400),
        (json!({"name": "x"}), 400),
        (json!([1]), 400),
    ] {
        let (code, answer) =
            admin(&app, Method::POST, "/api/admin/proxies", Some(body.clone())).await;
        assert_eq!(code, want, "{body} → {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
        assert!(!answer.to_string().contains("pw-api-secret"), "{answer}");
    }

    // It is checked with its credentials and served.
    wait_status(&app, "vps-1", "healthy").await;
    assert_eq!(w.managed[0].auth_failures(), 0);
    let with_creds = w.url_with(0, "carol", "pw-api-secret");
    wait::until("vps-1 to be served", WAIT, || async {
        let (_, b) = app.get_json("/api/proxy/alive?count=10").await;
        b["proxies"]
            .as_array()?
            .contains(&json!(with_creds))
            .then_some(())
    })
    .await;

    // PATCH by path, by body and by query; unknown → 404, nothing to change → 200, a proxy of
    // the config file → 409.
    let (code, body) = admin(
        &app,
        Method::PATCH,
        "/api/admin/proxies/vps-1",
        Some(json!({"priority": 0})),
    )
    .await;
    assert_eq!(
        (code, body["proxy"]["priority"].clone()),
        (200, json!(0)),
        "{body}"
    );
    let (code, body) = admin(
        &app,
        Method::PATCH,
        "/api/admin/proxies",
        Some(json!({"name": "vps-1", "cost_per_gb": 0.1})),
    )
    .await;
    assert_eq!(
        (code, body["proxy"]["cost_per_gb"].clone()),
        (200, json!(0.1)),
        "{body}"
    );
    let (code, body) = admin(
        &app,
        Method::PATCH,
        "/api/admin/proxies?name=vps-1",
        Some(json!({"max_leases": 4})),
    )
    .await;
    assert_eq!(
        (code, body["proxy"]["max_leases"].clone()),
        (200, json!(4)),
        "{body}"
    );
    for (path, body, want) in [
        ("/api/admin/proxies/nobody", json!({"priority": 1}), 404),
        // Nothing to change is a change to nothing: the proxy as it is.
        ("/api/admin/proxies/vps-1", json!({}), 200),
        (
            "/api/admin/proxies/vps-1",
            json!({"kind": "mainframe"}),
            400,
        ),
        (
            "/api/admin/proxies/vps-1",
            json!({"name": "other", "priority": 1}),
            400,
        ),
        (
            "/api/admin/proxies/vps-1",
            json!({"url": w.managed[2].url()}),
            409,
        ),
        ("/api/admin/proxies/in-config", json!({"priority": 1}), 409),
        ("/api/admin/proxies", json!({"priority": 1}), 400),
    ] {
        let (code, answer) = admin(&app, Method::PATCH, path, Some(body.clone())).await;
        assert_eq!(code, want, "{path} {body} → {answer}");
    }
    let (_, proxies) = status_of(&app).await;
    let vps_now = proxies.iter().find(|p| p["name"] == "vps-1").unwrap();
    assert_eq!(
        (vps_now["priority"].clone(), vps_now["max_leases"].clone()),
        (json!(0), json!(4))
    );

    // Checks now, on demand; a dead one says why.
    w.managed[2].set_behaviour_and_wait(Behaviour::Refuse).await;
    let (code, checked) = admin(&app, Method::POST, "/api/v1/proxy/health-check", None).await;
    assert_eq!(code, 200, "{checked}");
    assert_eq!(
        (checked["checked"].clone(), checked["ok"].clone()),
        (json!(2), json!(1)),
        "{checked}"
    );
    let results = checked["results"].as_array().unwrap();
    assert_eq!(results[0]["name"], "in-config");
    assert_eq!(results[0]["ok"], false);
    assert!(results[0]["error"].is_string(), "{checked}");
    assert_eq!(
        (results[1]["name"].clone(), results[1]["ok"].clone()),
        (json!("vps-1"), json!(true))
    );
    assert_eq!(results[1]["http_status"], 200);
    assert!(!checked.to_string().contains("pw-api-secret"));

    // What the API made was stored before it was answered: it is there after a restart.
    app.stop().await;
    let app = TestApp::start(&config).await;
    let (_, proxies) = status_of(&app).await;
    let names: Vec<&str> = proxies.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["in-config", "vps-1"]);
    let vps_now = &proxies[1];
    assert_eq!(
        (vps_now["priority"].clone(), vps_now["cost_per_gb"].clone()),
        (json!(0), json!(0.1))
    );
    assert_ne!(
        vps_now["status"], "unknown",
        "its health was kept: {vps_now}"
    );

    // DELETE by query, then again (404); the config's own cannot go (409).
    let (code, body) = admin(&app, Method::DELETE, "/api/admin/proxies?name=vps-1", None).await;
    assert_eq!(
        (code, body["deleted"].clone()),
        (200, json!("vps-1")),
        "{body}"
    );
    let (code, _) = admin(&app, Method::DELETE, "/api/admin/proxies/vps-1", None).await;
    assert_eq!(code, 404);
    let (code, _) = admin(
        &app,
        Method::DELETE,
        "/api/admin/proxies",
        Some(json!({"name": "in-config"})),
    )
    .await;
    assert_eq!(code, 409);
    wait::until("vps-1 to leave the pool", WAIT, || async {
        let served = app.serving().await;
        (!served.iter().any(|u| u.contains("carol"))).then_some(())
    })
    .await;
    app.stop().await;
    let app = TestApp::start(&config).await;
    let (summary, proxies) = status_of(&app).await;
    assert_eq!(summary["total"], 1, "{proxies:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_manages_proxies_sqlite() {
    admin_api_manages_proxies_on(sqlite_db()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_manages_proxies_postgres() {
    if let Some(db) = postgres_db("managed_admin") {
        admin_api_manages_proxies_on(db).await;
    }
}

/// The real binary at `debug` level: adding, checking, failing and removing managed proxies
/// with credentials never puts a password in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_the_log() {
    let w = world(sqlite_db(), 1, 2).await;
    w.managed[0].require_auth("dave", "pw-log-secret-1");
    w.managed[1].require_auth("erin", "pw-log-secret-2");
    let config = w.config(&format!(
        "[[managed_proxies]]\nname = \"logged\"\nurl = \"{}\"\n",
        w.url_with(0, "dave", "pw-log-secret-1")
    ));
    let mut service = crate::support::process::ServiceProcess::start(
        &config,
        &format!("admin_token = \"{ADMIN_TOKEN}\"\ndrain_secs = 0"),
        "debug",
    )
    .await;
    let client = crate::support::app::http_client();
    let base = service.url("");
    let healthy = |name: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let url = format!("{base}/api/v1/proxy/status");
            let body: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            body["proxies"]
                .as_array()?
                .iter()
                .any(|p| p["name"] == name && p["status"] == "healthy")
                .then_some(())
        }
    };
    wait::until("`logged` to be healthy", WAIT, || healthy("logged")).await;
    let admin = |method: Method, path: &str, body: Value| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let r = admin(
        Method::POST,
        "/api/admin/proxies",
        json!({"name": "api-one", "url": w.url_with(1, "erin", "pw-log-secret-2")}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    wait::until("`api-one` to be healthy", WAIT, || healthy("api-one")).await;
    // Wrong credentials: every check fails with 407 and is logged.
    w.managed[1].require_auth("erin", "another-password");
    let r = admin(Method::POST, "/api/v1/proxy/health-check", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin(
        Method::PATCH,
        "/api/admin/proxies/api-one",
        json!({"url": w.url_with(1, "erin", "pw-log-secret-3"), "priority": 3}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin(Method::DELETE, "/api/admin/proxies/api-one", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(service.terminate().await.code(), Some(0));
    let text = service.log();
    assert!(
        text.contains("managed proxy api-one added"),
        "the log is empty? {text}"
    );
    assert!(
        !text.contains("pw-log-secret"),
        "a password in the log:\n{text}"
    );
}
