//! Bearer tokens: the admin token for admin endpoints, the optional client token for serving.

use super::error::ApiError;
use crate::state::Shared;
use actix_web::HttpRequest;

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares without leaking, through timing, how much of the token was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn require_admin(req: &HttpRequest, shared: &Shared) -> Result<(), ApiError> {
    match bearer(req) {
        Some(t) if same(t, &shared.admin_token) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Serving endpoints are open unless `server.client_token` is set.
pub fn require_client(req: &HttpRequest, shared: &Shared) -> Result<(), ApiError> {
    match &shared.config.server.client_token {
        None => Ok(()),
        Some(expected) => match bearer(req) {
            Some(t) if same(t, expected) || same(t, &shared.admin_token) => Ok(()),
            _ => Err(ApiError::Unauthorized),
        },
    }
}
