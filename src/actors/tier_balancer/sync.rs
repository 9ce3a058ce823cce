//! The TierBalancer's part in a cluster (PostgreSQL with several instances): the pool follows
//! what the other instances checked. Every `SYNC_EVERY` it reads the rows checked or first
//! seen since the last look (with an overlap for writes still landing and clocks a little
//! apart) and takes each one whose last check is newer than its own record's; new proxies
//! (another instance's source) join. Nothing taken is written back. A serving proxy that dies
//! here is written at once rather than at the next flush, so the others stop serving it within
//! about a second.

use super::{TierBalancer, NAME};
use crate::domain::lifecycle::later_check;
use crate::domain::record::ProxyRecord;
use actix::prelude::*;
use std::time::Duration;

pub(super) const SYNC_EVERY: Duration = Duration::from_millis(250);
/// How far back each look reaches before the newest change already seen.
const OVERLAP_MS: i64 = 5_000;

impl TierBalancer {
    /// In a cluster only (the Coordinator runs): reads what changed and merges it.
    pub(super) fn sync(&mut self, ctx: &mut Context<Self>) {
        if self.shared.cluster_store.is_none() || !self.loaded || self.syncing {
            return;
        }
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
                    local.health = stored.health;
                    if stored.anonymity.is_some() {
                        local.anonymity = stored.anonymity;
                    }
                    taken += 1;
                }
                Some(_) => {}
                None => {
                    self.pool.insert(key, stored);
                    taken += 1;
                }
            }
        }
        if taken > 0 {
            log::debug!("{NAME}: {taken} proxies taken from the other instances' checks");
            self.stale = true;
        }
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
