//! JSON request bodies as the contract reads them: `Content-Type: application/json`, at most
//! [`BODY_LIMIT`](super::BODY_LIMIT) bytes, and numbers as JSON Schema counts them, so that
//! `5.0` is the integer 5 wherever an integer is asked for (serde alone refuses it). A body that
//! does not parse is a 400 whose message never repeats its values.

use super::error::{bad_body, ApiError};
use actix_web::dev::Payload;
use actix_web::mime;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A JSON body of `T`'s shape (see the module's notes).
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .mime_type()
            .ok()
            .flatten()
            .is_some_and(|m| m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::BadRequest(
                    "the body must be JSON, sent with `Content-Type: application/json`".into(),
                )
                .into());
            }
            let bytes = bytes.await?;
            Ok(Json(parse(&bytes)?))
        })
    }
}

/// `T` from a JSON text, integral numbers written as floats (`5.0`) taken as integers.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(bad_body)?;
    whole_numbers(&mut value);
    T::deserialize(value).map_err(bad_body)
}

/// An optional JSON body: none (empty, or `null`) is `T::default()`; otherwise a JSON object of
/// `T`'s fields, or a 400.
pub fn optional<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    let text = bytes.trim_ascii();
    if text.is_empty() || text == b"null" {
        return Ok(T::default());
    }
    if !text.starts_with(b"{") {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object (or empty)".into(),
        ));
    }
    parse(text)
}

/// Rewrites every float with no fractional part that fits an integer as that integer.
fn whole_numbers(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 {
                if f >= -(2f64.powi(63)) && f < 2f64.powi(63) {
                    *v = Value::from(f as i64);
                } else if f >= 0.0 && f < 2f64.powi(64) {
                    *v = Value::from(f as u64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct B {
        n: Option<u32>,
        x: Option<f64>,
    }

    #[test]
    fn integral_floats_are_integers_and_fractions_are_not() {
        assert_eq!(
            parse::<B>(br#"{"n": 561.0, "x": 2.0}"#).unwrap(),
            B {
                n: Some(561),
                x: Some(2.0)
            }
        );
        assert!(parse::<B>(br#"{"n": 1.5}"#).is_err());
        assert!(parse::<B>(br#"{"n": -1.0}"#).is_err());
        assert!(parse::<B>(br#"{"n": 1e300}"#).is_err());
    }

    #[test]
    fn optional_bodies() {
        assert_eq!(optional::<B>(b"").unwrap(), B::default());
        assert_eq!(optional::<B>(b" null ").unwrap(), B::default());
        assert_eq!(optional::<B>(br#"{"n": 2}"#).unwrap().n, Some(2));
        assert!(optional::<B>(b"[]").is_err());
        assert!(optional::<B>(b"5").is_err());
        assert!(optional::<B>(br#"{"y": 1}"#).is_err());
    }
}
