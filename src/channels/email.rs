//! Email over SMTP (lettre, async on tokio, rustls). `alerts.email.smtp_url` is lettre's URL
//! form: `smtp://host:25` (plain), `smtp://host:587?tls=required` (STARTTLS), `smtps://user:pass@host`
//! (TLS from the start). One plain-text message to every `to` address per alert; the subject
//! carries the kind. lettre's own timeout covers only connecting, so every send is also wrapped in
//! a timeout (`channels::send_with_timeout`). Error texts are redacted of the URL's password.

use super::{error_chain, Channel};
use crate::config::EmailConfig;
use crate::domain::alerts::{email_subject, plain_text, redact, Outgoing, SendError};
use futures_util::future::BoxFuture;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

pub const NAME: &str = "email";
/// The sender when `from` is not set.
pub const DEFAULT_FROM: &str = "Proxyvisor <proxyvisor@localhost>";
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

pub fn is_configured(c: &EmailConfig) -> bool {
    c.smtp_url.as_deref().is_some_and(|u| !u.trim().is_empty()) && !c.to.is_empty()
}

pub fn validate(c: &EmailConfig) -> Result<(), (String, String)> {
    let bad = |k: &str, m: String| Err((format!("alerts.email.{k}"), m));
    if let Some(url) = &c.smtp_url {
        if let Err(e) = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.trim()) {
            return bad(
                "smtp_url",
                format!(
                    "is not an SMTP URL like smtp://host:25 or smtps://user:pass@host ({})",
                    redact(
                        &error_chain(&e),
                        &secrets(url).iter().map(String::as_str).collect::<Vec<_>>()
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

/// What must never show from an SMTP URL: its password (raw and decoded) and the URL itself.
fn secrets(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    if let Ok(u) = url::Url::parse(url.trim()) {
        if let Some(p) = u.password() {
            out.push(p.to_string());
            if let Some(decoded) = percent_decode(p) {
                out.push(decoded);
            }
        }
    }
    out
}

/// `%XX` decoded (as lettre decodes the password); `None` when that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    secrets: Vec<String>,
}

impl Email {
    /// `Ok(None)` when the URL or the recipients are missing.
    pub fn new(c: &EmailConfig) -> Result<Option<Email>, String> {
        if !is_configured(c) {
            return Ok(None);
        }
        let url = c.smtp_url.as_deref().unwrap_or_default().trim();
        let secrets = secrets(url);
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| {
                let s: Vec<&str> = secrets.iter().map(String::as_str).collect();
                format!("alerts.email.smtp_url: {}", redact(&error_chain(&e), &s))
            })?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = (c.from.as_deref().unwrap_or(DEFAULT_FROM))
            .parse::<Mailbox>()
            .map_err(|_| "alerts.email.from is not an email address".to_string())?;
        let to = (c.to.iter())
            .map(|t| t.parse::<Mailbox>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                "alerts.email.to holds something that is not an email address".to_string()
            })?;
        Ok(Some(Email {
            transport,
            from,
            to,
            secrets,
        }))
    }

    fn redact(&self, text: &str) -> String {
        let s: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        redact(text, &s)
    }

    fn message(&self, alert: &Outgoing) -> Result<Message, SendError> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(email_subject(alert));
        for to in &self.to {
            b = b.to(to.clone());
        }
        b.header(ContentType::TEXT_PLAIN)
            .body(plain_text(alert))
            .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))
    }

    async fn deliver(&self, alert: &Outgoing) -> Result<(), SendError> {
        let message = self.message(alert)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let reason = self.redact(&format!("smtp: {}", error_chain(&e)));
                if e.is_permanent() {
                    Err(SendError::Permanent(reason))
                } else {
                    Err(SendError::Retry {
                        reason,
                        retry_after_ms: None,
                    })
                }
            }
        }
    }
}

impl Channel for Email {
    fn name(&self) -> &'static str {
        NAME
    }

    fn send<'a>(&'a self, alert: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(self.deliver(alert))
    }
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
    fn settings_are_checked_without_echoing_the_password() {
        assert!(validate(&cfg("smtp://127.0.0.1:2525", &["ops@example.com"])).is_ok());
        assert!(validate(&cfg(
            "smtps://u:p%40ss@smtp.example.com",
            &["Ops <ops@example.com>"]
        ))
        .is_ok());
        let (key, msg) = validate(&cfg("ftp://u:hunter22@host", &[])).unwrap_err();
        assert_eq!(key, "alerts.email.smtp_url");
        assert!(!msg.contains("hunter22"), "{msg}");
        let (key, _) = validate(&cfg("smtp://h", &["not an address"])).unwrap_err();
        assert_eq!(key, "alerts.email.to[0]");
        assert!(
            Email::new(&cfg("smtp://h", &[])).unwrap().is_none(),
            "no recipient: not configured"
        );
        assert!(Email::new(&cfg("smtp://h:25", &["a@b.c"]))
            .unwrap()
            .is_some());
    }

    #[test]
    fn passwords_are_known_raw_and_decoded() {
        let s = secrets("smtps://user:p%40ss@host:465");
        assert!(
            s.contains(&"p%40ss".to_string()) && s.contains(&"p@ss".to_string()),
            "{s:?}"
        );
    }
}
