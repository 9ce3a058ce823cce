//! The ServiceMonitor watches every hosted service: an HTTP check of each on its own interval
//! (checks run concurrently, so a slow service never delays another), the state machine of
//! `domain::service_health` for each, repairs through `repair` when that says so (several at once
//! when several services are down), alerts through the Alerter, and a published view for
//! `GET /api/monitors`. Monitors come from the config file and from the admin API (stored).

use crate::bus::messages::{AddMonitor, ChangeError, FlushNow, RemoveMonitor, RestartMonitor};
use crate::clock::now_ms;
use crate::domain::alerts::AlertEvent;
use crate::domain::monitor::MonitorDef;
use crate::domain::service_health::{Check, Effects, RepairKind, RepairOutcome, Service, Status};
use crate::domain::service_stats::Stats;
use crate::published::monitors::{MonitorView, MonitorsView, Origin};
use crate::state::Shared;
use crate::store::monitors::{MonitorRow, MonitorStatsRow};
use actix::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod follow;

pub const NAME: &str = crate::bus::names::SERVICE_MONITOR;
const TICK: Duration = Duration::from_millis(50);
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// Longest body read from a watched service.
const MAX_BODY: usize = 64 * 1024;

struct Watched {
    def: Arc<MonitorDef>,
    origin: Origin,
    service: Service,
    stats: Stats,
    next_at: i64,
    checking: bool,
    last_check_at: Option<i64>,
    last_latency_ms: Option<u64>,
    /// As last published; rebuilt only when the monitor changed (the p95 sorts its window).
    published: Arc<MonitorView>,
}

impl Watched {
    fn new(def: MonitorDef, origin: Origin, first_at: i64) -> Self {
        let mut stats = Stats::default();
        stats.on_status(Status::Unknown, first_at);
        let mut w = Watched {
            def: Arc::new(def),
            origin,
            service: Service::default(),
            stats,
            next_at: first_at,
            checking: false,
            last_check_at: None,
            last_latency_ms: None,
            published: Arc::default(),
        };
        w.published = Arc::new(w.view(first_at));
        w
    }

    fn view(&self, now: i64) -> MonitorView {
        MonitorView {
            name: self.def.name.clone(),
            url: self.def.url.clone(),
            origin: self.origin,
            action: self.def.recovery.action(),
            interval_ms: self.def.interval_ms,
            service: self.service.clone(),
            uptime_percent: self.stats.uptime_percent(now),
            avg_response_ms: self.stats.avg_response_ms(),
            p95_response_ms: self.stats.p95_response_ms(),
            checks_ok: self.stats.checks_ok,
            checks_total: self.stats.checks_total,
            repairs: self.stats.repairs,
            predictive_restarts: self.stats.predictive_restarts,
            last_repair: self.stats.last_repair.clone(),
            last_check_at: self.last_check_at,
            last_latency_ms: self.last_latency_ms,
        }
    }
}

pub struct ServiceMonitor {
    shared: Arc<Shared>,
    client: reqwest::Client,
    watched: BTreeMap<String, Watched>,
    /// Names defined in the config file (the admin API may not remove them).
    config_names: HashSet<String>,
    /// Monitors changed since the last publication (their views are rebuilt).
    changed: HashSet<String>,
    last_report: Instant,
    /// Monitors whose stats changed since the last write.
    unsaved: HashSet<String>,
    saving: bool,
    /// The stored monitors are loaded (at start).
    loaded: bool,
    /// In a cluster: the version of the stored monitors loaded here, a load on its way, and
    /// the changes made here (`follow`).
    monitors_version: i64,
    following: bool,
    changes_made: u64,
}

impl ServiceMonitor {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, ServiceMonitor::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        let client = crate::net::client(None, None);
        ServiceMonitor {
            shared,
            client,
            watched: BTreeMap::new(),
            config_names: HashSet::new(),
            changed: HashSet::new(),
            last_report: Instant::now(),
            unsaved: HashSet::new(),
            saving: false,
            loaded: false,
            monitors_version: 0,
            following: false,
            changes_made: 0,
        }
    }

    /// Adds monitors, their first checks spread over the first interval.
    fn add_all(&mut self, defs: Vec<(MonitorDef, Origin)>) {
        let now = now_ms();
        let n = defs.len().max(1) as u64;
        for (i, (def, origin)) in defs.into_iter().enumerate() {
            let first = now + (def.interval_ms.min(1000) * i as u64 / n) as i64;
            self.watched
                .insert(def.name.clone(), Watched::new(def, origin, first));
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = now_ms();
        let due: Vec<String> = self
            .watched
            .iter()
            .filter(|(_, w)| !w.checking && w.next_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for name in due {
            self.spawn_check(name, now, ctx);
        }
        if !self.changed.is_empty() {
            self.publish();
        }
        if self.last_report.elapsed() >= REPORT_EVERY {
            self.last_report = Instant::now();
            self.report();
        }
    }

    fn spawn_check(&mut self, name: String, now: i64, ctx: &mut Context<Self>) {
        let Some(w) = self.watched.get_mut(&name) else {
            return;
        };
        w.checking = true;
        let interval = w.def.interval_ms as i64;
        // The next check keeps to the schedule; a monitor that fell behind starts afresh.
        w.next_at = if w.next_at + interval > now {
            w.next_at + interval
        } else {
            now + interval
        };
        let def = w.def.clone();
        let client = self.client.clone();
        ctx.spawn(
            async move { probe(&client, &def).await }
                .into_actor(self)
                .map(move |check, act, ctx| act.on_check(&name, check, ctx)),
        );
    }

    fn on_check(&mut self, name: &str, check: Check, ctx: &mut Context<Self>) {
        let now = now_ms();
        let Some(w) = self.watched.get_mut(name) else {
            return; // removed meanwhile
        };
        w.checking = false;
        w.last_check_at = Some(now);
        let latency = match &check {
            Check::Ok { latency_ms } => Some(*latency_ms),
            Check::Failed { .. } => None,
        };
        w.last_latency_ms = latency;
        w.stats.on_check(latency.is_some(), latency);
        self.unsaved.insert(name.to_string());
        if let Check::Failed { reason } = &check {
            log::debug!("{NAME}: {name}: check failed: {reason}");
        }
        let fx = w.service.on_check(&check, now, &w.def.rules, name);
        self.apply(name, fx, now, false, ctx);
        self.changed.insert(name.to_string());
    }

    /// Carries out what a step of the state machine asked.
    fn apply(&mut self, name: &str, fx: Effects, now: i64, manual: bool, ctx: &mut Context<Self>) {
        let Some(w) = self.watched.get_mut(name) else {
            return;
        };
        if let Some((from, to)) = fx.changed {
            w.stats.on_status(to, now);
            log::info!(
                "{NAME}: {name} {} → {}{}",
                from.as_str(),
                to.as_str(),
                w.service
                    .last_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
        let repairs_here = fx.repair.is_none() || manual || self.shared.leadership.leads();
        for n in fx.notices {
            // What a repair's start says is the repairing leader's to say.
            if !repairs_here
                && matches!(
                    n.kind,
                    crate::domain::alerts::Kind::RepairStarted
                        | crate::domain::alerts::Kind::PredictiveRestart
                )
            {
                continue;
            }
            self.shared.registry.alert(AlertEvent {
                kind: n.kind,
                key: format!("service:{name}"),
                severity: n.severity,
                message: n.message,
                at: now,
            });
        }
        if let Some(repair) = fx.repair {
            if !self.shared.leadership.leads() && !manual {
                // A follower watches too, but the leader repairs: this one asks again a
                // heartbeat later (by then it may lead). An admin's request is made where it
                // was asked.
                log::info!(
                    "{NAME}: {name}: {} due; the leader makes it",
                    repair.kind.as_str()
                );
                let retry_after_ms = (self.shared.config.cluster.heartbeat_secs * 1000.0) as i64;
                let fx = (w.service).on_repair_done(
                    repair.kind,
                    &RepairOutcome::Deferred { retry_after_ms },
                    now,
                    &w.def.rules,
                    name,
                );
                debug_assert!(fx.repair.is_none());
                return;
            }
            w.stats
                .repair_started(repair.kind, repair.predictive, manual, now);
            log::warn!(
                "{NAME}: {name}: {} {} through {}",
                if repair.predictive {
                    "predictive"
                } else if manual {
                    "requested"
                } else {
                    "repair:"
                },
                repair.kind.as_str(),
                w.def.recovery.action()
            );
            self.spawn_repair(name.to_string(), repair.kind, manual, ctx);
        }
    }

    fn spawn_repair(
        &mut self,
        name: String,
        kind: RepairKind,
        manual: bool,
        ctx: &mut Context<Self>,
    ) {
        let Some(w) = self.watched.get(&name) else {
            return;
        };
        let def = w.def.clone();
        let client = self.client.clone();
        let started = Instant::now();
        let store = self.shared.store.clone();
        let me = self.shared.cluster.load().instance_id.clone();
        let term = self.shared.leadership.term();
        let cooldown_ms = def.rules.cooldown_ms;
        let claim_name = name.clone();
        // An admin's request is not claimed: it is one, asked once.
        let unclaimed = manual || self.shared.leadership.unclaimed();
        ctx.spawn(
            async move {
                // Claimed in the database first: under this leader's term, and once per
                // warm-up whichever instance led when the last one was made.
                let claim = match unclaimed {
                    true => Ok(true),
                    false => {
                        store
                            .call(move |s| s.claim_repair(&claim_name, &me, term, cooldown_ms))
                            .await
                    }
                };
                match claim {
                    Ok(true) => crate::repair::run(&client, &def, kind).await,
                    Ok(false) => RepairOutcome::Claimed,
                    Err(e) => RepairOutcome::Failed {
                        reason: format!("cannot claim the repair in the store: {e}"),
                    },
                }
            }
            .into_actor(self)
            .map(move |outcome, act, ctx| {
                let now = now_ms();
                let Some(w) = act.watched.get_mut(&name) else {
                    return;
                };
                let (ok, error) = match &outcome {
                    RepairOutcome::Done => (true, None),
                    RepairOutcome::Claimed => {
                        log::info!(
                            "{NAME}: {name}: {} not called: claimed within the warm-up by \
                                 the leader before, or this instance no longer leads",
                            kind.as_str()
                        );
                        (true, None)
                    }
                    RepairOutcome::Failed { reason } => (false, Some(reason.clone())),
                    RepairOutcome::RateLimited { retry_after_ms }
                    | RepairOutcome::Deferred { retry_after_ms } => (
                        false,
                        Some(format!("rate limited; retrying after {retry_after_ms} ms")),
                    ),
                };
                w.stats.repair_finished(ok, error.clone(), now);
                act.unsaved.insert(name.clone());
                log::info!(
                    "{NAME}: {name}: {} {} in {} ms{}",
                    kind.as_str(),
                    if ok { "done" } else { "failed" },
                    started.elapsed().as_millis(),
                    error.map(|e| format!(": {e}")).unwrap_or_default()
                );
                let fx = w
                    .service
                    .on_repair_done(kind, &outcome, now, &w.def.rules, &name);
                act.apply(&name, fx, now, false, ctx);
                act.changed.insert(name);
            }),
        );
    }

    /// Writes the stats that changed, in one transaction, behind the checks.
    fn save(&mut self, ctx: &mut Context<Self>) {
        if self.saving || self.unsaved.is_empty() {
            return;
        }
        let now = now_ms();
        let names: Vec<String> = self.unsaved.drain().collect();
        let rows: Vec<MonitorStatsRow> = names
            .iter()
            .filter_map(|n| {
                let w = self.watched.get(n)?;
                Some(MonitorStatsRow::new(n, &w.stats.saved(now), now))
            })
            .collect();
        self.saving = true;
        let store = self.shared.store.clone();
        let write = async move { store.call(move |s| s.save_monitor_stats(&rows)).await };
        ctx.spawn(write.into_actor(self).map(move |r, act, _| {
            act.saving = false;
            let failed = match r {
                Ok(()) => None,
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = failed {
                log::warn!(
                    "{NAME}: writing the stats of {} monitors failed, will retry: {e}",
                    names.len()
                );
                act.unsaved.extend(names);
            }
        }));
    }

    /// Publishes every monitor's view, rebuilding those of the monitors that changed. (An
    /// unchanged monitor's uptime is as of its last check, at most one interval old.)
    fn publish(&mut self) {
        let now = now_ms();
        for name in self.changed.drain() {
            if let Some(w) = self.watched.get_mut(&name) {
                w.published = Arc::new(w.view(now));
            }
        }
        let monitors = self.watched.values().map(|w| w.published.clone()).collect();
        self.shared.monitors.store(Arc::new(MonitorsView {
            monitors,
            published_at: now,
        }));
    }

    /// A status line a minute: counts by state, and each service that is not up.
    fn report(&self) {
        if self.watched.is_empty() {
            return;
        }
        let now = now_ms();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for w in self.watched.values() {
            *counts.entry(w.service.status.as_str()).or_default() += 1;
        }
        let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let troubled: Vec<String> = self
            .watched
            .values()
            .filter(|w| w.service.status != Status::Up)
            .take(10)
            .map(|w| {
                format!(
                    "{} {} (uptime {})",
                    w.def.name,
                    w.service.status.as_str(),
                    w.stats
                        .uptime_percent(now)
                        .map_or("-".into(), |u| format!("{u}%"))
                )
            })
            .collect();
        log::info!(
            "{NAME}: {} monitors: {}{}",
            self.watched.len(),
            summary.join(", "),
            if troubled.is_empty() {
                String::new()
            } else {
                format!("; {}", troubled.join(", "))
            }
        );
    }
}

/// One check of a service: the expected status (and body substring) within the timeout.
async fn probe(client: &reqwest::Client, def: &MonitorDef) -> Check {
    let started = Instant::now();
    let failed = |reason: String| Check::Failed { reason };
    let resp = match client
        .get(&def.url)
        .timeout(Duration::from_millis(def.timeout_ms))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return failed(format!("no answer within {} ms", def.timeout_ms))
        }
        Err(e) if e.is_connect() => return failed("connection failed".into()),
        // Without the URL: it may hold a token.
        Err(e) => return failed(format!("request failed: {}", e.without_url())),
    };
    let status = resp.status().as_u16();
    if status != def.expect_status {
        return failed(format!("HTTP {status}, expected {}", def.expect_status));
    }
    if let Some(want) = &def.expect_body {
        let mut resp = resp;
        let read = crate::net::read_body(&mut resp, MAX_BODY).await;
        match read.error {
            Some(e) if e.is_timeout() => {
                return failed(format!("no whole answer within {} ms", def.timeout_ms))
            }
            Some(_) => return failed("the answer broke off".into()),
            None => {}
        }
        let body = read.bytes;
        if !String::from_utf8_lossy(&body).contains(want.as_str()) {
            return failed("the answer lacks the expected body".into());
        }
    }
    Check::Ok {
        latency_ms: started.elapsed().as_millis() as u64,
    }
}

impl Actor for ServiceMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
        let defs = self.shared.config.defs.monitors.clone();
        self.config_names = defs.iter().map(|d| d.name.clone()).collect();
        let store = self.shared.store.clone();
        let load = async move {
            store
                .call(|s| Ok((s.load_monitors()?, s.load_monitor_stats()?)))
                .await
        };
        // Changes other instances make from now on are followed (`follow`).
        let version = self
            .shared
            .changes
            .version(crate::domain::cluster::Topic::Monitors);
        ctx.wait(load.into_actor(self).map(move |r, act, _| {
            act.loaded = true;
            act.monitors_version = version;
            let mut all: Vec<(MonitorDef, Origin)> =
                defs.into_iter().map(|d| (d, Origin::Config)).collect();
            let mut saved = Vec::new();
            match r {
                Ok((rows, stats)) => {
                    saved = stats;
                    for row in rows {
                        match stored_def(&row) {
                            Ok(d) if act.config_names.contains(&d.name) => log::warn!(
                                "{NAME}: stored monitor {} is shadowed by the config file's",
                                d.name
                            ),
                            Ok(d) => all.push((d, Origin::Api)),
                            Err(e) => {
                                log::warn!("{NAME}: skipping stored monitor {}: {e}", row.name)
                            }
                        }
                    }
                }
                Err(e) => log::error!("{NAME}: cannot load stored monitors: {e}"),
            }
            if !all.is_empty() {
                log::info!("{NAME}: watching {} services", all.len());
            }
            act.add_all(all);
            let now = now_ms();
            for row in saved {
                if let Some(w) = act.watched.get_mut(&row.name) {
                    w.stats = Stats::restored(row.saved(), now);
                    act.changed.insert(row.name);
                }
            }
            act.publish();
        }));
        super::every(ctx, TICK, |act, ctx| {
            act.tick(ctx);
            act.follow(ctx);
        });
        let every = Duration::from_millis(self.shared.config.database.flush_interval_ms.max(200));
        super::every(ctx, every, |act, ctx| act.save(ctx));
    }
}

/// A stored monitor's definition.
fn stored_def(row: &MonitorRow) -> Result<MonitorDef, String> {
    let c: crate::config::MonitorConfig =
        serde_json::from_str(&row.definition).map_err(|e| format!("bad JSON: {e}"))?;
    crate::config::monitor_def(&c, crate::env::string)
}

/// Added monitors are stored first; the actor takes no other message meanwhile, so two
/// changes never interleave.
impl Handler<AddMonitor> for ServiceMonitor {
    type Result = AtomicResponse<Self, Result<String, ChangeError>>;

    fn handle(&mut self, msg: AddMonitor, _: &mut Self::Context) -> Self::Result {
        if self.shared.board.store_degraded() {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Err(ChangeError::Store(
                "the store is not taking writes right now; try again".into(),
            )))));
        }
        if self.watched.contains_key(&msg.def.name) {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Err(ChangeError::Conflict(
                format!("a monitor named `{}` exists", msg.def.name),
            )))));
        }
        let store = self.shared.store.clone();
        let row = MonitorRow {
            name: msg.def.name.clone(),
            definition: msg.definition,
            created_at: msg.created_at,
        };
        let write = async move { store.call(move |s| s.insert_monitor(&row)).await };
        let def = msg.def;
        AtomicResponse::new(Box::pin(write.into_actor(self).map(move |r, act, _| {
            match r {
                Ok(()) => {}
                Err(e) if e.is_conflict() => {
                    return Err(ChangeError::Conflict(
                        "a monitor of this name is stored".into(),
                    ))
                }
                Err(e) => {
                    act.shared.board.store_failed(&e.to_string());
                    return Err(ChangeError::Store(format!(
                        "the store did not take it: {e}"
                    )));
                }
            }
            let name = def.name.clone();
            log::info!("{NAME}: monitor {name} added ({})", def.recovery.action());
            act.add_all(vec![(def, Origin::Api)]);
            act.changes_made += 1;
            act.publish();
            Ok(name)
        })))
    }
}

impl Handler<RemoveMonitor> for ServiceMonitor {
    type Result = AtomicResponse<Self, Result<String, ChangeError>>;

    fn handle(&mut self, msg: RemoveMonitor, _: &mut Self::Context) -> Self::Result {
        let name = msg.name;
        let refuse = |e| AtomicResponse::new(Box::pin(actix::fut::ready(Err(e))));
        if !self.watched.contains_key(&name) {
            return refuse(ChangeError::NotFound(format!("no monitor named `{name}`")));
        }
        if self.config_names.contains(&name) {
            return refuse(ChangeError::Conflict(format!(
                "`{name}` is defined in the config file; remove it there"
            )));
        }
        if self.shared.board.store_degraded() {
            return refuse(ChangeError::Store(
                "the store is not taking writes right now; try again".into(),
            ));
        }
        let store = self.shared.store.clone();
        let key = name.clone();
        let write = async move { store.call(move |s| s.delete_monitor(&key)).await };
        AtomicResponse::new(Box::pin(write.into_actor(self).map(move |r, act, _| {
            match r {
                Ok(_) => {}
                Err(e) => {
                    act.shared.board.store_failed(&e.to_string());
                    return Err(ChangeError::Store(format!(
                        "the store did not take it: {e}"
                    )));
                }
            }
            act.watched.remove(&name);
            act.unsaved.remove(&name);
            act.changes_made += 1;
            log::info!("{NAME}: monitor {name} removed");
            act.publish();
            Ok(name)
        })))
    }
}

impl Handler<RestartMonitor> for ServiceMonitor {
    type Result = Result<RepairKind, ChangeError>;

    fn handle(&mut self, msg: RestartMonitor, ctx: &mut Self::Context) -> Self::Result {
        let name = msg.name;
        let now = now_ms();
        let w = self
            .watched
            .get_mut(&name)
            .ok_or_else(|| ChangeError::NotFound(format!("no monitor named `{name}`")))?;
        if !w.def.rules.can_repair {
            return Err(ChangeError::Conflict(format!(
                "`{name}` has no recovery action (action = \"none\")"
            )));
        }
        let repair = w
            .service
            .force_repair(now, &w.def.rules)
            .ok_or_else(|| ChangeError::Conflict(format!("a repair of `{name}` is running")))?;
        let fx = Effects {
            repair: Some(repair),
            ..Effects::default()
        };
        self.apply(&name, fx, now, true, ctx);
        self.changed.insert(name);
        Ok(repair.kind)
    }
}

/// Writes every monitor's stats now (at shutdown); waits for a write already running.
impl Handler<FlushNow> for ServiceMonitor {
    type Result = ResponseActFuture<Self, Result<usize, String>>;

    fn handle(&mut self, _: FlushNow, _: &mut Self::Context) -> Self::Result {
        if self.saving {
            let later = tokio::time::sleep(Duration::from_millis(20));
            return Box::pin(
                later
                    .into_actor(self)
                    .then(|_, act, ctx| act.handle(FlushNow, ctx)),
            );
        }
        let now = now_ms();
        let rows: Vec<MonitorStatsRow> = (self.watched.iter())
            .map(|(n, w)| MonitorStatsRow::new(n, &w.stats.saved(now), now))
            .collect();
        self.unsaved.clear();
        let n = rows.len();
        let store = self.shared.store.clone();
        let write = async move {
            match store.call(move |s| s.save_monitor_stats(&rows)).await {
                Ok(()) => Ok(n),
                Err(e) => Err(e.to_string()),
            }
        };
        Box::pin(write.into_actor(self))
    }
}

super::controlled!(
    ServiceMonitor,
    NAME,
    [add_monitor, remove_monitor, restart_monitor, flush_monitors]
);
