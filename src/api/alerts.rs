//! Alerts: `GET /api/alerts?limit=N` (recent alerts, newest first, with the delivery state per
//! channel; open like the other status endpoints) and `POST /api/admin/alerts/test` (admin: sends
//! a `test` alert through every configured channel). No answer holds a token or password: error
//! texts are redacted before they are stored.

use super::error::refusals::{
    BadRequest, PayloadTooLarge, Unauthorized, Unavailable, UnsupportedMediaType,
};
use super::error::ApiError;
use crate::bus::messages::Raise;
use crate::clock::{now_ms, rfc3339, rfc3339_opt};
use crate::domain::alerts::{AlertEvent, Kind, Severity};
use crate::domain::selection::parse_count;
use crate::state::Shared;
use crate::store::alerts::{AlertRow, DeliveryRow};
use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

/// Alerts answered when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 50;
/// Longest message a test alert may carry.
const MAX_TEST_MESSAGE: usize = 1000;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(test);
}

/// A delivery's state on one channel.
#[derive(Serialize, ToSchema)]
pub struct Delivery {
    /// `pending`, `sent` or `failed`.
    state: String,
    attempts: i32,
    /// Redacted: never a token or password.
    last_error: Option<String>,
    /// When it is tried again (pending only).
    next_attempt_at: Option<String>,
    sent_at: Option<String>,
}

/// One alert.
#[derive(Serialize, ToSchema)]
pub struct AlertAnswer {
    id: i64,
    /// `service_down`, `service_degraded`, `repair_started`, `repair_failed`,
    /// `service_recovered`, `predictive_restart`, `pool_below_minimum`, `pool_empty`,
    /// `managed_proxy_status`, `actor_failed`, `daily_report`, `test`, `cost`, `cluster`.
    kind: String,
    /// What repeats fold on.
    key: String,
    /// `info`, `warning` or `critical`.
    severity: String,
    message: String,
    /// Repeats folded into it.
    repeats: i32,
    created_at: String,
    updated_at: String,
    closed_at: Option<String>,
    /// By channel (`telegram`, `email`).
    deliveries: BTreeMap<String, Delivery>,
}

fn alert_json(a: &AlertRow, deliveries: &[DeliveryRow]) -> AlertAnswer {
    let by_channel = deliveries
        .iter()
        .map(|d| {
            let delivery = Delivery {
                state: d.state.clone(),
                attempts: d.attempts,
                last_error: d.last_error.clone(),
                next_attempt_at: if d.state == "pending" {
                    rfc3339_opt(d.next_attempt_at)
                } else {
                    None
                },
                sent_at: rfc3339_opt(d.sent_at),
            };
            (d.channel.clone(), delivery)
        })
        .collect();
    AlertAnswer {
        id: a.id,
        kind: a.kind.clone(),
        key: a.key.clone(),
        severity: a.severity.clone(),
        message: a.message.clone(),
        repeats: a.repeats,
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
        closed_at: rfc3339_opt(a.closed_at),
        deliveries: by_channel,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// At most this many (default 50), newest first, 1 to `server.max_count`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertsAnswer {
    alerts: Vec<AlertAnswer>,
    count: usize,
    /// The configured channels.
    channels: Vec<&'static str>,
}

/// Recent alerts, newest first, with the delivery state per channel.
#[utoipa::path(
    tag = "status",
    params(AlertsQuery),
    responses((status = 200, body = AlertsAnswer), BadRequest, Unavailable),
)]
#[get("/api/alerts")]
async fn list(
    shared: web::Data<Shared>,
    q: web::Query<AlertsQuery>,
) -> Result<HttpResponse, ApiError> {
    let max = shared.config.server.max_count;
    let limit = parse_count(q.limit.as_deref(), DEFAULT_LIMIT, max, "limit")
        .map_err(ApiError::BadRequest)?;
    let rows = (shared.store)
        .call(move |s| s.recent_alerts(limit as i64))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let alerts: Vec<AlertAnswer> = rows.iter().map(|(a, d)| alert_json(a, d)).collect();
    Ok(HttpResponse::Ok().json(AlertsAnswer {
        count: alerts.len(),
        alerts,
        channels: crate::channels::configured(&shared.config.alerts),
    }))
}

/// An optional test-alert body.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    /// Default `warning`.
    #[serde(default)]
    #[schema(value_type = Option<SeverityName>)]
    severity: Option<String>,
    /// 1 to 1000 characters, not blank.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    message: Option<String>,
}

/// Alert severities.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SeverityName {
    Info,
    Warning,
    Critical,
}

#[derive(Serialize, ToSchema)]
pub struct TestRaised {
    id: Option<i64>,
    /// Always `test`.
    #[schema(value_type = String)]
    kind: Kind,
    /// Folded into an open test alert (no new message).
    folded: bool,
    channels: Vec<&'static str>,
}

/// Sends a `test` alert (key `test`; severity `warning` unless the optional JSON body says
/// otherwise) through every configured channel. Answers 202 once it is stored; a repeat within
/// `alerts.cooldown_secs` is folded into the open one (`"folded": true`, no new message).
#[utoipa::path(
    tag = "admin",
    request_body(content = Option<TestBody>, description = "Optional"),
    responses(
        (status = 202, body = TestRaised),
        BadRequest, Unauthorized, PayloadTooLarge, UnsupportedMediaType, Unavailable,
    ),
    security(("admin_token" = [])),
)]
#[post("/api/admin/alerts/test")]
async fn test(shared: web::Data<Shared>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let body: TestBody = super::body::optional(&body)?;
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
    let raised = super::ask(&shared.registry.raise, "the alerter", Raise(event))
        .await?
        .map_err(|e| ApiError::Unavailable(format!("the alert was not stored: {e}")))?;
    Ok(HttpResponse::Accepted().json(TestRaised {
        id: raised.id,
        kind: Kind::Test,
        folded: raised.folded,
        channels: crate::channels::configured(&shared.config.alerts),
    }))
}
