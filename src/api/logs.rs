//! `GET /api/logs?limit=N&level=LEVEL` (admin): the last log records kept in memory by
//! `logbuf`, newest last. Reads the ring only (a lock held for a copy), never the store.

use super::error::ApiError;
use crate::clock::rfc3339;
use crate::domain::selection::parse_count;
use crate::logbuf;
use actix_web::{web, HttpResponse};
use log::LevelFilter;
use serde_json::json;
use std::collections::HashMap;

/// Records answered when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 1000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/logs", web::get().to(list));
}

async fn list(q: web::Query<HashMap<String, String>>) -> Result<HttpResponse, ApiError> {
    let limit = parse_count(
        q.get("limit").map(String::as_str),
        DEFAULT_LIMIT,
        MAX_LIMIT,
        "limit",
    )
    .map_err(ApiError::BadRequest)?;
    let level = match q.get("level") {
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
    let logs: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({
                "at": rfc3339(e.at),
                "level": e.level.as_str().to_ascii_lowercase(),
                "target": e.target,
                "message": e.message,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "count": logs.len(),
        "limit": limit,
        "level": level.as_str().to_ascii_lowercase(),
        "capacity": ring.capacity(),
        "logs": logs,
    })))
}
