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

#[cfg(test)]
mod tests {
    //! The document's patterns against the validators they describe: whatever a pattern takes
    //! the validator takes (else a schema-valid request would be refused), and the samples
    //! below are judged alike by both.

    use super::*;

    fn doc() -> serde_json::Value {
        document(super::super::routes, &crate::config::Config::default())
    }

    fn pattern(doc: &serde_json::Value, pointer: &str) -> regex::Regex {
        let p = doc
            .pointer(pointer)
            .and_then(|p| p.as_str())
            .unwrap_or_else(|| panic!("no pattern at {pointer}"));
        regex::Regex::new(p).unwrap_or_else(|e| panic!("{pointer}: {e}"))
    }

    fn agree(re: &regex::Regex, accepts: impl Fn(&str) -> bool, samples: &[&str]) {
        for s in samples {
            assert_eq!(re.is_match(s), accepts(s), "{s:?}: pattern {re}");
        }
    }

    #[test]
    fn names_are_documented_as_checked() {
        let d = doc();
        let long = "n".repeat(64);
        let longer = "n".repeat(65);
        let samples = [
            "a",
            " a ",
            "paid-1",
            "ñame",
            "a b",
            &long,
            &longer,
            "",
            " ",
            "a/b",
            "a\u{1}b",
            "\u{85}a",
            "a\u{2028}",
            "\u{1c}a",
            "\u{3000}x\u{3000}",
            "\ta\n",
            "a\u{9f}",
        ];
        let valid = |s: &str| crate::domain::managed::checked_name(s).is_ok();
        for at in [
            "/components/schemas/ManagedProxyConfig/properties/name/pattern",
            "/components/schemas/MonitorConfig/properties/name/pattern",
        ] {
            agree(&pattern(&d, at), valid, &samples);
        }
    }

    #[test]
    fn proxy_urls_are_documented_as_parsed() {
        let d = doc();
        let re = pattern(
            &d,
            "/components/schemas/ManagedProxyConfig/properties/url/pattern",
        );
        let valid = |s: &str| {
            crate::domain::proxy::Endpoint::parse(s, crate::domain::proxy::Protocol::Http).is_ok()
        };
        agree(
            &re,
            valid,
            &[
                "http://1.2.3.4:80",
                "socks5://u:p@host.example:1080",
                "https://proxy_1.example:65535/",
                "http://a:0",
                "http://a:65536",
                "ftp://a:1",
                "http://1.2.3:80",
                "http://host",
                "http://host:80/x",
                "http://ho st:80",
            ],
        );
        // Narrower than the parser where the pattern would be unreadable: an IPv6 host.
        assert!(valid("http://[::1]:80") && !re.is_match("http://[::1]:80"));
    }

    #[test]
    fn http_urls_are_documented_as_parsed() {
        let d = doc();
        let re = pattern(
            &d,
            "/components/schemas/MonitorConfig/properties/url/pattern",
        );
        let valid = |s: &str| crate::config::http_url(s).is_ok();
        agree(
            &re,
            valid,
            &[
                "http://a.example/health",
                "https://x:443/p?q=1",
                "http://1.2.3.4/",
                "http://user:pw@host.example:8080/x",
                "ftp://a/",
                "http://",
                "http://a:99999/",
            ],
        );
        // Narrower than the `url` crate where it is lenient: it reads `http:///x` as `http://x/`.
        assert!(valid("http:///x") && !re.is_match("http:///x"));
        let base = regex::Regex::new(crate::config::API_BASE_PATTERN).unwrap();
        for ok in ["https://api.render.com", "http://127.0.0.1:9/"] {
            assert!(base.is_match(ok), "{ok}");
        }
        for bad in ["https://api.render.com/v1", "api.render.com"] {
            assert!(!base.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn every_contract_route_is_in_the_document_with_its_error_json() {
        let d = doc();
        let paths = d["paths"].as_object().unwrap();
        for (method, path) in [
            ("get", "/api/proxy/alive"),
            ("get", "/api/proxies"),
            ("get", "/list"),
            ("get", "/random"),
            ("post", "/api/proxy/report"),
            ("post", "/api/leases"),
            ("post", "/api/leases/{id}/renew"),
            ("delete", "/api/leases/{id}"),
            ("get", "/api/allocation"),
            ("get", "/health"),
            ("get", "/api/health"),
            ("get", "/api/health/comprehensive"),
            ("get", "/stats"),
            ("get", "/api/ultra/stats"),
            ("get", "/api/resurrection/stats"),
            ("get", "/api/ultra/demo"),
            ("get", "/api/v1/proxy/status"),
            ("get", "/api/monitors"),
            ("get", "/api/alerts"),
            ("get", "/metrics"),
            ("get", "/"),
            ("get", "/api/logs"),
            ("post", "/api/force/accept"),
            ("post", "/api/v1/proxy/health-check"),
            ("post", "/api/admin/proxies"),
            ("patch", "/api/admin/proxies"),
            ("delete", "/api/admin/proxies"),
            ("post", "/api/admin/sources/{name}/fetch"),
            ("post", "/api/admin/monitors"),
            ("delete", "/api/admin/monitors"),
            ("post", "/api/admin/monitors/{name}/restart"),
            ("post", "/api/admin/alerts/test"),
            ("post", "/api/admin/actors/{name}/restart"),
            ("post", "/api/admin/actors/{name}/crash"),
            ("get", "/api/openapi.json"),
        ] {
            let op = &paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} is not in the document"))[method];
            assert!(op.is_object(), "{method} {path} is not in the document");
            let admin = crate::api::auth::is_admin_path(path);
            let security = op["security"].to_string();
            assert_eq!(
                security.contains("admin_token"),
                admin,
                "{method} {path}: {security}"
            );
            if admin {
                let refused = &op["responses"]["401"]["content"]["application/json"]["schema"];
                assert_eq!(refused["$ref"], "#/components/schemas/ErrorBody", "{path}");
            }
        }
        assert_eq!(d["openapi"], "3.1.0");
        let schemes = &d["components"]["securitySchemes"];
        assert_eq!(schemes["admin_token"]["scheme"], "bearer");
        assert_eq!(schemes["client_token"]["scheme"], "bearer");
    }
}

#[cfg(test)]
mod refs {
    /// Every `$ref` of the document names a schema it holds (tools refuse the rest).
    #[test]
    fn every_reference_resolves() {
        fn walk(v: &serde_json::Value, doc: &serde_json::Value, seen: &mut usize) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                        let pointer = r.strip_prefix('#').expect("a local reference");
                        assert!(doc.pointer(pointer).is_some(), "unresolved {r}");
                        *seen += 1;
                    }
                    m.values().for_each(|x| walk(x, doc, seen));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, doc, seen)),
                _ => {}
            }
        }
        let doc = super::document(super::super::routes, &crate::config::Config::default());
        let mut seen = 0;
        walk(&doc, &doc, &mut seen);
        assert!(seen > 50, "{seen} references");
    }
}
