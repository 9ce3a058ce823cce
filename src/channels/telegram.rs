//! Telegram: `POST {api_base}/bot{token}/sendMessage` with `chat_id`, the HTML-escaped text,
//! `parse_mode=HTML` and `disable_notification` for info alerts. 429 waits Telegram's
//! `parameters.retry_after`; 400/401/403/404 are permanent (bad chat or token: the reason is
//! Telegram's `description`). The token is in the URL path, so no URL is ever put in an error or
//! a log line (`reqwest::Error::without_url`), and every text from outside is redacted.

use super::Channel;
use crate::config::{ChatId, TelegramConfig};
use crate::domain::alerts::{telegram_text, Outgoing, SendError};
use crate::redact::{error_chain, text as redact};
use futures_util::future::BoxFuture;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

pub const NAME: &str = "telegram";
/// Larger answers are not read further (a hostile or broken server).
const MAX_ANSWER: usize = 64 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub fn is_configured(c: &TelegramConfig) -> bool {
    c.bot_token
        .as_ref()
        .is_some_and(|t| !t.expose_secret().trim().is_empty())
        && c.chat_id.is_some()
}

pub struct Telegram {
    client: reqwest::Client,
    /// Holds the token: never shown.
    url: String,
    token: String,
    chat_id: serde_json::Value,
}

impl Telegram {
    /// `None` when the token or the chat is missing.
    pub fn new(c: &TelegramConfig) -> Option<Telegram> {
        if !is_configured(c) {
            return None;
        }
        let token = c.bot_token.as_ref()?.expose_secret().trim().to_string();
        let chat_id = match c.chat_id.as_ref()? {
            ChatId::Number(n) => json!(n),
            ChatId::Text(t) => json!(t.trim()),
        };
        let client = crate::net::client(Some(REQUEST_TIMEOUT), None);
        Some(Telegram {
            client,
            url: format!(
                "{}/bot{token}/sendMessage",
                c.api_base.trim_end_matches('/')
            ),
            token,
            chat_id,
        })
    }

    async fn post(&self, alert: &Outgoing) -> Result<(), SendError> {
        let body = json!({
            "chat_id": self.chat_id,
            "text": telegram_text(alert),
            "parse_mode": "HTML",
            "disable_notification": alert.severity.silent(),
        });
        let retry = |reason: String| SendError::Retry {
            reason,
            retry_after_ms: None,
        };
        let mut resp = (self.client.post(&self.url).json(&body).send().await)
            .map_err(|e| retry(self.redact(&error_chain(&e.without_url()))))?;
        let status = resp.status().as_u16();
        let header_retry = crate::net::retry_after_secs(resp.headers(), &["retry-after"]);
        let body = crate::net::read_body(&mut resp, MAX_ANSWER).await;
        match body.error {
            // A 2xx whose body broke off was still taken by Telegram.
            Some(e) if (200..300).contains(&status) => log::warn!(
                "alerts: telegram answered {status} but its body broke off: {}",
                self.redact(&error_chain(&e.without_url()))
            ),
            Some(e) => return Err(retry(self.redact(&error_chain(&e.without_url())))),
            None => {}
        }
        let answer = body.bytes;
        classify(status, &answer, header_retry).map_err(|e| match e {
            SendError::Retry {
                reason,
                retry_after_ms,
            } => SendError::Retry {
                reason: self.redact(&reason),
                retry_after_ms,
            },
            SendError::Permanent(reason) => SendError::Permanent(self.redact(&reason)),
        })
    }

    fn redact(&self, text: &str) -> String {
        redact(text, &[&self.token, &self.url])
    }
}

impl Channel for Telegram {
    fn name(&self) -> &'static str {
        NAME
    }

    fn send<'a>(&'a self, alert: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(self.post(alert))
    }
}

#[derive(Default, Deserialize)]
struct Answer {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Default, Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<f64>,
}

/// What Telegram's answer means. Any body is accepted: a malformed one only loses the details.
fn classify(status: u16, body: &[u8], header_retry_secs: Option<f64>) -> Result<(), SendError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let answer: Answer = serde_json::from_slice(body).unwrap_or_default();
    let description = answer
        .description
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| "no description".into());
    let reason = format!("telegram answered {status}: {description}");
    match status {
        429 => {
            let secs = answer
                .parameters
                .and_then(|p| p.retry_after)
                .or(header_retry_secs)
                .filter(|s| s.is_finite() && *s >= 0.0);
            Err(SendError::Retry {
                reason,
                retry_after_ms: secs.map(|s| (s * 1000.0).min(1e12) as i64),
            })
        }
        400 | 401 | 403 | 404 => Err(SendError::Permanent(reason)),
        _ => Err(SendError::Retry {
            reason,
            retry_after_ms: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_and_malformed_ones_survive() {
        assert_eq!(classify(200, b"{\"ok\":true}", None), Ok(()));
        assert_eq!(classify(200, b"not json at all", None), Ok(()));
        assert_eq!(
            classify(
                429,
                br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#,
                None
            ),
            Err(SendError::Retry {
                reason: "telegram answered 429: Too Many Requests: retry after 3".into(),
                retry_after_ms: Some(3000)
            })
        );
        let header_only = classify(429, b"<html>", Some(2.0));
        assert!(
            matches!(
                header_only,
                Err(SendError::Retry {
                    retry_after_ms: Some(2000),
                    ..
                })
            ),
            "{header_only:?}"
        );
        let nonsense = classify(429, br#"{"parameters":{"retry_after":-4}}"#, None);
        assert!(matches!(
            nonsense,
            Err(SendError::Retry {
                retry_after_ms: None,
                ..
            })
        ));
        assert_eq!(
            classify(401, br#"{"ok":false,"description":"Unauthorized"}"#, None),
            Err(SendError::Permanent(
                "telegram answered 401: Unauthorized".into()
            ))
        );
        assert!(matches!(
            classify(400, b"\xff\xfe", None),
            Err(SendError::Permanent(_))
        ));
        assert!(matches!(
            classify(502, b"", None),
            Err(SendError::Retry { .. })
        ));
    }

    #[test]
    fn the_token_never_shows() {
        let t = Telegram::new(&TelegramConfig {
            bot_token: Some("123:SECRETTOKEN".into()),
            chat_id: Some(ChatId::Number(5)),
            api_base: "http://127.0.0.1:9/".into(),
        })
        .unwrap();
        assert_eq!(t.url, "http://127.0.0.1:9/bot123:SECRETTOKEN/sendMessage");
        assert_eq!(
            t.redact(
                "bad token 123:SECRETTOKEN at http://127.0.0.1:9/bot123:SECRETTOKEN/sendMessage"
            ),
            "bad token *** at http://127.0.0.1:9/bot***/sendMessage"
        );
        assert!(Telegram::new(&TelegramConfig {
            bot_token: None,
            chat_id: Some(ChatId::Number(5)),
            api_base: "http://x".into(),
        })
        .is_none());
    }
}
