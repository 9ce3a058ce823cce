//! Configuration: a TOML file where every key is optional, then environment overrides.
//! Unknown keys and bad values are errors that name the key.

use crate::domain::lifecycle::Rules;
use crate::domain::managed::ManagedProxy;
use crate::domain::monitor::MonitorDef;
use crate::domain::proxy::Protocol;
use crate::env;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config: `{key}` {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    /// `None` (the key is absent) means the default public sources.
    pub sources: Option<Vec<SourceConfig>>,
    pub validation: ValidationConfig,
    pub tiers: TiersConfig,
    pub resurrection: ResurrectionConfig,
    pub allocation: AllocationConfig,
    pub managed_proxies: Vec<ManagedProxyConfig>,
    pub monitors: Vec<MonitorConfig>,
    pub alerts: AlertsConfig,
    pub supervision: SupervisionConfig,
    pub geoip: GeoIpConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub admin_token: Option<String>,
    pub client_token: Option<String>,
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
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/proxyvisor.db".into(),
            flush_interval_ms: 1000,
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

impl RecoveryConfig {
    /// The JSON Schema of `recovery` as the admin API takes it: one shape per `action`, each
    /// with the fields that action requires (`command` is for the config file only). What no
    /// schema can say: `api_key_env` instead of `api_key` works when that variable is set.
    pub fn api_schema() -> serde_json::Value {
        use serde_json::json;
        let url = json!({"type": "string", "pattern": HTTP_URL_PATTERN});
        let text = json!({"type": "string", "pattern": NOT_BLANK_PATTERN});
        let id = json!({"type": "string", "pattern": ID_PATTERN});
        let optional = |v: &serde_json::Value| json!({"oneOf": [v, {"type": "null"}]});
        let properties = |action: &str, then: &[&str]| {
            let mut then: Vec<serde_json::Value> = then.iter().map(|t| json!(t)).collect();
            then.push(serde_json::Value::Null);
            json!({
                "action": {"const": action},
                "service_id": {"type": ["string", "null"]},
                "environment_id": {"type": ["string", "null"]},
                "api_key_env": {"type": ["string", "null"]},
                "api_key": {"type": ["string", "null"]},
                "api_base": optional(&json!({"type": "string", "pattern": API_BASE_PATTERN})),
                "url": {"type": ["string", "null"]},
                "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", null]},
                "headers": {
                    "type": "object",
                    "propertyNames": {"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
                    "additionalProperties": {"type": "string", "pattern": "^[^\\x00-\\x08\\x0a-\\x1f\\x7f]*$"},
                },
                "body": {"type": ["string", "null"]},
                "command": {"type": ["string", "null"]},
                "cooldown_secs": {"type": "number", "minimum": 0, "maximum": 86400},
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": 4294967295_u64},
                "then": {"enum": then},
                "timeout_secs": {"type": "number", "minimum": 0, "maximum": 86400},
            })
        };
        let shape = |action: &str, then: &[&str], required: &[&str], more: serde_json::Value| {
            let mut props = properties(action, then);
            if let (Some(p), serde_json::Value::Object(m)) = (props.as_object_mut(), more) {
                p.extend(m);
            }
            json!({
                "type": "object",
                "title": action,
                "properties": props,
                "required": required,
                "additionalProperties": false,
            })
        };
        json!({
            "description": "What is done when the service is down (default: nothing). \
                `api_key` may be replaced by `api_key_env`, the name of an environment \
                variable of the service's host that holds the key.",
            "oneOf": [
                shape("none", &["alert"], &[], json!({})),
                shape("render", &["redeploy", "alert"], &["action", "service_id", "api_key"],
                      json!({"service_id": id, "api_key": text})),
                shape("railway", &["redeploy", "alert"],
                      &["action", "service_id", "environment_id", "api_key"],
                      json!({"service_id": text, "environment_id": text, "api_key": text})),
                shape("webhook", &["alert"], &["action", "url"], json!({"url": url})),
            ],
        })
    }
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
    pub bot_token: Option<String>,
    #[serde(default)]
    pub chat_id: Option<ChatId>,
    #[serde(default = "default_telegram_api")]
    pub api_base: String,
}

fn default_telegram_api() -> String {
    "https://api.telegram.org".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default)]
    pub smtp_url: Option<String>,
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

impl Config {
    /// Reads `path` (when given), applies environment overrides, and checks every value.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env()?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        // One line, without toml's source excerpt: the line may hold a secret.
        toml::from_str(text).map_err(|e| crate::redact::toml_error(text, &e))
    }

    /// `PORT`, `DATABASE_URL`, `PROXYVISOR_ADMIN_TOKEN`, `TELEGRAM_BOT_TOKEN`, `TELEGRAM_CHAT_ID`,
    /// `SMTP_URL` win over the file.
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        if let Some(port) = env::parsed::<u16>("PORT").map_err(|m| invalid("PORT", m))? {
            let host = self
                .server
                .bind
                .rsplit_once(':')
                .map(|(h, _)| h.to_string())
                .unwrap_or_else(|| "0.0.0.0".into());
            self.server.bind = format!("{host}:{port}");
        }
        if let Some(url) = env::string("DATABASE_URL") {
            self.database.url = url;
        }
        if let Some(token) = env::string("PROXYVISOR_ADMIN_TOKEN") {
            self.server.admin_token = Some(token);
        }
        let bot = env::string("TELEGRAM_BOT_TOKEN");
        let chat = env::string("TELEGRAM_CHAT_ID");
        if bot.is_some() || chat.is_some() {
            let tg = self.alerts.telegram.get_or_insert_with(|| TelegramConfig {
                bot_token: None,
                chat_id: None,
                api_base: default_telegram_api(),
            });
            if let Some(bot) = bot {
                tg.bot_token = Some(bot);
            }
            if let Some(chat) = chat {
                tg.chat_id = Some(ChatId::Text(chat));
            }
        }
        if let Some(smtp) = env::string("SMTP_URL") {
            let email = self.alerts.email.get_or_insert_with(|| EmailConfig {
                smtp_url: None,
                from: None,
                to: Vec::new(),
            });
            email.smtp_url = Some(smtp);
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if !(0.0..=300.0).contains(&self.server.drain_secs) {
            return Err(invalid(
                "server.drain_secs",
                "must be from 0 to 300 seconds",
            ));
        }
        if self.server.max_count == 0 {
            return Err(invalid("server.max_count", "must be at least 1"));
        }
        crate::store::Backend::from_url(&self.database.url)
            .map_err(|m| invalid("database.url", m))?;
        if self.database.flush_interval_ms == 0 {
            return Err(invalid("database.flush_interval_ms", "must be at least 1"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sources().iter().enumerate() {
            let key = |k: &str| format!("sources[{i}].{k}");
            if s.name.trim().is_empty() || !names.insert(s.name.clone()) {
                return Err(invalid(key("name"), "must be a non-empty, unique name"));
            }
            http_url(&s.url).map_err(|m| invalid(key("url"), m))?;
            if let Some(meta) = &s.meta_url {
                http_url(meta).map_err(|m| invalid(key("meta_url"), m))?;
            }
            if Protocol::parse(&s.protocol).is_none() {
                return Err(invalid(
                    key("protocol"),
                    "must be http, https, socks4 or socks5",
                ));
            }
            positive_secs(s.interval_secs).map_err(|m| invalid(key("interval_secs"), m))?;
            if s.max_bytes == 0 || s.timeout_ms == 0 {
                return Err(invalid(key("max_bytes"), "and timeout_ms must be positive"));
            }
        }
        let v = &self.validation;
        http_url(&v.check_url).map_err(|m| invalid("validation.check_url", m))?;
        if let Some(judge) = &v.judge_url {
            http_url(judge).map_err(|m| invalid("validation.judge_url", m))?;
        }
        if v.timeout_ms == 0 {
            return Err(invalid("validation.timeout_ms", "must be positive"));
        }
        if v.concurrency == 0 {
            return Err(invalid("validation.concurrency", "must be at least 1"));
        }
        positive_secs(v.revalidate_interval_secs)
            .map_err(|m| invalid("validation.revalidate_interval_secs", m))?;
        let mut names = std::collections::HashSet::new();
        for (i, p) in v.profiles.iter().enumerate() {
            if p.name.trim().is_empty() || !names.insert(p.name.as_str()) {
                return Err(invalid(
                    format!("validation.profiles[{i}].name"),
                    "must be a non-empty, unique name",
                ));
            }
            http_url(&p.check_url)
                .map_err(|m| invalid(format!("validation.profiles[{i}].check_url"), m))?;
        }
        self.managed_proxies()?;
        let t = &self.tiers;
        if !(0.0..=1.0).contains(&t.flaky_below) {
            return Err(invalid("tiers.flaky_below", "must be between 0 and 1"));
        }
        if t.dead_after_failures == 0 || t.promote_after_passes == 0 {
            return Err(invalid(
                "tiers.dead_after_failures",
                "and tiers.promote_after_passes must be at least 1",
            ));
        }
        let r = &self.resurrection;
        if r.delays_secs.is_empty() || r.delays_secs.iter().any(|d| !d.is_finite() || *d < 0.0) {
            return Err(invalid(
                "resurrection.delays_secs",
                "must be a non-empty list of seconds >= 0",
            ));
        }
        if r.blacklist_after_deaths == 0 {
            return Err(invalid(
                "resurrection.blacklist_after_deaths",
                "must be at least 1",
            ));
        }
        positive_secs(self.supervision.within_secs)
            .map_err(|m| invalid("supervision.within_secs", m))?;
        if !(self.supervision.hang_after_secs >= 2.0
            && self.supervision.hang_after_secs.is_finite())
        {
            return Err(invalid(
                "supervision.hang_after_secs",
                "must be at least 2 (two heartbeats)",
            ));
        }
        let a = &self.alerts;
        if !a.cooldown_secs.is_finite() || a.cooldown_secs < 0.0 {
            return Err(invalid(
                "alerts.cooldown_secs",
                "must be a number of seconds >= 0",
            ));
        }
        if !(a.keep_days.is_finite() && a.keep_days > 0.0) {
            return Err(invalid(
                "alerts.keep_days",
                "must be a number of days above 0",
            ));
        }
        self.daily_report_at()?;
        crate::channels::validate(a).map_err(|(k, m)| invalid(k, m))?;
        self.monitors()?;
        Ok(())
    }

    /// `alerts.daily_report_at` (UTC); `None` when it is `""` (no daily report).
    pub fn daily_report_at(&self) -> Result<Option<crate::domain::alerts::DailyAt>, ConfigError> {
        match &self.alerts.daily_report_at {
            None => Ok(None),
            Some(s) => crate::domain::alerts::DailyAt::parse(s)
                .map_err(|m| invalid("alerts.daily_report_at", m)),
        }
    }

    /// The `[[monitors]]`, validated (names unique); keys named by `api_key_env` are read from
    /// the environment.
    pub fn monitors(&self) -> Result<Vec<MonitorDef>, ConfigError> {
        let mut defs: Vec<MonitorDef> = Vec::with_capacity(self.monitors.len());
        for (i, m) in self.monitors.iter().enumerate() {
            let def = MonitorDef::new(m, env::string)
                .map_err(|e| invalid(format!("monitors[{i}]"), e))?;
            if defs.iter().any(|d| d.name == def.name) {
                return Err(invalid(format!("monitors[{i}].name"), "is used twice"));
            }
            defs.push(def);
        }
        Ok(defs)
    }

    /// The `[[managed_proxies]]`, validated (names and URLs unique).
    pub fn managed_proxies(&self) -> Result<Vec<ManagedProxy>, ConfigError> {
        let mut defs: Vec<ManagedProxy> = Vec::with_capacity(self.managed_proxies.len());
        for (i, m) in self.managed_proxies.iter().enumerate() {
            let def = ManagedProxy::new(
                &m.name,
                &m.url,
                &m.kind,
                m.cost_per_gb,
                m.priority,
                m.max_leases,
            )
            .map_err(|e| invalid(format!("managed_proxies[{i}]"), e))?;
            if defs.iter().any(|d| d.name == def.name) {
                return Err(invalid(
                    format!("managed_proxies[{i}].name"),
                    "is used twice",
                ));
            }
            if defs.iter().any(|d| d.endpoint.key() == def.endpoint.key()) {
                return Err(invalid(
                    format!("managed_proxies[{i}].url"),
                    "is used twice",
                ));
            }
            defs.push(def);
        }
        Ok(defs)
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .bind
            .parse()
            .map_err(|_| invalid("server.bind", "must be an address like 0.0.0.0:8000"))
    }

    pub fn sources(&self) -> Vec<SourceConfig> {
        self.sources.clone().unwrap_or_else(default_sources)
    }

    pub fn rules(&self) -> Rules {
        Rules {
            slow_threshold_ms: self.tiers.slow_threshold_ms,
            flaky_below: self.tiers.flaky_below,
            promote_after_passes: self.tiers.promote_after_passes,
            dead_after_failures: self.tiers.dead_after_failures,
            blacklist_after_deaths: self.resurrection.blacklist_after_deaths,
        }
    }
}

/// What [`http_url`] accepts, as a JSON Schema pattern (for the API document; narrower than
/// the rule only where the `url` crate is lenient).
pub const HTTP_URL_PATTERN: &str = r"^https?://([A-Za-z0-9._~-]+(:[A-Za-z0-9._~-]*)?@)?((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|([A-Za-z0-9-]{1,62}\.){0,3}[A-Za-z][A-Za-z0-9-]{0,61})(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~!$&()*+,;=:@%/-]*)?(\?[A-Za-z0-9._~!$&()*+,;=:@%/?-]*)?$";

/// Text with something besides blanks (what `str::trim` leaves), as a JSON Schema pattern.
pub const NOT_BLANK_PATTERN: &str =
    r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// A provider's id: letters, digits, `-` and `_`, at most 128 (around blanks trimmed).
pub const ID_PATTERN: &str = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9_-]{1,128}[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";

/// A provider's host root (`https://api.render.com`), as a JSON Schema pattern.
pub const API_BASE_PATTERN: &str = r"^https?://((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|([A-Za-z0-9-]{1,62}\.){0,3}[A-Za-z][A-Za-z0-9-]{0,61})(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?/*$";

/// An http:// or https:// URL with a host; the error says what is wrong (never the URL).
pub(crate) fn http_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err("must be an http:// or https:// URL".into());
    }
    Ok(u)
}

fn positive_secs(s: f64) -> Result<(), String> {
    if s.is_finite() && s > 0.0 {
        Ok(())
    } else {
        Err("must be a positive number of seconds".into())
    }
}

/// Seconds (possibly fractional) as a `Duration`, saturating at sane bounds.
pub fn secs(s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(s.clamp(0.0, 1e9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c = Config::from_toml("").unwrap();
        c.validate().unwrap();
        assert_eq!(c.server.bind, "0.0.0.0:8000");
        assert_eq!(c.sources()[0].kind, SourceKind::Proxifly);
    }

    #[test]
    fn the_design_example_parses() {
        let c = Config::from_toml(
            r#"
            [server]
            bind = "127.0.0.1:0"
            [[sources]]
            name = "a"
            kind = "plain"
            url = "http://127.0.0.1:1/list"
            interval_secs = 0.5
            [validation]
            check_url = "http://127.0.0.1:2/ok"
            expect_status = 200
            [[validation.profiles]]
            name = "shop"
            check_url = "https://shop.example/"
            [resurrection]
            delays_secs = [0.2, 0.5]
            [[monitors]]
            name = "api"
            url = "http://127.0.0.1:3/health"
            [monitors.recovery]
            action = "render"
            service_id = "srv-1"
            api_key = "rnd_example"
            [alerts.telegram]
            chat_id = 12345
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.monitors[0].recovery.action, "render");
        assert_eq!(
            c.alerts.telegram.unwrap().chat_id,
            Some(ChatId::Number(12345))
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = Config::from_toml("[tiers]\nprimary_targett = 3").unwrap_err();
        assert!(e.contains("primary_targett"), "{e}");
        let e = Config::from_toml("[validation]\nconcurrency = \"many\"").unwrap_err();
        assert!(e.contains("concurrency"), "{e}");
        let mut c = Config::default();
        c.validation.concurrency = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("validation.concurrency"));
        for (toml, key) in [
            (
                "[alerts]\ndaily_report_at = \"25:00\"",
                "alerts.daily_report_at",
            ),
            ("[alerts]\ncooldown_secs = -1", "alerts.cooldown_secs"),
            (
                "[alerts.telegram]\napi_base = \"telegram\"",
                "alerts.telegram.api_base",
            ),
            (
                "[alerts.email]\nsmtp_url = \"http://x\"",
                "alerts.email.smtp_url",
            ),
            ("[alerts.email]\nto = [\"nobody\"]", "alerts.email.to[0]"),
        ] {
            let e = Config::from_toml(toml).unwrap().validate().unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
        let c = Config::from_toml("[alerts]\ndaily_report_at = \"\"").unwrap();
        assert_eq!(
            c.daily_report_at().unwrap(),
            None,
            "\"\" turns the report off"
        );
        assert_eq!(
            Config::default().daily_report_at().unwrap(),
            Some(crate::domain::alerts::DailyAt { hour: 9, minute: 0 })
        );
        let mut c = Config::default();
        c.database.url = "mysql://x".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("database.url"));
    }
}
