//! The integration suite: one test binary (each `tests/*.rs` would link its own), every test on
//! real sockets on loopback.

#[path = "../support/mod.rs"]
mod support;

mod alerts;
mod browser;
mod chaos;
mod cli;
mod cluster;
mod contract;
mod crash_safety;
mod farm_selftest;
mod feedback;
mod filters;
mod force_accept;
mod gateway;
mod hostile;
mod judge;
mod leases;
mod managed;
mod monitors;
mod never_empty;
mod ops;
mod params;
mod parking;
mod pipeline;
mod profiles;
mod resurrection;
mod schema_fuzz;
mod secrets;
mod shutdown;
mod sources;
mod standins_selftest;
mod store_outage;
mod structure;
mod supervision;

use support::farm::{Farm, ORIGIN_BODY};

/// A config whose pool comes from `list_url` and is checked against the farm's origin, with
/// timings small enough for tests. `extra` is appended (more tables).
pub fn farm_config(db_url: &str, list_url: &str, farm: &Farm, extra: &str) -> String {
    format!(
        r#"
[database]
url = "{db_url}"
flush_interval_ms = 200

[[sources]]
name = "farm"
kind = "plain"
url = "{list_url}"
interval_secs = 3600
timeout_ms = 1000
max_bytes = 1048576

[validation]
check_url = "{check}"
expect_status = 200
expect_body = "{ORIGIN_BODY}"
judge_url = "{judge}"
timeout_ms = 1000
concurrency = 50
revalidate_interval_secs = 1

[tiers]
primary_target = 100
minimum_guaranteed = 1
slow_threshold_ms = 1000
promote_after_passes = 2
dead_after_failures = 2

[resurrection]
# One quick second chance (a first check can time out on a loaded machine), then dead for good.
delays_secs = [1, 3600]

{extra}
"#,
        check = farm.origin.url("/ok"),
        judge = farm.origin.url("/judge"),
    )
}

/// A running world: the farm, the source serving its plain list, and the app on a fresh SQLite
/// store, returned once every proxy of the farm serves. Keep `db` bound (`db: _db`): dropping it
/// deletes the store's folder.
pub struct Running {
    pub farm: Farm,
    pub source: support::source::SourceServer,
    pub app: support::app::TestApp,
    pub db: support::app::TestDb,
    /// The config the app runs with (to start it again on the same store).
    pub config: String,
}

/// Starts a farm of good proxies with these latencies and the app on `farm_config`, passed
/// through `edit` (to change a setting), and waits until every proxy serves.
pub async fn start_serving(latencies_ms: &[u64], edit: impl FnOnce(String) -> String) -> Running {
    start_serving_on(support::app::sqlite_db(), latencies_ms, edit).await
}

/// `start_serving` on a given store.
pub async fn start_serving_on(
    (url, db): (String, support::app::TestDb),
    latencies_ms: &[u64],
    edit: impl FnOnce(String) -> String,
) -> Running {
    use support::farm::{Anonymity, Behaviour};
    let spec: Vec<_> = latencies_ms
        .iter()
        .map(|&ms| (Behaviour::Good, Anonymity::Elite, ms))
        .collect();
    let farm = Farm::start(&spec).await;
    let source = support::source::SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let config = edit(farm_config(&url, &source.url("/list.txt"), &farm, ""));
    let app = support::app::TestApp::start(&config).await;
    let n = latencies_ms.len();
    support::wait::until(
        "the farm to serve",
        std::time::Duration::from_secs(20),
        || async { (app.serving().await.len() == n).then_some(()) },
    )
    .await;
    Running {
        farm,
        source,
        app,
        db,
        config,
    }
}

/// The small world the contract checks run against: a farm of three good proxies (of each
/// anonymity level) and a refusing one behind a list source, a watched service that is up, and
/// Telegram. `tables` gives the config tables that use them besides the pool's: a paid proxy
/// (the farm's first), the service's monitor (checked every `monitor_secs`) and the Telegram
/// channel.
pub struct World {
    pub farm: Farm,
    pub source: support::source::SourceServer,
    pub service: support::hosting::HostedService,
    pub telegram: support::telegram::TelegramServer,
}

impl World {
    pub async fn start() -> World {
        use support::farm::{Anonymity, Behaviour};
        let farm = Farm::start(&[
            (Behaviour::Good, Anonymity::Elite, 0),
            (Behaviour::Good, Anonymity::Anonymous, 20),
            (Behaviour::Good, Anonymity::Transparent, 40),
            (Behaviour::Refuse, Anonymity::Elite, 0),
        ])
        .await;
        let source = support::source::SourceServer::start().await;
        source.set_body("/list.txt", farm.plain_list());
        World {
            farm,
            source,
            service: support::hosting::HostedService::start().await,
            telegram: support::telegram::TelegramServer::start("bot-token").await,
        }
    }

    pub fn tables(&self, monitor_secs: u64) -> String {
        format!(
            r#"
[[managed_proxies]]
name = "paid"
url = "{paid}"
kind = "datacenter"
cost_per_gb = 2.5
priority = 10

[[monitors]]
name = "backend"
url = "{health}"
interval_secs = {monitor_secs}

[alerts.telegram]
bot_token = "bot-token"
chat_id = 42
api_base = "{telegram}"
"#,
            paid = self.farm.proxies[0].url(),
            health = self.service.url("/health"),
            telegram = self.telegram.api_base(),
        )
    }
}
