//! Email over SMTP (lettre, async on tokio, rustls). `alerts.email.smtp_url` is lettre's URL
//! form: `smtp://host:25` (plain), `smtp://host:587?tls=required` (STARTTLS), `smtps://user:pass@host`
//! (TLS from the start). One plain-text message to every `to` address per alert; the subject
//! carries the kind. lettre's own timeout covers only connecting, so every send is also wrapped in
//! a timeout (`channels::send_with_timeout`). Error texts are redacted of the URL's password.

use super::Channel;
use crate::config::EmailConfig;
use crate::domain::alerts::{email_subject, plain_text, Outgoing, SendError};
use crate::redact::{error_chain, text as redact};
use futures_util::future::BoxFuture;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use std::time::Duration;

pub const NAME: &str = "email";
/// The sender when `from` is not set.
pub const DEFAULT_FROM: &str = "Proxyvisor <proxyvisor@localhost>";
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

pub fn is_configured(c: &EmailConfig) -> bool {
    c.smtp_url
        .as_ref()
        .is_some_and(|u| !u.expose_secret().trim().is_empty())
        && !c.to.is_empty()
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
        let url = c.smtp_url.as_ref().map_or("", |u| u.expose_secret()).trim();
        let secrets = crate::redact::url_secrets(url);
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
        // The same for every attempt of this alert, so that mail systems that fold repeats by
        // Message-ID show an email sent again (after a handover, say) once.
        let id = format!(
            "<alert-{}-{}@{}>",
            alert.id,
            alert.created_at,
            self.from.email.domain()
        );
        let mut b = Message::builder()
            .from(self.from.clone())
            .message_id(Some(id))
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
    fn without_a_recipient_email_is_not_configured() {
        assert!(
            Email::new(&cfg("smtp://h", &[])).unwrap().is_none(),
            "no recipient: not configured"
        );
        assert!(Email::new(&cfg("smtp://h:25", &["a@b.c"]))
            .unwrap()
            .is_some());
    }
}
