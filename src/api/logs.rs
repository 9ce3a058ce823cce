//! `GET /api/logs?limit=N&level=LEVEL` (admin): the last log records kept in memory by
//! `logbuf`, newest last. Reads the ring only (a lock held for a copy), never the store.

use super::error::refusals::{BadRequest, Unauthorized};
use super::error::ApiError;
use crate::clock::rfc3339;
use crate::domain::selection::parse_count;
use crate::logbuf;
use actix_web::{get, web, HttpResponse};
use log::LevelFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

/// Records answered when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 1000;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// The newest this many records (default 100), 1 to 1000.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// This level and more severe ones (default `trace`: all).
    #[param(value_type = Option<LevelName>, inline)]
    level: Option<String>,
}

/// Log levels.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum LevelName {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// One log record.
#[derive(Serialize, ToSchema)]
pub struct LogRecord {
    at: String,
    #[schema(value_type = LevelName)]
    level: String,
    /// The module that logged it.
    target: String,
    message: String,
}

#[derive(Serialize, ToSchema)]
pub struct LogsAnswer {
    count: usize,
    limit: usize,
    #[schema(value_type = LevelName)]
    level: String,
    /// Records the ring keeps.
    capacity: usize,
    /// Oldest first.
    logs: Vec<LogRecord>,
}

/// The last log records kept in memory, newest last (never a secret: see the README).
#[utoipa::path(
    tag = "admin",
    params(LogsQuery),
    responses((status = 200, body = LogsAnswer), BadRequest, Unauthorized),
    security(("admin_token" = [])),
)]
#[get("/api/logs")]
async fn list(q: web::Query<LogsQuery>) -> Result<HttpResponse, ApiError> {
    let limit = parse_count(q.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT, "limit")
        .map_err(ApiError::BadRequest)?;
    let level = match &q.level {
        None => LevelFilter::Trace,
        Some(raw) => logbuf::parse_level(raw).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`level` must be error, warn, info, debug or trace, got `{}`",
                raw.chars().take(16).collect::<String>()
            ))
        })?,
    };
    let ring = logbuf::ring();
    let entries = ring.recent(limit, level);
    let logs: Vec<LogRecord> = entries
        .iter()
        .map(|e| LogRecord {
            at: rfc3339(e.at),
            level: e.level.as_str().to_ascii_lowercase(),
            target: e.target.to_string(),
            message: e.message.to_string(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(LogsAnswer {
        count: logs.len(),
        limit,
        level: level.as_str().to_ascii_lowercase(),
        capacity: ring.capacity(),
        logs,
    }))
}
