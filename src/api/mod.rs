//! The HTTP API (actix-web). Serving handlers read the published snapshot only: no lock, no
//! database, no waiting on validation.

pub mod admin;
pub mod alerts;
pub mod auth;
pub mod body;
pub mod cluster;
pub mod dashboard;
pub mod error;
pub mod leases;
pub mod logs;
pub mod managed;
pub mod metrics;
pub mod monitors;
pub mod naming;
pub mod openapi;
pub mod params;
pub mod serving;
pub mod status;
pub mod usage;

use crate::state::Shared;
use actix_web::dev::Server;
use actix_web::middleware::ErrorHandlers;
use actix_web::{web, App, HttpRequest, HttpServer};
use error::ApiError;
use std::sync::Arc;

/// The largest request body any endpoint takes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Sends `msg` through its registry port and awaits the answer. While the actor behind it
/// restarts (an empty port, or it stopped before answering) the request answers 503 "`what` is
/// restarting; try again".
pub async fn ask<M>(
    port: &crate::bus::registry::Port<M>,
    what: &str,
    msg: M,
) -> Result<M::Result, ApiError>
where
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    let restarting = || ApiError::Unavailable(format!("{what} is restarting; try again"));
    port.get()
        .ok_or_else(restarting)?
        .send(msg)
        .await
        .map_err(|_| restarting())
}

/// No route took the request: 405 with `Allow` when the path is an endpoint's (the method is
/// wrong), 404 otherwise.
async fn no_route(
    req: HttpRequest,
    doc: web::Data<openapi::Served>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let methods = doc.methods_of(req.path());
    if methods.is_empty() {
        return Err(ApiError::NotFound("no such endpoint".into()));
    }
    let mut res = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed(format!(
        "{} is not allowed here",
        req.method()
    )));
    if let Ok(allow) = actix_web::http::header::HeaderValue::from_str(&methods.join(", ")) {
        res.headers_mut()
            .insert(actix_web::http::header::ALLOW, allow);
    }
    Ok(res)
}

/// Every route of the API, each with its OpenAPI description.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.configure(serving::routes)
        .configure(status::routes)
        .configure(leases::routes)
        .configure(managed::routes)
        .configure(monitors::routes)
        .configure(admin::routes)
        .configure(alerts::routes)
        .configure(logs::routes)
        .configure(usage::routes)
        .configure(metrics::routes)
        .configure(dashboard::routes)
        .configure(openapi::routes);
}

pub fn server(shared: Arc<Shared>, listener: std::net::TcpListener) -> std::io::Result<Server> {
    use utoipa_actix_web::AppExt;
    let workers = match shared.config.server.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let doc = web::Data::new(openapi::Served::new(&openapi::document(
        routes,
        &shared.config,
    )));
    let data = web::Data::from(shared);
    let server = HttpServer::new(move || {
        let draining = data.clone();
        let (app, _) = App::new()
            .into_utoipa_app()
            .configure(routes)
            .split_for_parts();
        app.app_data(data.clone())
            .app_data(doc.clone())
            // During the drain every answer closes its connection, so clients reconnect
            // elsewhere rather than reuse one that is about to close.
            .wrap_fn(move |req, srv| {
                let stopping = draining.stopping.load(std::sync::atomic::Ordering::Relaxed);
                // Compressed request bodies are refused before anything inflates them: a
                // small gzip body can inflate a thousandfold before any size check.
                let encoded = req
                    .headers()
                    .get(actix_web::http::header::CONTENT_ENCODING)
                    .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
                let call = if encoded {
                    Err(req.error_response(ApiError::UnsupportedMediaType(
                        "compressed request bodies are not accepted (Content-Encoding)".into(),
                    )))
                } else {
                    Ok(actix_web::dev::Service::call(srv, req))
                };
                async move {
                    let mut res = match call {
                        Ok(fut) => fut.await?.map_into_boxed_body(),
                        Err(refused) => refused,
                    };
                    if stopping {
                        res.response_mut()
                            .head_mut()
                            .set_connection_type(actix_web::http::ConnectionType::Close);
                    }
                    Ok(res)
                }
            })
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                // A parameter's own message (`unknown strategy ...`) as it is; serde's
                // without the values it quotes.
                let e = match e {
                    actix_web::error::QueryPayloadError::Deserialize(inner) => inner.to_string(),
                    other => other.to_string(),
                };
                let e = error::without_values(&e);
                ApiError::BadRequest(format!("bad query string: {e}")).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                let e = error::without_values(&e.to_string());
                ApiError::BadRequest(format!("bad path: {e}")).into()
            }))
            // Bodies (JSON ones included: `body::Json` reads bytes) have one limit; actix's 413
            // is rewritten into the error JSON by `json_errors`.
            .app_data(web::PayloadConfig::default().limit(BODY_LIMIT))
            .wrap_fn(|req, srv| {
                let call = match auth::admin_gate(&req) {
                    Ok(()) => Ok(actix_web::dev::Service::call(srv, req)),
                    Err(e) => Err(req.error_response(e)),
                };
                async move {
                    match call {
                        Ok(fut) => Ok(fut.await?.map_into_boxed_body()),
                        Err(refused) => Ok(refused),
                    }
                }
            })
            .wrap(ErrorHandlers::new().default_handler(error::json_errors))
            .default_service(web::to(no_route))
    })
    .workers(workers)
    .shutdown_timeout(10)
    // actix-server would answer SIGTERM/SIGINT by stopping the whole actix system, actors
    // included, before the final write of the pool; `Application` handles the signals itself.
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
