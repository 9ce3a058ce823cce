//! Everything known about one proxy: where it is, where it came from, what it costs, its health.

use super::lifecycle::{Health, Tier};
use super::proxy::{Anonymity, Endpoint};
use super::selection::Served;

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
        }
    }

    /// May fill a short answer: dead (not blacklisted) and known to have worked once.
    pub fn can_fill(&self) -> bool {
        self.health.tier == Tier::Dead && self.health.ever_passed()
    }
}
