//! The tables of the config file, each key optional with its default.

use crate::domain::proxy::Protocol;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub admin_token: Option<SecretString>,
    pub client_token: Option<SecretString>,
    pub max_count: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// After SIGTERM/SIGINT: this long answering (health 503 "stopping", every answer with
    /// `Connection: close`) before the listener closes, so load balancers move away first.
    pub drain_secs: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "0.0.0.0:8000".into(),
            admin_token: None,
            client_token: None,
            max_count: 10_000,
            workers: 0,
            drain_secs: 1.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    /// How often check results are written behind, in one transaction.
    pub flush_interval_ms: u64,
    /// Where the service keeps its own files (the generated admin token, the journal of what
    /// waits for the store): by default beside the SQLite file, or `data/` with PostgreSQL.
    pub data_dir: Option<std::path::PathBuf>,
}

impl DatabaseConfig {
    pub fn data_dir(&self) -> std::path::PathBuf {
        match &self.data_dir {
            Some(d) => d.clone(),
            None => crate::store::Backend::from_url(&self.url)
                .map(|b| b.data_dir())
                .unwrap_or_else(|_| "data".into()),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/proxyvisor.db".into(),
            flush_interval_ms: 1000,
            data_dir: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Proxifly,
    Plain,
    Json,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proxifly => "proxifly",
            Self::Plain => "plain",
            Self::Json => "json",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    pub url: String,
    #[serde(default)]
    pub meta_url: Option<String>,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default = "default_source_interval")]
    pub interval_secs: f64,
    #[serde(default = "default_source_priority")]
    pub priority: i32,
    /// Bodies larger than this are refused (the pool keeps what it has).
    #[serde(default = "default_source_max_bytes")]
    pub max_bytes: u64,
    #[serde(default = "default_source_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_protocol() -> String {
    "http".into()
}
fn default_source_interval() -> f64 {
    60.0
}
fn default_source_priority() -> i32 {
    1000
}
fn default_source_max_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_source_timeout_ms() -> u64 {
    30_000
}

impl SourceConfig {
    pub fn default_protocol(&self) -> Protocol {
        Protocol::parse(&self.protocol).unwrap_or(Protocol::Http)
    }
}

/// ProxiFly's public lists, fetched when the config names no `[[sources]]`.
pub fn default_sources() -> Vec<SourceConfig> {
    const BASE: &str = "https://cdn.jsdelivr.net/gh/proxifly/free-proxy-list@main/proxies";
    vec![SourceConfig {
        name: "proxifly".into(),
        kind: SourceKind::Proxifly,
        url: format!("{BASE}/all/data.json"),
        meta_url: Some(format!("{BASE}/meta/data.json")),
        protocol: default_protocol(),
        interval_secs: 300.0,
        priority: default_source_priority(),
        max_bytes: default_source_max_bytes(),
        timeout_ms: default_source_timeout_ms(),
    }]
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    pub check_url: String,
    pub expect_status: u16,
    pub expect_body: Option<String>,
    pub judge_url: Option<String>,
    pub timeout_ms: u64,
    pub concurrency: usize,
    /// A check still unanswered after this long gives its permit back and waits on a timer
    /// (its socket kept) until `timeout_ms`; 0 = never (a check holds its permit throughout).
    pub park_after_ms: u64,
    pub revalidate_interval_secs: f64,
    pub profiles: Vec<ProfileConfig>,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            check_url: "http://www.gstatic.com/generate_204".into(),
            expect_status: 204,
            expect_body: None,
            judge_url: None,
            timeout_ms: 5000,
            concurrency: 1000,
            park_after_ms: 250,
            revalidate_interval_secs: 1200.0,
            profiles: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    pub name: String,
    pub check_url: String,
    #[serde(default = "default_expect_status")]
    pub expect_status: u16,
    #[serde(default)]
    pub expect_body: Option<String>,
}

fn default_expect_status() -> u16 {
    200
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TiersConfig {
    pub primary_target: usize,
    pub standby_target: usize,
    pub emergency_target: usize,
    pub minimum_guaranteed: usize,
    pub slow_threshold_ms: u32,
    pub flaky_below: f64,
    pub promote_after_passes: u32,
    pub dead_after_failures: u32,
}

impl Default for TiersConfig {
    fn default() -> Self {
        TiersConfig {
            primary_target: 1000,
            standby_target: 500,
            emergency_target: 200,
            minimum_guaranteed: 500,
            slow_threshold_ms: 2000,
            flaky_below: 0.5,
            promote_after_passes: 2,
            dead_after_failures: 3,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResurrectionConfig {
    pub delays_secs: Vec<f64>,
    pub blacklist_after_deaths: u32,
}

impl Default for ResurrectionConfig {
    fn default() -> Self {
        ResurrectionConfig {
            delays_secs: vec![0.0, 300.0, 1800.0, 7200.0],
            blacklist_after_deaths: 5,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllocationConfig {
    pub max_leases_per_proxy: u32,
    pub default_lease_ttl_secs: f64,
}

impl Default for AllocationConfig {
    fn default() -> Self {
        AllocationConfig {
            max_leases_per_proxy: 5,
            default_lease_ttl_secs: 300.0,
        }
    }
}

/// A `[[managed_proxies]]` table, also the body of `POST /api/admin/proxies`. The schema's
/// patterns say what `domain::managed::ManagedProxy::new` accepts (kept in step by the
/// contract tests).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagedProxyConfig {
    /// 1 to 64 characters (around blanks trimmed), no `/` or control characters.
    #[schema(
        example = "paid-1",
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000/]([^\x00-\x1f\x7f-\x9f/]{0,62}[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000/])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    /// `http|https|socks4|socks5://[user:pass@]host:port` (an IPv6 host in brackets).
    #[schema(
        example = "http://user:secret@203.0.113.10:3128",
        pattern = r"^(https?|socks[45])://([^/?#]*@)?((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|([A-Za-z0-9_-]{1,62}\.){0,3}[A-Za-z_-][A-Za-z0-9_-]{0,61}):([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])/?$"
    )]
    pub url: String,
    /// `free`, `vps`, `datacenter` (default) or `residential`.
    #[serde(default = "default_managed_kind")]
    #[schema(
        default = "datacenter",
        pattern = "^(free|vps|datacenter|residential)$"
    )]
    pub kind: String,
    /// Money per GB of traffic (>= 0, default 0).
    #[serde(default)]
    #[schema(minimum = 0.0)]
    pub cost_per_gb: f64,
    /// Lower first (default 100); proxies from sources have 1000.
    #[serde(default = "default_managed_priority")]
    #[schema(default = 100)]
    pub priority: i32,
    /// Leases it may hold at once (default `allocation.max_leases_per_proxy`).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    pub max_leases: Option<u32>,
    /// A `cost` alert once a day when its cost today passes this (gateway traffic).
    #[serde(default)]
    #[schema(minimum = 0.0)]
    pub daily_cost_limit: Option<f64>,
    /// Past this cost today the gateway does not use it until the next UTC day.
    #[serde(default)]
    #[schema(minimum = 0.0)]
    pub daily_cost_cap: Option<f64>,
}

impl ManagedProxyConfig {
    /// The definition this entry (or an API body of the same shape) gives, validated.
    pub fn definition(&self) -> Result<crate::domain::managed::ManagedProxy, String> {
        use crate::domain::managed::{CostLimits, ManagedProxy};
        let limits = CostLimits::new(self.daily_cost_limit, self.daily_cost_cap)?;
        ManagedProxy::new(
            &self.name,
            &self.url,
            &self.kind,
            self.cost_per_gb,
            self.priority,
            self.max_leases,
        )
        .map(|d| d.with_limits(limits))
    }
}

fn default_managed_kind() -> String {
    "datacenter".into()
}
fn default_managed_priority() -> i32 {
    100
}

/// A `[[monitors]]` table, also the body of `POST /api/admin/monitors`.
#[derive(Clone, Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// 1 to 64 characters (around blanks trimmed), no `/` or control characters.
    #[schema(
        example = "backend",
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000/]([^\x00-\x1f\x7f-\x9f/]{0,62}[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000/])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    /// The URL checked: http:// or https://.
    #[schema(
        example = "https://backend.example/health",
        pattern = r"^https?://([A-Za-z0-9._~-]+(:[A-Za-z0-9._~-]*)?@)?((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|([A-Za-z0-9-]{1,62}\.){0,3}[A-Za-z][A-Za-z0-9-]{0,61})(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~!$&()*+,;=:@%/-]*)?(\?[A-Za-z0-9._~!$&()*+,;=:@%/?-]*)?$"
    )]
    pub url: String,
    /// Seconds between checks (default 10), 1 to 86400.
    #[serde(default = "default_monitor_interval")]
    #[schema(default = 10.0, minimum = 1.0, maximum = 86400.0)]
    pub interval_secs: f64,
    /// A check's time limit (default 5000), 1 to 600000 ms.
    #[serde(default = "default_monitor_timeout")]
    #[schema(default = 5000, minimum = 1, maximum = 600000)]
    pub timeout_ms: u64,
    /// The status a healthy answer has (default 200).
    #[serde(default = "default_expect_status")]
    #[schema(default = 200, minimum = 100, maximum = 599)]
    pub expect_status: u16,
    /// Text a healthy answer holds.
    #[serde(default)]
    pub expect_body: Option<String>,
    /// Failed checks in a row before it is down (default 2).
    #[serde(default = "default_failures_before_down")]
    #[schema(default = 2, minimum = 1, maximum = 4294967295_u64)]
    pub failures_before_down: u32,
    /// An answer slower than this is slow (default 5000 ms).
    #[serde(default = "default_monitor_timeout")]
    #[schema(default = 5000, maximum = 18446744073709551615_u64)]
    pub slow_threshold_ms: u64,
    /// Slow answers in a row before it is degraded (default 3).
    #[serde(default = "default_degradation_threshold")]
    #[schema(default = 3, minimum = 1, maximum = 4294967295_u64)]
    pub degradation_threshold: u32,
    #[serde(default)]
    pub recovery: RecoveryConfig,
}

fn default_monitor_interval() -> f64 {
    10.0
}
fn default_monitor_timeout() -> u64 {
    5000
}
fn default_failures_before_down() -> u32 {
    2
}
fn default_degradation_threshold() -> u32 {
    3
}

/// `[monitors.recovery]`: what is done when the service is down.
#[derive(Clone, Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    pub action: String,
    pub service_id: Option<String>,
    pub environment_id: Option<String>,
    pub api_key_env: Option<String>,
    /// The key itself, when it is not in the environment (`api_key_env` is preferred).
    pub api_key: Option<String>,
    pub api_base: Option<String>,
    pub url: Option<String>,
    pub method: Option<String>,
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: Option<String>,
    pub command: Option<String>,
    pub cooldown_secs: f64,
    pub max_attempts: u32,
    pub then: Option<String>,
    /// Limit on one repair call or command.
    pub timeout_secs: f64,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            action: "none".into(),
            service_id: None,
            environment_id: None,
            api_key_env: None,
            api_key: None,
            api_base: None,
            url: None,
            method: None,
            headers: Default::default(),
            body: None,
            command: None,
            cooldown_secs: 60.0,
            max_attempts: 3,
            then: None,
            timeout_secs: 30.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    pub cooldown_secs: f64,
    pub daily_report_at: Option<String>,
    /// Closed alerts with nothing left to deliver are deleted after this many days.
    pub keep_days: f64,
    pub telegram: Option<TelegramConfig>,
    pub email: Option<EmailConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            cooldown_secs: 300.0,
            daily_report_at: Some("09:00".into()),
            keep_days: 30.0,
            telegram: None,
            email: None,
        }
    }
}

/// A chat id written as a number or a string.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ChatId {
    Number(i64),
    Text(String),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    #[serde(default)]
    pub bot_token: Option<SecretString>,
    #[serde(default)]
    pub chat_id: Option<ChatId>,
    #[serde(default = "default_telegram_api")]
    pub api_base: String,
}

pub(super) fn default_telegram_api() -> String {
    "https://api.telegram.org".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default)]
    /// May hold a password: kept as a secret.
    pub smtp_url: Option<SecretString>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
}

/// `[geoip]`: an optional country database (MaxMind `.mmdb`, or a DB-IP / IP2Location CSV),
/// used for proxies whose source gives no country.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoIpConfig {
    pub path: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionConfig {
    pub max_restarts: u32,
    pub within_secs: f64,
    pub fault_injection: bool,
    /// An actor with no heartbeat for this long is treated as crashed (hung).
    pub hang_after_secs: f64,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        SupervisionConfig {
            max_restarts: 5,
            within_secs: 60.0,
            fault_injection: false,
            hang_after_secs: 10.0,
        }
    }
}

/// `[gateway]`: the forward-proxy gateway (off by default).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    pub enabled: bool,
    /// HTTP/1.1 proxy listener (absolute-form requests and CONNECT).
    pub bind: String,
    /// SOCKS5 listener; none when unset.
    pub socks_bind: Option<String>,
    /// The password clients give (`server.client_token` when unset; with neither, the gateway
    /// takes anyone but listens on loopback only).
    pub token: Option<SecretString>,
    pub max_attempts: u32,
    pub connect_timeout_ms: u64,
    pub session_ttl_secs: f64,
    pub retry_body_max_bytes: usize,
    pub allowed_ports: Vec<u16>,
    pub allow_private: bool,
    pub head_timeout_ms: u64,
    pub max_head_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// A `cost` alert once a day when all traffic's cost today passes this.
    pub cost_alert_daily: Option<f64>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            enabled: false,
            bind: "0.0.0.0:8001".into(),
            socks_bind: None,
            token: None,
            max_attempts: 3,
            connect_timeout_ms: 5000,
            session_ttl_secs: 600.0,
            retry_body_max_bytes: 65536,
            allowed_ports: vec![80, 443],
            allow_private: false,
            head_timeout_ms: 10_000,
            max_head_bytes: 65536,
            max_connections: 10_000,
            max_connections_per_client: 256,
            cost_alert_daily: None,
        }
    }
}
