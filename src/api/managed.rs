//! Managed (paid) proxies: `GET /api/v1/proxy/status`, `POST /api/v1/proxy/health-check`, and
//! `POST|PATCH|DELETE /api/admin/proxies`. Answers show a proxy's public URL and whether it
//! has credentials, never the credentials themselves.

use super::error::refusals::{
    BadRequest, Conflict, NotFound, PayloadTooLarge, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
use super::error::ApiError;
use super::naming::{named, target_name, NameQuery};
use super::serving::TierName;
use crate::bus::messages::{CheckManaged, ManagedChange};
use crate::clock::rfc3339_opt;
use crate::config::ManagedProxyConfig;
use crate::domain::lifecycle::Rules;
use crate::domain::managed::{self, Patch, Status};
use crate::published::pool::ManagedView;
use crate::state::Shared;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(status)
        .service(health_check)
        .service(create)
        .service(patch_by_body)
        .service(patch_named)
        .service(delete_by_body)
        .service(delete_named);
}

/// A managed proxy's health.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ManagedStatusName {
    Healthy,
    Degraded,
    Down,
    Blocked,
    Unknown,
}

/// One managed proxy as status answers show it: never its credentials.
#[derive(Serialize, ToSchema)]
pub struct ManagedProxyView {
    name: String,
    /// The public URL (no credentials).
    url: String,
    /// Whether it has credentials.
    credentials: bool,
    kind: String,
    cost_per_gb: f64,
    priority: i32,
    max_leases: u32,
    /// Leases held now.
    leases: u32,
    #[schema(value_type = ManagedStatusName)]
    status: &'static str,
    #[schema(value_type = TierName)]
    tier: &'static str,
    uptime_percent: Option<f64>,
    avg_latency_ms: Option<u64>,
    latency_ms: Option<u32>,
    /// Checks (and client reports) counted, and those that failed.
    requests: u64,
    failures: u64,
    consecutive_failures: u32,
    /// The HTTP status of the last check through it.
    last_status: Option<u16>,
    last_checked_at: Option<String>,
    last_ok_at: Option<String>,
    /// Gateway traffic through it today (UTC), up and down.
    bytes_today: u64,
    /// What that traffic cost today and this month (`cost_per_gb` × GB).
    cost_today: f64,
    cost_month: f64,
    daily_cost_limit: Option<f64>,
    daily_cost_cap: Option<f64>,
    /// Past its `daily_cost_cap` today: the gateway does not use it until the next UTC day.
    capped: bool,
}

/// One managed proxy as status answers show it.
fn view_json(
    v: &ManagedView,
    rules: &Rules,
    max_leases: u32,
    leases: u32,
    usage: &crate::published::usage::UsageView,
) -> ManagedProxyView {
    let h = &v.health;
    let today = usage.today.get(&v.url).copied().unwrap_or_default();
    let month = usage.month.get(&v.url).copied().unwrap_or_default();
    ManagedProxyView {
        name: v.name.clone(),
        url: v.url.clone(),
        credentials: v.has_credentials,
        kind: v.kind.clone(),
        cost_per_gb: v.cost_per_gb,
        priority: v.priority,
        max_leases: v.max_leases.unwrap_or(max_leases),
        leases,
        status: managed::status(h, rules).as_str(),
        tier: h.tier.as_str(),
        uptime_percent: managed::uptime_percent(h),
        avg_latency_ms: managed::average_latency_ms(h),
        latency_ms: h.latency_ms,
        requests: h.checks_total,
        failures: h.checks_total - h.checks_ok,
        consecutive_failures: h.consecutive_failures,
        last_status: h.last_status,
        last_checked_at: rfc3339_opt(h.last_checked_at),
        last_ok_at: rfc3339_opt(h.last_ok_at),
        bytes_today: today.bytes(),
        cost_today: today.cost,
        cost_month: month.cost,
        daily_cost_limit: v.limits.daily_limit,
        daily_cost_cap: v.limits.daily_cap,
        capped: usage.capped.contains(&v.url),
    }
}

fn one_json(v: &ManagedView, shared: &Shared) -> ManagedProxyView {
    let loads = shared.loads.load_full();
    let current = loads.per_proxy.get(&v.url).copied().unwrap_or(0);
    let c = &shared.config;
    let usage = shared.usage.load();
    view_json(
        v,
        &c.rules(),
        c.allocation.max_leases_per_proxy,
        current,
        &usage,
    )
}

#[derive(Serialize, ToSchema)]
pub struct ManagedSummary {
    total: usize,
    healthy: usize,
    degraded: usize,
    down: usize,
    blocked: usize,
    unknown: usize,
    /// The managed proxy `strategy=cheapest` prefers now.
    preferred: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ManagedStatusAnswer {
    summary: ManagedSummary,
    /// By name.
    proxies: Vec<ManagedProxyView>,
}

/// A summary by status, the proxy `strategy=cheapest` prefers now, and every managed proxy, by
/// name.
#[utoipa::path(tag = "status", responses((status = 200, body = ManagedStatusAnswer)))]
#[get("/api/v1/proxy/status")]
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
    let usage = shared.usage.load();
    let mut proxies = Vec::with_capacity(snap.managed.len());
    for v in &snap.managed {
        *summary
            .entry(managed::status(&v.health, &rules).as_str())
            .or_default() += 1;
        let current = loads.per_proxy.get(&v.url).copied().unwrap_or(0);
        proxies.push(view_json(v, &rules, max, current, &usage));
    }
    let preferred = snap
        .cheapest_iter()
        .find_map(|s| snap.managed.iter().find(|m| m.url == s.url))
        .map(|m| m.name.clone());
    HttpResponse::Ok().json(ManagedStatusAnswer {
        summary: ManagedSummary {
            total: snap.managed.len(),
            healthy: summary["healthy"],
            degraded: summary["degraded"],
            down: summary["down"],
            blocked: summary["blocked"],
            unknown: summary["unknown"],
            preferred,
        },
        proxies,
    })
}

#[derive(Serialize, ToSchema)]
pub struct HealthCheckAnswer {
    checked: usize,
    ok: usize,
    failed: usize,
    results: Vec<crate::bus::messages::ManagedCheck>,
}

/// Checks every managed proxy now (the results count as checks).
#[utoipa::path(
    tag = "admin",
    responses((status = 200, body = HealthCheckAnswer), Unauthorized, Unavailable),
    security(("admin_token" = [])),
)]
#[post("/api/v1/proxy/health-check")]
async fn health_check(shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    let results = super::ask(&shared.registry.check_managed, "the pool", CheckManaged).await?;
    let ok = results.iter().filter(|r| r.ok).count();
    Ok(HttpResponse::Ok().json(HealthCheckAnswer {
        checked: results.len(),
        ok,
        failed: results.len() - ok,
        results,
    }))
}

/// A managed proxy after a change.
#[derive(Serialize, ToSchema)]
pub struct ManagedAnswer {
    proxy: ManagedProxyView,
}

/// What a delete removed.
#[derive(Serialize, ToSchema)]
pub struct ManagedDeleted {
    deleted: String,
    url: String,
}

async fn change(shared: &Shared, change: ManagedChange) -> Result<ManagedView, ApiError> {
    super::ask(&shared.registry.managed_change, "the pool", change)
        .await?
        .map_err(ApiError::from)
}

/// Adds a managed proxy (stored before this answer): the body has the fields and defaults of
/// `[[managed_proxies]]`.
#[utoipa::path(
    tag = "admin",
    request_body = ManagedProxyConfig,
    responses(
        (status = 201, body = ManagedAnswer),
        BadRequest, Unauthorized, Conflict, PayloadTooLarge, UnsupportedMediaType, Unavailable,
    ),
    security(("admin_token" = [])),
)]
#[post("/api/admin/proxies")]
async fn create(
    shared: web::Data<Shared>,
    body: super::body::Json<ManagedProxyConfig>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let def = b.definition().map_err(ApiError::BadRequest)?;
    let view = change(&shared, ManagedChange::Create(def)).await?;
    Ok(HttpResponse::Created().json(ManagedAnswer {
        proxy: one_json(&view, &shared),
    }))
}

/// A change: each field given replaces the old value; the name names the proxy and does not
/// change. (The path, `?name=` or this `name` say which proxy; when given more than once they
/// must agree.)
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    name: Option<String>,
    url: Option<String>,
    kind: Option<String>,
    cost_per_gb: Option<f64>,
    priority: Option<i32>,
    max_leases: Option<u32>,
    daily_cost_limit: Option<f64>,
    daily_cost_cap: Option<f64>,
}

/// The fields a change may give, for the document: [`PatchBody`] as each route takes it.
macro_rules! patch_schema {
    ($(#[$doc:meta])* $name:ident { $($named:tt)* }) => {
        $(#[$doc])*
        #[derive(ToSchema, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        pub struct $name {
            $($named)*
            /// `http|https|socks4|socks5://[user:pass@]host:port`.
            #[schema(pattern = r"^(https?|socks[45])://([^/?#]*@)?((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|([A-Za-z0-9_-]{1,62}\.){0,3}[A-Za-z_-][A-Za-z0-9_-]{0,61}):([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])/?$")]
            url: Option<String>,
            #[schema(value_type = Option<KindName>)]
            kind: Option<String>,
            #[schema(minimum = 0.0)]
            cost_per_gb: Option<f64>,
            priority: Option<i32>,
            #[schema(minimum = 1, maximum = 4294967295_u64)]
            max_leases: Option<u32>,
            #[schema(minimum = 0.0)]
            daily_cost_limit: Option<f64>,
            #[schema(minimum = 0.0)]
            daily_cost_cap: Option<f64>,
        }
    };
}

patch_schema!(
    /// A change to the proxy the path names.
    PatchFields {}
);
patch_schema!(
    /// A change to the proxy `name` names.
    PatchNamed {
        /// Which proxy.
        #[schema(max_length = 128)]
        name: String,
    }
);

/// A managed proxy's kind.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum KindName {
    Free,
    Vps,
    Datacenter,
    Residential,
}

/// `?name=`, required.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct NameRequired {
    /// The managed proxy's name.
    #[param(max_length = 128)]
    name: String,
}

/// Changes the managed proxy the body's `name` names (or `?name=`).
#[utoipa::path(
    tag = "admin",
    request_body = PatchNamed,
    responses(
        (status = 200, body = ManagedAnswer),
        BadRequest, Unauthorized, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType,
        Unavailable,
    ),
    security(("admin_token" = [])),
)]
#[patch("/api/admin/proxies")]
async fn patch_by_body(
    shared: web::Data<Shared>,
    query: web::Query<NameQuery>,
    body: super::body::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    patch(&shared, None, query, body).await
}

/// Changes the managed proxy `name`: each field given replaces the old value.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The managed proxy's name", max_length = 128)),
    request_body = PatchFields,
    responses(
        (status = 200, body = ManagedAnswer),
        BadRequest, Unauthorized, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType,
        Unavailable,
    ),
    security(("admin_token" = [])),
)]
#[patch("/api/admin/proxies/{name}")]
async fn patch_named(
    shared: web::Data<Shared>,
    path: web::Path<String>,
    query: web::Query<NameQuery>,
    body: super::body::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    patch(&shared, Some(path), query, body).await
}

async fn patch(
    shared: &Shared,
    path: Option<web::Path<String>>,
    query: web::Query<NameQuery>,
    body: super::body::Json<PatchBody>,
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
        daily_cost_limit: b.daily_cost_limit,
        daily_cost_cap: b.daily_cost_cap,
    };
    // An empty change is a change to nothing: the proxy as it is (404 and 409 as for any).
    let view = change(shared, ManagedChange::Patch { name, patch }).await?;
    Ok(HttpResponse::Ok().json(ManagedAnswer {
        proxy: one_json(&view, shared),
    }))
}

/// Removes the managed proxy `?name=` names (or an optional JSON body `{"name": ...}`).
#[utoipa::path(
    tag = "admin",
    params(NameRequired),
    responses(
        (status = 200, body = ManagedDeleted),
        BadRequest, Unauthorized, NotFound, Conflict, PayloadTooLarge, Unavailable,
    ),
    security(("admin_token" = [])),
)]
#[delete("/api/admin/proxies")]
async fn delete_by_body(
    shared: web::Data<Shared>,
    query: web::Query<NameQuery>,
    body: super::naming::BodyName,
) -> Result<HttpResponse, ApiError> {
    delete(&shared, None, query, body).await
}

/// Removes the managed proxy `name` (a config-file one is refused: 409).
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The managed proxy's name", max_length = 128)),
    responses(
        (status = 200, body = ManagedDeleted),
        BadRequest, Unauthorized, NotFound, Conflict, PayloadTooLarge, Unavailable,
    ),
    security(("admin_token" = [])),
)]
#[delete("/api/admin/proxies/{name}")]
async fn delete_named(
    shared: web::Data<Shared>,
    path: web::Path<String>,
    query: web::Query<NameQuery>,
    body: super::naming::BodyName,
) -> Result<HttpResponse, ApiError> {
    delete(&shared, Some(path), query, body).await
}

async fn delete(
    shared: &Shared,
    path: Option<web::Path<String>>,
    query: web::Query<NameQuery>,
    body: super::naming::BodyName,
) -> Result<HttpResponse, ApiError> {
    let name = named("/api/admin/proxies/{name}", path, query, body)?;
    let view = change(shared, ManagedChange::Delete { name }).await?;
    Ok(HttpResponse::Ok().json(ManagedDeleted {
        deleted: view.name,
        url: view.url,
    }))
}
