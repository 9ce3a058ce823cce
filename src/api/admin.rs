//! Admin endpoints (bearer admin token): fetch a source now, and fault injection.

use super::auth::require_admin;
use super::error::ApiError;
use crate::actors::messages::FetchNow;
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
    );
}

async fn fetch_source(
    req: HttpRequest,
    shared: web::Data<Shared>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &shared)?;
    let fetcher = shared
        .registry
        .fetcher()
        .ok_or_else(|| ApiError::Unavailable("the source fetcher is restarting".into()))?;
    match fetcher.send(FetchNow(name.clone())).await {
        Ok(true) => Ok(HttpResponse::Accepted().json(json!({"source": *name, "fetching": true}))),
        Ok(false) => Err(ApiError::NotFound(format!(
            "no source named `{}`",
            name.chars().take(64).collect::<String>()
        ))),
        Err(_) => Err(ApiError::Unavailable(
            "the source fetcher is restarting".into(),
        )),
    }
}

/// Makes an actor panic (only with `supervision.fault_injection = true`; 404 otherwise).
async fn crash_actor(
    req: HttpRequest,
    shared: web::Data<Shared>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &shared)?;
    if !shared.config.supervision.fault_injection {
        return Err(ApiError::NotFound("no such endpoint".into()));
    }
    if shared
        .registry
        .control(&name, crate::actors::messages::Control::Crash)
    {
        Ok(HttpResponse::Accepted().json(json!({"actor": *name, "crashing": true})))
    } else {
        Err(ApiError::NotFound(format!(
            "no running actor named `{}`",
            name.chars().take(64).collect::<String>()
        )))
    }
}
