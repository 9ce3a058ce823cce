//! The Alerter: every other actor sends it `Alert`s. It folds repeats and closes alerts on
//! recovery (`domain::alerts::fold`), stores each alert with one pending delivery per configured
//! channel before it counts as queued (the outbox), and delivers to every channel concurrently in
//! spawned futures, so a slow channel never blocks it. A timer retries pending deliveries when
//! their `next_attempt_at` comes (1 s doubling, capped at 5 min, or the channel's `retry_after`);
//! they are reloaded from the store at start, so a restart loses nothing; what the store does
//! not take while it is away waits in a journal file (`waiting`). In a cluster the leader alone
//! delivers, each delivery claimed under its term (`delivery`). At
//! `alerts.daily_report_at` (UTC) it sends a daily report. Every delivery outcome is one log line,
//! without secrets.

use crate::bus::messages::Alert;
use crate::bus::messages::{Raise, Raised};
use crate::channels::{self, Channel};
use crate::clock::now_ms;
use crate::domain::alerts::{self, fold, AlertEvent, Fold, Kind, OpenAlert, Severity};
use crate::state::Shared;
use crate::store::alerts::{DeliveryRow, NewAlertRow, Stored};
use crate::store::journal::Journal;
use actix::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

mod daily;
mod delivery;
mod outbox;
mod waiting;

pub const NAME: &str = crate::bus::names::ALERTER;
const TICK: Duration = Duration::from_millis(100);
/// Two daily reports stored within this long are one (told by two instances at a handover).
const DAILY_REPORT_ONCE_MS: i64 = 12 * 3600 * 1000;
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
    /// Found claimed by another instance (told once in the log).
    held: bool,
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
    /// Outcomes of deliveries the store did not record (it is away), recorded when it is back.
    unwritten: std::collections::VecDeque<DeliveryRow>,
    writing_unwritten: bool,
    /// Where `unstored` and `unwritten` are kept while they wait (`store::journal`).
    journal: Journal,
    journal_failing: bool,
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

impl Alerter {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, Alerter::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        let a = &shared.config.alerts;
        let channels = channels::from_config(a);
        let daily = shared.config.defs.daily_report_at;
        let journal = Journal::new(&shared.config.database.data_dir(), &journal_name(&shared));
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
            unwritten: Default::default(),
            writing_unwritten: false,
            journal,
            journal_failing: false,
            leading: false,
            last_reload: std::time::Instant::now(),
            reloading: false,
            finished: HashMap::new(),
        }
    }

    pub(super) fn channel(&self, name: &str) -> Option<&Arc<dyn Channel>> {
        self.channels.iter().find(|c| c.name() == name)
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
                    // In a cluster, one report a day whichever instance leads when it is due.
                    Kind::DailyReport => DAILY_REPORT_ONCE_MS,
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
                                    held: false,
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
}

/// The journal's file name: one per instance of a cluster (they may share a data directory).
fn journal_name(shared: &Shared) -> String {
    match shared.leadership.is_single() {
        true => "journal.json".into(),
        false => {
            let id = &shared.cluster.load().instance_id;
            let id: String = (id.chars())
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("journal-{id}.json")
        }
    }
}

/// A store call's result, its failure as text.
fn flatten<T>(r: Result<T, crate::store::StoreError>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

impl Actor for Alerter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
        self.replay_journal();
        self.load_outbox(ctx);
        super::every(ctx, RETRY_STORE, |act, ctx| act.store_waiting(ctx));
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
            self.keep_unstored(e);
            return;
        }
        ctx.wait(self.raise(e.clone()).map(|r, act, _| {
            if let Err(err) = r {
                log::warn!(
                    "{NAME}: the store did not take an alert ({err}); it is kept in memory and \
                     stored when the store is back"
                );
                act.keep_unstored(e);
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
