//! Alerts: `GET /api/alerts?limit=N` (recent alerts, newest first, with the delivery state per
//! channel; open like the other status endpoints) and `POST /api/admin/alerts/test` (admin: sends
//! a `test` alert through every configured channel). No answer holds a token or password: error
//! texts are redacted before they are stored.

use super::error::ApiError;
use crate::actors::alerter::Raise;
use crate::clock::{now_ms, rfc3339, rfc3339_opt};
use crate::domain::alerts::{AlertEvent, Kind, Severity};
use crate::domain::selection::parse_count;
use crate::state::Shared;
use crate::store::alerts::{AlertRow, DeliveryRow};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Alerts answered when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 50;
/// Longest message a test alert may carry.
const MAX_TEST_MESSAGE: usize = 1000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/alerts", web::get().to(list))
        .route("/api/admin/alerts/test", web::post().to(test));
}

fn alert_json(a: &AlertRow, deliveries: &[DeliveryRow]) -> Value {
    let mut by_channel = Map::new();
    for d in deliveries {
        by_channel.insert(
            d.channel.clone(),
            json!({
                "state": d.state,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "next_attempt_at": if d.state == "pending" { rfc3339_opt(d.next_attempt_at) } else { None },
                "sent_at": rfc3339_opt(d.sent_at),
            }),
        );
    }
    json!({
        "id": a.id,
        "kind": a.kind,
        "key": a.key,
        "severity": a.severity,
        "message": a.message,
        "repeats": a.repeats,
        "created_at": rfc3339(a.created_at),
        "updated_at": rfc3339(a.updated_at),
        "closed_at": rfc3339_opt(a.closed_at),
        "deliveries": by_channel,
    })
}

async fn list(
    shared: web::Data<Shared>,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let max = shared.config.server.max_count;
    let limit = parse_count(
        q.get("limit").map(String::as_str),
        DEFAULT_LIMIT,
        max,
        "limit",
    )
    .map_err(ApiError::BadRequest)?;
    let store = shared.store.clone();
    let rows = web::block(move || store.recent_alerts(limit as i64))
        .await
        .map_err(|e| ApiError::Unavailable(format!("the store task failed: {e}")))?
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let alerts: Vec<Value> = rows.iter().map(|(a, d)| alert_json(a, d)).collect();
    Ok(HttpResponse::Ok().json(json!({
        "alerts": alerts,
        "count": alerts.len(),
        "channels": crate::channels::configured(&shared.config.alerts),
    })))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Sends a `test` alert (key `test`; severity `warning` unless the optional JSON body says
/// `{"severity": "info"|"warning"|"critical", "message": "..."}`). Answers 202 with the alert's id
/// once it is stored; a repeat within `alerts.cooldown_secs` is folded into the open one
/// (`"folded": true`, no new message).
async fn test(shared: web::Data<Shared>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let body: TestBody = super::optional_json(&body)?;
    let severity = match body.severity.as_deref() {
        None => Severity::Warning,
        Some(s) => Severity::parse(s).ok_or_else(|| {
            ApiError::BadRequest("`severity` must be info, warning or critical".into())
        })?,
    };
    let message = body
        .message
        .unwrap_or_else(|| "Test alert from Proxyvisor: alerts reach you on this channel.".into());
    if message.trim().is_empty() || message.chars().count() > MAX_TEST_MESSAGE {
        return Err(ApiError::BadRequest(format!(
            "`message` must be 1 to {MAX_TEST_MESSAGE} characters"
        )));
    }
    let event = AlertEvent::new(Kind::Test, "test", severity, message, now_ms());
    let raised = super::ask(shared.registry.alerter(), "the alerter", Raise(event))
        .await?
        .map_err(|e| ApiError::Unavailable(format!("the alert was not stored: {e}")))?;
    Ok(HttpResponse::Accepted().json(json!({
        "id": raised.id,
        "kind": Kind::Test,
        "folded": raised.folded,
        "channels": crate::channels::configured(&shared.config.alerts),
    })))
}
