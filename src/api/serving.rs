//! Serving proxies: `/api/proxy/alive`, `/api/proxies`, `/list`, `/random`.

use super::auth::require_client;
use super::error::refusals::{BadRequest, NotFound, Unauthorized, Unavailable};
use super::error::ApiError;
use super::params::{Country, Flag, Param};
use crate::clock::rfc3339_opt;
use crate::domain::choice::{self, Ask};
use crate::domain::lifecycle::Tier;
use crate::domain::proxy::{Anonymity, Protocol};
use crate::domain::selection::{self, Filter, Selection, Served, Strategy};
use crate::published::loads::Loads;
use crate::published::pool::PoolSnapshot;
use crate::state::Shared;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(alive)
        .service(proxies)
        .service(list)
        .service(random)
        .service(report);
}

/// The parameters of `/api/proxy/alive` and `/api/proxies`. Each is read as text and checked
/// by the handler, so a bad one gets a message naming it; unknown parameters are ignored.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServingQuery {
    /// How many proxies (default 10), 1 to `server.max_count`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    count: Option<String>,
    /// Order of the answer: `fastest` (default), `cheapest`, `random` or `least_loaded`. Here
    /// and below, an empty value is the same as none.
    #[param(value_type = Option<String>, pattern = "^(|fastest|cheapest|random|least_loaded)$")]
    strategy: Option<Param<Strategy>>,
    /// Only proxies of this protocol: `http`, `https`, `socks4` or `socks5`.
    #[param(value_type = Option<String>, pattern = "^(|http|https|socks4|socks5)$")]
    protocol: Option<Param<Protocol>>,
    /// Only proxies of this anonymity level (needs `validation.judge_url`): `transparent`,
    /// `anonymous` or `elite`.
    #[param(value_type = Option<String>, pattern = "^(|transparent|anonymous|elite)$")]
    anonymity: Option<Param<Anonymity>>,
    /// Only proxies in this country (ISO 3166 two-letter code, any case; empty: any).
    #[param(value_type = Option<String>, pattern = "^([A-Za-z]{2})?$")]
    country: Option<Param<Country>>,
    /// Only proxies that pass this check profile (a `[[validation.profiles]]` name; empty:
    /// none).
    #[param(value_type = Option<String>)]
    profile: Option<String>,
    /// `true` (or `1`) adds `details` (per proxy: tier, latency, success rate, ...).
    #[param(value_type = Option<String>, pattern = "^(|true|false|1|0)$")]
    detail: Option<Param<Flag>>,
}

/// `strategy` values.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum StrategyName {
    Fastest,
    Cheapest,
    Random,
    LeastLoaded,
}

/// `protocol` values.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ProtocolName {
    Http,
    Https,
    Socks4,
    Socks5,
}

/// `anonymity` values.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AnonymityName {
    Transparent,
    Anonymous,
    Elite,
}

/// `/list`'s parameter.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many lines (default: every serving proxy), 1 to `server.max_count`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    limit: Option<String>,
}

/// Answers of `/api/proxy/alive` and `/api/proxies` without `count` hold this many proxies.
pub const DEFAULT_COUNT: usize = 10;

fn parse_ask(q: &ServingQuery, shared: &Shared) -> Result<Ask, ApiError> {
    let max = shared.config.server.max_count;
    let count = selection::parse_count(q.count.as_deref(), DEFAULT_COUNT, max, "count")
        .map_err(ApiError::BadRequest)?;
    fn given<T: Clone>(p: &Option<Param<T>>) -> Option<T> {
        p.as_ref().and_then(|p| p.0.clone())
    }
    // The profiles are the config's: not a fixed set, so read here.
    let profiles = &shared.config.validation.profiles;
    let profile = choice(
        q.profile
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty()),
        "profile",
        |p| profiles.iter().position(|x| x.name == p),
        "a name from [[validation.profiles]]",
    )?;
    Ok(Ask {
        count,
        strategy: given(&q.strategy).unwrap_or(Strategy::Fastest),
        filter: Filter {
            protocol: given(&q.protocol),
            anonymity: given(&q.anonymity),
            country: given(&q.country).map(|c| c.0),
        },
        profile,
        detail: given(&q.detail).is_some_and(|f| f.0),
    })
}

/// An optional parameter with a fixed set of values; `expected` lists them for the message.
fn choice<T>(
    raw: Option<&str>,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    raw.map(|v| {
        parse(v).ok_or_else(|| {
            ApiError::BadRequest(format!("unknown {name} `{}`: use {expected}", clip(v)))
        })
    })
    .transpose()
}

fn clip(s: &str) -> String {
    s.chars().take(32).collect()
}

/// How many proxies of the answer came from each tier (`dead`: the never-empty fill).
#[derive(Serialize, Default, ToSchema)]
pub struct TiersUsed {
    primary: usize,
    standby: usize,
    emergency: usize,
    dead: usize,
}

/// One proxy of an answer, in detail.
#[derive(Serialize, ToSchema)]
pub struct Detail<'a> {
    /// As handed to clients (managed proxies with their credentials).
    url: &'a str,
    #[schema(value_type = ProtocolName)]
    protocol: &'static str,
    #[schema(value_type = TierName)]
    tier: &'static str,
    latency_ms: Option<u32>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    success_rate: f64,
    #[schema(value_type = Option<AnonymityName>)]
    anonymity: Option<&'static str>,
    country: Option<&'a str>,
    /// `free`, `vps`, `datacenter` or `residential`.
    kind: &'a str,
    cost_per_gb: f64,
    /// RFC 3339.
    last_checked_at: Option<String>,
}

/// A proxy's tier.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum TierName {
    Fresh,
    Primary,
    Standby,
    Emergency,
    Dead,
    Blacklisted,
}

impl<'a> Detail<'a> {
    fn new(s: &'a Served, snap: &'a PoolSnapshot) -> Self {
        Detail {
            url: snap.client_url(&s.url),
            protocol: s.protocol.as_str(),
            tier: s.tier.as_str(),
            latency_ms: s.latency_ms,
            success_rate: (s.success_rate * 1000.0).round() / 1000.0,
            anonymity: s.anonymity.map(Anonymity::as_str),
            country: s.country.as_deref(),
            kind: &s.kind,
            cost_per_gb: s.cost_per_gb,
            last_checked_at: rfc3339_opt(s.last_checked_at),
        }
    }
}

/// The answer of `/api/proxy/alive`.
#[derive(Serialize, ToSchema)]
pub struct AliveAnswer<'a> {
    proxies: Vec<&'a str>,
    count: usize,
    requested: usize,
    tiers_used: TiersUsed,
    degraded: bool,
    /// With `detail=true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Vec<Detail<'a>>>,
}

/// The proxies for a request, from the snapshot and the lease loads (`domain::choice`).
fn choose<'a>(snap: &'a PoolSnapshot, loads: &Loads, ask: &Ask) -> Selection<'a> {
    let load = |url: &str| loads.per_proxy.get(url).copied().unwrap_or(0);
    choice::pick(snap.pool(), ask, load, true, &mut rand::rng())
}

/// What `/api/proxy/alive` and `/api/proxies` start from: the client's right to ask, the parsed
/// parameters, and the snapshot and lease loads the answer is picked from.
fn serving_request(
    req: &HttpRequest,
    shared: &Shared,
    q: &ServingQuery,
) -> Result<(Ask, std::sync::Arc<PoolSnapshot>, std::sync::Arc<Loads>), ApiError> {
    require_client(req, shared)?;
    let ask = parse_ask(q, shared)?;
    Ok((ask, shared.snapshot(), shared.loads.load_full()))
}

/// Working proxies, best first, never empty once a proxy has ever passed (`degraded` says the
/// answer was filled with recently working dead ones).
#[utoipa::path(
    tag = "serving",
    params(ServingQuery),
    responses(
        (status = 200, description = "The proxies", body = AliveAnswer),
        BadRequest, Unauthorized,
    ),
    security((), ("client_token" = [])),
)]
#[get("/api/proxy/alive")]
async fn alive(
    req: HttpRequest,
    shared: web::Data<Shared>,
    q: web::Query<ServingQuery>,
) -> Result<HttpResponse, ApiError> {
    let (ask, snap, loads) = serving_request(&req, &shared, &q)?;
    let sel = choose(&snap, &loads, &ask);
    let mut used = TiersUsed::default();
    for s in &sel.proxies {
        match s.tier {
            Tier::Primary => used.primary += 1,
            Tier::Standby => used.standby += 1,
            Tier::Emergency => used.emergency += 1,
            _ => used.dead += 1,
        }
    }
    let answer = AliveAnswer {
        proxies: sel
            .proxies
            .iter()
            .map(|s| snap.client_url(&s.url))
            .collect(),
        count: sel.proxies.len(),
        requested: ask.count,
        tiers_used: used,
        degraded: sel.degraded,
        details: ask
            .detail
            .then(|| sel.proxies.iter().map(|s| Detail::new(s, &snap)).collect()),
    };
    Ok(HttpResponse::Ok().json(answer))
}

/// The same choice as `/api/proxy/alive`, as a plain JSON array of URLs (the legacy format).
#[utoipa::path(
    tag = "serving",
    params(ServingQuery),
    responses(
        (status = 200, description = "Proxy URLs, best first", body = Vec<String>),
        BadRequest, Unauthorized,
    ),
    security((), ("client_token" = [])),
)]
#[get("/api/proxies")]
async fn proxies(
    req: HttpRequest,
    shared: web::Data<Shared>,
    q: web::Query<ServingQuery>,
) -> Result<HttpResponse, ApiError> {
    let (ask, snap, loads) = serving_request(&req, &shared, &q)?;
    let sel = choose(&snap, &loads, &ask);
    let urls: Vec<&str> = sel
        .proxies
        .iter()
        .map(|s| snap.client_url(&s.url))
        .collect();
    Ok(HttpResponse::Ok().json(urls))
}

/// Serving proxies only, one URL a line, fastest first.
#[utoipa::path(
    tag = "serving",
    params(ListQuery),
    responses(
        (status = 200, description = "One URL a line", body = String,
         content_type = "text/plain; charset=utf-8"),
        BadRequest, Unauthorized,
    ),
    security((), ("client_token" = [])),
)]
#[get("/list")]
async fn list(
    req: HttpRequest,
    shared: web::Data<Shared>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    let max = shared.config.server.max_count;
    let limit = selection::parse_count(q.limit.as_deref(), max, max, "limit")
        .map_err(ApiError::BadRequest)?;
    let snap = shared.snapshot();
    let mut body = String::with_capacity(limit.min(snap.serving.len()) * 28);
    for s in snap.serving.iter().take(limit) {
        body.push_str(snap.client_url(&s.url));
        body.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body))
}

/// One serving proxy: 70% of picks from the fastest half of `/list`'s order, 30% from all.
#[utoipa::path(
    tag = "serving",
    responses(
        (status = 200, description = "One URL and a newline", body = String,
         content_type = "text/plain; charset=utf-8"),
        Unauthorized,
        (status = 503, description = "No serving proxy right now", body = super::error::ErrorBody),
    ),
    security((), ("client_token" = [])),
)]
#[get("/random")]
async fn random(req: HttpRequest, shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    let snap = shared.snapshot();
    match selection::pick_one(&snap.serving, &mut rand::rng()) {
        Some(s) => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(format!("{}\n", snap.client_url(&s.url)))),
        None => Err(ApiError::Unavailable("no working proxy right now".into())),
    }
}

/// A client's verdict on a proxy.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// The proxy as it was served (`http://host:port`, credentials allowed).
    #[schema(
        example = "http://203.0.113.5:8080",
        pattern = r"^(https?|socks[45])://([^/?#]*@)?((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|([A-Za-z0-9_-]{1,62}\.){0,3}[A-Za-z_-][A-Za-z0-9_-]{0,61}):([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])/?$"
    )]
    proxy: String,
    /// `false`: it failed (counts as a failed check); `true`: it worked.
    ok: bool,
    /// What the client was reaching (only its host is logged).
    #[serde(default)]
    target: Option<String>,
}

/// The answer of a counted report.
#[derive(Serialize, ToSchema)]
pub struct ReportAnswer {
    /// The proxy's public URL.
    proxy: String,
    counted: bool,
}

/// A client's verdict on a proxy counts as a check of it.
#[utoipa::path(
    tag = "serving",
    request_body = ReportBody,
    responses(
        (status = 202, description = "Counted", body = ReportAnswer),
        BadRequest, Unauthorized, NotFound, super::error::refusals::PayloadTooLarge,
        super::error::refusals::UnsupportedMediaType, Unavailable,
    ),
    security((), ("client_token" = [])),
)]
#[post("/api/proxy/report")]
async fn report(
    req: HttpRequest,
    shared: web::Data<Shared>,
    body: super::body::Json<ReportBody>,
) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    let body = body.into_inner();
    let endpoint = crate::domain::proxy::Endpoint::parse(&body.proxy, Protocol::Http)
        .map_err(|e| ApiError::BadRequest(format!("`proxy` is not a proxy URL: {e}")))?;
    let key = endpoint.key();
    let report = crate::bus::messages::Report {
        key: key.clone(),
        ok: body.ok,
        status: None,
    };
    // `None`: the restarted pool is still being reloaded.
    let known = super::ask(&shared.registry.report, "the pool", report)
        .await?
        .ok_or_else(|| ApiError::Unavailable("the pool is restarting; try again".into()))?;
    if !known {
        return Err(ApiError::NotFound(format!("no proxy {key} in the pool")));
    }
    log::info!(
        "report: {key} {} by a client{}",
        if body.ok { "works" } else { "fails" },
        // Only the host: a target URL's path or query may hold a secret.
        body.target
            .as_deref()
            .and_then(|t| url::Url::parse(t).ok())
            .and_then(|u| u.host_str().map(|h| format!(" (target host {})", clip(h))))
            .unwrap_or_default()
    );
    Ok(HttpResponse::Accepted().json(ReportAnswer {
        proxy: key,
        counted: true,
    }))
}
