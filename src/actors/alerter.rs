//! The Alerter: every other actor sends it `Alert`s. It folds repeats and closes alerts on
//! recovery (`domain::alerts::fold`), stores each alert with one pending delivery per configured
//! channel before it counts as queued (the outbox), and delivers to every channel concurrently in
//! spawned futures, so a slow channel never blocks it. A timer retries pending deliveries when
//! their `next_attempt_at` comes (1 s doubling, capped at 5 min, or the channel's `retry_after`);
//! they are reloaded from the store at start, so a restart loses nothing. At
//! `alerts.daily_report_at` (UTC) it sends a daily report. Every delivery outcome is one log line,
//! without secrets.

use crate::bus::messages::Alert;
use crate::bus::messages::{Raise, Raised};
use crate::channels::{self, Channel};
use crate::clock::{now_ms, rfc3339};
use crate::domain::alerts::{
    self, after_attempt, fold, AlertEvent, Fold, Kind, Next, OpenAlert, Outgoing, SendError,
    Severity,
};
use crate::published::board::ChannelState;
use crate::state::Shared;
use crate::store::alerts::{AlertRow, DeliveryRow, NewAlertRow, Stored, FAILED, PENDING, SENT};
use actix::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = crate::bus::names::ALERTER;
const TICK: Duration = Duration::from_millis(100);
/// Deliveries on their way to one channel at once.
const IN_FLIGHT_PER_CHANNEL: usize = 4;
/// Open alerts remembered for folding and recovery.
const OPEN_LOADED: i64 = 1000;
/// Alerts kept in memory while the store is away (the oldest go first past this).
const UNSTORED_MAX: usize = 1000;
/// How often old alerts are deleted (`alerts.keep_days`).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often alerts kept in memory are offered to the store again.
const RETRY_STORE: Duration = Duration::from_secs(1);

/// A delivery not made yet.
#[derive(Clone, Debug)]
struct Pending {
    attempts: u32,
    next_at: i64,
    /// The alert's creation (deliveries are given up a day later).
    created_at: i64,
    in_flight: bool,
}

pub struct Alerter {
    shared: Arc<Shared>,
    channels: Vec<Arc<dyn Channel>>,
    cooldown_ms: i64,
    open: Vec<OpenAlert>,
    /// By (alert id, channel): oldest alert first.
    outbox: BTreeMap<(i64, &'static str), Pending>,
    /// A channel that asked to wait (`retry_after`) is not tried before this time.
    paused: HashMap<&'static str, i64>,
    /// `alerts.daily_report_at`, and when the next report is due.
    daily: Option<alerts::DailyAt>,
    next_report: Option<i64>,
    /// Alerts the store did not take (it is away), oldest first, stored when it is back.
    unstored: std::collections::VecDeque<AlertEvent>,
    /// Alerts dropped because `unstored` was full.
    unstored_dropped: u64,
    storing_unstored: bool,
    /// In a cluster: whether this instance led at the last tick (the outbox is reloaded from
    /// the store when it starts leading, and now and then while it leads).
    leading: bool,
    last_reload: std::time::Instant,
    /// A look for stored deliveries is on its way.
    reloading: bool,
    /// Deliveries finished here whose stored state may not have landed yet: a reload must not
    /// take them for pending (kept a minute).
    finished: HashMap<(i64, &'static str), std::time::Instant>,
}

/// In a cluster, how often the leader takes in deliveries that other instances stored.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

impl Alerter {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, Alerter::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        let a = &shared.config.alerts;
        let channels = channels::from_config(a);
        let daily = shared.config.defs.daily_report_at;
        Alerter {
            cooldown_ms: (a.cooldown_secs.clamp(0.0, 1e9) * 1000.0) as i64,
            channels,
            shared,
            open: Vec::new(),
            outbox: BTreeMap::new(),
            paused: HashMap::new(),
            next_report: daily.map(|d| d.next_after(now_ms())),
            daily,
            unstored: Default::default(),
            unstored_dropped: 0,
            storing_unstored: false,
            leading: false,
            last_reload: std::time::Instant::now(),
            reloading: false,
            finished: HashMap::new(),
        }
    }

    /// In a cluster the leader alone delivers (and sends the daily report), and every instance
    /// stores what it raises in the shared store, where an alert another instance stored first
    /// folds (`Stored`). Every `RELOAD_EVERY`, and at once when this instance starts leading,
    /// the open alerts and pending deliveries are reloaded from the store: so that this one
    /// folds and closes what the others opened, and, leading, delivers what they stored and
    /// what the leader before it had not delivered.
    fn lead(&mut self, ctx: &mut Context<Self>) -> bool {
        let lead = &self.shared.leadership;
        if lead.is_single() {
            return true;
        }
        let leads = lead.leads();
        let started = leads && !self.leading;
        // Alone on the database there is nobody else's alert to take in.
        let failover_ms = (self.shared.config.cluster.failover_secs * 1000.0) as u64;
        let due = self.last_reload.elapsed() >= RELOAD_EVERY
            && self.shared.cluster.load().others_alive(failover_ms);
        if started || due {
            if started {
                log::info!("{NAME}: this instance leads: it delivers the cluster's alerts");
            }
            self.last_reload = std::time::Instant::now();
            self.reload_outbox(ctx, true);
        }
        self.leading = leads;
        leads
    }

    /// Keeps an alert the store did not take, to store it when the store is back.
    fn keep_unstored(&mut self, e: AlertEvent, front: bool) {
        if self.unstored.len() >= UNSTORED_MAX {
            self.unstored.pop_front();
            self.unstored_dropped += 1;
            log::error!(
                "{NAME}: {} alerts waiting for the store; the oldest dropped ({} so far)",
                UNSTORED_MAX,
                self.unstored_dropped
            );
        }
        if front {
            self.unstored.push_front(e);
        } else {
            self.unstored.push_back(e);
        }
        self.show_unstored();
    }

    fn show_unstored(&self) {
        let (waiting, dropped) = (self.unstored.len(), self.unstored_dropped);
        self.shared.board.store(|s| {
            s.alerts_waiting = waiting;
            s.alerts_dropped = dropped;
        });
    }

    /// Offers the oldest kept alert to the store; on success the next one follows at once.
    fn store_unstored(&mut self, ctx: &mut Context<Self>) {
        if self.storing_unstored {
            return;
        }
        let Some(e) = self.unstored.pop_front() else {
            return;
        };
        self.storing_unstored = true;
        // Spawned, not waited for: while the store is away each try takes its connect timeout,
        // and the actor must go on beating (new alerts queue behind `unstored` meanwhile).
        ctx.spawn(self.raise(e.clone()).map(move |r, act, ctx| {
            act.storing_unstored = false;
            act.show_unstored();
            match r {
                Ok(_) => {
                    if act.unstored.is_empty() {
                        log::info!("{NAME}: the store is back; every kept alert is stored");
                    } else {
                        ctx.run_later(Duration::ZERO, |act, ctx| act.store_unstored(ctx));
                    }
                }
                Err(_) => act.keep_unstored(e, true),
            }
        }));
    }

    /// Deletes closed, delivered alerts older than `alerts.keep_days` (in the background).
    fn prune(&mut self, ctx: &mut Context<Self>) {
        let keep_ms = (self.shared.config.alerts.keep_days * 86_400_000.0) as i64;
        let before = now_ms() - keep_ms;
        let store = self.shared.store.clone();
        let work = async move { store.call(move |s| s.prune_alerts(before)).await };
        ctx.spawn(work.into_actor(self).map(|r, _, _| match flatten(r) {
            Ok(0) => {}
            Ok(n) => log::info!("{NAME}: {n} alerts older than alerts.keep_days deleted"),
            Err(e) => log::warn!("{NAME}: cannot delete old alerts: {e}"),
        }));
    }

    /// Loads the outbox; while the store is away, tries again every second.
    fn load_outbox(&mut self, ctx: &mut Context<Self>) {
        self.reload_outbox(ctx, false);
    }

    /// `periodic`: the leader's look for deliveries others stored: quiet, and not retried
    /// (the next look comes soon).
    fn reload_outbox(&mut self, ctx: &mut Context<Self>, periodic: bool) {
        let store = self.shared.store.clone();
        let load = async move {
            store
                .call(|s| {
                    Ok((
                        s.load_open_alerts(OPEN_LOADED)?,
                        s.load_pending_deliveries()?,
                    ))
                })
                .await
        };
        if !periodic {
            ctx.wait(load.into_actor(self).map(|r, act, ctx| match flatten(r) {
                Ok((open, pending)) => act.load(open, pending, None),
                Err(e) => {
                    log::error!("{NAME}: cannot load the outbox, retrying in 1 s: {e}");
                    ctx.run_later(RETRY_STORE, |act, ctx| act.load_outbox(ctx));
                }
            }));
            return;
        }
        // Beside the other work, never waited for (a store that is away must not hold the
        // actor), one at a time, and not while alerts wait for the store.
        if self.reloading || !self.unstored.is_empty() {
            return;
        }
        self.reloading = true;
        let since = now_ms();
        ctx.spawn(load.into_actor(self).map(move |r, act, _| {
            act.reloading = false;
            match flatten(r) {
                Ok((open, pending)) => act.load(open, pending, Some(since)),
                Err(e) => log::debug!("{NAME}: cannot look for stored deliveries: {e}"),
            }
        }));
    }

    fn channel(&self, name: &str) -> Option<&Arc<dyn Channel>> {
        self.channels.iter().find(|c| c.name() == name)
    }

    /// Reloads the open alerts and the pending deliveries (those already in the outbox stay as
    /// they are: one may be on its way). `since`: a look while this instance runs, read from
    /// that time on: quiet, and the open alerts raised here since are kept.
    fn load(&mut self, open: Vec<AlertRow>, pending: Vec<(DeliveryRow, i64)>, since: Option<i64>) {
        let quiet = since.is_some();
        let recent: Vec<OpenAlert> = match since {
            Some(t) => (self.open.iter())
                .filter(|a| a.created_at >= t && !open.iter().any(|r| r.id == a.id))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        self.open = open
            .into_iter()
            .filter_map(|r| {
                Some(OpenAlert {
                    id: r.id,
                    kind: Kind::parse(&r.kind)?,
                    key: r.key,
                    created_at: r.created_at,
                    repeats: r.repeats.max(1) as u32,
                })
            })
            .collect();
        self.open.extend(recent);
        let mut orphans = Vec::new();
        (self.finished).retain(|_, at| at.elapsed() < Duration::from_secs(60));
        for (row, created_at) in pending {
            match self.channel(&row.channel).map(|c| c.name()) {
                Some(name) if self.finished.contains_key(&(row.alert_id, name)) => {}
                Some(name) => {
                    self.outbox.entry((row.alert_id, name)).or_insert(Pending {
                        attempts: row.attempts.max(0) as u32,
                        next_at: row.next_attempt_at.unwrap_or(0),
                        created_at,
                        in_flight: false,
                    });
                }
                None => orphans.push(DeliveryRow {
                    state: FAILED.into(),
                    last_error: Some("the channel is no longer configured".into()),
                    next_attempt_at: None,
                    ..row
                }),
            }
        }
        if !orphans.is_empty() {
            log::warn!(
                "{NAME}: {} pending deliveries are for channels no longer configured: marked failed",
                orphans.len()
            );
            let store = self.shared.store.clone();
            tokio::spawn(async move {
                let marked = store.call(move |s| {
                    for row in &orphans {
                        if let Err(e) = s.update_delivery(row) {
                            log::warn!("{NAME}: cannot mark a delivery failed: {e}");
                        }
                    }
                    Ok(())
                });
                let _ = marked.await;
            });
        }
        if quiet {
            return;
        }
        log::info!(
            "{NAME}: channels: {}; {} open alerts, {} pending deliveries",
            match self.channels.iter().map(|c| c.name()).collect::<Vec<_>>() {
                names if names.is_empty() => "none (alerts are only logged and stored)".into(),
                names => names.join(", "),
            },
            self.open.len(),
            self.outbox.len()
        );
    }

    /// Folds, stores and queues one event. The store write is awaited by the caller with
    /// `ctx.wait` / `AtomicResponse`, so the next event is decided on what this one left.
    fn raise(&mut self, e: AlertEvent) -> ResponseActFuture<Self, Result<Raised, String>> {
        let decision = fold(&self.open, &e, self.cooldown_ms);
        let line = format!(
            "alert {} [{}] {}: {}",
            e.kind.as_str(),
            e.severity.as_str(),
            e.key,
            e.message
        );
        match &decision {
            Fold::Drop => log::info!("{line} (nothing open for it: dropped)"),
            Fold::Repeat { repeats, .. } => log::info!("{line} (repeat {repeats}, folded)"),
            _ if e.severity == Severity::Info => log::info!("{line}"),
            _ => log::warn!("{line}"),
        }
        let store = self.shared.store.clone();
        match decision {
            Fold::Drop => Box::pin(fut::ready(Ok(Raised {
                id: None,
                folded: false,
            }))),
            Fold::Repeat { id, repeats } => {
                let at = e.at;
                let write = async move { store.call(move |s| s.fold_alert(id, repeats, at)).await };
                Box::pin(write.into_actor(self).map(move |r, act, _| {
                    flatten(r)?;
                    if let Some(a) = act.open.iter_mut().find(|a| a.id == id) {
                        a.repeats = repeats;
                    }
                    Ok(Raised {
                        id: Some(id),
                        folded: true,
                    })
                }))
            }
            Fold::New | Fold::Recover { .. } => {
                let close = match decision {
                    Fold::Recover { close } => close,
                    _ => Vec::new(),
                };
                let opens = alerts::opens(e.kind);
                let row = NewAlertRow {
                    kind: e.kind.as_str().into(),
                    key: e.key.clone(),
                    severity: e.severity.as_str().into(),
                    message: e.message.clone(),
                    repeats: 1,
                    created_at: e.at,
                    updated_at: e.at,
                    closed_at: (!opens).then_some(e.at),
                };
                let names: Vec<&'static str> = self.channels.iter().map(|c| c.name()).collect();
                let closing = close.clone();
                let cooldown_ms = match e.kind {
                    Kind::DailyReport => 0,
                    _ => self.cooldown_ms,
                };
                let write = async move {
                    store
                        .call(move |s| s.insert_alert(&row, &names, &closing, cooldown_ms))
                        .await
                };
                Box::pin(write.into_actor(self).map(move |r, act, ctx| {
                    let stored = flatten(r)?;
                    act.open.retain(|a| !close.contains(&a.id));
                    let (id, new) = match stored {
                        Stored::New(id) => (id, true),
                        Stored::Folded(id) => {
                            log::info!(
                                "{NAME}: alert {} {}: already stored by another instance (folded \
                                 into #{id})",
                                e.kind.as_str(),
                                e.key
                            );
                            (id, false)
                        }
                        Stored::AlreadyClosed => {
                            log::info!(
                                "{NAME}: alert {} {}: another instance closed it already",
                                e.kind.as_str(),
                                e.key
                            );
                            return Ok(Raised {
                                id: None,
                                folded: true,
                            });
                        }
                    };
                    if opens && !act.open.iter().any(|a| a.id == id) {
                        act.open.push(OpenAlert {
                            id,
                            kind: e.kind,
                            key: e.key,
                            created_at: e.at,
                            repeats: 1,
                        });
                    }
                    if new {
                        let names: Vec<&'static str> =
                            act.channels.iter().map(|c| c.name()).collect();
                        for name in names {
                            act.outbox.insert(
                                (id, name),
                                Pending {
                                    attempts: 0,
                                    next_at: e.at,
                                    created_at: e.at,
                                    in_flight: false,
                                },
                            );
                        }
                    }
                    if act.shared.leadership.leads() {
                        act.dispatch(ctx);
                    }
                    Ok(Raised {
                        id: Some(id),
                        folded: !new,
                    })
                }))
            }
        }
    }

    /// Starts every delivery that is due (oldest first, a few per channel at once).
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let now = now_ms();
        let mut busy: HashMap<&'static str, usize> = HashMap::new();
        for ((_, ch), p) in &self.outbox {
            if p.in_flight {
                *busy.entry(ch).or_default() += 1;
            }
        }
        let mut due = Vec::new();
        for (&(id, ch), p) in &self.outbox {
            if p.in_flight || p.next_at > now || self.paused.get(ch).is_some_and(|&t| t > now) {
                continue;
            }
            let n = busy.entry(ch).or_default();
            if *n >= IN_FLIGHT_PER_CHANNEL {
                continue;
            }
            *n += 1;
            due.push((id, ch));
        }
        for (id, ch) in due {
            let Some(channel) = self.channel(ch).cloned() else {
                self.outbox.remove(&(id, ch));
                continue;
            };
            if let Some(p) = self.outbox.get_mut(&(id, ch)) {
                p.in_flight = true;
            }
            self.attempt(id, channel, ctx);
        }
    }

    /// One attempt to deliver alert `id` to `channel`, in a spawned future.
    fn attempt(&mut self, id: i64, channel: Arc<dyn Channel>, ctx: &mut Context<Self>) {
        let store = self.shared.store.clone();
        let name = channel.name();
        let work = async move {
            let row = store.call(move |s| s.load_alert(id)).await;
            let alert = match flatten(row) {
                Ok(Some(row)) => outgoing(row).map_err(Attempt::Unsendable)?,
                Ok(None) => {
                    return Err(Attempt::Unsendable(
                        "the alert is gone from the store".into(),
                    ))
                }
                Err(e) => return Err(Attempt::Store(e)),
            };
            channels::send_with_timeout(&*channel, &alert)
                .await
                .map_err(Attempt::Send)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(move |r, act, ctx| act.attempted(id, name, r, ctx)),
        );
    }

    fn attempted(
        &mut self,
        id: i64,
        channel: &'static str,
        r: Result<(), Attempt>,
        ctx: &mut Context<Self>,
    ) {
        let now = now_ms();
        let Some(p) = self.outbox.get_mut(&(id, channel)) else {
            return;
        };
        p.in_flight = false;
        let channel_fault = matches!(r, Err(Attempt::Send(_)));
        let result = match r {
            Ok(()) => Ok(()),
            Err(Attempt::Send(e)) => Err(e),
            Err(Attempt::Unsendable(reason)) => Err(SendError::Permanent(reason)),
            Err(Attempt::Store(e)) => {
                // Not the channel's fault: try again soon, no attempt counted.
                log::warn!("{NAME}: alert #{id} → {channel}: cannot read it from the store: {e}");
                p.next_at = now + 1000;
                return;
            }
        };
        p.attempts = p.attempts.saturating_add(1);
        let attempts = p.attempts;
        let next = after_attempt(&result, attempts, p.created_at, now);
        let error = result.as_ref().err().map(|e| e.reason().to_string());
        let mut row = DeliveryRow {
            alert_id: id,
            channel: channel.into(),
            state: PENDING.into(),
            attempts: attempts.min(i32::MAX as u32) as i32,
            last_error: error.clone(),
            next_attempt_at: None,
            sent_at: None,
        };
        match &next {
            Next::Sent => {
                log::info!("{NAME}: alert #{id} → {channel}: sent (attempt {attempts})");
                self.outbox.remove(&(id, channel));
                self.finished
                    .insert((id, channel), std::time::Instant::now());
                row.state = SENT.into();
                row.sent_at = Some(now);
            }
            Next::RetryAt(at) => {
                log::warn!(
                    "{NAME}: alert #{id} → {channel}: attempt {attempts} failed, next in {:.1} s: {}",
                    (at - now) as f64 / 1000.0,
                    error.as_deref().unwrap_or_default()
                );
                p.next_at = *at;
                row.next_attempt_at = Some(*at);
                if let Err(SendError::Retry {
                    retry_after_ms: Some(_),
                    ..
                }) = &result
                {
                    self.paused.insert(channel, *at);
                }
            }
            Next::Failed => {
                log::error!(
                    "{NAME}: alert #{id} → {channel}: given up after attempt {attempts}: {}",
                    error.as_deref().unwrap_or_default()
                );
                self.outbox.remove(&(id, channel));
                self.finished
                    .insert((id, channel), std::time::Instant::now());
                row.state = FAILED.into();
            }
        }
        let stamp = rfc3339(now);
        self.shared.board.channel(channel, |s| match &error {
            None => {
                s.state = ChannelState::Ok;
                s.last_sent_at = Some(stamp);
                s.sent_total += 1;
            }
            Some(e) if channel_fault => {
                s.state = ChannelState::Failing;
                s.last_error = Some(e.clone());
                s.last_error_at = Some(stamp);
                s.failed_total += 1;
            }
            Some(_) => s.failed_total += 1,
        });
        let store = self.shared.store.clone();
        let write = async move { store.call(move |s| s.update_delivery(&row)).await };
        ctx.spawn(write.into_actor(self).map(move |r, _, _| {
            if let Err(e) = flatten(r) {
                log::error!(
                    "{NAME}: alert #{id} → {channel}: cannot store the delivery state: {e}"
                );
            }
        }));
    }

    /// Sends the daily report when its time has come.
    fn report_if_due(&mut self, ctx: &mut Context<Self>) {
        let now = now_ms();
        let (Some(due), Some(at)) = (self.next_report, self.daily) else {
            return;
        };
        if due > now {
            return;
        }
        self.next_report = Some(at.next_after(now));
        let store = self.shared.store.clone();
        let gateway_on = self.shared.config.defs.gateway.is_some();
        let day_ago = now - 86_400_000;
        let first_hour = crate::domain::usage::hour_of(now) - 23 * 3_600_000;
        let read = async move {
            let kinds = store.call(move |s| s.alert_kinds_since(day_ago)).await;
            let usage = match gateway_on {
                true => Some(store.call(move |s| s.load_usage(first_hour, now + 1)).await),
                false => None,
            };
            (kinds, usage)
        };
        ctx.spawn(read.into_actor(self).map(move |(r, usage), act, ctx| {
            let kinds = flatten(r).unwrap_or_else(|e| {
                log::warn!("{NAME}: daily report without the day's alerts: {e}");
                Vec::new()
            });
            let gateway = usage.and_then(|u| match flatten(u) {
                Ok(rows) => {
                    let kept: Vec<_> = rows.iter().map(|r| (r.slot(), r.tally())).collect();
                    let by = crate::domain::usage::Group::Proxy;
                    let (by_proxy, _) =
                        crate::domain::usage::grouped(kept.iter().map(|(s, t)| (s, t)), by);
                    Some(alerts::DayTraffic::of(by_proxy))
                }
                Err(e) => {
                    log::warn!("{NAME}: daily report without the gateway's day: {e}");
                    None
                }
            });
            let c = act.shared.snapshot().counts;
            let input = alerts::ReportInput {
                primary: c.primary,
                standby: c.standby,
                emergency: c.emergency,
                fresh: c.fresh,
                dead: c.dead,
                blacklisted: c.blacklisted,
                minimum_guaranteed: act.shared.config.tiers.minimum_guaranteed,
                alerts: kinds.iter().filter_map(|k| Kind::parse(k)).collect(),
                open_alerts: act.open.len(),
                gateway,
            };
            let e = AlertEvent::new(
                Kind::DailyReport,
                "daily_report",
                Severity::Info,
                alerts::daily_report(&input),
                now,
            );
            ctx.wait(act.raise(e).map(|_, _, _| ()));
        }));
    }
}

/// Why an attempt did not deliver.
enum Attempt {
    Send(SendError),
    /// The stored alert cannot be sent (gone, or not understood).
    Unsendable(String),
    /// The store did not answer.
    Store(String),
}

/// A store call's result, its failure as text.
fn flatten<T>(r: Result<T, crate::store::StoreError>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

fn outgoing(r: AlertRow) -> Result<Outgoing, String> {
    Ok(Outgoing {
        id: r.id,
        kind: Kind::parse(&r.kind).ok_or_else(|| format!("unknown kind `{}`", r.kind))?,
        severity: Severity::parse(&r.severity)
            .ok_or_else(|| format!("unknown severity `{}`", r.severity))?,
        key: r.key,
        message: r.message,
        repeats: r.repeats.max(1) as u32,
        created_at: r.created_at,
    })
}

impl Actor for Alerter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
        self.load_outbox(ctx);
        super::every(ctx, RETRY_STORE, |act, ctx| act.store_unstored(ctx));
        self.prune(ctx);
        super::every(ctx, PRUNE_EVERY, |act, ctx| act.prune(ctx));
        super::every(ctx, TICK, |act, ctx| {
            if act.lead(ctx) {
                act.dispatch(ctx);
                act.report_if_due(ctx);
            }
        });
    }
}

impl Handler<Alert> for Alerter {
    type Result = ();
    fn handle(&mut self, Alert(e): Alert, ctx: &mut Self::Context) {
        // Behind alerts already waiting for the store: keep the order, do not wait again.
        if !self.unstored.is_empty() || self.storing_unstored {
            self.keep_unstored(e, false);
            return;
        }
        ctx.wait(self.raise(e.clone()).map(|r, act, _| {
            if let Err(err) = r {
                log::warn!(
                    "{NAME}: the store did not take an alert ({err}); it is kept in memory and \
                     stored when the store is back"
                );
                act.keep_unstored(e, false);
            }
        }));
    }
}

impl Handler<Raise> for Alerter {
    type Result = AtomicResponse<Self, Result<Raised, String>>;
    fn handle(&mut self, Raise(e): Raise, _: &mut Self::Context) -> Self::Result {
        AtomicResponse::new(self.raise(e))
    }
}

super::controlled!(Alerter, NAME, [alert, raise]);
