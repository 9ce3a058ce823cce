//! `GET /api/usage?from=&to=&group=proxy|day|hour|session` (admin): the gateway's traffic and
//! cost in a time range, summed by group and in total, from the store (rows are written every
//! two seconds; see the Accountant).

use super::error::refusals::{BadRequest, Unauthorized, Unavailable};
use super::error::ApiError;
use super::params::Param;
use crate::clock::{now_ms, rfc3339};
use crate::domain::usage::{self, Group, Tally};
use crate::state::Shared;
use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(report);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// RFC 3339 (`2026-12-02T00:00:00Z`; a day, `2026-12-02`, is taken as its UTC midnight);
    /// default: the start of today (UTC). Traffic is kept by the hour: the hour holding `from`
    /// is included.
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// As `from`; default: now. The hours that start before it are included.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// Default `proxy`.
    #[param(value_type = Option<GroupName>, inline)]
    group: Option<Param<Group>>,
}

/// How rows are grouped.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum GroupName {
    Proxy,
    Day,
    Hour,
    Session,
}

/// Traffic and what it cost.
#[derive(Serialize, ToSchema)]
pub struct Totals {
    requests: u64,
    failures: u64,
    bytes_up: u64,
    bytes_down: u64,
    cost: f64,
}

impl From<&Tally> for Totals {
    fn from(t: &Tally) -> Self {
        Totals {
            requests: t.requests,
            failures: t.failures,
            bytes_up: t.bytes_up,
            bytes_down: t.bytes_down,
            cost: t.cost,
        }
    }
}

/// One group's traffic.
#[derive(Serialize, ToSchema)]
pub struct UsageRowAnswer {
    /// The proxy's public URL, the day (`2026-12-02`), the hour (`2026-12-02T13:00:00Z`) or the
    /// session key (`""`: no session).
    key: String,
    #[serde(flatten)]
    totals: Totals,
}

#[derive(Serialize, ToSchema)]
pub struct UsageAnswer {
    from: String,
    to: String,
    #[schema(value_type = GroupName)]
    group: &'static str,
    /// By key.
    rows: Vec<UsageRowAnswer>,
    total: Totals,
}

/// A time given as RFC 3339 (any offset) or as a day (UTC midnight).
fn time(name: &str, raw: &str) -> Result<i64, ApiError> {
    let raw = raw.trim();
    let at = match raw.parse::<jiff::Timestamp>() {
        Ok(t) => Some(t),
        Err(_) => (raw.len() == 10)
            .then(|| raw.parse::<jiff::civil::Date>().ok())
            .flatten()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp()),
    };
    at.map(|t| t.as_millisecond()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`{name}` must be RFC 3339 (2026-12-02T00:00:00Z) or a day (2026-12-02)"
        ))
    })
}

/// The gateway's traffic, cost and failures in a time range, by proxy, day, hour or session
/// (`to` before `from`: an empty range).
#[utoipa::path(
    tag = "admin",
    params(UsageQuery),
    responses((status = 200, body = UsageAnswer), BadRequest, Unauthorized, Unavailable),
    security(("admin_token" = [])),
)]
#[get("/api/usage")]
async fn report(
    shared: web::Data<Shared>,
    q: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let now = now_ms();
    let from = match &q.from {
        Some(f) => time("from", f)?,
        None => usage::day_of(now),
    };
    let to = match &q.to {
        Some(t) => time("to", t)?,
        None => now,
    };
    let group = q.group.as_ref().and_then(|g| g.0).unwrap_or(Group::Proxy);
    let first_hour = usage::hour_of(from);
    // `to` before `from` is an empty range: nothing passed in it.
    let rows = match to < from {
        true => Vec::new(),
        false => (shared.store)
            .call(move |s| s.load_usage(first_hour, to.max(first_hour + 1)))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?,
    };
    let kept: Vec<_> = rows.iter().map(|r| (r.slot(), r.tally())).collect();
    let (grouped, total) = usage::grouped(kept.iter().map(|(s, t)| (s, t)), group);
    Ok(HttpResponse::Ok().json(UsageAnswer {
        from: rfc3339(from),
        to: rfc3339(to),
        group: group.as_str(),
        rows: grouped
            .iter()
            .map(|(key, t)| UsageRowAnswer {
                key: key.clone(),
                totals: t.into(),
            })
            .collect(),
        total: (&total).into(),
    }))
}

/// The gateway in `/api/health/comprehensive`: whether it is on, where it listens, what it
/// holds open and has done since start, and what today's traffic cost.
#[derive(Serialize, ToSchema)]
pub struct GatewayHealth {
    enabled: bool,
    /// `http://…` and `socks5://…` addresses it accepts clients on.
    listening: Vec<String>,
    open_connections: usize,
    /// Client requests since start by how they ended: `ok`, `failed` (502), `unavailable`
    /// (503), `refused` (400/403/407).
    requests: std::collections::BTreeMap<&'static str, u64>,
    failovers: u64,
    /// Since start, all upstream kinds.
    bytes_up: u64,
    bytes_down: u64,
    /// Today (UTC), from the Accountant.
    today: Totals,
}

pub fn gateway_health(shared: &Shared) -> GatewayHealth {
    use crate::published::gateway::{Outcome, KINDS};
    use std::sync::atomic::Ordering;
    let g = &shared.gateway;
    let (bytes_up, bytes_down) = KINDS.iter().fold((0, 0), |(u, d), k| {
        let (ku, kd) = g.bytes(k);
        (u + ku, d + kd)
    });
    GatewayHealth {
        enabled: shared.config.defs.gateway.is_some(),
        listening: g.listening(),
        open_connections: g.open_connections.load(Ordering::Relaxed),
        requests: Outcome::ALL
            .iter()
            .map(|o| (o.as_str(), g.requests(*o)))
            .collect(),
        failovers: g.failovers.load(Ordering::Relaxed),
        bytes_up,
        bytes_down,
        today: (&shared.usage.load().total_today).into(),
    }
}
