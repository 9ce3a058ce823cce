//! `GET /metrics`: Prometheus text format 0.0.4, open like the other status endpoints. Built
//! from what is already published (the pool snapshot, lease loads, resurrection and monitor
//! views, the status board): no store, no lock held during IO. Counters count since the
//! process started. No label ever holds a URL or a secret: proxies and sources appear only as
//! counts, monitors, actors, channels and sources by name.

use crate::domain::managed;
use crate::published::board::ActorState;
use crate::published::board::{ChannelState, SourceState, StoreState};
use crate::state::Shared;
use actix_web::{get, web, HttpResponse};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(metrics);
}

/// Collects metric families (`family`, then its `sample`s) into a `prometheus` registry made
/// for one scrape, and encodes them in the text format 0.0.4 (`finish`): the crate does the
/// format, escaping included; the values come from what is published now.
pub struct Text {
    registry: prometheus::Registry,
    current: Option<Family>,
}

struct Family {
    name: String,
    kind: &'static str,
    help: String,
    samples: Vec<(Vec<(String, String)>, f64)>,
}

impl Default for Text {
    fn default() -> Self {
        Text::new()
    }
}

impl Text {
    pub fn new() -> Text {
        Text {
            registry: prometheus::Registry::new(),
            current: None,
        }
    }

    /// Starts a family (`kind` = `gauge` or `counter`).
    pub fn family(&mut self, name: &str, kind: &'static str, help: &str) -> &mut Self {
        self.flush();
        self.current = Some(Family {
            name: name.to_string(),
            kind,
            help: help.to_string(),
            samples: Vec::new(),
        });
        self
    }

    /// One sample of the current family (its labels are the family's label names).
    pub fn sample(&mut self, _name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        if let Some(f) = &mut self.current {
            let labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            f.samples.push((labels, value));
        }
        self
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &'static str, help: &str, value: f64) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    /// Registers the current family. A family's samples share its first sample's label names;
    /// a counter below 0 (never ours) is shown as 0.
    fn flush(&mut self) {
        let Some(f) = self.current.take() else {
            return;
        };
        let names: Vec<String> = f
            .samples
            .first()
            .map(|(l, _)| l.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let opts = prometheus::Opts::new(f.name.clone(), f.help.clone());
        let values = |l: &[(String, String)]| l.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>();
        let registered = if f.kind == "counter" {
            prometheus::CounterVec::new(opts, &names).map(|vec| {
                for (l, v) in &f.samples {
                    let vals = values(l);
                    let refs: Vec<&str> = vals.iter().map(String::as_str).collect();
                    if let Ok(c) = vec.get_metric_with_label_values(&refs) {
                        c.inc_by(if *v >= 0.0 { *v } else { 0.0 });
                    }
                }
                Box::new(vec) as Box<dyn prometheus::core::Collector>
            })
        } else {
            prometheus::GaugeVec::new(opts, &names).map(|vec| {
                for (l, v) in &f.samples {
                    let vals = values(l);
                    let refs: Vec<&str> = vals.iter().map(String::as_str).collect();
                    if let Ok(g) = vec.get_metric_with_label_values(&refs) {
                        g.set(*v);
                    }
                }
                Box::new(vec) as Box<dyn prometheus::core::Collector>
            })
        };
        match registered.map(|c| self.registry.register(c)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => log::warn!("metrics: family {} left out: {e}", f.name),
        }
    }

    pub fn finish(mut self) -> String {
        self.flush();
        let mut out = String::with_capacity(8 * 1024);
        if let Err(e) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out)
        {
            log::warn!("metrics: cannot encode: {e}");
        }
        out
    }
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The whole exposition, from what is published now.
pub fn render(shared: &Shared) -> String {
    let mut t = Text::new();
    let snap = shared.snapshot();
    let c = snap.counts;
    let k = snap.counters;
    let tiers = &shared.config.tiers;

    // The cluster.
    t.single(
        "proxyvisor_leader",
        "gauge",
        "1 while this instance leads (runs sources, resurrection, repairs, alert deliveries, the \
         daily report): always with SQLite, with PostgreSQL while it holds the lease.",
        if super::cluster::role(shared).leads() {
            1.0
        } else {
            0.0
        },
    );

    // The pool.
    t.family(
        "proxyvisor_proxies",
        "gauge",
        "Proxies in the pool by tier.",
    );
    for (tier, n) in [
        ("primary", c.primary),
        ("standby", c.standby),
        ("emergency", c.emergency),
        ("fresh", c.fresh),
        ("dead", c.dead),
        ("blacklisted", c.blacklisted),
    ] {
        t.sample("proxyvisor_proxies", &[("tier", tier)], n as f64);
    }
    t.single(
        "proxyvisor_proxies_serving",
        "gauge",
        "Proxies in the serving tiers (primary, standby, emergency).",
        c.serving() as f64,
    );
    t.family(
        "proxyvisor_tier_target",
        "gauge",
        "Configured tier targets (primary: a cap; the others: goals).",
    );
    for (tier, n) in [
        ("primary", tiers.primary_target),
        ("standby", tiers.standby_target),
        ("emergency", tiers.emergency_target),
    ] {
        t.sample("proxyvisor_tier_target", &[("tier", tier)], n as f64);
    }
    t.single(
        "proxyvisor_minimum_guaranteed",
        "gauge",
        "tiers.minimum_guaranteed: serving proxies wanted at least.",
        tiers.minimum_guaranteed as f64,
    );
    t.single(
        "proxyvisor_minimum_guaranteed_met",
        "gauge",
        "1 when the serving tiers hold at least minimum_guaranteed proxies.",
        flag(c.serving() >= tiers.minimum_guaranteed),
    );
    for (name, help, v) in [
        (
            "proxyvisor_checks_total",
            "Proxy checks since start.",
            k.checks_total,
        ),
        (
            "proxyvisor_checks_passed_total",
            "Proxy checks passed since start.",
            k.checks_passed,
        ),
        (
            "proxyvisor_promotions_total",
            "Moves to a better tier since start.",
            k.promotions,
        ),
        (
            "proxyvisor_demotions_total",
            "Moves to a worse serving tier since start.",
            k.demotions,
        ),
        (
            "proxyvisor_deaths_total",
            "Proxies declared dead since start.",
            k.deaths,
        ),
        (
            "proxyvisor_blacklisted_total",
            "Proxies blacklisted since start.",
            k.blacklisted,
        ),
    ] {
        t.single(name, "counter", help, v as f64);
    }
    t.single(
        "proxyvisor_checks_per_minute",
        "gauge",
        "Proxy checks in the last minute.",
        k.checks_per_minute as f64,
    );
    t.single(
        "proxyvisor_snapshot_published_timestamp_seconds",
        "gauge",
        "When the pool snapshot served now was published (unix seconds).",
        snap.published_at as f64 / 1000.0,
    );

    // Leases.
    let loads = shared.loads.load_full();
    let default_max = shared.config.allocation.max_leases_per_proxy;
    let (mut used, mut capacity) = (0u64, 0u64);
    for s in &snap.serving {
        let max = s.max_leases.unwrap_or(default_max);
        used += loads.per_proxy.get(&s.url).copied().unwrap_or(0).min(max) as u64;
        capacity += max as u64;
    }
    t.single(
        "proxyvisor_leases",
        "gauge",
        "Leases alive.",
        loads.leases as f64,
    );
    t.single(
        "proxyvisor_lease_slots_used",
        "gauge",
        "Lease slots in use (a lease takes one slot per proxy it holds).",
        loads.per_proxy.values().map(|&n| n as u64).sum::<u64>() as f64,
    );
    t.single(
        "proxyvisor_lease_capacity",
        "gauge",
        "Lease slots over the serving proxies.",
        capacity as f64,
    );
    t.single(
        "proxyvisor_lease_available",
        "gauge",
        "Free lease slots over the serving proxies.",
        capacity.saturating_sub(used) as f64,
    );

    // Resurrection.
    let r = shared.resurrection.load_full();
    t.single(
        "proxyvisor_resurrection_attempts_total",
        "counter",
        "Re-checks of dead proxies since start.",
        r.attempts as f64,
    );
    t.single(
        "proxyvisor_resurrection_successes_total",
        "counter",
        "Dead proxies that passed their re-check since start.",
        r.successes as f64,
    );
    t.single(
        "proxyvisor_resurrection_waiting",
        "gauge",
        "Dead proxies waiting for a re-check.",
        r.waiting as f64,
    );
    t.single(
        "proxyvisor_resurrection_due",
        "gauge",
        "Dead proxies due for a re-check now.",
        r.due_now as f64,
    );
    t.family(
        "proxyvisor_dead_proxies",
        "gauge",
        "Dead proxies by death number.",
    );
    for (death, n) in &r.dead_by_death {
        t.sample(
            "proxyvisor_dead_proxies",
            &[("death", &death.to_string())],
            *n as f64,
        );
    }

    // Managed proxies.
    let rules = shared.config.rules();
    let mut by_status: std::collections::BTreeMap<&'static str, usize> = [
        managed::Status::Healthy,
        managed::Status::Degraded,
        managed::Status::Down,
        managed::Status::Blocked,
        managed::Status::Unknown,
    ]
    .into_iter()
    .map(|s| (s.as_str(), 0))
    .collect();
    for m in &snap.managed {
        *by_status
            .entry(managed::status(&m.health, &rules).as_str())
            .or_default() += 1;
    }
    t.family(
        "proxyvisor_managed_proxies",
        "gauge",
        "Managed proxies by status.",
    );
    for (status, n) in &by_status {
        t.sample(
            "proxyvisor_managed_proxies",
            &[("status", status)],
            *n as f64,
        );
    }

    // Watched services.
    let monitors = shared.monitors.load_full();
    t.family(
        "proxyvisor_monitors",
        "gauge",
        "Watched services by status.",
    );
    for (status, n) in super::monitors::summary(&monitors.monitors) {
        t.sample("proxyvisor_monitors", &[("status", status)], n as f64);
    }
    type Field = fn(&crate::published::monitors::MonitorView) -> Option<f64>;
    let per_monitor: [(&str, &str, &str, Field); 7] = [
        (
            "proxyvisor_monitor_up",
            "gauge",
            "1 when the service answers (up or degraded), 0 otherwise (down, recovering, unknown).",
            |m| {
                use crate::domain::service_health::Status;
                Some(flag(matches!(
                    m.service.status,
                    Status::Up | Status::Degraded
                )))
            },
        ),
        (
            "proxyvisor_monitor_uptime_percent",
            "gauge",
            "Time-weighted uptime of the service, percent (absent until known).",
            |m| m.uptime_percent,
        ),
        (
            "proxyvisor_monitor_avg_response_ms",
            "gauge",
            "Average answer time of the service, ms (absent until known).",
            |m| m.avg_response_ms.map(|v| v as f64),
        ),
        (
            "proxyvisor_monitor_checks_total",
            "counter",
            "Checks of the service.",
            |m| Some(m.checks_total as f64),
        ),
        (
            "proxyvisor_monitor_checks_ok_total",
            "counter",
            "Passed checks of the service.",
            |m| Some(m.checks_ok as f64),
        ),
        (
            "proxyvisor_monitor_repairs_total",
            "counter",
            "Repairs (restarts, redeploys, webhooks, commands) of the service.",
            |m| Some(m.repairs as f64),
        ),
        (
            "proxyvisor_monitor_predictive_restarts_total",
            "counter",
            "Restarts of the service made because it was getting slow.",
            |m| Some(m.predictive_restarts as f64),
        ),
    ];
    for (name, kind, help, field) in per_monitor {
        t.family(name, kind, help);
        for m in &monitors.monitors {
            if let Some(v) = field(m) {
                t.sample(name, &[("name", &m.name)], v);
            }
        }
    }
    t.family(
        "proxyvisor_monitor_status",
        "gauge",
        "1 for the service's current status.",
    );
    for m in &monitors.monitors {
        t.sample(
            "proxyvisor_monitor_status",
            &[("name", &m.name), ("status", m.service.status.as_str())],
            1.0,
        );
    }

    // Actors.
    let actors = shared.board.actors();
    t.family(
        "proxyvisor_actor_restarts_total",
        "counter",
        "Restarts of each actor since start.",
    );
    for a in &actors {
        t.sample(
            "proxyvisor_actor_restarts_total",
            &[("actor", a.name)],
            a.restarts as f64,
        );
    }
    t.family(
        "proxyvisor_actor_up",
        "gauge",
        "1 when the actor is running, 0 when restarting or failed.",
    );
    for a in &actors {
        t.sample(
            "proxyvisor_actor_up",
            &[("actor", a.name)],
            flag(a.status == ActorState::Running),
        );
    }
    t.family(
        "proxyvisor_actor_failed",
        "gauge",
        "1 when the actor exceeded its restart intensity (failed in health).",
    );
    for a in &actors {
        t.sample(
            "proxyvisor_actor_failed",
            &[("actor", a.name)],
            flag(a.status == ActorState::Failed),
        );
    }

    // Sources and the store.
    let sources = shared.board.sources();
    t.family(
        "proxyvisor_source_up",
        "gauge",
        "1 unless the source's last fetch failed.",
    );
    for s in &sources {
        t.sample(
            "proxyvisor_source_up",
            &[("source", &s.name)],
            flag(s.status != SourceState::Error),
        );
    }
    t.family(
        "proxyvisor_source_proxies",
        "gauge",
        "Proxies in the source's last list.",
    );
    for s in &sources {
        t.sample(
            "proxyvisor_source_proxies",
            &[("source", &s.name)],
            s.proxies as f64,
        );
    }
    let store = shared.board.store_status();
    t.single(
        "proxyvisor_store_up",
        "gauge",
        "1 when the store's last write succeeded.",
        flag(store.status == StoreState::Ok),
    );
    t.single(
        "proxyvisor_store_pending_writes",
        "gauge",
        "Check results waiting to be written.",
        store.pending_writes as f64,
    );

    // Alert channels.
    let channels: Vec<_> = crate::channels::configured(&shared.config.alerts)
        .into_iter()
        .map(|name| (name, shared.board.channel_status(name)))
        .collect();
    t.family(
        "proxyvisor_alert_channel_up",
        "gauge",
        "1 while the alert channel's last attempt succeeded (or none was made).",
    );
    for (name, s) in &channels {
        t.sample(
            "proxyvisor_alert_channel_up",
            &[("channel", name)],
            flag(s.state == ChannelState::Ok),
        );
    }
    t.family(
        "proxyvisor_alert_deliveries_total",
        "counter",
        "Alert delivery attempts since start, by channel and result (sent or failed).",
    );
    for (name, s) in &channels {
        t.sample(
            "proxyvisor_alert_deliveries_total",
            &[("channel", name), ("result", "sent")],
            s.sent_total as f64,
        );
        t.sample(
            "proxyvisor_alert_deliveries_total",
            &[("channel", name), ("result", "failed")],
            s.failed_total as f64,
        );
    }
    gateway(&mut t, shared);
    t.finish()
}

/// The gateway's counters (all 0 while it is off), and today's traffic cost.
fn gateway(t: &mut Text, shared: &Shared) {
    use crate::published::gateway::{Outcome, KINDS};
    let g = &shared.gateway;
    t.family(
        "proxyvisor_gateway_requests_total",
        "counter",
        "Gateway requests and tunnels since start, by result (ok, failed: every upstream          failed, unavailable: none to try or over the connection limits, refused: 4xx).",
    );
    for o in Outcome::ALL {
        t.sample(
            "proxyvisor_gateway_requests_total",
            &[("result", o.as_str())],
            g.requests(o) as f64,
        );
    }
    t.family(
        "proxyvisor_gateway_bytes_total",
        "counter",
        "Bytes through the gateway since start, by direction (up: client to target) and upstream proxy kind.",
    );
    for kind in KINDS {
        let (up, down) = g.bytes(kind);
        for (direction, v) in [("up", up), ("down", down)] {
            t.sample(
                "proxyvisor_gateway_bytes_total",
                &[("direction", direction), ("kind", kind)],
                v as f64,
            );
        }
    }
    t.single(
        "proxyvisor_gateway_failovers_total",
        "counter",
        "Attempts through a next upstream after one failed, since start.",
        g.failovers.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    t.single(
        "proxyvisor_gateway_open_connections",
        "gauge",
        "Client connections the gateway holds open now.",
        g.open_connections
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    t.single(
        "proxyvisor_gateway_cost_today",
        "gauge",
        "What the gateway's traffic cost today (UTC), in the proxies' money units.",
        shared.usage.load().total_today.cost,
    );
}

/// Prometheus text format 0.0.4 (counters since the process started; no label holds a URL or a
/// secret).
#[utoipa::path(
    tag = "status",
    responses((status = 200, description = "Metric families", body = String,
               content_type = "text/plain; version=0.0.4; charset=utf-8")),
)]
#[get("/metrics")]
async fn metrics(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(render(&shared))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_encoded_in_the_text_format_with_their_labels_escaped() {
        let mut t = Text::new();
        t.family("m", "gauge", "Help with \\ and\nnewline.")
            .sample("m", &[("name", "x\"y"), ("s", "up")], 1.0)
            .sample("m", &[("name", "z"), ("s", "down")], f64::NAN);
        t.single("c_total", "counter", "A counter.", 3.0);
        t.family("empty", "gauge", "No sample.");
        let text = t.finish();
        assert_eq!(
            text,
            "# HELP c_total A counter.\n# TYPE c_total counter\nc_total 3\n\
             # HELP m Help with \\\\ and\\nnewline.\n# TYPE m gauge\n\
             m{name=\"x\\\"y\",s=\"up\"} 1\nm{name=\"z\",s=\"down\"} NaN\n"
        );
    }
}
