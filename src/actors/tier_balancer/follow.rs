//! The TierBalancer in a cluster, beside the pool sync: changes another instance made that
//! the sync does not carry. When the version of a topic the Coordinator heard grows past the
//! one loaded here, it is loaded again (in the background): the managed proxies of the admin
//! API are made those stored (`Topic::Managed`), and dead proxies deleted from the store (a
//! source no longer lists them) leave the pool here too (`Topic::Proxies`).

use super::managed::Apply;
use super::{TierBalancer, NAME};
use crate::bus::messages::DeadEvent;
use crate::domain::cluster::Topic;
use crate::domain::lifecycle::Tier;
use crate::domain::managed::ManagedProxy;
use crate::published::pool::ManagedView;
use actix::prelude::*;
use std::collections::HashSet;

/// What this instance loaded of the others' changes.
#[derive(Default)]
pub(super) struct Follow {
    managed_version: i64,
    proxies_version: i64,
    /// The version of `Topic::Pool` the last sync began after, and when it began (the pool
    /// sync runs when it grows, and at least every `SYNC_FALLBACK`).
    pub(super) pool_version: i64,
    pub(super) last_sync: Option<std::time::Instant>,
    /// A load is on its way.
    busy: bool,
    /// Managed proxy changes made here (a load that began before one is taken again).
    pub(super) changes_made: u64,
}

impl TierBalancer {
    pub(super) fn follow(&mut self, ctx: &mut Context<Self>) {
        if self.shared.cluster_store.is_none() || !self.loaded || self.follow.busy {
            return;
        }
        let changes = &self.shared.changes;
        let managed = changes.version(Topic::Managed);
        let proxies = changes.version(Topic::Proxies);
        if managed > self.follow.managed_version {
            self.follow_managed(managed, ctx);
        } else if proxies > self.follow.proxies_version {
            self.follow_deletions(proxies, ctx);
        }
    }

    fn follow_managed(&mut self, version: i64, ctx: &mut Context<Self>) {
        self.follow.busy = true;
        let made_here = self.follow.changes_made;
        let store = self.shared.store.clone();
        let load = async move { store.call(|s| s.load_managed()).await };
        ctx.spawn(load.into_actor(self).map(move |r, act, _| {
            act.follow.busy = false;
            match r {
                Ok(_) if act.follow.changes_made != made_here => {}
                Ok(rows) => {
                    act.follow.managed_version = version;
                    let defs = (rows.into_iter())
                        .filter(|r| r.origin == "api")
                        .filter_map(|r| {
                            let name = r.name.clone();
                            r.into_def()
                                .map_err(|e| log::warn!("{NAME}: stored `{name}` skipped: {e}"))
                                .ok()
                        })
                        .collect();
                    act.take_managed(defs);
                }
                Err(e) => log::debug!("{NAME}: cannot load the managed proxies: {e}"),
            }
        }));
    }

    /// Makes the managed proxies of the admin API those stored.
    fn take_managed(&mut self, defs: Vec<ManagedProxy>) {
        let names: HashSet<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        let gone: Vec<(String, ManagedView)> = (self.pool.iter())
            .filter_map(|(k, r)| {
                let m = r.managed.as_ref()?;
                let ours =
                    !self.config_managed.contains(&m.name) && !names.contains(m.name.as_str());
                ours.then(|| Some((k.clone(), ManagedView::of(r)?)))?
            })
            .collect();
        for (key, view) in gone {
            log::info!(
                "{NAME}: managed proxy {} removed through another instance",
                view.name
            );
            self.apply(Apply::Remove {
                key,
                view: Box::new(view),
            });
        }
        for def in defs {
            if self.config_managed.contains(&def.name) {
                continue;
            }
            let old_key = self.managed_key(&def.name).cloned();
            let same = (old_key.as_ref())
                .and_then(|k| self.pool[k].managed_def())
                .is_some_and(|d| d == def);
            if same || self.url_free(&def).is_err() {
                continue;
            }
            log::info!(
                "{NAME}: managed proxy {} changed through another instance",
                def.name
            );
            self.apply(Apply::Put { def, old_key });
        }
    }

    fn follow_deletions(&mut self, version: i64, ctx: &mut Context<Self>) {
        // Only dead proxies are deleted by a source's list (working ones stay): those are the
        // ones to look for.
        let dead: Vec<String> = (self.pool.iter())
            .filter(|(k, r)| {
                r.managed.is_none()
                    && matches!(r.health.tier, Tier::Dead | Tier::Blacklisted)
                    && !self.dirty.contains(*k)
            })
            .map(|(k, _)| k.clone())
            .collect();
        if dead.is_empty() {
            self.follow.proxies_version = version;
            return;
        }
        self.follow.busy = true;
        let store = self.shared.store.clone();
        let asked = dead.clone();
        let load = async move { store.call(move |s| s.stored_keys(&asked)).await };
        ctx.spawn(load.into_actor(self).map(move |r, act, _| {
            act.follow.busy = false;
            let stored: HashSet<String> = match r {
                Ok(keys) => keys.into_iter().collect(),
                Err(e) => return log::debug!("{NAME}: cannot look for deleted proxies: {e}"),
            };
            act.follow.proxies_version = version;
            let mut dropped = 0;
            for key in dead.iter().filter(|k| !stored.contains(*k)) {
                // Still dead and not written here since: deleted by another instance.
                let still = (act.pool.get(key))
                    .is_some_and(|r| matches!(r.health.tier, Tier::Dead | Tier::Blacklisted));
                if !still || act.dirty.contains(key) {
                    continue;
                }
                // Not through `drop_record`: the store holds it no longer, nothing to delete.
                act.pool.remove(key);
                act.in_flight.remove(key);
                if let Some(m) = act.shared.registry.dead_event.get() {
                    m.do_send(DeadEvent::Gone { key: key.clone() });
                }
                dropped += 1;
            }
            if dropped > 0 {
                log::info!("{NAME}: {dropped} dead proxies deleted by another instance dropped");
                act.stale = true;
            }
        }));
    }
}
