//! `GET /api/openapi.json`: the OpenAPI 3.1 document of this API, generated from the handlers
//! and their types (utoipa, collected route by route by utoipa-actix-web), with the limits this
//! instance's config sets (`server.max_count`, the check profiles' names) written in. The same
//! document tells the 405 answers which methods a path has (`Allow`).

use super::error::ApiError;
use actix_web::{get, web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;

/// The `maximum` written on `count`/`limit` parameters in the handlers' annotations, replaced
/// by `server.max_count` in the served document.
pub const MAX_COUNT_PLACEHOLDER: f64 = 10000.0;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Proxyvisor",
        description = "A ready pool of working proxies, and hosted services kept up. \
                       Errors are `{\"error\":{\"code\",\"message\"}}`.",
        license(name = "MIT"),
    ),
    modifiers(&Security),
    tags(
        (name = "serving", description = "Proxies for clients (`server.client_token` when set)"),
        (name = "leases", description = "Capacity-limited leases"),
        (name = "status", description = "Health, stats and views (open)"),
        (name = "admin", description = "Changes and controls (admin token)"),
        (name = "contract", description = "This document"),
    ),
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(what))
                    .build(),
            )
        };
        components.add_security_scheme(
            "admin_token",
            bearer(
                "`server.admin_token` (or the one generated at first start into \
                 `data/admin_token`)",
            ),
        );
        components.add_security_scheme(
            "client_token",
            bearer(
                "`server.client_token`, when it is set (the admin token works too); \
                 serving is open otherwise",
            ),
        );
    }
}

/// The document, as served: built from every route `configure` registers, then fitted to
/// `config`.
pub fn document(
    configure: impl FnOnce(&mut ServiceConfig),
    config: &crate::config::Config,
) -> serde_json::Value {
    let (_, paths) = actix_web::App::new()
        .into_utoipa_app()
        .configure(configure)
        .split_for_parts();
    let mut doc = ApiDoc::openapi();
    doc.merge(paths);
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    fit_to_config(doc, config)
}

/// Writes this instance's limits into the document: `count`/`limit` bounded by
/// `server.max_count`; `profile` takes the configured profile names (and is left out when
/// there is none).
fn fit_to_config(doc: Document, config: &crate::config::Config) -> serde_json::Value {
    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    let max = config.server.max_count as f64;
    let profiles: Vec<serde_json::Value> = config
        .validation
        .profiles
        .iter()
        .map(|p| p.name.clone().into())
        .collect();
    if let Some(schemas) = value
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        schemas.insert(
            "RecoveryConfig".into(),
            crate::config::RecoveryConfig::api_schema(),
        );
    }
    set_max_count(&mut value, max);
    link_names(&mut value);
    if let Some(paths) = value.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for item in paths.values_mut().filter_map(|i| i.as_object_mut()) {
            for op in item.values_mut().filter_map(|o| o.as_object_mut()) {
                let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) else {
                    continue;
                };
                params.retain(|p| p["name"] != "profile" || !profiles.is_empty());
                for p in params.iter_mut().filter(|p| p["name"] == "profile") {
                    let mut names = profiles.clone();
                    names.insert(0, "".into());
                    p["schema"] = serde_json::json!({"type": "string", "enum": names});
                }
            }
        }
    }
    value
}

/// utoipa 5.5 writes a link's `operationId` as `operation_id` (and `operationRef` as
/// `operation_ref`); the document says them as OpenAPI does.
fn link_names(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Object(links)) = m.get_mut("links") {
                for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
                    for (from, to) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                    ] {
                        if let Some(x) = link.remove(from) {
                            link.insert(to.into(), x);
                        }
                    }
                }
            }
            m.values_mut().for_each(link_names);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(link_names),
        _ => {}
    }
}

/// Every `maximum` that is the placeholder becomes `server.max_count`.
fn set_max_count(v: &mut serde_json::Value, max: f64) {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("maximum").and_then(|x| x.as_f64()) == Some(MAX_COUNT_PLACEHOLDER) {
                m.insert("maximum".into(), max.into());
            }
            m.values_mut().for_each(|x| set_max_count(x, max));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| set_max_count(x, max)),
        _ => {}
    }
}

/// The document as JSON text, and each path's methods (for `Allow`).
pub struct Served {
    pub json: String,
    routes: Vec<(Vec<String>, Vec<String>)>,
}

impl Served {
    pub fn new(value: &serde_json::Value) -> Served {
        let json = value.to_string();
        let routes = value["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, item)| {
                        let segments = path.split('/').map(str::to_string).collect();
                        let mut methods: Vec<String> = item
                            .as_object()
                            .map(|o| {
                                o.keys()
                                    .filter(|k| {
                                        ["get", "post", "put", "patch", "delete"]
                                            .contains(&k.as_str())
                                    })
                                    .map(|k| k.to_ascii_uppercase())
                                    .collect()
                            })
                            .unwrap_or_default();
                        if methods.iter().any(|m| m == "GET") {
                            methods.push("HEAD".into());
                        }
                        (segments, methods)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Served { json, routes }
    }

    /// The methods the path has (by its templates: `{name}` matches one segment), or none
    /// when no operation has that path.
    pub fn methods_of(&self, path: &str) -> Vec<String> {
        let asked: Vec<&str> = path.split('/').collect();
        let mut methods: Vec<String> = Vec::new();
        for (segments, m) in &self.routes {
            let matches = segments.len() == asked.len()
                && segments
                    .iter()
                    .zip(&asked)
                    .all(|(t, a)| (t.starts_with('{') && !a.is_empty()) || t == a);
            if matches {
                for x in m {
                    if !methods.contains(x) {
                        methods.push(x.clone());
                    }
                }
            }
        }
        methods
    }
}

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(openapi_json);
}

/// This document.
#[utoipa::path(
    tag = "contract",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json",
               body = Object)),
)]
#[get("/api/openapi.json")]
async fn openapi_json(doc: web::Data<Served>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.json.clone()))
}
