//! Where alerts go. Each channel is one file behind the small `Channel` trait, so another one
//! (a webhook, say) is one more file and one more line in `from_config`. A channel missing its
//! essential settings is not configured: it gets no deliveries.

pub mod email;
pub mod telegram;

use crate::config::AlertsConfig;
use crate::domain::alerts::{Outgoing, SendError};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// Every send is given up (and retried later) after this long.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(15);

pub trait Channel: Send + Sync {
    /// Its name in `/api/alerts`, the store and health: `telegram`, `email`.
    fn name(&self) -> &'static str;

    /// Sends one alert. An error's text never holds a secret (token, password) and is short.
    fn send<'a>(&'a self, alert: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>>;
}

/// The configured channels. One whose settings do not make a channel (they are checked at
/// start, so this is rare) is left out with a log line.
pub fn from_config(c: &AlertsConfig) -> Vec<Arc<dyn Channel>> {
    let mut out: Vec<Arc<dyn Channel>> = Vec::new();
    if let Some(t) = c.telegram.as_ref().and_then(telegram::Telegram::new) {
        out.push(Arc::new(t));
    }
    match c.email.as_ref().map(email::Email::new) {
        Some(Ok(Some(e))) => out.push(Arc::new(e)),
        Some(Err(e)) => log::error!("alerts: email channel not usable: {e}"),
        _ => {}
    }
    out
}

/// Names of the configured channels, as `from_config` would build them.
pub fn configured(c: &AlertsConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    if c.telegram.as_ref().is_some_and(telegram::is_configured) {
        out.push(telegram::NAME);
    }
    if c.email.as_ref().is_some_and(email::is_configured) {
        out.push(email::NAME);
    }
    out
}

/// `send`, given up after `SEND_TIMEOUT`.
pub async fn send_with_timeout(channel: &dyn Channel, alert: &Outgoing) -> Result<(), SendError> {
    match tokio::time::timeout(SEND_TIMEOUT, channel.send(alert)).await {
        Ok(r) => r,
        Err(_) => Err(SendError::Retry {
            reason: format!("no answer within {} s", SEND_TIMEOUT.as_secs()),
            retry_after_ms: None,
        }),
    }
}
