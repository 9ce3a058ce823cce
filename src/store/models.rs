//! Rows of the store and their conversion to and from the domain's records.

use super::schema::proxies;
use crate::domain::lifecycle::{Health, Tier};
use crate::domain::managed::ManagedProxy;
use crate::domain::proxy::{Anonymity, Credentials, Endpoint, Protocol};
use crate::domain::record::ProxyRecord;
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = proxies)]
pub struct ProxyRow {
    pub url: String,
    pub protocol: String,
    pub host: String,
    pub port: i32,
    pub username: Option<String>,
    pub password: Option<String>,
    pub source: String,
    pub kind: String,
    pub cost_per_gb: f64,
    pub priority: i32,
    pub anonymity: Option<String>,
    pub country: Option<String>,
    pub tier: String,
    pub deaths: i32,
    pub consecutive_passes: i32,
    pub consecutive_failures: i32,
    pub checks_total: i64,
    pub checks_ok: i64,
    pub latency_ms: Option<i32>,
    pub last_checked_at: Option<i64>,
    pub last_ok_at: Option<i64>,
    pub dead_since: Option<i64>,
    pub first_seen_at: i64,
    pub last_status: Option<i32>,
    pub latency_total_ms: i64,
}

fn clamp_i32(v: u32) -> i32 {
    v.min(i32::MAX as u32) as i32
}

impl From<&ProxyRecord> for ProxyRow {
    fn from(r: &ProxyRecord) -> Self {
        let h = &r.health;
        ProxyRow {
            url: r.key(),
            protocol: r.endpoint.protocol.as_str().into(),
            host: r.endpoint.host.clone(),
            port: r.endpoint.port as i32,
            username: r.endpoint.credentials.as_ref().map(|c| c.username.clone()),
            password: r.endpoint.credentials.as_ref().map(|c| c.password.clone()),
            source: r.source.clone(),
            kind: r.kind.clone(),
            cost_per_gb: r.cost_per_gb,
            priority: r.priority,
            anonymity: r.anonymity.map(|a| a.as_str().into()),
            country: r.country.clone(),
            tier: h.tier.as_str().into(),
            deaths: clamp_i32(h.deaths),
            consecutive_passes: clamp_i32(h.consecutive_passes),
            consecutive_failures: clamp_i32(h.consecutive_failures),
            checks_total: h.checks_total.min(i64::MAX as u64) as i64,
            checks_ok: h.checks_ok.min(i64::MAX as u64) as i64,
            latency_ms: h.latency_ms.map(clamp_i32),
            last_checked_at: h.last_checked_at,
            last_ok_at: h.last_ok_at,
            dead_since: h.dead_since,
            first_seen_at: r.first_seen_at,
            last_status: h.last_status.map(i32::from),
            latency_total_ms: h.latency_total_ms.min(i64::MAX as u64) as i64,
        }
    }
}

impl ProxyRow {
    /// The record, or why the row cannot be one (a row edited by hand, say).
    pub fn into_record(self) -> Result<ProxyRecord, String> {
        let protocol = Protocol::parse(&self.protocol)
            .ok_or_else(|| format!("unknown protocol `{}`", self.protocol))?;
        let tier =
            Tier::parse(&self.tier).ok_or_else(|| format!("unknown tier `{}`", self.tier))?;
        let port = u16::try_from(self.port).map_err(|_| format!("bad port {}", self.port))?;
        let credentials = self.username.map(|username| Credentials {
            username,
            password: self.password.unwrap_or_default(),
        });
        let u32_of = |v: i32| v.max(0) as u32;
        Ok(ProxyRecord {
            endpoint: Endpoint {
                protocol,
                host: self.host,
                port,
                credentials,
            },
            source: self.source,
            kind: self.kind,
            cost_per_gb: self.cost_per_gb,
            priority: self.priority,
            anonymity: self.anonymity.as_deref().and_then(Anonymity::parse),
            country: self.country,
            health: Health {
                tier,
                deaths: u32_of(self.deaths),
                consecutive_passes: u32_of(self.consecutive_passes),
                consecutive_failures: u32_of(self.consecutive_failures),
                checks_total: self.checks_total.max(0) as u64,
                checks_ok: self.checks_ok.max(0) as u64,
                latency_ms: self.latency_ms.map(u32_of),
                last_checked_at: self.last_checked_at,
                last_ok_at: self.last_ok_at,
                dead_since: self.dead_since,
                last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
                latency_total_ms: self.latency_total_ms.max(0) as u64,
            },
            first_seen_at: self.first_seen_at,
            managed: None,
            // Profile results are not stored: the revalidation refills them.
            profiles: Vec::new(),
        })
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::leases)]
pub struct LeaseRow {
    pub id: String,
    pub proxies: String,
    pub session: Option<String>,
    pub expires_at: i64,
    pub created_at: i64,
}

impl LeaseRow {
    pub fn new(l: &crate::domain::leases::Lease, created_at: i64) -> Self {
        LeaseRow {
            id: l.id.clone(),
            proxies: l.proxies.join("\n"),
            session: l.session.clone(),
            expires_at: l.expires_at,
            created_at,
        }
    }

    pub fn into_lease(self) -> crate::domain::leases::Lease {
        crate::domain::leases::Lease {
            id: self.id,
            proxies: self.proxies.lines().map(str::to_string).collect(),
            session: self.session,
            expires_at: self.expires_at,
        }
    }
}

/// A managed proxy's definition; `url` is the public URL, the credentials are apart.
#[derive(Clone, Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = super::schema::managed_proxies, treat_none_as_null = true)]
pub struct ManagedRow {
    pub name: String,
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub kind: String,
    pub cost_per_gb: f64,
    pub priority: i32,
    pub max_leases: Option<i32>,
    /// `config` or `api`.
    pub origin: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub daily_cost_limit: Option<f64>,
    pub daily_cost_cap: Option<f64>,
}

impl ManagedRow {
    pub fn new(def: &ManagedProxy, origin: &str, now: i64) -> Self {
        let c = def.endpoint.credentials.as_ref();
        ManagedRow {
            name: def.name.clone(),
            url: def.endpoint.key(),
            username: c.map(|c| c.username.clone()),
            password: c.map(|c| c.password.clone()),
            kind: def.kind.clone(),
            cost_per_gb: def.cost_per_gb,
            priority: def.priority,
            max_leases: def.max_leases.map(clamp_i32),
            origin: origin.into(),
            created_at: now,
            updated_at: now,
            daily_cost_limit: def.limits.daily_limit,
            daily_cost_cap: def.limits.daily_cap,
        }
    }

    /// The definition, or why the row is not a valid one.
    pub fn into_def(self) -> Result<ManagedProxy, String> {
        let max_leases = self.max_leases.map(|m| m.max(0) as u32);
        let mut def = ManagedProxy::new(
            &self.name,
            &self.url,
            &self.kind,
            self.cost_per_gb,
            self.priority,
            max_leases,
        )?;
        def.endpoint.credentials = self.username.map(|username| Credentials {
            username,
            password: self.password.unwrap_or_default(),
        });
        let limits =
            crate::domain::managed::CostLimits::new(self.daily_cost_limit, self.daily_cost_cap)?;
        Ok(def.with_limits(limits))
    }
}
