//! The TierBalancer owns the pool: it adds what sources announce, sends proxies to the
//! ValidatorPool (fresh ones at once, serving ones on the rolling revalidation schedule), applies
//! each verdict through the lifecycle rules, keeps primary at its target, publishes the immutable
//! snapshot the API serves from, and writes changes behind to the store in batches (`writes`).

use crate::bus::messages::{
    CancelQueued, CheckExtras, CheckJob, DeadEvent, ForceAccept, ForceAccepted, Report, SourceList,
    Verdict,
};
use crate::clock::now_ms;
use crate::domain::lifecycle::{apply_check, CheckResult, Health, Move, Rules, Tier};
use crate::domain::record::ProxyRecord;
use crate::domain::{alerts, managed::Status, revalidation, tiers};
use crate::published::pool::{Counters, PoolSnapshot};
use crate::state::Shared;
use actix::prelude::*;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod follow;
mod managed;
mod sync;
mod writes;

pub const NAME: &str = crate::bus::names::TIER_BALANCER;
const TICK: Duration = Duration::from_millis(100);
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

pub struct TierBalancer {
    shared: Arc<Shared>,
    rules: Rules,
    pool: HashMap<String, ProxyRecord>,
    /// Proxies sent for checking, with the time after which the check is given up as lost.
    in_flight: HashMap<String, Instant>,
    dirty: HashSet<String>,
    deleted: HashSet<String>,
    flushing: bool,
    /// The snapshot no longer matches the pool.
    stale: bool,
    counters: Counters,
    recent_checks: VecDeque<i64>,
    last_source_update: Option<i64>,
    last_progress: Instant,
    round_checked: u64,
    round_passed: u64,
    /// In a cluster: the newest change taken from the store, a look on its way, and a serving
    /// proxy died here (written at once).
    synced_to: i64,
    syncing: bool,
    urgent: bool,
    /// The round of fresh proxies being checked, for its summary line.
    round: Option<crate::domain::round::Round>,
    /// Names of the managed proxies defined in the config file (the admin API may not change
    /// them).
    config_managed: HashSet<String>,
    /// Unix ms this actor (re)started.
    started_at: i64,
    /// The pool is in memory. Until then (a restart while the store is away) nothing is
    /// checked or published: the API goes on serving the last snapshot.
    loaded: bool,
    /// Source lists that came before the pool was loaded, applied after it.
    early_lists: Vec<SourceList>,
    /// After `POST /api/force/accept`: fresh proxies wait until this time or the next list.
    fresh_deferred_until: Option<Instant>,
    /// What the pool's alerts have said, and each managed proxy's last status.
    pool_watch: alerts::PoolWatch,
    managed_status: HashMap<String, Status>,
    follow: follow::Follow,
}

impl TierBalancer {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, TierBalancer::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        let rules = shared.config.rules();
        let config_managed = (shared.config.defs.managed.iter())
            .map(|d| d.name.clone())
            .collect();
        TierBalancer {
            config_managed,
            started_at: now_ms(),
            loaded: false,
            early_lists: Vec::new(),
            fresh_deferred_until: None,
            shared,
            rules,
            pool: HashMap::new(),
            in_flight: HashMap::new(),
            dirty: HashSet::new(),
            deleted: HashSet::new(),
            flushing: false,
            stale: true,
            counters: Counters::default(),
            recent_checks: VecDeque::new(),
            last_source_update: None,
            last_progress: Instant::now(),
            round_checked: 0,
            round_passed: 0,
            round: None,
            synced_to: now_ms(),
            syncing: false,
            urgent: false,
            pool_watch: Default::default(),
            managed_status: HashMap::new(),
            follow: Default::default(),
        }
    }

    fn load(&mut self, records: Vec<ProxyRecord>) {
        self.pool = records.into_iter().map(|r| (r.key(), r)).collect();
        self.loaded = true;
        self.shared.board.store(|s| s.pool_reload_pending = false);
        let located: Vec<String> = (self.pool.iter_mut())
            .filter_map(|(k, r)| self.shared.locate(r).then(|| k.clone()))
            .collect();
        if !located.is_empty() {
            log::info!(
                "geoip: countries found for {} stored proxies",
                located.len()
            );
            self.dirty.extend(located);
        }
        let old = self.shared.snapshot();
        // Counters survive a restart of this actor (they live in the last snapshot).
        self.counters = old.counters;
        self.last_source_update = old.last_source_update;
        self.stale = true;
        log::info!("{NAME}: pool loaded, {} proxies", self.pool.len());
        for list in std::mem::take(&mut self.early_lists) {
            self.on_source_list(list);
        }
    }

    /// Reloads the pool from the store (after a restart), retrying every second while the store
    /// is away; the actor takes no message meanwhile.
    fn reload(&mut self, ctx: &mut Context<Self>) {
        let store = self.shared.store.clone();
        let load = async move { store.call(|s| s.load_pool()).await };
        ctx.wait(load.into_actor(self).map(|r, act, ctx| {
            let error = match r {
                Ok(records) => return act.load(records),
                Err(e) => e.to_string(),
            };
            log::error!("{NAME}: cannot reload the pool, retrying in 1 s (serving the last snapshot meanwhile): {error}");
            act.shared.board.store(|s| s.pool_reload_pending = true);
            ctx.run_later(Duration::from_secs(1), |act, ctx| act.reload(ctx));
        }));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if !self.loaded {
            return;
        }
        let now = Instant::now();
        self.in_flight.retain(|_, until| *until > now);
        self.dispatch(ctx);
        if self.stale {
            self.publish();
        }
        self.end_round();
        if now.duration_since(self.last_progress) >= PROGRESS_EVERY {
            self.last_progress = now;
            if !self.in_flight.is_empty() || self.round_checked > 0 {
                let c = self.shared.snapshot().counts;
                let round = (self.round.as_ref())
                    .map(|r| {
                        format!(
                            "round: {} of {} checked, {} passed; ",
                            r.checked,
                            r.checked + c.fresh as u64,
                            r.passed
                        )
                    })
                    .unwrap_or_default();
                let parked = (self.shared.checks_parked).load(std::sync::atomic::Ordering::Relaxed);
                log::info!(
                    "validation: {round}{} checked ({} passed) in the last {} s ({:.0}/s), {} in \
                     flight ({parked} parked); pool: {} primary, {} standby, {} emergency, {} \
                     fresh, {} dead",
                    self.round_checked,
                    self.round_passed,
                    PROGRESS_EVERY.as_secs(),
                    self.round_checked as f64 / PROGRESS_EVERY.as_secs_f64(),
                    self.in_flight.len(),
                    c.primary,
                    c.standby,
                    c.emergency,
                    c.fresh,
                    c.dead
                );
                self.round_checked = 0;
                self.round_passed = 0;
            }
        }
    }

    /// Logs the summary of the round of fresh proxies once none is left to check.
    fn end_round(&mut self) {
        let done = self.shared.snapshot().counts.fresh == 0 || self.in_flight.is_empty();
        if let Some(round) = self.round.take_if(|_| done) {
            let v = &self.shared.config.validation;
            log::info!("{}", round.summary(now_ms(), v.timeout_ms, v.concurrency));
        }
    }

    /// Sends fresh proxies and due re-checks to the ValidatorPool.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let Some(validator) = self.shared.registry.check_batch.get() else {
            return;
        };
        let v = &self.shared.config.validation;
        let interval_ms = (v.revalidate_interval_secs * 1000.0) as u64;
        let now = now_ms();
        if self
            .fresh_deferred_until
            .is_some_and(|t| t <= Instant::now())
        {
            self.fresh_deferred_until = None;
        }
        let fresh_deferred = self.fresh_deferred_until.is_some();
        let mut keys: Vec<String> = self
            .pool
            .iter()
            .filter(|(k, r)| {
                !fresh_deferred && r.health.tier == Tier::Fresh && !self.in_flight.contains_key(*k)
            })
            .map(|(k, _)| k.clone())
            .collect();
        // Profile results live in memory: serving proxies last checked before this actor
        // started have none, and are checked at once rather than when revalidation comes.
        if !v.profiles.is_empty() {
            keys.extend(
                (self.pool.iter())
                    .filter(|(k, r)| {
                        r.health.tier.is_serving()
                            && r.profiles.is_empty()
                            && r.health.last_checked_at < Some(self.started_at)
                            && !self.in_flight.contains_key(*k)
                    })
                    .map(|(k, _)| k.clone()),
            );
        }
        let serving = self.pool.values().filter(|r| r.health.tier.is_serving());
        let budget = revalidation::budget(serving.count(), interval_ms, TICK.as_millis() as u64);
        let early: HashSet<String> = keys.iter().cloned().collect();
        keys.extend(revalidation::pick_due(
            self.pool
                .iter()
                .filter(|(k, r)| {
                    r.health.tier.is_serving()
                        && !self.in_flight.contains_key(*k)
                        && !early.contains(*k)
                })
                .map(|(k, r)| (k.clone(), r.health.last_checked_at)),
            interval_ms,
            now,
            budget,
        ));
        if keys.is_empty() {
            return;
        }
        // A check waits for a permit behind the ones already queued: give it that long, twice.
        let queued = (self.in_flight.len() + keys.len()) / v.concurrency.max(1);
        let lost_after = Duration::from_millis(v.timeout_ms) * (2 + queued as u32) + TICK;
        let judge = v.judge_url.is_some();
        let until = Instant::now() + lost_after;
        if self.round.is_none() && keys.iter().any(|k| self.is_fresh(k)) {
            self.round = Some(crate::domain::round::Round::start(now_ms()));
        }
        let jobs = keys
            .into_iter()
            .filter_map(|key| {
                let r = self.pool.get(&key)?;
                let job = CheckJob {
                    judge: judge && r.health.tier == Tier::Fresh,
                    endpoint: r.endpoint.clone(),
                    key: key.clone(),
                };
                self.in_flight.insert(key, until);
                Some(job)
            })
            .collect();
        self.send_checks(validator, jobs, lost_after, ctx);
    }

    /// Rebalances primary and publishes a new snapshot.
    fn publish(&mut self) {
        let r = tiers::rebalance(
            self.pool.iter().map(|(k, r)| (k, &r.health)),
            self.shared.config.tiers.primary_target,
            &self.rules,
        );
        let promote: Vec<String> = r.promote.into_iter().cloned().collect();
        let demote: Vec<String> = r.demote.into_iter().cloned().collect();
        for (keys, tier) in [(promote, Tier::Primary), (demote, Tier::Standby)] {
            for k in keys {
                if let Some(rec) = self.pool.get_mut(&k) {
                    rec.health.tier = tier;
                    if tier == Tier::Primary {
                        self.counters.promotions += 1;
                    } else {
                        self.counters.demotions += 1;
                    }
                    self.dirty.insert(k);
                }
            }
        }
        let now = now_ms();
        while self
            .recent_checks
            .front()
            .is_some_and(|&t| now - t > 60_000)
        {
            self.recent_checks.pop_front();
        }
        self.counters.checks_per_minute = self.recent_checks.len() as u64;
        let snapshot = PoolSnapshot::build(
            self.pool.values(),
            self.counters,
            now,
            self.last_source_update,
        );
        self.raise_alerts(&snapshot, now);
        self.shared.snapshot.store(Arc::new(snapshot));
        self.stale = false;
        self.shared
            .board
            .store(|s| s.pending_writes = self.dirty.len() + self.deleted.len());
    }

    /// The pool fell below `minimum_guaranteed`, emptied or came back; a managed proxy's status
    /// changed (the rules of when: `domain::alerts`).
    fn raise_alerts(&mut self, snap: &PoolSnapshot, now: i64) {
        let (serving, minimum) = (
            snap.counts.serving(),
            self.shared.config.tiers.minimum_guaranteed,
        );
        let checked = snap.counters.checks_total > 0;
        let mut events: Vec<_> = (self.pool_watch.observe(serving, minimum, checked))
            .map(|a| a.event(now))
            .into_iter()
            .collect();
        for m in &snap.managed {
            let status = crate::domain::managed::status(&m.health, &self.rules);
            let before = self.managed_status.insert(m.name.clone(), status);
            events.extend(alerts::managed_status_alert(&m.name, before, status, now));
        }
        for e in events {
            self.shared.registry.alert(e);
        }
    }

    fn on_verdict(&mut self, v: Verdict) {
        self.in_flight.remove(&v.key);
        let Some(rec) = self.pool.get_mut(&v.key) else {
            return;
        };
        let result = CheckResult {
            ok: v.outcome.ok,
            latency_ms: v.outcome.latency_ms,
            status: v.outcome.status,
            at: v.at,
        };
        let before = rec.health.tier;
        let mv = apply_check(&mut rec.health, result, &self.rules);
        if let Some(a) = v.anonymity {
            rec.anonymity = Some(a);
        }
        crate::domain::profiles::record(&mut rec.profiles, v.outcome.ok, &v.profiles, v.at);
        self.counters.checks_total += 1;
        self.round_checked += 1;
        if v.outcome.ok {
            self.counters.checks_passed += 1;
            self.round_passed += 1;
        }
        match mv {
            Move::Demoted => self.counters.demotions += 1,
            Move::Died => self.counters.deaths += 1,
            Move::Blacklisted => self.counters.blacklisted += 1,
            _ => {}
        }
        let event = match mv {
            Move::Died => Some(DeadEvent::Died {
                key: v.key.clone(),
                endpoint: rec.endpoint.clone(),
                deaths: rec.health.deaths,
                at: v.at,
            }),
            Move::Joined if before == Tier::Dead => {
                Some(DeadEvent::Resurrected { key: v.key.clone() })
            }
            Move::Blacklisted => Some(DeadEvent::Gone { key: v.key.clone() }),
            _ => None,
        };
        if let (Some(event), Some(manager)) = (event, self.shared.registry.dead_event.get()) {
            manager.do_send(event);
        }
        if matches!(mv, Move::Died | Move::Blacklisted) && before.is_serving() {
            self.urgent = true;
        }
        if matches!(mv, Move::Died | Move::Blacklisted | Move::Demoted) && before.is_serving() {
            log::info!(
                "{NAME}: {} {} → {} ({})",
                v.key,
                before.as_str(),
                rec.health.tier.as_str(),
                v.outcome.failure.as_deref().unwrap_or("slow or flaky")
            );
        } else {
            log::debug!("{NAME}: {} {:?} {:?}", v.key, mv, v.outcome);
        }
        self.recent_checks.push_back(v.at);
        self.dirty.insert(v.key);
        self.stale = true;
    }

    fn is_fresh(&self, key: &str) -> bool {
        self.pool
            .get(key)
            .is_some_and(|r| r.health.tier == Tier::Fresh)
    }

    /// The judge's grade and the profiles of a passing check whose verdict came before them;
    /// dropped when the proxy was checked again since (that check's own answer counts).
    fn on_extras(&mut self, x: CheckExtras) {
        let Some(rec) = self.pool.get_mut(&x.key) else {
            return;
        };
        if rec.health.last_checked_at != Some(x.at) {
            return;
        }
        if let Some(a) = x.anonymity {
            rec.anonymity = Some(a);
        }
        crate::domain::profiles::record(&mut rec.profiles, true, &x.profiles, x.at);
        self.dirty.insert(x.key);
        self.stale = true;
    }

    fn on_source_list(&mut self, list: SourceList) {
        let now = now_ms();
        // A new list starts a new round: fresh proxies are checked again.
        self.fresh_deferred_until = None;
        let mut seen = HashSet::with_capacity(list.proxies.len());
        let mut added = 0usize;
        for d in list.proxies {
            let key = d.endpoint.key();
            if !seen.insert(key.clone()) {
                continue;
            }
            match self.pool.get_mut(&key) {
                Some(rec) => {
                    let mut changed = false;
                    if rec.country.is_none() && d.country.is_some() {
                        rec.country = d.country;
                        changed = true;
                    }
                    if rec.anonymity.is_none() && d.anonymity.is_some() {
                        rec.anonymity = d.anonymity;
                        changed = true;
                    }
                    if changed {
                        self.dirty.insert(key);
                    }
                }
                None => {
                    added += 1;
                    self.deleted.remove(&key);
                    self.dirty.insert(key.clone());
                    let mut rec = ProxyRecord {
                        endpoint: d.endpoint,
                        source: list.source.clone(),
                        kind: "free".into(),
                        cost_per_gb: 0.0,
                        priority: list.priority,
                        anonymity: d.anonymity,
                        country: d.country,
                        health: Health::default(),
                        first_seen_at: now,
                        managed: None,
                        profiles: Vec::new(),
                    };
                    self.shared.locate(&mut rec);
                    self.pool.insert(key, rec);
                }
            }
        }
        // Proxies that vanished from their source stay while they work; dead ones go.
        let gone: Vec<String> = self
            .pool
            .iter()
            .filter(|(k, r)| {
                r.source == list.source
                    && matches!(r.health.tier, Tier::Dead | Tier::Blacklisted)
                    && !seen.contains(*k)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            self.drop_record(k);
        }
        log::info!(
            "{NAME}: source {}: {} listed, {} new, {} dead ones dropped; pool now {}",
            list.source,
            seen.len(),
            added,
            gone.len(),
            self.pool.len()
        );
        self.last_source_update = Some(now);
        self.stale = true;
    }
}

impl Actor for TierBalancer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
        let preloaded = self.shared.take_preloaded();
        match preloaded {
            Some(records) => self.load(records),
            // A restart: reload the pool from the store before handling any message.
            None => self.reload(ctx),
        }
        super::every(ctx, TICK, |act, ctx| {
            act.tick(ctx);
            act.write_soon(ctx);
        });
        super::every(ctx, sync::SYNC_EVERY, |act, ctx| {
            act.sync(ctx);
            act.follow(ctx);
        });
        let every = Duration::from_millis(self.shared.config.database.flush_interval_ms);
        super::every(ctx, every, |act, ctx| {
            if let Some(write) = act.write() {
                ctx.spawn(write.map(|_, _, _| ()));
            }
        });
    }
}

impl Handler<SourceList> for TierBalancer {
    type Result = ();
    fn handle(&mut self, msg: SourceList, _: &mut Self::Context) {
        if !self.loaded {
            self.early_lists.retain(|l| l.source != msg.source);
            self.early_lists.push(msg);
            return;
        }
        self.on_source_list(msg);
    }
}

impl Handler<Verdict> for TierBalancer {
    type Result = ();
    fn handle(&mut self, msg: Verdict, _: &mut Self::Context) {
        if let Some(round) = &mut self.round {
            let timeout_ms = self.shared.config.validation.timeout_ms;
            round.record(msg.outcome.ok, msg.outcome.latency_ms.into(), timeout_ms);
        }
        self.on_verdict(msg);
    }
}

impl Handler<CheckExtras> for TierBalancer {
    type Result = ();
    fn handle(&mut self, msg: CheckExtras, _: &mut Self::Context) {
        self.on_extras(msg);
    }
}

/// Client feedback counts as a check at the time of the report; a passing report keeps the
/// proxy's last measured latency.
impl Handler<Report> for TierBalancer {
    type Result = Option<bool>;
    fn handle(&mut self, msg: Report, _: &mut Self::Context) -> Option<bool> {
        if !self.loaded {
            return None;
        }
        let Some(rec) = self.pool.get(&msg.key) else {
            return Some(false);
        };
        let latency_ms = rec.health.latency_ms.unwrap_or(0);
        let failure = (!msg.ok).then(|| "reported failing by a client".to_string());
        self.on_verdict(Verdict {
            key: msg.key,
            outcome: crate::checker::Outcome {
                ok: msg.ok,
                latency_ms,
                status: msg.status,
                failure,
            },
            anonymity: None,
            profiles: Vec::new(),
            at: now_ms(),
        });
        Some(true)
    }
}

/// `POST /api/force/accept`: the validation round stops (checks waiting for a permit are
/// dropped), fresh proxies not checked yet wait for the next list from their source (or a
/// revalidation period), and the pool as it is now is published at once.
impl Handler<ForceAccept> for TierBalancer {
    type Result = ResponseActFuture<Self, ForceAccepted>;
    fn handle(&mut self, _: ForceAccept, _: &mut Self::Context) -> Self::Result {
        let cancel = self
            .shared
            .registry
            .cancel_queued
            .get()
            .map(|v| v.send(CancelQueued));
        let fut = async move {
            match cancel {
                Some(f) => f.await.unwrap_or(0),
                None => 0,
            }
        };
        Box::pin(fut.into_actor(self).map(|cancelled, act, _| {
            let interval = act.shared.config.validation.revalidate_interval_secs;
            act.fresh_deferred_until =
                Some(Instant::now() + Duration::from_secs_f64(interval.max(1.0)));
            // Running checks still report; those dropped are no longer awaited.
            act.in_flight.clear();
            if act.loaded {
                act.publish();
            }
            let deferred = (act.pool.values())
                .filter(|r| r.health.tier == Tier::Fresh)
                .count();
            let serving = act.shared.snapshot().counts.serving();
            log::info!(
                "{NAME}: validation round stopped on request: {cancelled} queued checks dropped, \
                 {deferred} fresh proxies deferred, {serving} serving"
            );
            ForceAccepted {
                cancelled,
                deferred,
                serving,
            }
        }))
    }
}

super::controlled!(
    TierBalancer,
    NAME,
    [
        source_list,
        verdict,
        check_extras,
        report,
        force_accept,
        flush_pool,
        managed_change,
        check_managed
    ]
);
