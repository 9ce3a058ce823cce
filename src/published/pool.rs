//! The immutable pool snapshot the TierBalancer publishes and the serving path reads, lock-free.

use crate::domain::lifecycle::Tier;
use crate::domain::record::ProxyRecord;
use crate::domain::selection::{cheapest_order, fastest_order, fill_order, Served};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TierCounts {
    pub fresh: usize,
    pub primary: usize,
    pub standby: usize,
    pub emergency: usize,
    pub dead: usize,
    pub blacklisted: usize,
}

impl TierCounts {
    pub fn add(&mut self, tier: Tier) {
        match tier {
            Tier::Fresh => self.fresh += 1,
            Tier::Primary => self.primary += 1,
            Tier::Standby => self.standby += 1,
            Tier::Emergency => self.emergency += 1,
            Tier::Dead => self.dead += 1,
            Tier::Blacklisted => self.blacklisted += 1,
        }
    }

    pub fn serving(&self) -> usize {
        self.primary + self.standby + self.emergency
    }

    pub fn total(&self) -> usize {
        self.serving() + self.fresh + self.dead + self.blacklisted
    }
}

/// Counters of the balancer's work since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Counters {
    pub checks_total: u64,
    pub checks_passed: u64,
    pub checks_per_minute: u64,
    pub promotions: u64,
    pub demotions: u64,
    pub deaths: u64,
    pub blacklisted: u64,
}

pub use crate::domain::record::ManagedView;

#[derive(Debug, Default)]
pub struct PoolSnapshot {
    /// Serving proxies (primary, standby, emergency) in the `fastest` order.
    pub serving: Vec<Served>,
    /// Indices into `serving`, in the `cheapest` order.
    pub cheapest: Vec<u32>,
    /// For each check profile (by index in `validation.profiles`), indices into `serving` of the
    /// proxies whose latest result on it passed, fastest on it first. Missing: none passed.
    pub profiles: Vec<Vec<u32>>,
    /// Dead proxies that once worked, most recently working first: the never-empty fill.
    pub fill: Vec<Served>,
    /// Managed proxies by name.
    pub managed: Vec<ManagedView>,
    /// Public URL → URL with credentials, for the managed proxies that have them: what clients
    /// are handed.
    pub client_urls: HashMap<String, String>,
    /// Public URL → credentials, for every serving or fill proxy that has them: what the
    /// gateway gives its upstreams (never shown).
    pub credentials: HashMap<String, crate::domain::proxy::Credentials>,
    /// Public URL → index into `serving`.
    pub serving_index: HashMap<String, u32>,
    pub counts: TierCounts,
    pub counters: Counters,
    /// Unix ms of the publication, and of the last list a source delivered.
    pub published_at: i64,
    pub last_source_update: Option<i64>,
}

impl PoolSnapshot {
    pub fn build<'a>(
        records: impl Iterator<Item = &'a ProxyRecord>,
        counters: Counters,
        published_at: i64,
        last_source_update: Option<i64>,
    ) -> PoolSnapshot {
        let mut counts = TierCounts::default();
        let mut serving = Vec::new();
        let mut fill = Vec::new();
        let mut managed = Vec::new();
        let mut client_urls = HashMap::new();
        let mut credentials = HashMap::new();
        let mut profile_results = Vec::new();
        for r in records {
            counts.add(r.health.tier);
            if let Some(c) = &r.endpoint.credentials {
                if r.health.tier.is_serving() || r.can_fill() {
                    credentials.insert(r.key(), c.clone());
                }
            }
            if let Some(view) = ManagedView::of(r) {
                if view.has_credentials {
                    client_urls.insert(view.url.clone(), r.endpoint.url_with_credentials());
                }
                managed.push(view);
            }
            if r.health.tier.is_serving() {
                serving.push(r.served());
                if !r.profiles.is_empty() {
                    profile_results.push((r.key(), r.profiles.as_slice()));
                }
            } else if r.can_fill() {
                fill.push(r.served());
            }
        }
        serving.sort_by(fastest_order);
        fill.sort_by(fill_order);
        managed.sort_by(|a, b| a.name.cmp(&b.name));
        let mut cheapest: Vec<u32> = (0..serving.len() as u32).collect();
        cheapest.sort_by(|&a, &b| cheapest_order(&serving[a as usize], &serving[b as usize]));
        let profiles = crate::domain::profiles::passers(&serving, profile_results);
        let serving_index = (serving.iter().enumerate())
            .map(|(i, s)| (s.url.clone(), i as u32))
            .collect();
        PoolSnapshot {
            serving,
            cheapest,
            profiles,
            fill,
            managed,
            client_urls,
            credentials,
            serving_index,
            counts,
            counters,
            published_at,
            last_source_update,
        }
    }

    /// The URL a client is handed for a proxy: with credentials for managed proxies.
    pub fn client_url<'a>(&'a self, url: &'a str) -> &'a str {
        self.client_urls.get(url).map_or(url, String::as_str)
    }

    /// The serving pool as the selection rules take it.
    pub fn pool(&self) -> crate::domain::choice::Pool<'_> {
        crate::domain::choice::Pool {
            serving: &self.serving,
            cheapest: &self.cheapest,
            profiles: &self.profiles,
            fill: &self.fill,
        }
    }

    /// The serving proxy of this public URL.
    pub fn serving(&self, url: &str) -> Option<&Served> {
        self.serving_index
            .get(url)
            .map(|&i| &self.serving[i as usize])
    }

    pub fn cheapest_iter(&self) -> impl Iterator<Item = &Served> {
        self.cheapest.iter().map(|&i| &self.serving[i as usize])
    }
}
