//! Managed (paid) proxies: `GET /api/v1/proxy/status`, `POST /api/v1/proxy/health-check`, and
//! `POST|PATCH|DELETE /api/admin/proxies`. Answers show a proxy's public URL and whether it
//! has credentials, never the credentials themselves.

use super::error::ApiError;
use super::naming::{named, target_name, NameQuery};
use crate::actors::messages::{CheckManaged, ManagedChange};
use crate::clock::rfc3339_opt;
use crate::config::ManagedProxyConfig;
use crate::domain::lifecycle::Rules;
use crate::domain::managed::{self, ManagedProxy, Patch, Status};
use crate::snapshot::ManagedView;
use crate::state::Shared;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/proxy/status", web::get().to(status))
        .route("/api/v1/proxy/health-check", web::post().to(health_check))
        .route("/api/admin/proxies", web::post().to(create))
        .route("/api/admin/proxies", web::patch().to(patch))
        .route("/api/admin/proxies/{name}", web::patch().to(patch))
        .route("/api/admin/proxies", web::delete().to(delete))
        .route("/api/admin/proxies/{name}", web::delete().to(delete));
}

/// One managed proxy as status answers show it.
fn view_json(v: &ManagedView, rules: &Rules, max_leases: u32, leases: u32) -> Value {
    let h = &v.health;
    json!({
        "name": v.name,
        "url": v.url,
        "credentials": v.has_credentials,
        "kind": v.kind,
        "cost_per_gb": v.cost_per_gb,
        "priority": v.priority,
        "max_leases": v.max_leases.unwrap_or(max_leases),
        "leases": leases,
        "status": managed::status(h, rules).as_str(),
        "tier": h.tier.as_str(),
        "uptime_percent": managed::uptime_percent(h),
        "avg_latency_ms": managed::average_latency_ms(h),
        "latency_ms": h.latency_ms,
        "requests": h.checks_total,
        "failures": h.checks_total - h.checks_ok,
        "consecutive_failures": h.consecutive_failures,
        "last_status": h.last_status,
        "last_checked_at": rfc3339_opt(h.last_checked_at),
        "last_ok_at": rfc3339_opt(h.last_ok_at),
    })
}

fn one_json(v: &ManagedView, shared: &Shared) -> Value {
    let loads = shared.loads.load_full();
    let current = loads.per_proxy.get(&v.url).copied().unwrap_or(0);
    let c = &shared.config;
    view_json(v, &c.rules(), c.allocation.max_leases_per_proxy, current)
}

/// `GET /api/v1/proxy/status`: a summary by status, the proxy `strategy=cheapest` prefers now,
/// and every managed proxy, by name.
async fn status(shared: web::Data<Shared>) -> HttpResponse {
    let snap = shared.snapshot();
    let loads = shared.loads.load_full();
    let rules = shared.config.rules();
    let max = shared.config.allocation.max_leases_per_proxy;
    let mut summary: HashMap<&'static str, usize> = [
        Status::Healthy,
        Status::Degraded,
        Status::Down,
        Status::Blocked,
        Status::Unknown,
    ]
    .into_iter()
    .map(|s| (s.as_str(), 0))
    .collect();
    let mut proxies = Vec::with_capacity(snap.managed.len());
    for v in &snap.managed {
        *summary
            .entry(managed::status(&v.health, &rules).as_str())
            .or_default() += 1;
        let current = loads.per_proxy.get(&v.url).copied().unwrap_or(0);
        proxies.push(view_json(v, &rules, max, current));
    }
    let preferred = snap
        .cheapest_iter()
        .find_map(|s| snap.managed.iter().find(|m| m.url == s.url))
        .map(|m| m.name.as_str());
    HttpResponse::Ok().json(json!({
        "summary": {
            "total": snap.managed.len(),
            "healthy": summary["healthy"],
            "degraded": summary["degraded"],
            "down": summary["down"],
            "blocked": summary["blocked"],
            "unknown": summary["unknown"],
            "preferred": preferred,
        },
        "proxies": proxies,
    }))
}

/// `POST /api/v1/proxy/health-check` (admin): checks every managed proxy now; the results
/// count as checks.
async fn health_check(shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    let results = super::ask(shared.registry.balancer(), "the pool", CheckManaged).await?;
    let ok = results.iter().filter(|r| r.ok).count();
    Ok(HttpResponse::Ok().json(json!({
        "checked": results.len(),
        "ok": ok,
        "failed": results.len() - ok,
        "results": results,
    })))
}

async fn change(shared: &Shared, change: ManagedChange) -> Result<ManagedView, ApiError> {
    super::ask(shared.registry.balancer(), "the pool", change)
        .await?
        .map_err(ApiError::from)
}

/// `POST /api/admin/proxies`: the body has the fields (and defaults) of `[[managed_proxies]]`.
async fn create(
    shared: web::Data<Shared>,
    body: web::Json<ManagedProxyConfig>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let def = ManagedProxy::new(
        &b.name,
        &b.url,
        &b.kind,
        b.cost_per_gb,
        b.priority,
        b.max_leases,
    )
    .map_err(ApiError::BadRequest)?;
    let view = change(&shared, ManagedChange::Create(def)).await?;
    Ok(HttpResponse::Created().json(json!({"proxy": one_json(&view, &shared)})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    name: Option<String>,
    url: Option<String>,
    kind: Option<String>,
    cost_per_gb: Option<f64>,
    priority: Option<i32>,
    max_leases: Option<u32>,
}

/// `PATCH /api/admin/proxies[/{name}]`: each field given replaces the old value.
async fn patch(
    shared: web::Data<Shared>,
    path: Option<web::Path<String>>,
    query: web::Query<NameQuery>,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let name = target_name(
        "/api/admin/proxies/{name}",
        path.map(|p| p.into_inner()),
        query.into_inner().name,
        b.name,
    )?;
    let patch = Patch {
        url: b.url,
        kind: b.kind,
        cost_per_gb: b.cost_per_gb,
        priority: b.priority,
        max_leases: b.max_leases,
    };
    if patch.is_empty() {
        return Err(ApiError::BadRequest(
            "nothing to change: give url, kind, cost_per_gb, priority or max_leases".into(),
        ));
    }
    let view = change(&shared, ManagedChange::Patch { name, patch }).await?;
    Ok(HttpResponse::Ok().json(json!({"proxy": one_json(&view, &shared)})))
}

/// `DELETE /api/admin/proxies[/{name}]`; a body, if any, may name the proxy: `{"name": ...}`.
async fn delete(
    shared: web::Data<Shared>,
    path: Option<web::Path<String>>,
    query: web::Query<NameQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let name = named("/api/admin/proxies/{name}", path, query, &body)?;
    let view = change(&shared, ManagedChange::Delete { name }).await?;
    Ok(HttpResponse::Ok().json(json!({"deleted": view.name, "url": view.url})))
}
