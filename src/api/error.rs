//! Errors as the API answers them: `{"error":{"code":"...","message":"..."}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// The error JSON every refusal answers: `{"error":{"code":"...","message":"..."}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

impl ErrorBody {
    pub fn new(code: &str, message: String) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message,
            },
        }
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code: `bad_request`, `unauthorized`, `not_found`,
    /// `method_not_allowed`, `conflict`, `payload_too_large`, `unsupported_media_type`,
    /// `unavailable`, ...
    #[schema(example = "bad_request")]
    pub code: String,
    /// What was wrong, for people; it never repeats a secret.
    pub message: String,
}

/// The refusals an operation may answer, one type per status, listed in each operation's
/// `responses(...)` (see [`crate::api::openapi`]).
pub mod refusals {
    // Types for the document only: they are never built.
    #![allow(dead_code)]
    use super::ErrorBody;

    /// A parameter or the body is malformed or out of range (the message names it).
    #[derive(utoipa::IntoResponses)]
    #[response(status = 400)]
    pub struct BadRequest(ErrorBody);

    /// A valid bearer token is required (`WWW-Authenticate: Bearer`).
    #[derive(utoipa::IntoResponses)]
    #[response(status = 401)]
    pub struct Unauthorized(ErrorBody);

    /// Nothing of that name (or id).
    #[derive(utoipa::IntoResponses)]
    #[response(status = 404)]
    pub struct NotFound(ErrorBody);

    /// The path exists, the method does not (`Allow` lists those that do).
    #[derive(utoipa::IntoResponses)]
    #[response(status = 405)]
    pub struct MethodNotAllowed(ErrorBody);

    /// It exists already, or belongs to the config file.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 409)]
    pub struct Conflict(ErrorBody);

    /// The body is larger than 64 KiB.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 413)]
    pub struct PayloadTooLarge(ErrorBody);

    /// The body is compressed (`Content-Encoding`), or not JSON where JSON is taken.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 415)]
    pub struct UnsupportedMediaType(ErrorBody);

    /// The actor that answers is restarting, the store is away, or the service is stopping:
    /// try again.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 503)]
    pub struct Unavailable(ErrorBody);
}

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
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unavailable(_) => "unavailable",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::MethodNotAllowed(_) => "method_not_allowed",
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
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unauthorized) {
            r.insert_header(("WWW-Authenticate", "Bearer"));
        }
        r.json(ErrorBody::new(self.code(), self.to_string()))
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

/// The error code of a status that actix answered by itself (an extractor without an error
/// handler of ours, such as `web::Bytes` over its limit).
pub fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        431 => "headers_too_large",
        503 => "unavailable",
        _ if status.is_client_error() => "client_error",
        _ => "internal_error",
    }
}

/// Rewrites an error answer that is not our error JSON (actix's plain-text errors, the empty
/// 405 of a method guard...) into `{"error":{"code","message"}}`, keeping its status and
/// headers; actix's text, when short, is the message.
pub fn json_errors<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>>
where
    B: actix_web::body::MessageBody + 'static,
{
    use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
    use actix_web::middleware::ErrorHandlerResponse;
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, res) = res.into_parts();
    let status = res.status();
    Ok(ErrorHandlerResponse::Future(Box::pin(async move {
        let (mut head, body) = res.into_parts();
        let text = actix_web::body::to_bytes_limited(body, 1024)
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let too_large = status == StatusCode::PAYLOAD_TOO_LARGE;
        let text = if too_large {
            Some(format!(
                "the body is larger than {} KiB",
                super::BODY_LIMIT / 1024
            ))
        } else {
            text
        };
        let message = text.unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("the request was refused")
                .to_string()
        });
        let body =
            serde_json::to_string(&ErrorBody::new(code_of(status), message)).unwrap_or_default();
        head.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        head.headers_mut()
            .remove(actix_web::http::header::CONTENT_LENGTH);
        let res = head.set_body(body).map_into_boxed_body();
        Ok(actix_web::dev::ServiceResponse::new(req, res).map_into_right_body())
    })))
}

/// A refused change (of a managed proxy or a monitor) as the API answers it.
impl From<crate::bus::messages::ChangeError> for ApiError {
    fn from(e: crate::bus::messages::ChangeError) -> Self {
        use crate::bus::messages::ChangeError;
        match e {
            ChangeError::Invalid(m) => ApiError::BadRequest(m),
            ChangeError::NotFound(m) => ApiError::NotFound(m),
            ChangeError::Conflict(m) => ApiError::Conflict(m),
            ChangeError::Store(m) => ApiError::Unavailable(m),
        }
    }
}
