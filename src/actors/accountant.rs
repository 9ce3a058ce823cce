//! The Accountant keeps the gateway's books: the traffic each upstream carried, by hour and
//! session, written behind in batches (added to the stored rows, so nothing is counted twice
//! and nothing is lost at SIGTERM), each proxy's tally today and this month for
//! `/api/v1/proxy/status`, the `cost` alerts (once a day per proxy past its
//! `daily_cost_limit`, once a day for all traffic past `gateway.cost_alert_daily`), and the
//! proxies past their `daily_cost_cap`, which the gateway skips until the next UTC day.

use crate::bus::messages::{FlushNow, Traffic};
use crate::clock::now_ms;
use crate::domain::alerts::{AlertEvent, Kind, Severity};
use crate::domain::usage::{self, bytes_text, Slot, Tally};
use crate::published::usage::UsageView;
use crate::state::Shared;
use crate::store::usage::UsageRow;
use actix::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = crate::bus::names::ACCOUNTANT;
/// How often pending traffic is written, and today's view published.
const FLUSH_EVERY: Duration = Duration::from_secs(2);
const PUBLISH_EVERY: Duration = Duration::from_millis(500);

pub struct Accountant {
    shared: Arc<Shared>,
    /// Not yet written, by slot.
    pending: HashMap<Slot, Tally>,
    writing: bool,
    /// Traffic that came before the month's rows were read at start.
    loaded: bool,
    early: Vec<Traffic>,
    day: i64,
    month: i64,
    today: HashMap<String, Tally>,
    this_month: HashMap<String, Tally>,
    total_today: Tally,
    /// Told today: proxies whose limit alerted, whether the total's did.
    alerted: HashSet<String>,
    total_alerted: bool,
    capped: HashSet<String>,
    dirty: bool,
}

impl Accountant {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, Accountant::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        let now = now_ms();
        Accountant {
            shared,
            pending: HashMap::new(),
            writing: false,
            loaded: false,
            early: Vec::new(),
            day: usage::day_of(now),
            month: usage::month_of(now),
            today: HashMap::new(),
            this_month: HashMap::new(),
            total_today: Tally::default(),
            alerted: HashSet::new(),
            total_alerted: false,
            capped: HashSet::new(),
            dirty: true,
        }
    }

    /// A proxy's cost limits, by public URL (managed proxies only).
    fn limits(&self, proxy: &str) -> (Option<String>, crate::domain::managed::CostLimits) {
        let snap = self.shared.snapshot();
        match snap.managed.iter().find(|m| m.url == proxy) {
            Some(m) => (Some(m.name.clone()), m.limits),
            None => (None, Default::default()),
        }
    }

    /// A new UTC day (or month) starts the day's tallies, alerts and caps afresh.
    fn roll(&mut self, now: i64) {
        let day = usage::day_of(now);
        if day == self.day {
            return;
        }
        self.day = day;
        self.today.clear();
        self.total_today = Tally::default();
        self.alerted.clear();
        self.total_alerted = false;
        if !self.capped.is_empty() {
            log::info!(
                "{NAME}: a new day; {} capped proxies may be used again",
                self.capped.len()
            );
        }
        self.capped.clear();
        let month = usage::month_of(now);
        if month != self.month {
            self.month = month;
            self.this_month.clear();
        }
        self.dirty = true;
    }

    /// Adds traffic to today's and the month's tallies (and, unless `stored`, to what is to be
    /// written); tells the limits and caps it crosses.
    fn count(&mut self, t: &Traffic, stored: bool) {
        if !stored {
            self.pending
                .entry(t.slot.clone())
                .or_default()
                .add(&t.tally);
        }
        if t.slot.hour < self.month {
            return;
        }
        self.this_month
            .entry(t.slot.proxy.clone())
            .or_default()
            .add(&t.tally);
        if usage::day_of(t.slot.hour) != self.day {
            return;
        }
        self.dirty = true;
        let before = self.today.get(&t.slot.proxy).map_or(0.0, |x| x.cost);
        self.today
            .entry(t.slot.proxy.clone())
            .or_default()
            .add(&t.tally);
        let total_before = self.total_today.cost;
        self.total_today.add(&t.tally);
        let after = before + t.tally.cost;
        if t.tally.cost <= 0.0 {
            return;
        }
        let (name, limits) = self.limits(&t.slot.proxy);
        let c = usage::crossed(before, after, limits.daily_limit, limits.daily_cap);
        let proxy = name.unwrap_or_else(|| t.slot.proxy.clone());
        let today = self.today.get(&t.slot.proxy).copied().unwrap_or_default();
        if c.cap || (stored && usage::is_capped(after, limits.daily_cap)) {
            if self.capped.insert(t.slot.proxy.clone()) && !stored {
                log::warn!(
                    "{NAME}: {proxy} passed its daily_cost_cap ({:.4} > {:.4}): the gateway \
                     skips it until the next UTC day",
                    after,
                    limits.daily_cap.unwrap_or(0.0)
                );
            }
            self.publish();
        }
        let limit_passed = limits.daily_limit.is_some_and(|l| after > l);
        if stored {
            // Counted before a restart: alerted then.
            if limit_passed {
                self.alerted.insert(t.slot.proxy.clone());
            }
        } else if c.limit && self.alerted.insert(t.slot.proxy.clone()) {
            self.shared.registry.alert(AlertEvent::new(
                Kind::Cost,
                format!("cost:{proxy}"),
                Severity::Warning,
                format!(
                    "Proxy {proxy} passed its daily cost limit of {:.2}: {:.4} today for {} \
                     ({} requests).",
                    limits.daily_limit.unwrap_or(0.0),
                    today.cost,
                    bytes_text(today.bytes()),
                    today.requests
                ),
                now_ms(),
            ));
        }
        let Some(limit) = self.shared.config.gateway.cost_alert_daily else {
            return;
        };
        let total = self.total_today;
        let total_crossed = usage::crossed(total_before, total.cost, Some(limit), None).limit;
        if stored {
            self.total_alerted |= total.cost > limit;
        } else if total_crossed && !self.total_alerted {
            self.total_alerted = true;
            self.shared.registry.alert(AlertEvent::new(
                Kind::Cost,
                "cost:gateway",
                Severity::Warning,
                format!(
                    "Gateway traffic today passed gateway.cost_alert_daily = {limit:.2}: {:.4} \
                     for {} ({} requests).",
                    total.cost,
                    bytes_text(total.bytes()),
                    total.requests
                ),
                now_ms(),
            ));
        }
    }

    fn publish(&mut self) {
        self.dirty = false;
        self.shared.usage.store(Arc::new(UsageView {
            day: self.day,
            today: self.today.clone(),
            month: self.this_month.clone(),
            total_today: self.total_today,
            capped: self.capped.clone(),
        }));
    }

    /// Writes what is pending; a failed write keeps it for the next try.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.writing || self.pending.is_empty() {
            return;
        }
        self.writing = true;
        let batch = std::mem::take(&mut self.pending);
        let rows: Vec<UsageRow> = batch.iter().map(|(s, t)| UsageRow::new(s, t)).collect();
        let store = self.shared.store.clone();
        let write = async move { store.call(move |s| s.add_usage(&rows)).await };
        ctx.spawn(write.into_actor(self).map(move |r, act, _| {
            act.writing = false;
            if let Err(e) = r {
                log::warn!(
                    "{NAME}: cannot write {} usage rows (kept for the next try): {e}",
                    batch.len()
                );
                for (slot, t) in batch {
                    act.pending.entry(slot).or_default().add(&t);
                }
            }
        }));
    }
}

impl Actor for Accountant {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
        let store = self.shared.store.clone();
        let (from, to) = (self.month, now_ms() + 3_600_000);
        let load = async move { store.call(move |s| s.load_usage(from, to)).await };
        ctx.wait(load.into_actor(self).map(|r, act, _| {
            match r {
                Ok(rows) => {
                    for row in &rows {
                        let t = Traffic {
                            slot: row.slot(),
                            tally: row.tally(),
                        };
                        act.count(&t, true);
                    }
                    log::info!(
                        "{NAME}: this month's gateway traffic read ({} rows; today {} requests, \
                         {}, cost {:.4})",
                        rows.len(),
                        act.total_today.requests,
                        bytes_text(act.total_today.bytes()),
                        act.total_today.cost
                    );
                }
                Err(e) => log::error!("{NAME}: cannot read this month's usage: {e}"),
            }
            act.loaded = true;
            for t in std::mem::take(&mut act.early) {
                act.count(&t, false);
            }
            act.publish();
        }));
        super::every(ctx, FLUSH_EVERY, |act, ctx| act.flush(ctx));
        super::every(ctx, PUBLISH_EVERY, |act, _| {
            act.roll(now_ms());
            if act.dirty {
                act.publish();
            }
        });
    }
}

impl Handler<Traffic> for Accountant {
    type Result = ();
    fn handle(&mut self, msg: Traffic, _: &mut Self::Context) {
        if !self.loaded {
            self.early.push(msg);
            return;
        }
        self.roll(now_ms());
        self.count(&msg, false);
    }
}

/// Writes what is pending now (at shutdown); waits for a write already running.
impl Handler<FlushNow> for Accountant {
    type Result = ResponseActFuture<Self, Result<usize, String>>;

    fn handle(&mut self, _: FlushNow, _: &mut Self::Context) -> Self::Result {
        if self.writing {
            let later = tokio::time::sleep(Duration::from_millis(20));
            return Box::pin(
                later
                    .into_actor(self)
                    .then(|_, act, ctx| act.handle(FlushNow, ctx)),
            );
        }
        let batch = std::mem::take(&mut self.pending);
        let rows: Vec<UsageRow> = batch.iter().map(|(s, t)| UsageRow::new(s, t)).collect();
        let n = rows.len();
        let store = self.shared.store.clone();
        let write = async move {
            match store.call(move |s| s.add_usage(&rows)).await {
                Ok(()) => Ok(n),
                Err(e) => Err(e.to_string()),
            }
        };
        Box::pin(write.into_actor(self))
    }
}

super::controlled!(Accountant, NAME, [traffic, flush_usage]);
