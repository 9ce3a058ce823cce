//! The TierBalancer's part in a cluster (PostgreSQL with several instances): the pool follows
//! what the other instances checked. When another instance wrote check results (its NOTIFY of
//! `Topic::Pool`), and at least every `SYNC_FALLBACK`, it reads the rows checked or first
//! seen since the last look (with an overlap for writes still landing and clocks a little
//! apart) and takes each one whose last check is newer than its own record's; new proxies
//! (another instance's source) join. Nothing taken is written back; deaths and resurrections
//! taken go to this instance's ResurrectionManager (the leader's re-checks them). A serving
//! proxy that dies here is written at once rather than at the next flush, so the others stop
//! serving it within about a second. Checks are claimed in the store before they are made
//! (`send_checks`), so each is made by one instance.

use super::{TierBalancer, NAME};
use crate::bus::messages::{CheckBatch, CheckJob, DeadEvent};
use crate::domain::cluster::Topic;
use crate::domain::lifecycle::{later_check, Tier};
use crate::domain::record::ProxyRecord;
use actix::prelude::*;
use std::time::Duration;

/// How often the pool sync looks whether it is due: when another instance wrote check
/// results (`Topic::Pool`, NOTIFYed), or `SYNC_FALLBACK` after the last one.
pub(super) const SYNC_EVERY: Duration = Duration::from_millis(100);
const SYNC_FALLBACK: Duration = Duration::from_secs(1);
/// How far back each look reaches before the newest change already seen.
const OVERLAP_MS: i64 = 5_000;

/// What the ResurrectionManager hears of a proxy another instance saw change from `was`: so
/// that whichever instance leads re-checks the dead, wherever they died.
fn dead_event(key: &str, stored: &ProxyRecord, was: Tier) -> Option<DeadEvent> {
    let key = key.to_string();
    match stored.health.tier {
        Tier::Dead => Some(DeadEvent::Died {
            key,
            endpoint: stored.endpoint.clone(),
            deaths: stored.health.deaths,
            at: stored.health.dead_since.unwrap_or(0),
        }),
        Tier::Blacklisted => Some(DeadEvent::Gone { key }),
        t if was == Tier::Dead && t.is_serving() => Some(DeadEvent::Resurrected { key }),
        _ => None,
    }
}

impl TierBalancer {
    /// In a cluster only (the Coordinator runs): reads what changed and merges it.
    pub(super) fn sync(&mut self, ctx: &mut Context<Self>) {
        if self.shared.cluster_store.is_none() || !self.loaded || self.syncing {
            return;
        }
        // Alone on the database (no other instance alive at the last heartbeat): nothing to
        // take, and the look would only read back this instance's own writes.
        let failover_ms = (self.shared.config.cluster.failover_secs * 1000.0) as u64;
        if !self.shared.cluster.load().others_alive(failover_ms) {
            self.synced_to = crate::clock::now_ms();
            return;
        }
        let version = self.shared.changes.version(Topic::Pool);
        let due = version > self.follow.pool_version
            || (self.follow.last_sync).is_none_or(|t| t.elapsed() >= SYNC_FALLBACK);
        if !due {
            return;
        }
        self.follow.pool_version = version;
        self.follow.last_sync = Some(std::time::Instant::now());
        self.syncing = true;
        let since = self.synced_to - OVERLAP_MS;
        let store = self.shared.store.clone();
        let read = async move { store.call(move |s| s.load_changed(since)).await };
        ctx.spawn(read.into_actor(self).map(|r, act, _| {
            act.syncing = false;
            match r {
                Ok(records) => act.merge(records),
                Err(e) => log::debug!("{NAME}: cannot read what the other instances checked: {e}"),
            }
        }));
    }

    fn merge(&mut self, records: Vec<ProxyRecord>) {
        let mut taken = 0;
        let mut events = Vec::new();
        for stored in records {
            let seen = stored
                .health
                .last_checked_at
                .unwrap_or(0)
                .max(stored.first_seen_at);
            self.synced_to = self.synced_to.max(seen);
            let key = stored.key();
            match self.pool.get_mut(&key) {
                Some(local)
                    if local.managed.is_none() && later_check(&stored.health, &local.health) =>
                {
                    let (was, now) = (local.health.tier, stored.health.tier);
                    if was != now {
                        events.extend(dead_event(&key, &stored, was));
                    }
                    local.health = stored.health;
                    self.in_flight.remove(&key);
                    if stored.anonymity.is_some() {
                        local.anonymity = stored.anonymity;
                    }
                    taken += 1;
                }
                Some(_) => {}
                None => {
                    if stored.health.tier == Tier::Dead {
                        events.extend(dead_event(&key, &stored, Tier::Fresh));
                    }
                    self.pool.insert(key, stored);
                    taken += 1;
                }
            }
        }
        if let Some(manager) = self.shared.registry.dead_event.get() {
            for e in events {
                manager.do_send(e);
            }
        }
        if taken > 0 {
            log::debug!("{NAME}: {taken} proxies taken from the other instances' checks");
            self.stale = true;
        }
    }

    /// Sends checks to the ValidatorPool. In a cluster each is claimed in the store first (in
    /// the background): this instance makes the ones it claimed; those another instance holds
    /// stay in flight here until their verdict comes through the store (or their claim runs
    /// out with `hold`); those not stored yet are asked again after the next flush writes them.
    pub(super) fn send_checks(
        &mut self,
        validator: Recipient<CheckBatch>,
        jobs: Vec<CheckJob>,
        hold: Duration,
        ctx: &mut Context<Self>,
    ) {
        if self.shared.cluster_store.is_none() {
            validator.do_send(CheckBatch(jobs));
            return;
        }
        // Claimed no faster than this instance checks (twice its permits ahead), so the
        // others get their share of a round.
        let mut jobs = jobs;
        let busy = self
            .shared
            .checks_running
            .load(std::sync::atomic::Ordering::Relaxed)
            + self
                .shared
                .checks_queued
                .load(std::sync::atomic::Ordering::Relaxed);
        let room = (2 * self.shared.config.validation.concurrency).saturating_sub(busy);
        if jobs.len() > room {
            for j in jobs.drain(room..) {
                self.in_flight.remove(&j.key);
            }
        }
        if jobs.is_empty() {
            return;
        }
        let store = self.shared.store.clone();
        let me = self.shared.cluster.load().instance_id.clone();
        let keys: Vec<String> = jobs.iter().map(|j| j.key.clone()).collect();
        let hold_ms = hold.as_millis() as i64;
        let claim = async move {
            store
                .call(move |s| s.claim_checks(&keys, &me, hold_ms))
                .await
        };
        ctx.spawn(claim.into_actor(self).map(move |r, act, _| {
            let (claimed, unstored) = match r {
                Ok(c) => c,
                Err(e) => {
                    // The store is away: nobody can claim; check them here.
                    log::debug!("{NAME}: cannot claim checks ({e}); making them here");
                    (jobs.iter().map(|j| j.key.clone()).collect(), Vec::new())
                }
            };
            for key in &unstored {
                act.in_flight.remove(key);
            }
            let claimed: std::collections::HashSet<String> = claimed.into_iter().collect();
            let mine: Vec<CheckJob> = jobs
                .into_iter()
                .filter(|j| claimed.contains(&j.key))
                .collect();
            if !mine.is_empty() {
                validator.do_send(CheckBatch(mine));
            }
        }));
    }

    /// A serving proxy died here: in a cluster it is written now, not at the next flush.
    pub(super) fn write_soon(&mut self, ctx: &mut Context<Self>) {
        if !std::mem::take(&mut self.urgent) || self.shared.cluster_store.is_none() {
            return;
        }
        if let Some(write) = self.write() {
            ctx.spawn(write.map(|_, _, _| ()));
        } else {
            self.urgent = true; // a write is running: the next tick
        }
    }
}
