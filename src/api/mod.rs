//! The HTTP API (actix-web). Serving handlers read the published snapshot only: no lock, no
//! database, no waiting on validation.

pub mod admin;
pub mod alerts;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod leases;
pub mod logs;
pub mod managed;
pub mod metrics;
pub mod monitors;
pub mod naming;
pub mod serving;
pub mod status;

use crate::state::Shared;
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use error::ApiError;
use std::sync::Arc;

pub fn server(shared: Arc<Shared>, listener: std::net::TcpListener) -> std::io::Result<Server> {
    let workers = match shared.config.server.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let data = web::Data::from(shared);
    let server = HttpServer::new(move || {
        let draining = data.clone();
        App::new()
            .app_data(data.clone())
            // During the drain every answer closes its connection, so clients reconnect
            // elsewhere rather than reuse one that is about to close.
            .wrap_fn(move |req, srv| {
                let stopping = draining.stopping.load(std::sync::atomic::Ordering::Relaxed);
                let fut = actix_web::dev::Service::call(srv, req);
                async move {
                    let mut res = fut.await?;
                    if stopping {
                        res.response_mut()
                            .head_mut()
                            .set_connection_type(actix_web::http::ConnectionType::Close);
                    }
                    Ok(res)
                }
            })
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                let e = error::without_values(&e.to_string());
                ApiError::BadRequest(format!("bad query string: {e}")).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                let e = error::without_values(&e.to_string());
                ApiError::BadRequest(format!("bad path: {e}")).into()
            }))
            .app_data(
                web::JsonConfig::default()
                    .limit(64 * 1024)
                    // Without the values: a mistyped field may hold a secret.
                    .error_handler(|e, _| error::bad_body(e).into()),
            )
            .configure(serving::routes)
            .configure(status::routes)
            .configure(leases::routes)
            .configure(managed::routes)
            .configure(monitors::routes)
            .configure(admin::routes)
            .configure(alerts::routes)
            .configure(logs::routes)
            .configure(metrics::routes)
            .configure(dashboard::routes)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound("no such endpoint".into()))
            }))
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
