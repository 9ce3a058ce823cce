//! The gateway, driven by real clients (curl, reqwest) through real upstreams (the farm's HTTP
//! proxies, the SOCKS stand-ins, a paid proxy with credentials) to counting origins, plain and
//! TLS: forwarding and failover (`forwarding`), traffic and cost (`accounting`), SOCKS5 and
//! sessions (`sessions`), hostile clients (`hostile`).

mod accounting;
mod forwarding;
mod hostile;
mod sessions;

use crate::farm_config;
use crate::support::app::{sqlite_db, TestApp, TestDb};
use crate::support::farm::{Anonymity, Behaviour, Farm, FarmProxy};
use crate::support::origin::CountingOrigin;
use crate::support::source::SourceServer;
use crate::support::wait;
use serde_json::Value;
use std::time::Duration;

pub const TOKEN: &str = "gw-t0ken";
/// The paid proxy's credentials: never in an answer or a log line.
pub const PAID_USER: &str = "paiduser";
pub const PAID_PASS: &str = "paid-S3CRET-pw";
pub const WAIT: Duration = Duration::from_secs(20);

/// Free proxies from a source, one paid proxy with credentials (cheapest: priority 1), a plain
/// and a TLS counting origin, and the app with the gateway on.
pub struct GatewayWorld {
    pub farm: Farm,
    pub paid: FarmProxy,
    pub origin: CountingOrigin,
    pub tls: CountingOrigin,
    pub source: SourceServer,
    pub db: (String, TestDb),
    pub app: TestApp,
    pub extra: String,
}

impl GatewayWorld {
    /// `free` good free proxies; `gateway` holds more `[gateway]` keys; `tables` more tables.
    pub async fn start(free: usize, gateway: &str, tables: &str) -> GatewayWorld {
        Self::start_with(free, gateway, tables, &[], "cost_per_gb = 4.0").await
    }

    /// `start`, with more ports allowed than the origins', and the paid proxy's cost keys.
    pub async fn start_with(
        free: usize,
        gateway: &str,
        tables: &str,
        ports: &[u16],
        paid_cost: &str,
    ) -> GatewayWorld {
        let farm = Farm::start(&vec![(Behaviour::Good, Anonymity::Elite, 0); free]).await;
        let paid = FarmProxy::start(Behaviour::Good, Anonymity::Elite, 0).await;
        paid.require_auth(PAID_USER, PAID_PASS);
        let origin = CountingOrigin::start().await;
        let tls = CountingOrigin::start_tls().await;
        let source = SourceServer::start().await;
        source.set_body("/list.txt", farm.plain_list());
        let extra = format!(
            r#"
[[managed_proxies]]
name = "paid"
url = "http://{PAID_USER}:{PAID_PASS}@{paid}"
kind = "residential"
{paid_cost}
priority = 1
{tables}

[gateway]
enabled = true
token = "{TOKEN}"
allowed_ports = [{}, {}{}]
{private}
{gateway}
"#,
            origin.port(),
            tls.port(),
            ports.iter().map(|p| format!(", {p}")).collect::<String>(),
            paid = paid.addr,
            private = if gateway.contains("allow_private") {
                ""
            } else {
                "allow_private = true"
            },
        );
        let db = sqlite_db();
        let config = quiet(farm_config(&db.0, &source.url("/list.txt"), &farm, &extra));
        let app = TestApp::start(&config).await;
        let world = GatewayWorld {
            farm,
            paid,
            origin,
            tls,
            source,
            db,
            app,
            extra,
        };
        world.wait_serving(free + 1).await;
        world
    }

    pub fn config(&self) -> String {
        quiet(farm_config(
            &self.db.0,
            &self.source.url("/list.txt"),
            &self.farm,
            &self.extra,
        ))
    }

    pub async fn wait_serving(&self, n: usize) {
        wait::until("the pool to serve", WAIT, || async {
            (self.app.serving().await.len() >= n).then_some(())
        })
        .await;
    }

    pub fn port(&self) -> u16 {
        self.app.gateway.expect("the gateway listens").http.port()
    }

    /// `http://USER:TOKEN@127.0.0.1:PORT`.
    pub fn proxy_url(&self, user: &str) -> String {
        format!("http://{user}:{TOKEN}@127.0.0.1:{}", self.port())
    }

    /// A reqwest client whose every request goes through the gateway as `user`.
    pub fn client(&self, user: &str) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(self.proxy_url(user)).unwrap())
            .timeout(Duration::from_secs(30));
        if let Some(pem) = &self.tls.cert_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    }

    /// `GET /api/usage?group=…` (admin) over today.
    pub async fn usage(&self, group: &str) -> Value {
        let (status, body) = self
            .app
            .send(
                reqwest::Method::GET,
                &format!("/api/usage?group={group}"),
                Some(crate::support::app::ADMIN_TOKEN),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// The farm config without its rolling revalidation: once the pool serves, what the gateway
/// reports is all the pool hears of its proxies.
fn quiet(config: String) -> String {
    config.replace(
        "revalidate_interval_secs = 1\n",
        "revalidate_interval_secs = 3600\n",
    )
}

/// The row of `key` in a usage answer.
pub fn row<'a>(usage: &'a Value, key: &str) -> Option<&'a Value> {
    usage["rows"].as_array()?.iter().find(|r| r["key"] == key)
}

/// Runs curl with these arguments: (exit code, stdout, stderr). `None` (with a notice) when
/// curl is not installed.
pub async fn curl(args: &[&str]) -> Option<(i32, String, String)> {
    crate::support::tools::find("curl", "gateway", "apt-get install curl")?;
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .await
        .expect("curl runs");
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// No answer and no log line holds the paid proxy's password.
pub fn assert_no_secret_logged() {
    let ring = proxyvisor::logbuf::ring();
    for e in ring.recent(ring.capacity(), log::LevelFilter::Trace) {
        assert!(
            !e.message.contains(PAID_PASS),
            "a log line shows the password: {}",
            e.message
        );
    }
}
