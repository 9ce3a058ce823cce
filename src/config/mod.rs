//! Configuration: a TOML file where every key is optional, then environment overrides.
//! Unknown keys and bad values are errors that name the key. `Config::load` parses once: after
//! `validate` the typed definitions (monitors, managed proxies, tier rules, the daily report
//! time, the sources) are in `Config::defs`, and nothing derives them again.
//!
//! `sections`: the tables and their defaults; `load`: file and environment; `validate`: the
//! checks of every section (the alert channels' included); `definitions`: what validation
//! yields; `schema`: what the API document says of the tables it takes as bodies.

mod cluster;
mod definitions;
mod gateway;
mod load;
mod schema;
mod sections;
mod validate;

pub use cluster::ClusterConfig;
pub use definitions::{monitor_def, Definitions};
pub use gateway::GatewaySettings;
pub use schema::{API_BASE_PATTERN, HTTP_URL_PATTERN, ID_PATTERN, NOT_BLANK_PATTERN};
pub use sections::*;
pub use validate::{http_url, secs};

use serde::Deserialize;
use std::path::PathBuf;

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
    pub gateway: GatewayConfig,
    pub cluster: ClusterConfig,
    /// What validation yields (empty until `validate` ran).
    #[serde(skip)]
    pub defs: Definitions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let mut c = Config::from_toml("").unwrap();
        c.validate().unwrap();
        assert_eq!(c.server.bind, "0.0.0.0:8000");
        assert_eq!(c.sources()[0].kind, SourceKind::Proxifly);
    }

    #[test]
    fn the_design_example_parses() {
        let mut c = Config::from_toml(
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
