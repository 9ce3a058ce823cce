//! Watched services: `GET /api/monitors`, and the admin `POST|DELETE /api/admin/monitors` and
//! `POST /api/admin/monitors/{name}/restart`. Answers never show a recovery action's secrets, nor
//! the credentials or query string of a monitor's URL.

use super::error::ApiError;
use super::naming::{named, NameQuery};
use crate::actors::messages::{AddMonitor, RemoveMonitor, RestartMonitor};
use crate::actors::service_monitor::{MonitorView, ServiceMonitor};
use crate::clock::{now_ms, rfc3339, rfc3339_opt};
use crate::config::MonitorConfig;
use crate::domain::monitor::MonitorDef;
use crate::state::Shared;
use crate::store::monitors::MonitorRow;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/monitors", web::get().to(list))
        .route("/api/admin/monitors", web::post().to(add))
        .route("/api/admin/monitors", web::delete().to(remove))
        .route("/api/admin/monitors/{name}", web::delete().to(remove))
        .route(
            "/api/admin/monitors/{name}/restart",
            web::post().to(restart),
        );
}

pub fn view_json(v: &MonitorView) -> Value {
    let s = &v.service;
    json!({
        "name": v.name,
        // Without credentials or query string: either may hold a token.
        "url": crate::actors::source_fetcher::redact_url(&v.url),
        "origin": v.origin,
        "action": v.action,
        "interval_secs": v.interval_ms as f64 / 1000.0,
        "status": s.status.as_str(),
        "uptime_percent": v.uptime_percent,
        "avg_response_ms": v.avg_response_ms,
        "p95_response_ms": v.p95_response_ms,
        "last_response_ms": v.last_latency_ms,
        "checks_ok": v.checks_ok,
        "checks_total": v.checks_total,
        "consecutive_failures": s.consecutive_failures,
        "last_error": s.last_reason,
        "last_check_at": rfc3339_opt(v.last_check_at),
        "down_since": rfc3339_opt(s.down_since),
        "repairs": v.repairs,
        "predictive_restarts": v.predictive_restarts,
        "repairing": s.repair_running,
        "repairs_paused": s.gave_up,
        "last_repair": v.last_repair.as_ref().map(|r| json!({
            "kind": r.kind.as_str(),
            "predictive": r.predictive,
            "manual": r.manual,
            "started_at": rfc3339(r.started_at),
            "took_ms": r.took_ms,
            "succeeded": r.succeeded,
            "error": r.error,
        })),
    })
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

/// `GET /api/monitors`: every watched service, by name, and counts by status.
async fn list(shared: web::Data<Shared>) -> HttpResponse {
    let view = shared.monitors.load_full();
    HttpResponse::Ok().json(json!({
        "count": view.monitors.len(),
        "summary": summary(&view.monitors),
        "monitors": view.monitors.iter().map(|v| view_json(v)).collect::<Vec<_>>(),
    }))
}

/// Asks the ServiceMonitor (503 while it restarts).
async fn monitor<M>(shared: &Shared, msg: M) -> Result<M::Result, ApiError>
where
    ServiceMonitor: actix::Handler<M>,
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    super::ask(shared.registry.monitor(), "the service monitor", msg).await
}

/// `POST /api/admin/monitors`: the body is a `[[monitors]]` table as JSON.
async fn add(
    shared: web::Data<Shared>,
    body: web::Json<MonitorConfig>,
) -> Result<HttpResponse, ApiError> {
    let config = body.into_inner();
    let def = MonitorDef::new(&config, crate::env::string).map_err(ApiError::BadRequest)?;
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
    let row = MonitorRow {
        name: def.name.clone(),
        definition: serde_json::to_string(&MonitorConfig {
            name: def.name.clone(),
            ..config
        })
        .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        created_at: now_ms(),
    };
    let view = monitor(&shared, AddMonitor { def, row })
        .await?
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Created().json(json!({"monitor": view_json(&view)})))
}

/// `DELETE /api/admin/monitors[/{name}]` (or `?name=`, or `{"name"}` in the body).
async fn remove(
    shared: web::Data<Shared>,
    path: Option<web::Path<String>>,
    query: web::Query<NameQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let name = named("/api/admin/monitors/{name}", path, query, &body)?;
    let view = monitor(&shared, RemoveMonitor { name })
        .await?
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(json!({"deleted": view.name})))
}

/// `POST /api/admin/monitors/{name}/restart`: a restart now, whatever the state and warm-up.
async fn restart(
    shared: web::Data<Shared>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = super::naming::checked(name.into_inner())?;
    let kind = monitor(&shared, RestartMonitor { name: name.clone() })
        .await?
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Accepted()
        .json(json!({"monitor": name, "repair": kind.as_str(), "started": true})))
}
