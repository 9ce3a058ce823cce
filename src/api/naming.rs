//! Which resource an admin PATCH or DELETE names: in the path, the query (`?name=`) or the body.

use super::error::ApiError;
use serde::Deserialize;

/// `?name=` (or `{"name": ...}` in a body): which resource a PATCH or DELETE means.
#[derive(Deserialize, Default, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NameQuery {
    /// The resource's name (it must agree with the path's and the body's, when given).
    pub name: Option<String>,
}

/// The one name given (they must agree when given more than once); `what` says how to give it,
/// e.g. `/api/admin/proxies/{name}`.
pub fn target_name(
    what: &str,
    path: Option<String>,
    query: Option<String>,
    body: Option<String>,
) -> Result<String, ApiError> {
    let names: Vec<String> = [path, query, body].into_iter().flatten().collect();
    match names.as_slice() {
        [] => Err(ApiError::BadRequest(format!(
            "give a name: {what}, ?name= or `name` in the body"
        ))),
        [first, rest @ ..] if rest.iter().all(|n| n == first) => checked(first.clone()),
        _ => Err(ApiError::BadRequest(
            "the names in the path, query and body differ".into(),
        )),
    }
}

/// Longer than any name a managed proxy or a monitor may have (64 characters).
pub const MAX_NAME_CHARS: usize = 128;

/// A name as asked for: one too long to exist is refused here, so that no answer repeats it.
pub fn checked(name: String) -> Result<String, ApiError> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::BadRequest(format!(
            "a name has at most {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name)
}

/// The `name` of an optional JSON body (`{"name": ...}`); an empty body names nothing.
pub struct BodyName(pub Option<String>);

impl actix_web::FromRequest for BodyName {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        let bytes = actix_web::web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await?;
            Ok(BodyName(super::body::optional::<NameQuery>(&bytes)?.name))
        })
    }
}

/// The name a DELETE gives in its path, query or optional JSON body.
pub fn named(
    what: &str,
    path: Option<actix_web::web::Path<String>>,
    query: actix_web::web::Query<NameQuery>,
    body: BodyName,
) -> Result<String, ApiError> {
    target_name(
        what,
        path.map(|p| p.into_inner()),
        query.into_inner().name,
        body.0,
    )
}
