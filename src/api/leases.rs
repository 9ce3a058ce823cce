//! Leases: `POST /api/leases`, `POST /api/leases/{id}/renew`, `DELETE /api/leases/{id}`,
//! `GET /api/allocation`.

use super::auth::require_client;
use super::error::refusals::{
    BadRequest, NotFound, PayloadTooLarge, Unauthorized, Unavailable, UnsupportedMediaType,
};
use super::error::ApiError;
use super::serving::StrategyName;
use crate::bus::messages::{Allocate, Release, Renew};
use crate::clock::rfc3339;
use crate::domain::leases::Lease;
use crate::domain::selection::Strategy;
use crate::state::Shared;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(take)
        .service(renew)
        .service(release)
        .service(allocation);
}

/// The longest lease: a day.
const MAX_TTL_SECS: f64 = 86_400.0;

/// A lease request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeBody {
    /// Proxies wanted (default 1), 1 to `server.max_count`.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 10000, default = 1)]
    count: u64,
    /// Seconds the lease lives (default `allocation.default_lease_ttl_secs`), above 0 and at
    /// most 86400.
    #[schema(exclusive_minimum = 0.0, maximum = 86400.0)]
    ttl_secs: Option<f64>,
    /// Order the proxies are taken in (default `least_loaded`).
    #[schema(value_type = Option<StrategyName>)]
    strategy: Option<String>,
    /// A sticky key: the same proxies while they live.
    #[schema(min_length = 1, max_length = 256)]
    session: Option<String>,
}

fn one() -> u64 {
    1
}

/// An optional renewal body.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    /// New lifetime from now (default `allocation.default_lease_ttl_secs`).
    #[schema(exclusive_minimum = 0.0, maximum = 86400.0)]
    ttl_secs: Option<f64>,
}

fn ttl_ms(ttl: Option<f64>, shared: &Shared) -> Result<i64, ApiError> {
    let ttl = ttl.unwrap_or(shared.config.allocation.default_lease_ttl_secs);
    if !(ttl.is_finite() && ttl > 0.0 && ttl <= MAX_TTL_SECS) {
        return Err(ApiError::BadRequest(format!(
            "`ttl_secs` must be a number of seconds above 0 and at most {MAX_TTL_SECS}"
        )));
    }
    Ok((ttl * 1000.0).ceil() as i64)
}

/// A lease as its holder sees it: managed proxies with their credentials.
#[derive(Serialize, ToSchema)]
pub struct LeaseAnswer {
    lease_id: String,
    proxies: Vec<String>,
    allocated: usize,
    /// Asked for (on creation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    requested: Option<usize>,
    /// `requested - allocated` (on creation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    shortfall: Option<usize>,
    /// RFC 3339.
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<String>,
}

fn lease_answer(l: &Lease, requested: Option<usize>, shared: &Shared) -> LeaseAnswer {
    let snap = shared.snapshot();
    LeaseAnswer {
        lease_id: l.id.clone(),
        proxies: l
            .proxies
            .iter()
            .map(|p| snap.client_url(p).to_string())
            .collect(),
        allocated: l.proxies.len(),
        requested,
        shortfall: requested.map(|n| n.saturating_sub(l.proxies.len())),
        expires_at: rfc3339(l.expires_at),
        session: l.session.clone(),
    }
}

/// Takes up to `count` proxies for `ttl_secs`, least loaded first, never over a proxy's
/// capacity; `shortfall` says how many could not be had.
#[utoipa::path(
    tag = "leases",
    request_body = TakeBody,
    responses(
        (status = 201, description = "The lease (stored before this answer)", body = LeaseAnswer,
         links(
            ("Renew" = (operation_id = "renew", parameters(("id" = "$response.body#/lease_id")))),
            ("Release" = (operation_id = "release", parameters(("id" = "$response.body#/lease_id")))),
         )),
        BadRequest, Unauthorized, PayloadTooLarge, UnsupportedMediaType, Unavailable,
    ),
    security((), ("client_token" = [])),
)]
#[post("/api/leases")]
async fn take(
    req: HttpRequest,
    shared: web::Data<Shared>,
    body: super::body::Json<TakeBody>,
) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    let body = body.into_inner();
    let max = shared.config.server.max_count;
    if body.count == 0 || body.count > max as u64 {
        return Err(ApiError::BadRequest(format!(
            "`count` must be from 1 to {max}"
        )));
    }
    let strategy = match body.strategy.as_deref() {
        None => Strategy::LeastLoaded,
        Some(s) => Strategy::parse(s).ok_or_else(|| {
            ApiError::BadRequest(
                "unknown strategy: use fastest, cheapest, random or least_loaded".into(),
            )
        })?,
    };
    if body
        .session
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.chars().count() > 256)
    {
        return Err(ApiError::BadRequest(
            "`session` must have 1 to 256 characters".into(),
        ));
    }
    let count = body.count as usize;
    let msg = Allocate {
        count,
        ttl_ms: ttl_ms(body.ttl_secs, &shared)?,
        strategy,
        session: body.session,
    };
    let lease = super::ask(&shared.registry.allocate, "the allocator", msg)
        .await?
        .map_err(ApiError::Unavailable)?;
    Ok(HttpResponse::Created().json(lease_answer(&lease, Some(count), &shared)))
}

/// Extends a live lease (the body is optional).
#[utoipa::path(
    tag = "leases",
    params(("id" = String, Path, description = "The lease's id")),
    request_body(content = Option<RenewBody>, description = "Optional"),
    responses(
        (status = 200, description = "The renewed lease", body = LeaseAnswer),
        BadRequest, Unauthorized, NotFound, PayloadTooLarge, UnsupportedMediaType, Unavailable,
    ),
    security((), ("client_token" = [])),
)]
#[post("/api/leases/{id}/renew")]
async fn renew(
    req: HttpRequest,
    shared: web::Data<Shared>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    // The body is optional, but one that is there must be right: a bad `ttl_secs` is a 400,
    // never a renewal with the default.
    let body: RenewBody = super::body::optional(&body)?;
    let ttl = body.ttl_secs;
    let msg = Renew {
        id: id.into_inner(),
        ttl_ms: ttl_ms(ttl, &shared)?,
    };
    match super::ask(&shared.registry.renew, "the allocator", msg).await? {
        Ok(Some(lease)) => Ok(HttpResponse::Ok().json(lease_answer(&lease, None, &shared))),
        Ok(None) => Err(ApiError::NotFound("no such live lease".into())),
        Err(e) => Err(ApiError::Unavailable(e)),
    }
}

/// Ends a lease: its slots are free at once.
#[utoipa::path(
    tag = "leases",
    params(("id" = String, Path, description = "The lease's id")),
    responses(
        (status = 204, description = "Released"),
        Unauthorized, NotFound, Unavailable,
    ),
    security((), ("client_token" = [])),
)]
#[delete("/api/leases/{id}")]
async fn release(
    req: HttpRequest,
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    let msg = Release {
        id: id.into_inner(),
    };
    match super::ask(&shared.registry.release, "the allocator", msg).await? {
        Ok(true) => Ok(HttpResponse::NoContent().finish()),
        Ok(false) => Err(ApiError::NotFound("no such live lease".into())),
        Err(e) => Err(ApiError::Unavailable(e)),
    }
}

/// Leases held on one proxy.
#[derive(Serialize, ToSchema)]
pub struct Slots {
    current: u32,
    max: u32,
    /// `false` for a proxy that left the serving tiers while leased.
    #[serde(skip_serializing_if = "Option::is_none")]
    serving: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct Allocation {
    /// Live leases.
    leases: usize,
    /// Slots held over all proxies.
    current_leases: u64,
    total_capacity: u64,
    available_capacity: u64,
    /// Public URL → slots.
    proxies: BTreeMap<String, Slots>,
}

/// Totals over the serving proxies, and `current/max` per proxy (serving or still leased).
#[utoipa::path(
    tag = "leases",
    responses((status = 200, body = Allocation), Unauthorized),
    security((), ("client_token" = [])),
)]
#[get("/api/allocation")]
async fn allocation(req: HttpRequest, shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    let snap = shared.snapshot();
    let loads = shared.loads.load_full();
    let max = shared.config.allocation.max_leases_per_proxy;
    let mut proxies = BTreeMap::new();
    let (mut used, mut capacity) = (0u64, 0u64);
    for s in &snap.serving {
        let max = s.max_leases.unwrap_or(max);
        let current = loads.per_proxy.get(&s.url).copied().unwrap_or(0);
        used += current.min(max) as u64;
        capacity += max as u64;
        proxies.insert(
            s.url.clone(),
            Slots {
                current,
                max,
                serving: None,
            },
        );
    }
    for (url, &current) in &loads.per_proxy {
        proxies.entry(url.clone()).or_insert(Slots {
            current,
            max,
            serving: Some(false),
        });
    }
    Ok(HttpResponse::Ok().json(Allocation {
        leases: loads.leases,
        current_leases: loads.per_proxy.values().map(|&n| n as u64).sum::<u64>(),
        total_capacity: capacity,
        available_capacity: capacity - used,
        proxies,
    }))
}
