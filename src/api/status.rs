//! Status: liveness, `/stats`, `/api/ultra/stats` and `/api/health/comprehensive`.

use crate::clock::{rfc3339, rfc3339_opt};
use crate::snapshot::PoolSnapshot;
use crate::state::{ActorState, Shared};
use actix_web::{web, HttpResponse};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(live))
        .route("/api/health", web::get().to(live))
        .route("/stats", web::get().to(stats))
        .route("/api/ultra/stats", web::get().to(ultra_stats))
        .route("/api/ultra/demo", web::get().to(ultra_demo))
        .route("/api/resurrection/stats", web::get().to(resurrection_stats))
        .route("/api/health/comprehensive", web::get().to(comprehensive));
}

/// Liveness: `ok`, or 503 `stopping` during the drain after SIGTERM (load balancers move away).
async fn live(shared: web::Data<Shared>) -> HttpResponse {
    if shared.stopping.load(std::sync::atomic::Ordering::Relaxed) {
        return HttpResponse::ServiceUnavailable().json(json!({"status": "stopping"}));
    }
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The seed project's field names, kept for existing scripts.
async fn stats(shared: web::Data<Shared>) -> HttpResponse {
    let snap = shared.snapshot();
    let c = snap.counts;
    HttpResponse::Ok().json(json!({
        "total_proxies": c.total(),
        "working_proxies": c.serving(),
        "failed_proxies": c.dead + c.blacklisted,
        "fresh_proxies": c.fresh,
        "last_meta_update": rfc3339_opt(snap.last_source_update),
    }))
}

fn tiers_json(shared: &Shared, snap: &PoolSnapshot) -> serde_json::Value {
    let t = &shared.config.tiers;
    let c = snap.counts;
    let tier = |count: usize, target: usize| json!({"count": count, "target": target, "met": count >= target});
    json!({
        // primary_target is a cap (the best N), not a goal: no "met".
        "primary": {"count": c.primary, "target": t.primary_target},
        "standby": tier(c.standby, t.standby_target),
        "emergency": tier(c.emergency, t.emergency_target),
        "fresh": c.fresh,
        "dead": c.dead,
        "blacklisted": c.blacklisted,
        "serving": c.serving(),
        "total": c.total(),
        "minimum_guaranteed": {
            "target": t.minimum_guaranteed,
            "met": c.serving() >= t.minimum_guaranteed,
        },
    })
}

async fn ultra_stats(shared: web::Data<Shared>) -> HttpResponse {
    let snap = shared.snapshot();
    let k = snap.counters;
    HttpResponse::Ok().json(json!({
        "tiers": tiers_json(&shared, &snap),
        "promotions": k.promotions,
        "demotions": k.demotions,
        "deaths": k.deaths,
        "blacklisted_total": k.blacklisted,
        "checks_total": k.checks_total,
        "checks_passed": k.checks_passed,
        "checks_per_minute": k.checks_per_minute,
        "checks_running": shared.checks_running.load(std::sync::atomic::Ordering::Relaxed),
        "checks_queued": shared.checks_queued.load(std::sync::atomic::Ordering::Relaxed),
        "published_at": rfc3339(snap.published_at),
        "last_source_update": rfc3339_opt(snap.last_source_update),
    }))
}

/// How many proxies of each tier `/api/ultra/demo` shows without `count`.
const DEMO_COUNT: usize = 5;

/// `GET /api/ultra/demo?count=N`: the fastest N proxies of each serving tier and the N most
/// recently working dead ones, with their timings (public URLs: this is a status page).
async fn ultra_demo(
    shared: web::Data<Shared>,
    q: web::Query<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, super::error::ApiError> {
    use crate::domain::lifecycle::Tier;
    let max = shared.config.server.max_count;
    let count = crate::domain::selection::parse_count(
        q.get("count").map(String::as_str),
        DEMO_COUNT,
        max,
        "count",
    )
    .map_err(super::error::ApiError::BadRequest)?;
    let snap = shared.snapshot();
    let entry = |s: &crate::domain::selection::Served| {
        json!({
            "url": s.url,
            "tier": s.tier.as_str(),
            "protocol": s.protocol.as_str(),
            "latency_ms": s.latency_ms,
            "success_rate": (s.success_rate * 1000.0).round() / 1000.0,
            "anonymity": s.anonymity.map(crate::domain::proxy::Anonymity::as_str),
            "country": s.country,
            "kind": s.kind,
            "last_checked_at": rfc3339_opt(s.last_checked_at),
            "last_ok_at": rfc3339_opt(s.last_ok_at),
        })
    };
    let serving = |tier: Tier, total: usize| {
        let sample: Vec<_> = snap
            .serving
            .iter()
            .filter(|s| s.tier == tier)
            .take(count)
            .map(entry)
            .collect();
        json!({"count": total, "sample": sample})
    };
    let c = snap.counts;
    Ok(HttpResponse::Ok().json(json!({
        "count": count,
        "tiers": {
            "primary": serving(Tier::Primary, c.primary),
            "standby": serving(Tier::Standby, c.standby),
            "emergency": serving(Tier::Emergency, c.emergency),
            "dead": {
                "count": c.dead,
                "sample": snap.fill.iter().take(count).map(entry).collect::<Vec<_>>(),
            },
        },
        "published_at": rfc3339(snap.published_at),
    })))
}

async fn resurrection_stats(shared: web::Data<Shared>) -> HttpResponse {
    let stats = shared.resurrection.load_full();
    let snap = shared.snapshot();
    let mut body = serde_json::to_value(&*stats).unwrap_or_default();
    body["dead"] = snap.counts.dead.into();
    body["blacklisted"] = snap.counts.blacklisted.into();
    HttpResponse::Ok().json(body)
}

/// `critical` (503) when an actor has failed or no proxy serves although checks have run;
/// `degraded` when something needs a look (an actor restarting, the store retrying writes, a
/// failing source or alert channel, fewer serving proxies than `minimum_guaranteed`); `ok`
/// otherwise.
async fn comprehensive(shared: web::Data<Shared>) -> HttpResponse {
    let snap = shared.snapshot();
    let actors = shared.board.actors();
    let sources = shared.board.sources();
    let store = shared.board.store_status();
    let serving = snap.counts.serving();
    let minimum_met = serving >= shared.config.tiers.minimum_guaranteed;
    let mut problems: Vec<String> = Vec::new();
    let mut critical = false;
    for a in &actors {
        match a.status {
            ActorState::Failed => {
                critical = true;
                problems.push(format!("actor {} failed", a.name));
            }
            ActorState::Restarting => problems.push(format!("actor {} restarting", a.name)),
            ActorState::Running => {}
        }
    }
    if serving == 0 && snap.counters.checks_total > 0 {
        critical = true;
        problems.push("no serving proxy".into());
    } else if !minimum_met {
        problems.push(format!(
            "{serving} serving proxies, below minimum_guaranteed {}",
            shared.config.tiers.minimum_guaranteed
        ));
    }
    if store.status != "ok" {
        problems.push(format!("store {}", store.status));
    }
    if store.alerts_waiting > 0 {
        problems.push(format!(
            "{} alerts waiting for the store",
            store.alerts_waiting
        ));
    }
    if store.pool_reload_pending {
        problems
            .push("the pool is being reloaded from the store (serving the last snapshot)".into());
    }
    for s in sources.iter().filter(|s| s.status == "error") {
        problems.push(format!("source {} failing", s.name));
    }
    let mut alert_channels = serde_json::Map::new();
    for name in crate::channels::configured(&shared.config.alerts) {
        let c = shared.board.channel_status(name);
        if c.state != "ok" {
            problems.push(format!("alert channel {name} failing"));
        }
        alert_channels.insert(name.into(), serde_json::to_value(c).unwrap_or_default());
    }
    let monitors = shared.monitors.load_full();
    for m in monitors.monitors.iter().filter(|m| {
        use crate::domain::service_health::Status;
        matches!(m.service.status, Status::Down | Status::Recovering)
    }) {
        problems.push(format!("service {} {}", m.name, m.service.status.as_str()));
    }
    let status = if critical {
        "critical"
    } else if problems.is_empty() {
        "ok"
    } else {
        "degraded"
    };
    let tiers = tiers_json(&shared, &snap);
    let body = json!({
        "status": status,
        "problems": problems,
        "actors": actors,
        // `pool` is the old name of `tiers`, kept for one release.
        "pool": tiers.clone(),
        "tiers": tiers,
        "store": store,
        "sources": sources,
        "monitors": {
            "count": monitors.monitors.len(),
            "by_status": super::monitors::summary(&monitors.monitors),
        },
        "alert_channels": alert_channels,
        "checked_at": rfc3339(crate::clock::now_ms()),
    });
    if critical {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}
