//! Serving proxies: `/api/proxy/alive`, `/api/proxies`, `/list`, `/random`.

use super::auth::require_client;
use super::error::ApiError;
use crate::actors::allocator::Loads;
use crate::clock::rfc3339_opt;
use crate::domain::lifecycle::Tier;
use crate::domain::profiles;
use crate::domain::proxy::{Anonymity, Protocol};
use crate::domain::selection::{self, Filter, Selection, Served, Strategy};
use crate::snapshot::PoolSnapshot;
use crate::state::Shared;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use std::collections::HashMap;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/proxy/alive", web::get().to(alive))
        .route("/api/proxies", web::get().to(proxies))
        .route("/list", web::get().to(list))
        .route("/random", web::get().to(random))
        .route("/api/proxy/report", web::post().to(report));
}

type Params = web::Query<HashMap<String, String>>;

/// Answers of `/api/proxy/alive` and `/api/proxies` without `count` hold this many proxies.
pub const DEFAULT_COUNT: usize = 10;

/// A parsed serving request.
struct Ask {
    count: usize,
    strategy: Strategy,
    filter: Filter,
    /// Index of the asked check profile in `validation.profiles`.
    profile: Option<usize>,
    detail: bool,
}

fn parse_ask(q: &HashMap<String, String>, shared: &Shared) -> Result<Ask, ApiError> {
    let max = shared.config.server.max_count;
    let count = selection::parse_count(
        q.get("count").map(String::as_str),
        DEFAULT_COUNT,
        max,
        "count",
    )
    .map_err(ApiError::BadRequest)?;
    let nonempty = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let strategy = choice(
        nonempty("strategy"),
        "strategy",
        Strategy::parse,
        "fastest, cheapest, random or least_loaded",
    )?
    .unwrap_or(Strategy::Fastest);
    let protocol = choice(
        nonempty("protocol"),
        "protocol",
        Protocol::parse,
        "http, https, socks4 or socks5",
    )?;
    let anonymity = choice(
        nonempty("anonymity"),
        "anonymity",
        Anonymity::parse,
        "transparent, anonymous or elite",
    )?;
    let country = choice(
        nonempty("country"),
        "country",
        |c| {
            (c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()))
                .then(|| c.to_ascii_uppercase())
        },
        "a two-letter ISO code",
    )?;
    let profiles = &shared.config.validation.profiles;
    let profile = choice(
        nonempty("profile"),
        "profile",
        |p| profiles.iter().position(|x| x.name == p),
        "a name from [[validation.profiles]]",
    )?;
    let detail = choice(
        nonempty("detail"),
        "detail",
        |d| match d {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        "true or false",
    )?
    .unwrap_or(false);
    Ok(Ask {
        count,
        strategy,
        filter: Filter {
            protocol,
            anonymity,
            country,
        },
        profile,
        detail,
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

/// Picks proxies for a request; the fill from dead proxies applies when `allow_fill`.
fn pick<'a>(snap: &'a PoolSnapshot, loads: &Loads, ask: &Ask, allow_fill: bool) -> Selection<'a> {
    if let Some(i) = ask.profile {
        // Only proxies known to pass that profile, never the dead fill: an empty, degraded
        // answer rather than proxies not known to work on that target.
        return profiles::select(
            &snap.serving,
            snap.profiles.get(i).map_or(&[][..], Vec::as_slice),
            &ask.filter,
            ask.count,
            ask.strategy,
            |s| loads.per_proxy.get(&s.url).copied().unwrap_or(0),
            &mut rand::rng(),
        );
    }
    match ask.strategy {
        Strategy::LeastLoaded => {
            // Fewest leases first; the sort is stable, so ties stay fastest first.
            let mut order: Vec<&Served> = snap.serving.iter().collect();
            order.sort_by_key(|s| loads.per_proxy.get(&s.url).copied().unwrap_or(0));
            selection::select(
                order.into_iter(),
                &snap.fill,
                &ask.filter,
                ask.count,
                allow_fill,
            )
        }
        Strategy::Fastest => selection::select(
            snap.serving.iter(),
            &snap.fill,
            &ask.filter,
            ask.count,
            allow_fill,
        ),
        Strategy::Cheapest => selection::select(
            snap.cheapest_iter(),
            &snap.fill,
            &ask.filter,
            ask.count,
            allow_fill,
        ),
        Strategy::Random => {
            let sampled =
                selection::sample(&snap.serving, &ask.filter, ask.count, &mut rand::rng());
            selection::select(
                sampled.into_iter(),
                &snap.fill,
                &ask.filter,
                ask.count,
                allow_fill,
            )
        }
    }
}

#[derive(Serialize, Default)]
struct TiersUsed {
    primary: usize,
    standby: usize,
    emergency: usize,
    dead: usize,
}

#[derive(Serialize)]
struct Detail<'a> {
    url: &'a str,
    protocol: &'static str,
    tier: &'static str,
    latency_ms: Option<u32>,
    success_rate: f64,
    anonymity: Option<&'static str>,
    country: Option<&'a str>,
    kind: &'a str,
    cost_per_gb: f64,
    last_checked_at: Option<String>,
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

#[derive(Serialize)]
struct AliveAnswer<'a> {
    proxies: Vec<&'a str>,
    count: usize,
    requested: usize,
    tiers_used: TiersUsed,
    degraded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Vec<Detail<'a>>>,
}

/// What `/api/proxy/alive` and `/api/proxies` start from: the client's right to ask, the parsed
/// parameters, and the snapshot and lease loads the answer is picked from.
fn serving_request(
    req: &HttpRequest,
    shared: &Shared,
    q: &HashMap<String, String>,
) -> Result<(Ask, std::sync::Arc<PoolSnapshot>, std::sync::Arc<Loads>), ApiError> {
    require_client(req, shared)?;
    let ask = parse_ask(q, shared)?;
    Ok((ask, shared.snapshot(), shared.loads.load_full()))
}

async fn alive(
    req: HttpRequest,
    shared: web::Data<Shared>,
    q: Params,
) -> Result<HttpResponse, ApiError> {
    let (ask, snap, loads) = serving_request(&req, &shared, &q)?;
    let sel = pick(&snap, &loads, &ask, true);
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

async fn proxies(
    req: HttpRequest,
    shared: web::Data<Shared>,
    q: Params,
) -> Result<HttpResponse, ApiError> {
    let (ask, snap, loads) = serving_request(&req, &shared, &q)?;
    let sel = pick(&snap, &loads, &ask, true);
    let urls: Vec<&str> = sel
        .proxies
        .iter()
        .map(|s| snap.client_url(&s.url))
        .collect();
    Ok(HttpResponse::Ok().json(urls))
}

async fn list(
    req: HttpRequest,
    shared: web::Data<Shared>,
    q: Params,
) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    let max = shared.config.server.max_count;
    let limit = selection::parse_count(q.get("limit").map(String::as_str), max, max, "limit")
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

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    proxy: String,
    ok: bool,
    /// What the client was reaching (kept for the log only).
    #[serde(default)]
    target: Option<String>,
}

/// `POST /api/proxy/report`: a client's verdict on a proxy counts as a check of it.
async fn report(
    req: HttpRequest,
    shared: web::Data<Shared>,
    body: web::Json<ReportBody>,
) -> Result<HttpResponse, ApiError> {
    require_client(&req, &shared)?;
    let body = body.into_inner();
    let endpoint = crate::domain::proxy::Endpoint::parse(&body.proxy, Protocol::Http)
        .map_err(|e| ApiError::BadRequest(format!("`proxy` is not a proxy URL: {e}")))?;
    let key = endpoint.key();
    let report = crate::actors::messages::Report {
        key: key.clone(),
        ok: body.ok,
    };
    // `None`: the restarted pool is still being reloaded.
    let known = super::ask(shared.registry.balancer(), "the pool", report)
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
    Ok(HttpResponse::Accepted().json(serde_json::json!({"proxy": key, "counted": true})))
}
