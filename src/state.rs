//! What every actor and the HTTP layer are handed: config, the published views, the status
//! board shown by health, the registry of live actors' ports, and the store.

use crate::bus::registry::Registry;
use crate::config::Config;
use crate::published::board::StatusBoard;
use crate::published::pool::PoolSnapshot;
use crate::store::Store;
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};

pub struct Shared {
    pub config: Arc<Config>,
    /// Set on SIGTERM/SIGINT: the drain before the listener closes.
    pub stopping: std::sync::atomic::AtomicBool,
    pub snapshot: ArcSwap<PoolSnapshot>,
    /// Published by the Allocator: slots in use per proxy.
    pub loads: ArcSwap<crate::published::loads::Loads>,
    /// Checks the ValidatorPool is running and holding in its queue now.
    pub checks_running: std::sync::atomic::AtomicUsize,
    pub checks_queued: std::sync::atomic::AtomicUsize,
    /// Of the running checks, those parked (waiting for an answer without a permit).
    pub checks_parked: std::sync::atomic::AtomicUsize,
    /// Published by the ResurrectionManager.
    pub resurrection: ArcSwap<crate::published::resurrection::ResurrectionStats>,
    /// Published by the ServiceMonitor.
    pub monitors: ArcSwap<crate::published::monitors::MonitorsView>,
    /// Published by the Accountant: gateway traffic today and this month.
    pub usage: ArcSwap<crate::published::usage::UsageView>,
    /// Published by the Coordinator (with SQLite: `single` from the start).
    pub cluster: ArcSwap<crate::published::cluster::ClusterView>,
    /// Whether this instance runs the singletons now.
    pub leadership: crate::published::cluster::Leadership,
    /// What other instances changed in the database (heard by the Coordinator).
    pub changes: crate::published::cluster::Changes,
    /// How the other instances reach this one (`host:port`), as the `instances` table shows it.
    pub instance_address: String,
    /// The cluster's own connection (PostgreSQL only).
    pub cluster_store: Option<Arc<crate::store::cluster::ClusterStore>>,
    /// Counted by the gateway.
    pub gateway: crate::published::gateway::GatewayStats,
    pub board: StatusBoard,
    pub registry: Registry,
    pub store: Store,
    pub admin_token: secrecy::SecretString,
    /// The `[geoip]` database, when one is configured.
    pub geoip: Option<crate::geoip::GeoIp>,
    /// The pool loaded at start, handed to the first TierBalancer (later ones reload the store).
    pub preloaded: Mutex<Option<Vec<crate::domain::record::ProxyRecord>>>,
}

impl Shared {
    pub fn take_preloaded(&self) -> Option<Vec<crate::domain::record::ProxyRecord>> {
        self.preloaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Fills a proxy's country from the GeoIP database when nothing gave one; answers whether
    /// it did.
    pub fn locate(&self, r: &mut crate::domain::record::ProxyRecord) -> bool {
        if r.country.is_some() {
            return false;
        }
        r.country = self.geoip.as_ref().and_then(|g| g.lookup(&r.endpoint.host));
        r.country.is_some()
    }

    /// The admin token, for comparing with a request's.
    pub fn admin_token(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.admin_token)
    }

    pub fn snapshot(&self) -> Arc<PoolSnapshot> {
        self.snapshot.load_full()
    }
}
