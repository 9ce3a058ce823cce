//! Watched services: `GET /api/monitors`, and the admin `POST|DELETE /api/admin/monitors` and
//! `POST /api/admin/monitors/{name}/restart`. Answers never show a recovery action's secrets, nor
//! the credentials or query string of a monitor's URL.

use super::error::refusals::{
    BadRequest, Conflict, NotFound, PayloadTooLarge, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
use super::error::ApiError;
use super::naming::{named, NameQuery};
use crate::bus::messages::{AddMonitor, RemoveMonitor, RestartMonitor};
use crate::clock::{now_ms, rfc3339, rfc3339_opt};
use crate::config::MonitorConfig;
use crate::published::monitors::MonitorView;
use crate::state::Shared;
use actix_web::{delete, get, post, web, HttpResponse};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(add)
        .service(remove_by_body)
        .service(remove_named)
        .service(restart);
}

/// A watched service's state.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ServiceStatusName {
    Up,
    Degraded,
    Down,
    Recovering,
    Unknown,
}

/// The last repair of a service.
#[derive(Serialize, ToSchema)]
pub struct RepairAnswer {
    /// `restart` or `redeploy`.
    kind: &'static str,
    /// Started because answers got slower, before it went down.
    predictive: bool,
    /// By an admin.
    manual: bool,
    started_at: String,
    took_ms: Option<i64>,
    /// `null` while it runs.
    succeeded: Option<bool>,
    error: Option<String>,
}

/// One watched service. Never a recovery action's secrets, nor the credentials or query of its
/// URL.
#[derive(Serialize, ToSchema)]
pub struct MonitorAnswer {
    name: String,
    /// Without credentials or query string: either may hold a token.
    url: String,
    /// Where it is defined.
    origin: crate::published::monitors::Origin,
    /// The recovery action: `render`, `railway`, `webhook`, `command` or `none`.
    action: &'static str,
    interval_secs: f64,
    #[schema(value_type = ServiceStatusName)]
    status: &'static str,
    uptime_percent: Option<f64>,
    avg_response_ms: Option<u64>,
    p95_response_ms: Option<u32>,
    last_response_ms: Option<u64>,
    checks_ok: u64,
    checks_total: u64,
    consecutive_failures: u32,
    last_error: Option<String>,
    last_check_at: Option<String>,
    down_since: Option<String>,
    repairs: u64,
    predictive_restarts: u64,
    repairing: bool,
    /// `max_attempts` restarts did not help: no more until it is up again.
    repairs_paused: bool,
    last_repair: Option<RepairAnswer>,
}

pub fn view_json(v: &MonitorView) -> MonitorAnswer {
    let s = &v.service;
    MonitorAnswer {
        name: v.name.clone(),
        url: crate::redact::url(&v.url),
        origin: v.origin,
        action: v.action,
        interval_secs: v.interval_ms as f64 / 1000.0,
        status: s.status.as_str(),
        uptime_percent: v.uptime_percent,
        avg_response_ms: v.avg_response_ms,
        p95_response_ms: v.p95_response_ms,
        last_response_ms: v.last_latency_ms,
        checks_ok: v.checks_ok,
        checks_total: v.checks_total,
        consecutive_failures: s.consecutive_failures,
        last_error: s.last_reason.clone(),
        last_check_at: rfc3339_opt(v.last_check_at),
        down_since: rfc3339_opt(s.down_since),
        repairs: v.repairs,
        predictive_restarts: v.predictive_restarts,
        repairing: s.repair_running,
        repairs_paused: s.gave_up,
        last_repair: v.last_repair.as_ref().map(|r| RepairAnswer {
            kind: r.kind.as_str(),
            predictive: r.predictive,
            manual: r.manual,
            started_at: rfc3339(r.started_at),
            took_ms: r.took_ms,
            succeeded: r.succeeded,
            error: r.error.clone(),
        }),
    }
}

/// Counts of monitors by status, every status present (for `/api/monitors` and health).
pub fn summary(views: &[std::sync::Arc<MonitorView>]) -> BTreeMap<&'static str, usize> {
    let mut counts: BTreeMap<&'static str, usize> =
        ["up", "degraded", "down", "recovering", "unknown"]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
    for v in views {
        *counts.entry(v.service.status.as_str()).or_default() += 1;
    }
    counts
}

#[derive(Serialize, ToSchema)]
pub struct MonitorsAnswer {
    count: usize,
    /// Every status, with its count.
    summary: BTreeMap<&'static str, usize>,
    /// By name.
    monitors: Vec<MonitorAnswer>,
}

/// Every watched service, by name, and counts by status.
#[utoipa::path(tag = "status", responses((status = 200, body = MonitorsAnswer)))]
#[get("/api/monitors")]
async fn list(shared: web::Data<Shared>) -> HttpResponse {
    let view = shared.monitors.load_full();
    HttpResponse::Ok().json(MonitorsAnswer {
        count: view.monitors.len(),
        summary: summary(&view.monitors),
        monitors: view.monitors.iter().map(|v| view_json(v)).collect(),
    })
}

/// A monitor after a change.
#[derive(Serialize, ToSchema)]
pub struct MonitorChanged {
    monitor: MonitorAnswer,
}

#[derive(Serialize, ToSchema)]
pub struct MonitorDeleted {
    deleted: String,
}

#[derive(Serialize, ToSchema)]
pub struct RestartStarted {
    monitor: String,
    /// `restart` or `redeploy`.
    repair: &'static str,
    started: bool,
}

/// Watches a new service (stored before this answer): the body is a `[[monitors]]` table as
/// JSON (`action = "command"` only in the config file).
#[utoipa::path(
    tag = "admin",
    request_body = MonitorConfig,
    responses(
        (status = 201, body = MonitorChanged),
        BadRequest, Unauthorized, Conflict, PayloadTooLarge, UnsupportedMediaType, Unavailable,
    ),
    security(("admin_token" = [])),
)]
#[post("/api/admin/monitors")]
async fn add(
    shared: web::Data<Shared>,
    body: super::body::Json<MonitorConfig>,
) -> Result<HttpResponse, ApiError> {
    let config = body.into_inner();
    let def =
        crate::config::monitor_def(&config, crate::env::string).map_err(ApiError::BadRequest)?;
    // A command runs on this host: only the config file's owner may set one up.
    if matches!(
        def.recovery,
        crate::domain::monitor::Recovery::Command { .. }
    ) {
        return Err(ApiError::BadRequest(
            "`action = \"command\"` runs a command on this host: configure it in the config \
             file, not through the API"
                .into(),
        ));
    }
    let definition = serde_json::to_string(&MonitorConfig {
        name: def.name.clone(),
        ..config
    })
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let msg = AddMonitor {
        def,
        definition,
        created_at: now_ms(),
    };
    let name = super::ask(&shared.registry.add_monitor, "the service monitor", msg)
        .await?
        .map_err(ApiError::from)?;
    // Published before the answer came.
    let view = shared.monitors.load_full();
    let view = view
        .monitors
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ApiError::Unavailable("the monitor is being added; try again".into()))?;
    Ok(HttpResponse::Created().json(MonitorChanged {
        monitor: view_json(view),
    }))
}

/// Stops watching the service `?name=` names (or an optional JSON body `{"name": ...}`).
#[utoipa::path(
    tag = "admin",
    params(super::managed::NameRequired),
    responses(
        (status = 200, body = MonitorDeleted),
        BadRequest, Unauthorized, NotFound, Conflict, PayloadTooLarge, Unavailable,
    ),
    security(("admin_token" = [])),
)]
#[delete("/api/admin/monitors")]
async fn remove_by_body(
    shared: web::Data<Shared>,
    query: web::Query<NameQuery>,
    body: super::naming::BodyName,
) -> Result<HttpResponse, ApiError> {
    remove(&shared, None, query, body).await
}

/// Stops watching the service `name` (a config-file one is refused: 409).
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The monitor's name", max_length = 128)),
    responses(
        (status = 200, body = MonitorDeleted),
        BadRequest, Unauthorized, NotFound, Conflict, PayloadTooLarge, Unavailable,
    ),
    security(("admin_token" = [])),
)]
#[delete("/api/admin/monitors/{name}")]
async fn remove_named(
    shared: web::Data<Shared>,
    path: web::Path<String>,
    query: web::Query<NameQuery>,
    body: super::naming::BodyName,
) -> Result<HttpResponse, ApiError> {
    remove(&shared, Some(path), query, body).await
}

async fn remove(
    shared: &Shared,
    path: Option<web::Path<String>>,
    query: web::Query<NameQuery>,
    body: super::naming::BodyName,
) -> Result<HttpResponse, ApiError> {
    let name = named("/api/admin/monitors/{name}", path, query, body)?;
    let deleted = super::ask(
        &shared.registry.remove_monitor,
        "the service monitor",
        RemoveMonitor { name },
    )
    .await?
    .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(MonitorDeleted { deleted }))
}

/// A restart now, whatever the state and warm-up.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The monitor's name", max_length = 128)),
    responses(
        (status = 202, body = RestartStarted),
        BadRequest, Unauthorized, NotFound, Conflict, Unavailable,
    ),
    security(("admin_token" = [])),
)]
#[post("/api/admin/monitors/{name}/restart")]
async fn restart(
    shared: web::Data<Shared>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = super::naming::checked(name.into_inner())?;
    let msg = RestartMonitor { name: name.clone() };
    let kind = super::ask(&shared.registry.restart_monitor, "the service monitor", msg)
        .await?
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Accepted().json(RestartStarted {
        monitor: name,
        repair: kind.as_str(),
        started: true,
    }))
}
