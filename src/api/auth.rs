//! Bearer tokens: the admin token for admin endpoints, the optional client token for serving.

use super::error::ApiError;
use crate::state::Shared;
use actix_web::HttpRequest;
use secrecy::ExposeSecret;

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

use crate::redact::same_secret as same;

/// Paths that need the admin token: everything under `/api/admin/`, plus the few admin
/// endpoints that the contract placed elsewhere.
pub fn is_admin_path(path: &str) -> bool {
    const ELSEWHERE: [&str; 4] = [
        "/api/logs",
        "/api/force/accept",
        "/api/v1/proxy/health-check",
        "/api/usage",
    ];
    let path = path.trim_end_matches('/');
    path == "/api/admin" || path.starts_with("/api/admin/") || ELSEWHERE.contains(&path)
}

/// The one guard of the admin endpoints, run before routing: without the admin token an admin
/// path answers 401, whatever its method, body, query or the names in it (nothing about them
/// is revealed, and no extractor reads the body first).
pub fn admin_gate(req: &actix_web::dev::ServiceRequest) -> Result<(), ApiError> {
    if !is_admin_path(req.path()) {
        return Ok(());
    }
    let shared = req
        .app_data::<actix_web::web::Data<Shared>>()
        .ok_or(ApiError::Unauthorized)?;
    match bearer(req.request()) {
        Some(t) if same(t, shared.admin_token()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Serving endpoints are open unless `server.client_token` is set.
pub fn require_client(req: &HttpRequest, shared: &Shared) -> Result<(), ApiError> {
    match &shared.config.server.client_token {
        None => Ok(()),
        Some(expected) => match bearer(req) {
            Some(t) if same(t, expected.expose_secret()) || same(t, shared.admin_token()) => Ok(()),
            _ => Err(ApiError::Unauthorized),
        },
    }
}
