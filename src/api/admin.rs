//! Admin endpoints (bearer admin token): fetch a source now, and fault injection.

use super::error::ApiError;
use crate::actors::messages::{Control, FetchNow};
use crate::actors::supervisor::RestartChild;
use crate::state::Shared;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/admin/sources/{name}/fetch",
        web::post().to(fetch_source),
    )
    .route(
        "/api/admin/actors/{name}/crash",
        web::post().to(crash_actor),
    )
    .route(
        "/api/admin/actors/{name}/restart",
        web::post().to(restart_actor),
    )
    .route("/api/force/accept", web::post().to(force_accept));
}

async fn fetch_source(
    shared: web::Data<Shared>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let fetching = super::ask(
        shared.registry.fetcher(),
        "the source fetcher",
        FetchNow(name.clone()),
    )
    .await?;
    if fetching {
        Ok(HttpResponse::Accepted().json(json!({"source": *name, "fetching": true})))
    } else {
        Err(ApiError::NotFound(format!(
            "no source named `{}`",
            clip(&name)
        )))
    }
}

fn clip(name: &str) -> String {
    name.chars().take(64).collect()
}

/// Unknown parameters are ignored, as on every endpoint.
#[derive(serde::Deserialize)]
struct CrashQuery {
    /// `panic` (default, in a handler), `timer` (in a timer), `hang`, or `check` (the
    /// ValidatorPool's next check panics).
    mode: Option<String>,
    /// How long a hang lasts (default 60 s, at most 600 s).
    secs: Option<f64>,
}

/// Makes an actor panic, or hang with `?mode=hang&secs=N` (only with
/// `supervision.fault_injection = true`; 404 otherwise).
async fn crash_actor(
    req: HttpRequest,
    shared: web::Data<Shared>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !shared.config.supervision.fault_injection {
        return Err(ApiError::NotFound("no such endpoint".into()));
    }
    // Read only now: without fault injection the endpoint does not exist, whatever the query.
    let q = web::Query::<CrashQuery>::from_query(req.query_string()).map_err(|e| {
        ApiError::BadRequest(format!(
            "bad query string: {}",
            super::error::without_values(&e.to_string())
        ))
    })?;
    let msg = match q.mode.as_deref().unwrap_or("panic") {
        "panic" => Control::Crash,
        "timer" => Control::CrashInTimer,
        "check" if name.as_str() == crate::actors::validator_pool::NAME => Control::PanicInCheck,
        "hang" => {
            let secs = q.secs.unwrap_or(60.0);
            if !(secs > 0.0 && secs <= 600.0) {
                return Err(ApiError::BadRequest("`secs` must be from 0 to 600".into()));
            }
            Control::Hang(std::time::Duration::from_secs_f64(secs))
        }
        _ => {
            return Err(ApiError::BadRequest(
                "`mode` must be panic, timer, hang or (for validator_pool) check".into(),
            ))
        }
    };
    if shared.registry.control(&name, msg) {
        Ok(HttpResponse::Accepted().json(json!({"actor": *name, "crashing": true})))
    } else {
        Err(ApiError::NotFound(format!(
            "no running actor named `{}`",
            clip(&name)
        )))
    }
}

/// `POST /api/admin/actors/{name}/restart`: the actor stops and the Supervisor starts it anew
/// at once, its state reloaded from the store (not counted as a crash).
async fn restart_actor(
    shared: web::Data<Shared>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let supervisor = shared
        .registry
        .supervisor()
        .ok_or_else(|| ApiError::Unavailable("the supervisor is not running".into()))?;
    let known = supervisor
        .send(RestartChild(name.to_string()))
        .await
        .map_err(|_| ApiError::Unavailable("the supervisor is not running".into()))?;
    if known {
        Ok(HttpResponse::Accepted().json(json!({"actor": *name, "restarting": true})))
    } else {
        Err(ApiError::NotFound(format!(
            "no actor named `{}`",
            clip(&name)
        )))
    }
}

/// `POST /api/force/accept`: stop the current validation round and publish what it has.
async fn force_accept(shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    let answer = super::ask(
        shared.registry.balancer(),
        "the pool",
        crate::actors::messages::ForceAccept,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "stopped": true,
        "cancelled": answer.cancelled,
        "deferred": answer.deferred,
        "serving": answer.serving,
    })))
}
