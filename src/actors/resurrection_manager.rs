//! The ResurrectionManager gives dead proxies their second chance: death number n is re-checked
//! `resurrection.delays_secs[n-1]` after it died (through the ValidatorPool; the verdict goes to
//! the TierBalancer like any other). The schedule is derived from what the store keeps (death
//! count and time of death), so it survives restarts. Blacklisted proxies are never scheduled.

use crate::bus::messages::{CheckBatch, CheckJob, DeadEvent};
use crate::clock::now_ms;
use crate::domain::lifecycle::Tier;
use crate::domain::proxy::Endpoint;
use crate::domain::resurrection::due_at;
use crate::published::resurrection::ResurrectionStats;
use crate::state::Shared;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = crate::bus::names::RESURRECTION_MANAGER;
const TICK: Duration = Duration::from_millis(100);

struct Entry {
    endpoint: Endpoint,
    deaths: u32,
    due_at: i64,
}

pub struct ResurrectionManager {
    shared: Arc<Shared>,
    delays_ms: Vec<u64>,
    schedule: HashMap<String, Entry>,
    /// Re-checks sent, with the time (unix ms) after which one is given up as lost (a verdict
    /// can be lost when the validator restarts) and the proxy becomes due again.
    in_flight: HashMap<String, i64>,
    lost_after_ms: i64,
    attempts: u64,
    successes: u64,
}

impl ResurrectionManager {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, ResurrectionManager::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        let delays_ms = shared
            .config
            .resurrection
            .delays_secs
            .iter()
            .map(|s| (s * 1000.0) as u64)
            .collect();
        // Attempts and successes survive a restart of this actor through the published stats.
        let old = shared.resurrection.load_full();
        let lost_after_ms = 60_000 + 2 * shared.config.validation.timeout_ms as i64;
        ResurrectionManager {
            shared,
            delays_ms,
            schedule: HashMap::new(),
            in_flight: HashMap::new(),
            lost_after_ms,
            attempts: old.attempts,
            successes: old.successes,
        }
    }

    fn schedule(&mut self, key: String, endpoint: Endpoint, deaths: u32, dead_since: i64) {
        let due = due_at(deaths, dead_since, &self.delays_ms);
        self.in_flight.remove(&key);
        self.schedule.insert(
            key,
            Entry {
                endpoint,
                deaths,
                due_at: due,
            },
        );
    }

    fn tick(&mut self) {
        let now = now_ms();
        self.in_flight.retain(|_, until| *until > now);
        // In a cluster every instance keeps the schedule (its own deaths and those it took from
        // the others' checks); the leader alone re-checks.
        if !self.shared.leadership.leads() {
            self.publish(now);
            return;
        }
        let due: Vec<CheckJob> = self
            .schedule
            .iter()
            .filter(|(k, e)| e.due_at <= now && !self.in_flight.contains_key(*k))
            .map(|(k, e)| CheckJob {
                key: k.clone(),
                endpoint: e.endpoint.clone(),
                judge: false,
            })
            .collect();
        if !due.is_empty() {
            if let Some(validator) = self.shared.registry.check_batch.get() {
                self.attempts += due.len() as u64;
                for job in &due {
                    self.in_flight
                        .insert(job.key.clone(), now + self.lost_after_ms);
                }
                log::debug!("{NAME}: re-checking {} dead proxies", due.len());
                validator.do_send(CheckBatch(due));
            }
        }
        self.publish(now);
    }

    fn publish(&self, now: i64) {
        let mut stats = ResurrectionStats {
            attempts: self.attempts,
            successes: self.successes,
            resurrection_rate: if self.attempts == 0 {
                0.0
            } else {
                self.successes as f64 / self.attempts as f64
            },
            waiting: self.schedule.len(),
            ..Default::default()
        };
        let mut next: Option<i64> = None;
        for e in self.schedule.values() {
            *stats.dead_by_death.entry(e.deaths).or_default() += 1;
            if e.due_at <= now {
                stats.due_now += 1;
            } else {
                next = Some(next.map_or(e.due_at, |n| n.min(e.due_at)));
            }
        }
        stats.next_due_at = next.map(crate::clock::rfc3339);
        self.shared.resurrection.store(Arc::new(stats));
    }
}

impl Actor for ResurrectionManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
        ctx.wait(self.load_dead().map(|n, act, _| {
            log::info!(
                "{NAME}: {n} dead proxies scheduled ({} in all)",
                act.schedule.len()
            )
        }));
        // Deaths the TierBalancer announced while this actor was (re)starting were dropped; they
        // reach the store within a flush interval, so read the dead rows once more after two.
        let flush = self.shared.config.database.flush_interval_ms;
        ctx.run_later(Duration::from_millis(2 * flush + 100), |act, ctx| {
            ctx.spawn(act.load_dead().map(|n, _, _| {
                if n > 0 {
                    log::info!("{NAME}: {n} more dead proxies found after the start");
                }
            }));
        });
        super::every(ctx, TICK, |act, _| act.tick());
    }
}

impl ResurrectionManager {
    /// Reads the dead proxies from the store and schedules those not yet scheduled; answers how
    /// many it added.
    fn load_dead(&mut self) -> impl ActorFuture<Self, Output = usize> {
        let store = self.shared.store.clone();
        let load = async move {
            store
                .call(|s| s.load_proxies_in(Tier::Dead.as_str()))
                .await
                .map(crate::store::pool::records_of)
        };
        load.into_actor(self).map(|r, act, _| match r {
            Ok(records) => {
                let mut added = 0;
                for r in records {
                    let key = r.key();
                    if act.schedule.contains_key(&key) || act.in_flight.contains_key(&key) {
                        continue;
                    }
                    let since = r
                        .health
                        .dead_since
                        .or(r.health.last_checked_at)
                        .unwrap_or(0);
                    act.schedule(key, r.endpoint, r.health.deaths, since);
                    added += 1;
                }
                added
            }
            Err(e) => {
                log::error!("{NAME}: cannot load the dead proxies: {e}");
                0
            }
        })
    }
}

impl Handler<DeadEvent> for ResurrectionManager {
    type Result = ();
    fn handle(&mut self, msg: DeadEvent, _: &mut Self::Context) {
        match msg {
            DeadEvent::Died {
                key,
                endpoint,
                deaths,
                at,
            } => self.schedule(key, endpoint, deaths, at),
            DeadEvent::Resurrected { key } => {
                if self.schedule.remove(&key).is_some() {
                    self.successes += 1;
                    log::info!("{NAME}: {key} resurrected");
                }
                self.in_flight.remove(&key);
            }
            DeadEvent::Gone { key } => {
                self.schedule.remove(&key);
                self.in_flight.remove(&key);
            }
        }
        // The stats follow the pool at once, not a tick later: whoever sees a proxy served
        // again also sees it counted.
        self.publish(now_ms());
    }
}

super::controlled!(ResurrectionManager, NAME, [dead_event]);
