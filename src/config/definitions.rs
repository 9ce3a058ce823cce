//! What a valid config yields, derived once by `validate`: the monitors' and managed proxies'
//! definitions, the tier rules, the daily report time and the sources.

use super::{default_sources, invalid, Config, ConfigError, MonitorConfig, SourceConfig};
use crate::domain::lifecycle::Rules;
use crate::domain::managed::ManagedProxy;
use crate::domain::monitor::{
    MonitorDef, Recovery, Secret, MIN_INTERVAL_MS, RAILWAY_API, RENDER_API,
};
use crate::domain::service_health::{Rules as ServiceRules, Then};
use crate::env;
use std::net::SocketAddr;

/// The typed values of a validated config.
#[derive(Clone, Debug, Default)]
pub struct Definitions {
    /// `[[monitors]]`, validated, names unique; keys named by `api_key_env` read.
    pub monitors: Vec<MonitorDef>,
    /// `[[managed_proxies]]`, validated, names and URLs unique.
    pub managed: Vec<ManagedProxy>,
    /// `alerts.daily_report_at` (UTC); `None`: no daily report.
    pub daily_report_at: Option<crate::domain::alerts::DailyAt>,
    /// `[gateway]` when enabled.
    pub gateway: Option<super::GatewaySettings>,
}

impl Config {
    /// `alerts.daily_report_at` (UTC); `None` when it is `""` (no daily report).
    pub(super) fn daily_report_at(
        &self,
    ) -> Result<Option<crate::domain::alerts::DailyAt>, ConfigError> {
        match &self.alerts.daily_report_at {
            None => Ok(None),
            Some(s) => crate::domain::alerts::DailyAt::parse(s)
                .map_err(|m| invalid("alerts.daily_report_at", m)),
        }
    }

    /// The `[[monitors]]`, validated (names unique); keys named by `api_key_env` are read from
    /// the environment.
    pub(super) fn monitors(&self) -> Result<Vec<MonitorDef>, ConfigError> {
        let mut defs: Vec<MonitorDef> = Vec::with_capacity(self.monitors.len());
        for (i, m) in self.monitors.iter().enumerate() {
            let def =
                monitor_def(m, env::string).map_err(|e| invalid(format!("monitors[{i}]"), e))?;
            if defs.iter().any(|d| d.name == def.name) {
                return Err(invalid(format!("monitors[{i}].name"), "is used twice"));
            }
            defs.push(def);
        }
        Ok(defs)
    }

    /// The `[[managed_proxies]]`, validated (names and URLs unique).
    pub(super) fn managed_proxies(&self) -> Result<Vec<ManagedProxy>, ConfigError> {
        let mut defs: Vec<ManagedProxy> = Vec::with_capacity(self.managed_proxies.len());
        for (i, m) in self.managed_proxies.iter().enumerate() {
            let def = m
                .definition()
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

fn http_url(s: &str) -> Result<String, String> {
    super::http_url(s).map(|_| s.to_string())
}

/// A host root without a path (`https://api.render.com`); a trailing `/` is dropped.
fn api_base(given: Option<&str>, default: &str) -> Result<String, String> {
    let base = given.unwrap_or(default).trim_end_matches('/');
    let u = url::Url::parse(base).map_err(|e| format!("`api_base` is not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") || u.path() != "/" || u.query().is_some() {
        return Err("`api_base` must be a host root like https://api.render.com".into());
    }
    Ok(base.to_string())
}

fn required<'a>(v: &'a Option<String>, field: &str, action: &str) -> Result<&'a str, String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("`recovery.{field}` is required for action `{action}`"))
}

/// A provider's id of a service or environment: it goes into a URL path.
fn id(v: &Option<String>, field: &str, action: &str) -> Result<String, String> {
    let s = required(v, field, action)?;
    if s.len() > 128
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "`recovery.{field}` must be letters, digits, `-` and `_` (at most 128)"
        ));
    }
    Ok(s.to_string())
}

fn secs_ms(s: f64, field: &str) -> Result<u64, String> {
    if (0.0..=86_400.0).contains(&s) {
        Ok((s * 1000.0).round() as u64)
    } else {
        Err(format!("`{field}` must be from 0 to 86400 seconds"))
    }
}

/// A monitor's definition from its `[[monitors]]` table (or admin API body, or stored JSON);
/// `env` reads the variable `api_key_env` names. Errors name the field and never repeat a
/// secret.
pub fn monitor_def(
    c: &MonitorConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<MonitorDef, String> {
    {
        let name = crate::domain::managed::checked_name(&c.name)?;
        let url = http_url(&c.url).map_err(|e| format!("`url` {e}"))?;
        if !(c.interval_secs >= MIN_INTERVAL_MS as f64 / 1000.0 && c.interval_secs <= 86_400.0) {
            return Err("`interval_secs` must be from 1 to 86400".into());
        }
        let interval_ms = secs_ms(c.interval_secs, "interval_secs")?;
        if !(1..=600_000).contains(&c.timeout_ms) {
            return Err("`timeout_ms` must be from 1 to 600000".into());
        }
        if !(100..=599).contains(&c.expect_status) {
            return Err("`expect_status` must be an HTTP status (100 to 599)".into());
        }
        if c.failures_before_down == 0 || c.degradation_threshold == 0 {
            return Err(
                "`failures_before_down` and `degradation_threshold` must be at least 1".into(),
            );
        }
        let r = &c.recovery;
        let action = r.action.as_str();
        let key = || -> Result<Secret, String> {
            if let Some(k) = r.api_key.as_deref().filter(|k| !k.trim().is_empty()) {
                return Ok(Secret(k.trim().to_string()));
            }
            let var = required(&r.api_key_env, "api_key_env", action)?;
            env(var)
                .map(Secret)
                .ok_or_else(|| format!("`recovery.api_key_env`: the variable {var} is not set"))
        };
        let recovery = match action {
            "none" => Recovery::None,
            "render" => Recovery::Render {
                api_base: api_base(r.api_base.as_deref(), RENDER_API)?,
                service_id: id(&r.service_id, "service_id", action)?,
                key: key()?,
            },
            "railway" => Recovery::Railway {
                api_base: api_base(r.api_base.as_deref(), RAILWAY_API)?,
                service_id: required(&r.service_id, "service_id", action)?.to_string(),
                environment_id: required(&r.environment_id, "environment_id", action)?.to_string(),
                key: key()?,
            },
            "webhook" => {
                let method = r.method.as_deref().unwrap_or("POST").to_ascii_uppercase();
                if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
                    return Err("`recovery.method` must be GET, POST, PUT, PATCH or DELETE".into());
                }
                let url = http_url(required(&r.url, "url", action)?)
                    .map_err(|e| format!("`recovery.url` {e}"))?;
                let mut headers = Vec::new();
                for (k, v) in &r.headers {
                    if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                        || http::HeaderValue::from_str(v).is_err()
                    {
                        return Err(format!("`recovery.headers`: `{k}` is not a valid header"));
                    }
                    headers.push((k.clone(), Secret(v.clone())));
                }
                Recovery::Webhook {
                    method,
                    url,
                    headers,
                    body: r.body.clone(),
                }
            }
            "command" => Recovery::Command {
                command: required(&r.command, "command", action)?.to_string(),
            },
            other => {
                return Err(format!(
                    "`recovery.action` `{}` is not one of render, railway, webhook, command, none",
                    other.chars().take(32).collect::<String>()
                ))
            }
        };
        let then = match r.then.as_deref() {
            None | Some("alert") => Then::Alert,
            Some("redeploy")
                if matches!(recovery, Recovery::Render { .. } | Recovery::Railway { .. }) =>
            {
                Then::Redeploy
            }
            Some("redeploy") => {
                return Err("`recovery.then = \"redeploy\"` needs action render or railway".into())
            }
            Some(_) => return Err("`recovery.then` must be `redeploy` or `alert`".into()),
        };
        if r.max_attempts == 0 {
            return Err("`recovery.max_attempts` must be at least 1".into());
        }
        let repair_timeout_ms = secs_ms(r.timeout_secs, "recovery.timeout_secs")?.max(1);
        Ok(MonitorDef {
            name: name.to_string(),
            url,
            interval_ms,
            timeout_ms: c.timeout_ms,
            expect_status: c.expect_status,
            expect_body: c.expect_body.clone().filter(|b| !b.is_empty()),
            rules: ServiceRules {
                failures_before_down: c.failures_before_down,
                slow_threshold_ms: c.slow_threshold_ms,
                degradation_threshold: c.degradation_threshold,
                can_repair: recovery != Recovery::None,
                cooldown_ms: secs_ms(r.cooldown_secs, "recovery.cooldown_secs")? as i64,
                max_attempts: r.max_attempts,
                then,
            },
            recovery,
            repair_timeout_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RecoveryConfig;
    use crate::domain::monitor::header_pairs;
    use std::collections::BTreeMap;

    fn config(recovery: RecoveryConfig) -> MonitorConfig {
        MonitorConfig {
            name: "backend".into(),
            url: "http://127.0.0.1:9/health".into(),
            interval_secs: 1.0,
            timeout_ms: 500,
            expect_status: 200,
            expect_body: None,
            failures_before_down: 2,
            slow_threshold_ms: 300,
            degradation_threshold: 3,
            recovery,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn render_takes_its_key_from_the_environment_and_hides_it() {
        let c = config(RecoveryConfig {
            action: "render".into(),
            service_id: Some("srv-1".into()),
            api_key_env: Some("RENDER_KEY".into()),
            then: Some("redeploy".into()),
            ..RecoveryConfig::default()
        });
        let env = |v: &str| (v == "RENDER_KEY").then(|| "rnd_secret".to_string());
        let d = monitor_def(&c, env).unwrap();
        assert_eq!(
            d.recovery,
            Recovery::Render {
                api_base: RENDER_API.into(),
                service_id: "srv-1".into(),
                key: Secret("rnd_secret".into())
            }
        );
        assert_eq!(d.rules.then, Then::Redeploy);
        assert!(d.rules.can_repair);
        assert!(!format!("{d:?}").contains("rnd_secret"));
        let e = monitor_def(&c, no_env).unwrap_err();
        assert!(e.contains("RENDER_KEY") && e.contains("not set"), "{e}");
    }

    #[test]
    fn bad_monitors_are_refused_naming_the_field() {
        let ok = config(RecoveryConfig::default());
        assert_eq!(monitor_def(&ok, no_env).unwrap().recovery, Recovery::None);
        let cases: Vec<(MonitorConfig, &str)> = vec![
            (
                MonitorConfig {
                    name: "".into(),
                    ..ok.clone()
                },
                "name",
            ),
            (
                MonitorConfig {
                    name: "a/b".into(),
                    ..ok.clone()
                },
                "name",
            ),
            (
                MonitorConfig {
                    url: "ftp://x".into(),
                    ..ok.clone()
                },
                "url",
            ),
            (
                MonitorConfig {
                    interval_secs: 0.5,
                    ..ok.clone()
                },
                "interval_secs",
            ),
            (
                MonitorConfig {
                    interval_secs: f64::NAN,
                    ..ok.clone()
                },
                "interval_secs",
            ),
            (
                MonitorConfig {
                    timeout_ms: 0,
                    ..ok.clone()
                },
                "timeout_ms",
            ),
            (
                MonitorConfig {
                    expect_status: 42,
                    ..ok.clone()
                },
                "expect_status",
            ),
            (
                MonitorConfig {
                    failures_before_down: 0,
                    ..ok.clone()
                },
                "failures_before_down",
            ),
        ];
        for (c, field) in cases {
            let e = monitor_def(&c, no_env).unwrap_err();
            assert!(e.contains(field), "{field}: {e}");
        }
        let rec = |r: RecoveryConfig| config(r);
        for (r, field) in [
            (
                RecoveryConfig {
                    action: "reboot".into(),
                    ..Default::default()
                },
                "action",
            ),
            (
                RecoveryConfig {
                    action: "render".into(),
                    api_key: Some("k".into()),
                    ..Default::default()
                },
                "service_id",
            ),
            (
                RecoveryConfig {
                    action: "railway".into(),
                    service_id: Some("s".into()),
                    api_key: Some("k".into()),
                    ..Default::default()
                },
                "environment_id",
            ),
            (
                RecoveryConfig {
                    action: "render".into(),
                    service_id: Some("s".into()),
                    api_key: Some("k".into()),
                    api_base: Some("https://api.render.com/v1".into()),
                    ..Default::default()
                },
                "api_base",
            ),
            (
                RecoveryConfig {
                    action: "webhook".into(),
                    ..Default::default()
                },
                "url",
            ),
            (
                RecoveryConfig {
                    action: "command".into(),
                    ..Default::default()
                },
                "command",
            ),
            (
                RecoveryConfig {
                    action: "command".into(),
                    command: Some("true".into()),
                    then: Some("redeploy".into()),
                    ..Default::default()
                },
                "then",
            ),
            (
                RecoveryConfig {
                    max_attempts: 0,
                    ..Default::default()
                },
                "max_attempts",
            ),
            (
                RecoveryConfig {
                    cooldown_secs: -1.0,
                    ..Default::default()
                },
                "cooldown_secs",
            ),
        ] {
            let e = monitor_def(&rec(r), no_env).unwrap_err();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn webhook_headers_are_secrets() {
        let mut headers = BTreeMap::new();
        headers.insert("X-Token".to_string(), "hook-secret".to_string());
        let c = config(RecoveryConfig {
            action: "webhook".into(),
            url: Some("http://127.0.0.1:9/hook".into()),
            method: Some("put".into()),
            headers,
            ..RecoveryConfig::default()
        });
        let d = monitor_def(&c, no_env).unwrap();
        assert!(!format!("{d:?}").contains("hook-secret"));
        match &d.recovery {
            Recovery::Webhook {
                method, headers, ..
            } => {
                assert_eq!(method, "PUT");
                assert_eq!(header_pairs(headers)["X-Token"], "hook-secret");
            }
            other => panic!("{other:?}"),
        }
    }
}
