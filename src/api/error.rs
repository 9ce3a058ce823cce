//! Errors as the API answers them: `{"error":{"code":"...","message":"..."}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unauthorized) {
            r.insert_header(("WWW-Authenticate", "Bearer"));
        }
        r.json(json!({"error": {"code": self.code(), "message": self.to_string()}}))
    }
}

/// A parse error's text without the values it quotes (see [`crate::redact::quoted_values`]).
pub fn without_values(text: &str) -> String {
    crate::redact::quoted_values(text)
}

/// `bad JSON body: …` for a body that does not parse, without the values it holds.
pub fn bad_body(e: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("bad JSON body: {}", without_values(&e.to_string())))
}

/// A refused change (of a managed proxy or a monitor) as the API answers it.
impl From<crate::actors::messages::ChangeError> for ApiError {
    fn from(e: crate::actors::messages::ChangeError) -> Self {
        use crate::actors::messages::ChangeError;
        match e {
            ChangeError::Invalid(m) => ApiError::BadRequest(m),
            ChangeError::NotFound(m) => ApiError::NotFound(m),
            ChangeError::Conflict(m) => ApiError::Conflict(m),
            ChangeError::Store(m) => ApiError::Unavailable(m),
        }
    }
}
