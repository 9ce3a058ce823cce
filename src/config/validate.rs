//! Every section's checks, the alert channels' included; a valid config yields its definitions.

use super::{invalid, ChatId, Config, ConfigError, Definitions, EmailConfig, TelegramConfig};
use crate::domain::proxy::Protocol;
use crate::redact::{error_chain, text as redact, url_secrets};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use secrecy::ExposeSecret;

impl Config {
    /// Checks every value, and keeps what the checks yield in `defs` (see [`Definitions`]).
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        self.cluster.validate()?;
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
        let managed = self.managed_proxies()?;
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
        let daily_report_at = self.daily_report_at()?;
        if let Some(t) = &a.telegram {
            telegram(t).map_err(|(k, m)| invalid(k, m))?;
        }
        if let Some(e) = &a.email {
            email(e).map_err(|(k, m)| invalid(k, m))?;
        }
        let monitors = self.monitors()?;
        let gateway = self.gateway_settings()?;
        self.defs = Definitions {
            monitors,
            managed,
            daily_report_at,
            gateway,
        };
        Ok(())
    }
}

/// An http:// or https:// URL with a host; the error says what is wrong (never the URL).
pub fn http_url(s: &str) -> Result<url::Url, String> {
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

/// `[alerts.telegram]`: `Err((key, message))` names the bad key.
fn telegram(c: &TelegramConfig) -> Result<(), (String, String)> {
    let bad = |k: &str, m: &str| Err((format!("alerts.telegram.{k}"), m.to_string()));
    match url::Url::parse(&c.api_base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => return bad("api_base", "must be an http:// or https:// URL"),
    }
    if let Some(ChatId::Text(t)) = &c.chat_id {
        if t.trim().is_empty() {
            return bad("chat_id", "must not be empty");
        }
    }
    if let Some(t) = &c.bot_token {
        if t.expose_secret()
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c.is_control())
        {
            return bad("bot_token", "must not hold spaces or `/`");
        }
    }
    Ok(())
}

/// `[alerts.email]`: `Err((key, message))` names the bad key (the message never holds the
/// URL's password).
fn email(c: &EmailConfig) -> Result<(), (String, String)> {
    let bad = |k: &str, m: String| Err((format!("alerts.email.{k}"), m));
    if let Some(url) = c.smtp_url.as_ref().map(|u| u.expose_secret()) {
        if let Err(e) = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.trim()) {
            return bad(
                "smtp_url",
                format!(
                    "is not an SMTP URL like smtp://host:25 or smtps://user:pass@host ({})",
                    redact(
                        &error_chain(&e),
                        &url_secrets(url)
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                    )
                ),
            );
        }
    }
    if let Some(from) = &c.from {
        if from.parse::<Mailbox>().is_err() {
            return bad("from", "is not an email address".into());
        }
    }
    for (i, to) in c.to.iter().enumerate() {
        if to.parse::<Mailbox>().is_err() {
            return bad(&format!("to[{i}]"), "is not an email address".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, to: &[&str]) -> EmailConfig {
        EmailConfig {
            smtp_url: Some(url.into()),
            from: None,
            to: to.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn email_settings_are_checked_without_echoing_the_password() {
        assert!(email(&cfg("smtp://127.0.0.1:2525", &["ops@example.com"])).is_ok());
        assert!(email(&cfg(
            "smtps://u:p%40ss@smtp.example.com",
            &["Ops <ops@example.com>"]
        ))
        .is_ok());
        let (key, msg) = email(&cfg("ftp://u:hunter22@host", &[])).unwrap_err();
        assert_eq!(key, "alerts.email.smtp_url");
        assert!(!msg.contains("hunter22"), "{msg}");
        let (key, _) = email(&cfg("smtp://h", &["not an address"])).unwrap_err();
        assert_eq!(key, "alerts.email.to[0]");
    }
}
