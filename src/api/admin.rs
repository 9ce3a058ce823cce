//! Admin endpoints (bearer admin token): fetch a source now, and fault injection.

use super::error::refusals::{BadRequest, NotFound, Unauthorized, Unavailable};
use super::error::ApiError;
use crate::bus::messages::RestartChild;
use crate::bus::messages::{Control, FetchNow};
use crate::state::Shared;
use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(fetch_source)
        .service(crash_actor)
        .service(restart_actor)
        .service(force_accept);
}

/// The supervised actors, by name.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ActorName {
    SourceFetcher,
    ValidatorPool,
    TierBalancer,
    ResurrectionManager,
    ServiceMonitor,
    Alerter,
    Allocator,
}

#[derive(Serialize, ToSchema)]
pub struct Fetching {
    source: String,
    fetching: bool,
}

/// An actor's answer to a control.
#[derive(Serialize, ToSchema)]
pub struct ActorControlled {
    actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    crashing: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restarting: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    stopped: bool,
    /// Checks dropped from the queue.
    cancelled: usize,
    /// Unchecked proxies that wait for the next list.
    deferred: usize,
    /// Serving proxies in the snapshot published now.
    serving: usize,
}

/// Fetches that source's list now.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "A `[[sources]]` name")),
    responses((status = 202, body = Fetching), Unauthorized, NotFound, Unavailable),
    security(("admin_token" = [])),
)]
#[post("/api/admin/sources/{name}/fetch")]
async fn fetch_source(
    shared: web::Data<Shared>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let fetching = super::ask(
        &shared.registry.fetch_now,
        "the source fetcher",
        FetchNow(name.clone()),
    )
    .await?;
    if fetching {
        Ok(HttpResponse::Accepted().json(Fetching {
            source: name.into_inner(),
            fetching: true,
        }))
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
#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CrashQuery {
    /// `panic` (default, in a handler), `timer` (in a timer), `hang`, or `check` (the
    /// ValidatorPool's next check panics).
    #[param(value_type = Option<CrashMode>, inline)]
    mode: Option<String>,
    /// How long a hang lasts (default 60 s, at most 600 s).
    #[param(exclusive_minimum = 0.0, maximum = 600.0)]
    secs: Option<f64>,
}

/// How an actor is made to fail.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum CrashMode {
    Panic,
    Timer,
    Hang,
    Check,
}

/// Makes an actor panic, or hang with `?mode=hang&secs=N` (only with
/// `supervision.fault_injection = true`; 404 otherwise, whatever the query).
#[utoipa::path(
    tag = "admin",
    params(("name" = inline(ActorName), Path, description = "An actor's name"), CrashQuery),
    responses((status = 202, body = ActorControlled), BadRequest, Unauthorized, NotFound),
    security(("admin_token" = [])),
)]
#[post("/api/admin/actors/{name}/crash")]
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
        Ok(HttpResponse::Accepted().json(ActorControlled {
            actor: name.into_inner(),
            crashing: Some(true),
            restarting: None,
        }))
    } else {
        Err(ApiError::NotFound(format!(
            "no running actor named `{}`",
            clip(&name)
        )))
    }
}

/// The actor stops and the Supervisor starts it anew at once, its state reloaded from the store
/// (not counted as a crash).
#[utoipa::path(
    tag = "admin",
    params(("name" = inline(ActorName), Path, description = "An actor's name")),
    responses((status = 202, body = ActorControlled), Unauthorized, NotFound, Unavailable),
    security(("admin_token" = [])),
)]
#[post("/api/admin/actors/{name}/restart")]
async fn restart_actor(
    shared: web::Data<Shared>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let known = super::ask(
        &shared.registry.restart_child,
        "the supervisor",
        RestartChild(name.to_string()),
    )
    .await?;
    if known {
        Ok(HttpResponse::Accepted().json(ActorControlled {
            actor: name.into_inner(),
            crashing: None,
            restarting: Some(true),
        }))
    } else {
        Err(ApiError::NotFound(format!(
            "no actor named `{}`",
            clip(&name)
        )))
    }
}

/// Stops the current validation round and publishes what it has so far.
#[utoipa::path(
    tag = "admin",
    responses((status = 200, body = Accepted), Unauthorized, Unavailable),
    security(("admin_token" = [])),
)]
#[post("/api/force/accept")]
async fn force_accept(shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    let answer = super::ask(
        &shared.registry.force_accept,
        "the pool",
        crate::bus::messages::ForceAccept,
    )
    .await?;
    Ok(HttpResponse::Ok().json(Accepted {
        stopped: true,
        cancelled: answer.cancelled,
        deferred: answer.deferred,
        serving: answer.serving,
    }))
}
