//! Everything known about one proxy: where it is, where it came from, what it costs, its health.

use super::lifecycle::{Health, Tier};
use super::managed::ManagedProxy;
use super::profiles::ProfileResults;
use super::proxy::{Anonymity, Endpoint};
use super::selection::Served;
use std::collections::HashMap;

/// The source name of managed proxies.
pub const MANAGED_SOURCE: &str = "managed";

/// What only a managed proxy has.
#[derive(Clone, Debug, PartialEq)]
pub struct Managed {
    pub name: String,
    pub max_leases: Option<u32>,
    pub limits: super::managed::CostLimits,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProxyRecord {
    pub endpoint: Endpoint,
    /// The source that announced it (or `managed`).
    pub source: String,
    /// `free`, `vps`, `datacenter` or `residential`.
    pub kind: String,
    pub cost_per_gb: f64,
    pub priority: i32,
    pub anonymity: Option<Anonymity>,
    pub country: Option<String>,
    pub health: Health,
    pub first_seen_at: i64,
    /// Set for managed (paid) proxies.
    pub managed: Option<Managed>,
    /// Latest check-profile results, by profile index. In memory only (not stored): refilled
    /// by the rolling revalidation.
    pub profiles: ProfileResults,
}

impl ProxyRecord {
    pub fn key(&self) -> String {
        self.endpoint.key()
    }

    /// The row of the serving snapshot.
    pub fn served(&self) -> Served {
        Served {
            url: self.key(),
            protocol: self.endpoint.protocol,
            tier: self.health.tier,
            latency_ms: self.health.latency_ms,
            success_rate: self.health.success_rate(),
            anonymity: self.anonymity,
            country: self.country.clone(),
            kind: self.kind.clone(),
            cost_per_gb: self.cost_per_gb,
            priority: self.priority,
            last_checked_at: self.health.last_checked_at,
            last_ok_at: self.health.last_ok_at,
            failing: self.health.consecutive_failures > 0,
            max_leases: self.managed.as_ref().and_then(|m| m.max_leases),
        }
    }

    /// A managed proxy not seen before.
    pub fn new_managed(def: &ManagedProxy, now: i64) -> ProxyRecord {
        let mut r = ProxyRecord {
            endpoint: def.endpoint.clone(),
            source: MANAGED_SOURCE.into(),
            kind: String::new(),
            cost_per_gb: 0.0,
            priority: 0,
            anonymity: None,
            country: None,
            health: Health::default(),
            first_seen_at: now,
            managed: None,
            profiles: ProfileResults::new(),
        };
        r.apply_managed(def);
        r
    }

    /// Makes this record follow a managed definition (its health is kept).
    pub fn apply_managed(&mut self, def: &ManagedProxy) {
        self.endpoint = def.endpoint.clone();
        self.source = MANAGED_SOURCE.into();
        self.kind = def.kind.clone();
        self.cost_per_gb = def.cost_per_gb;
        self.priority = def.priority;
        self.managed = Some(Managed {
            name: def.name.clone(),
            max_leases: def.max_leases,
            limits: def.limits,
        });
    }

    /// The managed definition this record follows, if it is a managed proxy.
    pub fn managed_def(&self) -> Option<ManagedProxy> {
        let m = self.managed.as_ref()?;
        Some(ManagedProxy {
            name: m.name.clone(),
            endpoint: self.endpoint.clone(),
            kind: self.kind.clone(),
            cost_per_gb: self.cost_per_gb,
            priority: self.priority,
            max_leases: m.max_leases,
            limits: m.limits,
        })
    }

    /// May fill a short answer: dead (not blacklisted) and known to have worked once.
    pub fn can_fill(&self) -> bool {
        self.health.tier == Tier::Dead && self.health.ever_passed()
    }
}

/// Joins stored records with the managed definitions: each definition takes over the record of
/// its URL (or gets a fresh one). Answers the records, and the keys of stored managed records
/// whose definition is gone (to delete).
pub fn attach_managed(
    records: Vec<ProxyRecord>,
    defs: &[ManagedProxy],
    now: i64,
) -> (Vec<ProxyRecord>, Vec<String>) {
    let mut by_key: HashMap<String, ProxyRecord> =
        records.into_iter().map(|r| (r.key(), r)).collect();
    let mut managed = Vec::with_capacity(defs.len());
    for def in defs {
        let rec = match by_key.remove(&def.endpoint.key()) {
            Some(mut r) => {
                r.apply_managed(def);
                r
            }
            None => ProxyRecord::new_managed(def, now),
        };
        managed.push(rec);
    }
    let orphans: Vec<String> = by_key
        .iter()
        .filter(|(_, r)| r.source == MANAGED_SOURCE)
        .map(|(k, _)| k.clone())
        .collect();
    for k in &orphans {
        by_key.remove(k);
    }
    let mut all: Vec<ProxyRecord> = by_key.into_values().collect();
    all.extend(managed);
    (all, orphans)
}

/// A managed proxy as status reports show it: never with its credentials.
#[derive(Clone, Debug)]
pub struct ManagedView {
    pub name: String,
    /// Public URL (no credentials).
    pub url: String,
    pub has_credentials: bool,
    pub kind: String,
    pub cost_per_gb: f64,
    pub priority: i32,
    pub max_leases: Option<u32>,
    pub limits: super::managed::CostLimits,
    pub health: Health,
}

impl ManagedView {
    /// The view of a managed proxy's record; `None` for proxies from sources.
    pub fn of(r: &ProxyRecord) -> Option<ManagedView> {
        let m = r.managed.as_ref()?;
        Some(ManagedView {
            name: m.name.clone(),
            url: r.key(),
            has_credentials: r.endpoint.credentials.is_some(),
            kind: r.kind.clone(),
            cost_per_gb: r.cost_per_gb,
            priority: r.priority,
            max_leases: m.max_leases,
            limits: m.limits,
            health: r.health.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::Tier;
    use crate::domain::proxy::Protocol;

    fn free(url: &str) -> ProxyRecord {
        let endpoint = Endpoint::parse(url, Protocol::Http).unwrap();
        let mut r = ProxyRecord::new_managed(
            &ManagedProxy::new("tmp", url, "free", 0.0, 1000, None).unwrap(),
            1,
        );
        r.endpoint = endpoint;
        r.source = "list".into();
        r.managed = None;
        r
    }

    #[test]
    fn managed_definitions_take_over_records_and_orphans_go() {
        let mut listed = free("http://10.0.0.1:80");
        listed.health.tier = Tier::Standby;
        let mut orphan = free("http://10.0.0.9:80");
        orphan.source = MANAGED_SOURCE.into();
        let defs = [
            ManagedProxy::new("a", "http://u:p@10.0.0.1:80", "vps", 2.0, 1, Some(3)).unwrap(),
            ManagedProxy::new("b", "http://10.0.0.2:80", "residential", 9.0, 2, None).unwrap(),
        ];
        let (records, orphans) =
            attach_managed(vec![listed, orphan, free("http://10.0.0.3:80")], &defs, 7);
        assert_eq!(orphans, ["http://10.0.0.9:80"]);
        assert_eq!(records.len(), 3);
        let a = records
            .iter()
            .find(|r| r.key() == "http://10.0.0.1:80")
            .unwrap();
        assert_eq!(a.health.tier, Tier::Standby, "health is kept");
        assert_eq!(a.source, MANAGED_SOURCE);
        assert_eq!(
            (a.kind.as_str(), a.cost_per_gb, a.priority),
            ("vps", 2.0, 1)
        );
        assert_eq!(a.managed.as_ref().unwrap().max_leases, Some(3));
        assert_eq!(a.managed_def().as_ref(), Some(&defs[0]), "round trip");
        assert!(a.endpoint.credentials.is_some());
        let b = records
            .iter()
            .find(|r| r.key() == "http://10.0.0.2:80")
            .unwrap();
        assert_eq!((b.health.tier, b.first_seen_at), (Tier::Fresh, 7));
    }
}
