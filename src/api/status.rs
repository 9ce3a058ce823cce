//! Status: liveness, `/stats`, `/api/ultra/stats`, `/api/ultra/demo`,
//! `/api/resurrection/stats` and `/api/health/comprehensive`.

use super::error::refusals::BadRequest;
use super::error::ApiError;
use super::serving::TierName;
use crate::clock::{rfc3339, rfc3339_opt};
use crate::domain::lifecycle::Tier;
use crate::domain::selection::Served;
use crate::published::board::{ActorState, ActorStatus, ChannelStatus, SourceStatus, StoreStatus};
use crate::published::board::{ChannelState, SourceState, StoreState};
use crate::published::pool::PoolSnapshot;
use crate::published::resurrection::ResurrectionStats;
use crate::state::Shared;
use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(live)
        .service(api_live)
        .service(stats)
        .service(ultra_stats)
        .service(ultra_demo)
        .service(resurrection_stats)
        .service(comprehensive);
}

/// Liveness.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    /// `ok`; `stopping` (with 503) during the drain after SIGTERM.
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

fn liveness(shared: &Shared) -> HttpResponse {
    if shared.stopping.load(std::sync::atomic::Ordering::Relaxed) {
        return HttpResponse::ServiceUnavailable().json(Liveness { status: "stopping" });
    }
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

/// Liveness: `ok`, or 503 `stopping` during the drain after SIGTERM (load balancers move away).
#[utoipa::path(
    tag = "status",
    responses(
        (status = 200, description = "Alive", body = Liveness),
        (status = 503, description = "Stopping (the drain after SIGTERM)", body = Liveness),
    ),
)]
#[get("/health")]
async fn live(shared: web::Data<Shared>) -> HttpResponse {
    liveness(&shared)
}

/// The same as `/health`.
#[utoipa::path(
    tag = "status",
    responses(
        (status = 200, description = "Alive", body = Liveness),
        (status = 503, description = "Stopping (the drain after SIGTERM)", body = Liveness),
    ),
)]
#[get("/api/health")]
async fn api_live(shared: web::Data<Shared>) -> HttpResponse {
    liveness(&shared)
}

/// The seed project's field names, kept for existing scripts.
#[derive(Serialize, ToSchema)]
pub struct SeedStats {
    total_proxies: usize,
    /// In a serving tier.
    working_proxies: usize,
    /// Dead or blacklisted.
    failed_proxies: usize,
    /// Seen, never checked yet.
    fresh_proxies: usize,
    /// RFC 3339: when a source last delivered a list.
    last_meta_update: Option<String>,
}

/// Pool counts under the seed project's names.
#[utoipa::path(tag = "status", responses((status = 200, body = SeedStats)))]
#[get("/stats")]
async fn stats(shared: web::Data<Shared>) -> HttpResponse {
    let snap = shared.snapshot();
    let c = snap.counts;
    HttpResponse::Ok().json(SeedStats {
        total_proxies: c.total(),
        working_proxies: c.serving(),
        failed_proxies: c.dead + c.blacklisted,
        fresh_proxies: c.fresh,
        last_meta_update: rfc3339_opt(snap.last_source_update),
    })
}

/// A tier against its target: `primary_target` is a cap (the best N), so it has no `met`.
#[derive(Serialize, ToSchema, Clone, PartialEq)]
pub struct TierCount {
    count: usize,
    target: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    met: Option<bool>,
}

#[derive(Serialize, ToSchema, Clone, PartialEq)]
pub struct Goal {
    target: usize,
    met: bool,
}

/// The tiers against their targets (`/api/ultra/stats` and health's `tiers`).
#[derive(Serialize, ToSchema, Clone, PartialEq)]
pub struct TierSummary {
    primary: TierCount,
    standby: TierCount,
    emergency: TierCount,
    fresh: usize,
    dead: usize,
    blacklisted: usize,
    serving: usize,
    total: usize,
    /// Serving proxies against `tiers.minimum_guaranteed`.
    minimum_guaranteed: Goal,
}

fn tier_summary(shared: &Shared, snap: &PoolSnapshot) -> TierSummary {
    let t = &shared.config.tiers;
    let c = snap.counts;
    let goal = |count: usize, target: usize| TierCount {
        count,
        target,
        met: Some(count >= target),
    };
    TierSummary {
        primary: TierCount {
            count: c.primary,
            target: t.primary_target,
            met: None,
        },
        standby: goal(c.standby, t.standby_target),
        emergency: goal(c.emergency, t.emergency_target),
        fresh: c.fresh,
        dead: c.dead,
        blacklisted: c.blacklisted,
        serving: c.serving(),
        total: c.total(),
        minimum_guaranteed: Goal {
            target: t.minimum_guaranteed,
            met: c.serving() >= t.minimum_guaranteed,
        },
    }
}

/// `/api/ultra/stats`.
#[derive(Serialize, ToSchema)]
pub struct UltraStats {
    tiers: TierSummary,
    promotions: u64,
    demotions: u64,
    deaths: u64,
    blacklisted_total: u64,
    checks_total: u64,
    checks_passed: u64,
    checks_per_minute: u64,
    /// Checks running now, and waiting for a permit.
    checks_running: usize,
    checks_queued: usize,
    /// Of `checks_running`, those parked: still unanswered after `validation.park_after_ms`,
    /// waiting without a permit until `timeout_ms`.
    checks_parked: usize,
    published_at: String,
    last_source_update: Option<String>,
}

/// Tier counts and targets, promotions, demotions and checks per minute.
#[utoipa::path(tag = "status", responses((status = 200, body = UltraStats)))]
#[get("/api/ultra/stats")]
async fn ultra_stats(shared: web::Data<Shared>) -> HttpResponse {
    use std::sync::atomic::Ordering::Relaxed;
    let snap = shared.snapshot();
    let k = snap.counters;
    HttpResponse::Ok().json(UltraStats {
        tiers: tier_summary(&shared, &snap),
        promotions: k.promotions,
        demotions: k.demotions,
        deaths: k.deaths,
        blacklisted_total: k.blacklisted,
        checks_total: k.checks_total,
        checks_passed: k.checks_passed,
        checks_per_minute: k.checks_per_minute,
        checks_running: shared.checks_running.load(Relaxed),
        checks_queued: shared.checks_queued.load(Relaxed),
        checks_parked: shared.checks_parked.load(Relaxed),
        published_at: rfc3339(snap.published_at),
        last_source_update: rfc3339_opt(snap.last_source_update),
    })
}

/// How many proxies of each tier `/api/ultra/demo` shows without `count`.
const DEMO_COUNT: usize = 5;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DemoQuery {
    /// Proxies per tier (default 5), 1 to `server.max_count`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    count: Option<String>,
}

/// One proxy of the demo, with its timings (public URL: this is a status page).
#[derive(Serialize, ToSchema)]
pub struct DemoProxy<'a> {
    url: &'a str,
    #[schema(value_type = TierName)]
    tier: &'static str,
    #[schema(value_type = super::serving::ProtocolName)]
    protocol: &'static str,
    latency_ms: Option<u32>,
    success_rate: f64,
    #[schema(value_type = Option<super::serving::AnonymityName>)]
    anonymity: Option<&'static str>,
    country: Option<&'a str>,
    kind: &'a str,
    last_checked_at: Option<String>,
    last_ok_at: Option<String>,
}

impl<'a> DemoProxy<'a> {
    fn of(s: &'a Served) -> Self {
        DemoProxy {
            url: &s.url,
            tier: s.tier.as_str(),
            protocol: s.protocol.as_str(),
            latency_ms: s.latency_ms,
            success_rate: (s.success_rate * 1000.0).round() / 1000.0,
            anonymity: s.anonymity.map(crate::domain::proxy::Anonymity::as_str),
            country: s.country.as_deref(),
            kind: &s.kind,
            last_checked_at: rfc3339_opt(s.last_checked_at),
            last_ok_at: rfc3339_opt(s.last_ok_at),
        }
    }
}

/// A tier's count and its sample.
#[derive(Serialize, ToSchema)]
pub struct DemoTier<'a> {
    count: usize,
    sample: Vec<DemoProxy<'a>>,
}

#[derive(Serialize, ToSchema)]
pub struct DemoTiers<'a> {
    primary: DemoTier<'a>,
    standby: DemoTier<'a>,
    emergency: DemoTier<'a>,
    /// The most recently working dead proxies (those the never-empty fill would use).
    dead: DemoTier<'a>,
}

#[derive(Serialize, ToSchema)]
pub struct Demo<'a> {
    /// Proxies asked per tier.
    count: usize,
    tiers: DemoTiers<'a>,
    published_at: String,
}

/// The fastest `count` proxies of each serving tier and the `count` most recently working dead
/// ones, with their timings.
#[utoipa::path(
    tag = "status",
    params(DemoQuery),
    responses((status = 200, body = Demo), BadRequest),
)]
#[get("/api/ultra/demo")]
async fn ultra_demo(
    shared: web::Data<Shared>,
    q: web::Query<DemoQuery>,
) -> Result<HttpResponse, ApiError> {
    let max = shared.config.server.max_count;
    let count = crate::domain::selection::parse_count(q.count.as_deref(), DEMO_COUNT, max, "count")
        .map_err(ApiError::BadRequest)?;
    let snap = shared.snapshot();
    let serving = |tier: Tier, total: usize| DemoTier {
        count: total,
        sample: snap
            .serving
            .iter()
            .filter(|s| s.tier == tier)
            .take(count)
            .map(DemoProxy::of)
            .collect(),
    };
    let c = snap.counts;
    Ok(HttpResponse::Ok().json(Demo {
        count,
        tiers: DemoTiers {
            primary: serving(Tier::Primary, c.primary),
            standby: serving(Tier::Standby, c.standby),
            emergency: serving(Tier::Emergency, c.emergency),
            dead: DemoTier {
                count: c.dead,
                sample: snap.fill.iter().take(count).map(DemoProxy::of).collect(),
            },
        },
        published_at: rfc3339(snap.published_at),
    }))
}

/// `/api/resurrection/stats`.
#[derive(Serialize, ToSchema)]
pub struct ResurrectionAnswer {
    #[serde(flatten)]
    stats: ResurrectionStats,
    /// Dead proxies now, and blacklisted ones (never retried).
    dead: usize,
    blacklisted: usize,
}

/// Dead proxies by death number, due now, attempts, successes, rate, blacklisted.
#[utoipa::path(tag = "status", responses((status = 200, body = ResurrectionAnswer)))]
#[get("/api/resurrection/stats")]
async fn resurrection_stats(shared: web::Data<Shared>) -> HttpResponse {
    let snap = shared.snapshot();
    HttpResponse::Ok().json(ResurrectionAnswer {
        stats: (*shared.resurrection.load_full()).clone(),
        dead: snap.counts.dead,
        blacklisted: snap.counts.blacklisted,
    })
}

/// The overall verdict.
#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Degraded,
    Critical,
}

#[derive(Serialize, ToSchema)]
pub struct MonitorsSummary {
    count: usize,
    /// Every status, with its count.
    by_status: BTreeMap<&'static str, usize>,
}

/// `/api/health/comprehensive`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    status: Verdict,
    /// What made it `degraded` or `critical`, for people.
    problems: Vec<String>,
    actors: Vec<ActorStatus>,
    tiers: TierSummary,
    /// The old name of `tiers`, kept for one release.
    #[schema(deprecated)]
    pool: TierSummary,
    store: StoreStatus,
    sources: Vec<SourceStatus>,
    monitors: MonitorsSummary,
    /// Each configured channel (`telegram`, `email`).
    alert_channels: BTreeMap<&'static str, ChannelStatus>,
    gateway: super::usage::GatewayHealth,
    /// This instance's role among the instances on one PostgreSQL database (`single` with
    /// SQLite), the others, and the last handover.
    cluster: super::cluster::ClusterHealth,
    checked_at: String,
}

/// Everything at once: `critical` (503) when an actor has failed or no proxy serves although
/// checks have run; `degraded` when something needs a look (an actor restarting, the store
/// retrying writes, a failing source or alert channel, fewer serving proxies than
/// `minimum_guaranteed`); `ok` otherwise.
#[utoipa::path(
    tag = "status",
    responses(
        (status = 200, description = "ok or degraded", body = Health),
        (status = 503, description = "critical", body = Health),
    ),
)]
#[get("/api/health/comprehensive")]
async fn comprehensive(shared: web::Data<Shared>) -> HttpResponse {
    let snap = shared.snapshot();
    let actors = shared.board.actors();
    let sources = shared.board.sources();
    let store = shared.board.store_status();
    use crate::domain::health::{self, ActorHealth, Facts};
    let channels: Vec<(&'static str, ChannelStatus)> =
        crate::channels::configured(&shared.config.alerts)
            .into_iter()
            .map(|name| (name, shared.board.channel_status(name)))
            .collect();
    let monitors = shared.monitors.load_full();
    let facts = Facts {
        actors: actors
            .iter()
            .map(|a| {
                let state = match a.status {
                    ActorState::Running => ActorHealth::Running,
                    ActorState::Restarting => ActorHealth::Restarting,
                    ActorState::Failed => ActorHealth::Failed,
                };
                (a.name, state)
            })
            .collect(),
        serving: snap.counts.serving(),
        checks_total: snap.counters.checks_total,
        minimum_guaranteed: shared.config.tiers.minimum_guaranteed,
        store_ok: store.status == StoreState::Ok,
        alerts_waiting: store.alerts_waiting,
        pool_reload_pending: store.pool_reload_pending,
        failing_sources: (sources.iter())
            .filter(|s| s.status == SourceState::Error)
            .map(|s| s.name.as_str())
            .collect(),
        failing_channels: (channels.iter())
            .filter(|(_, c)| c.state != ChannelState::Ok)
            .map(|(n, _)| *n)
            .collect(),
        troubled_services: (monitors.monitors.iter())
            .filter(|m| {
                use crate::domain::service_health::Status;
                matches!(m.service.status, Status::Down | Status::Recovering)
            })
            .map(|m| (m.name.as_str(), m.service.status.as_str()))
            .collect(),
    };
    let (verdict, problems) = health::judge(&facts);
    let status = match verdict {
        health::Verdict::Ok => Verdict::Ok,
        health::Verdict::Degraded => Verdict::Degraded,
        health::Verdict::Critical => Verdict::Critical,
    };
    let critical = status == Verdict::Critical;
    let alert_channels: BTreeMap<&'static str, ChannelStatus> = channels.into_iter().collect();
    let tiers = tier_summary(&shared, &snap);
    let body = Health {
        status,
        problems,
        actors,
        pool: tiers.clone(),
        tiers,
        store,
        sources,
        monitors: MonitorsSummary {
            count: monitors.monitors.len(),
            by_status: super::monitors::summary(&monitors.monitors),
        },
        alert_channels,
        gateway: super::usage::gateway_health(&shared),
        cluster: super::cluster::cluster_health(&shared),
        checked_at: rfc3339(crate::clock::now_ms()),
    };
    if critical {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}
