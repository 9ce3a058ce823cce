//! Leases: `POST /api/leases`, `POST /api/leases/{id}/renew`, `DELETE /api/leases/{id}`,
//! `GET /api/allocation`.

use super::auth::require_client;
use super::error::ApiError;
use crate::actors::messages::{Allocate, Release, Renew};
use crate::clock::rfc3339;
use crate::domain::leases::Lease;
use crate::domain::selection::Strategy;
use crate::state::Shared;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/leases", web::post().to(take))
        .route("/api/leases/{id}/renew", web::post().to(renew))
        .route("/api/leases/{id}", web::delete().to(release))
        .route("/api/allocation", web::get().to(allocation));
}

/// The longest lease: a day.
const MAX_TTL_SECS: f64 = 86_400.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TakeBody {
    #[serde(default = "one")]
    count: u64,
    ttl_secs: Option<f64>,
    strategy: Option<String>,
    session: Option<String>,
}

fn one() -> u64 {
    1
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RenewBody {
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

/// Asks the Allocator (503 while it restarts).
async fn allocator<M>(shared: &Shared, msg: M) -> Result<M::Result, ApiError>
where
    crate::actors::allocator::Allocator: actix::Handler<M>,
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    super::ask(shared.registry.allocator(), "the allocator", msg).await
}

/// A lease as its holder sees it: managed proxies with their credentials.
fn lease_json(l: &Lease, requested: Option<usize>, shared: &Shared) -> serde_json::Value {
    let snap = shared.snapshot();
    let proxies: Vec<&str> = l.proxies.iter().map(|p| snap.client_url(p)).collect();
    let mut v = json!({
        "lease_id": l.id,
        "proxies": proxies,
        "allocated": l.proxies.len(),
        "expires_at": rfc3339(l.expires_at),
    });
    if let Some(n) = requested {
        v["requested"] = n.into();
        v["shortfall"] = n.saturating_sub(l.proxies.len()).into();
    }
    if let Some(s) = &l.session {
        v["session"] = s.as_str().into();
    }
    v
}

async fn take(
    req: HttpRequest,
    shared: web::Data<Shared>,
    body: web::Json<TakeBody>,
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
        .is_some_and(|s| s.is_empty() || s.len() > 256)
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
    let lease = allocator(&shared, msg)
        .await?
        .map_err(ApiError::Unavailable)?;
    Ok(HttpResponse::Created().json(lease_json(&lease, Some(count), &shared)))
}

async fn renew(
    req: HttpRequest,
    shared: web::Data<Shared>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    // The body is optional, but one that is there must be right: a bad `ttl_secs` is a 400,
    // never a renewal with the default.
    let body: RenewBody = super::optional_json(&body)?;
    let ttl = body.ttl_secs;
    let msg = Renew {
        id: id.into_inner(),
        ttl_ms: ttl_ms(ttl, &shared)?,
    };
    match allocator(&shared, msg).await? {
        Ok(Some(lease)) => Ok(HttpResponse::Ok().json(lease_json(&lease, None, &shared))),
        Ok(None) => Err(ApiError::NotFound("no such live lease".into())),
        Err(e) => Err(ApiError::Unavailable(e)),
    }
}

async fn release(
    req: HttpRequest,
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    let msg = Release {
        id: id.into_inner(),
    };
    match allocator(&shared, msg).await? {
        Ok(true) => Ok(HttpResponse::NoContent().finish()),
        Ok(false) => Err(ApiError::NotFound("no such live lease".into())),
        Err(e) => Err(ApiError::Unavailable(e)),
    }
}

/// Totals over the serving proxies, and `current/max` per proxy (serving or still leased).
async fn allocation(req: HttpRequest, shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    let snap = shared.snapshot();
    let loads = shared.loads.load_full();
    let max = shared.config.allocation.max_leases_per_proxy;
    let mut proxies = serde_json::Map::new();
    let (mut used, mut capacity) = (0u64, 0u64);
    for s in &snap.serving {
        let max = s.max_leases.unwrap_or(max);
        let current = loads.per_proxy.get(&s.url).copied().unwrap_or(0);
        used += current.min(max) as u64;
        capacity += max as u64;
        proxies.insert(s.url.clone(), json!({"current": current, "max": max}));
    }
    for (url, current) in &loads.per_proxy {
        proxies
            .entry(url.clone())
            .or_insert_with(|| json!({"current": current, "max": max, "serving": false}));
    }
    Ok(HttpResponse::Ok().json(json!({
        "leases": loads.leases,
        "current_leases": loads.per_proxy.values().map(|&n| n as u64).sum::<u64>(),
        "total_capacity": capacity,
        "available_capacity": capacity - used,
        "proxies": proxies,
    })))
}
