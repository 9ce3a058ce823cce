//! What the HTTP layer and the actors share: config, the published pool snapshot, the status
//! board shown by health, the registry of live actors, and the store.

use crate::bus::registry::Registry;
use crate::config::Config;
use crate::snapshot::PoolSnapshot;
use crate::store::Store;
use arc_swap::ArcSwap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub struct Shared {
    pub config: Arc<Config>,
    /// Set on SIGTERM/SIGINT: the drain before the listener closes.
    pub stopping: std::sync::atomic::AtomicBool,
    pub snapshot: ArcSwap<PoolSnapshot>,
    /// Published by the Allocator: slots in use per proxy.
    pub loads: ArcSwap<crate::actors::allocator::Loads>,
    /// Checks the ValidatorPool is running and holding in its queue now.
    pub checks_running: std::sync::atomic::AtomicUsize,
    pub checks_queued: std::sync::atomic::AtomicUsize,
    /// Published by the ResurrectionManager.
    pub resurrection: ArcSwap<crate::actors::resurrection_manager::ResurrectionStats>,
    /// Published by the ServiceMonitor.
    pub monitors: ArcSwap<crate::actors::service_monitor::MonitorsView>,
    pub board: StatusBoard,
    pub registry: Registry,
    pub store: Store,
    pub admin_token: String,
    /// The `[geoip]` database, when one is configured.
    pub geoip: Option<crate::geoip::GeoIp>,
    /// The pool loaded at start, handed to the first TierBalancer (later ones reload the store).
    pub preloaded: Mutex<Option<Vec<crate::domain::record::ProxyRecord>>>,
}

impl Shared {
    pub fn take_preloaded(&self) -> Option<Vec<crate::domain::record::ProxyRecord>> {
        lock(&self.preloaded).take()
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

    pub fn snapshot(&self) -> Arc<PoolSnapshot> {
        self.snapshot.load_full()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorState {
    Running,
    Restarting,
    Failed,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ActorStatus {
    pub name: &'static str,
    pub status: ActorState,
    pub restarts: u32,
    pub last_heartbeat: Option<String>,
    pub last_restart_at: Option<String>,
    /// Restarts because it stopped beating (hung), of `restarts`.
    pub hangs: u32,
    /// Unix ms of the last heartbeat, for the Supervisor.
    #[serde(skip)]
    #[schema(ignore)]
    pub last_beat_ms: Option<i64>,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct SourceStatus {
    pub name: String,
    pub kind: String,
    /// The URL without credentials or query string.
    pub url: String,
    /// `pending`, `ok`, `not_modified`, `unchanged` or `error`.
    pub status: String,
    pub error: Option<String>,
    pub last_fetch_at: Option<String>,
    pub last_ok_at: Option<String>,
    pub proxies: usize,
    pub skipped: usize,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct StoreStatus {
    pub backend: &'static str,
    /// `ok` or `degraded` (the last write failed and is being retried).
    pub status: &'static str,
    pub last_flush_at: Option<String>,
    pub last_error: Option<String>,
    pub pending_writes: usize,
    pub rows_written: u64,
    /// The TierBalancer restarted and cannot read the pool yet (it serves the last snapshot).
    pub pool_reload_pending: bool,
    /// Alerts kept in memory until the store takes them, and those dropped past the bound.
    pub alerts_waiting: usize,
    pub alerts_dropped: u64,
}

/// An alert channel's health: `ok` until an attempt fails, `failing` until one succeeds.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelStatus {
    pub state: &'static str,
    /// Redacted: never a token or password.
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_sent_at: Option<String>,
    /// Deliveries sent, and attempts that failed, since start.
    pub sent_total: u64,
    pub failed_total: u64,
}

impl Default for ChannelStatus {
    fn default() -> Self {
        ChannelStatus {
            state: "ok",
            last_error: None,
            last_error_at: None,
            last_sent_at: None,
            sent_total: 0,
            failed_total: 0,
        }
    }
}

/// Status shown by `/api/health/comprehensive`. Each lock is held only to copy a value in or out,
/// never across IO.
#[derive(Default)]
pub struct StatusBoard {
    actors: Mutex<BTreeMap<&'static str, ActorStatus>>,
    sources: Mutex<BTreeMap<String, SourceStatus>>,
    store: Mutex<StoreStatus>,
    channels: Mutex<BTreeMap<&'static str, ChannelStatus>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere never makes the board unreadable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl StatusBoard {
    pub fn actor(&self, name: &'static str, f: impl FnOnce(&mut ActorStatus)) {
        let mut actors = lock(&self.actors);
        let entry = actors.entry(name).or_insert_with(|| ActorStatus {
            name,
            status: ActorState::Running,
            restarts: 0,
            last_heartbeat: None,
            last_restart_at: None,
            hangs: 0,
            last_beat_ms: None,
        });
        f(entry);
    }

    pub fn heartbeat(&self, name: &'static str) {
        let ms = crate::clock::now_ms();
        let now = crate::clock::rfc3339(ms);
        self.actor(name, |a| {
            a.last_heartbeat = Some(now);
            a.last_beat_ms = Some(ms);
        });
    }

    pub fn actors(&self) -> Vec<ActorStatus> {
        lock(&self.actors).values().cloned().collect()
    }

    pub fn source(&self, name: &str, f: impl FnOnce(&mut SourceStatus)) {
        let mut sources = lock(&self.sources);
        f(sources.entry(name.to_string()).or_default());
    }

    pub fn sources(&self) -> Vec<SourceStatus> {
        lock(&self.sources).values().cloned().collect()
    }

    pub fn store(&self, f: impl FnOnce(&mut StoreStatus)) {
        f(&mut lock(&self.store));
    }

    pub fn store_status(&self) -> StoreStatus {
        lock(&self.store).clone()
    }

    /// The last store write failed: changes that must be stored before they are answered are
    /// refused at once rather than each waiting out the connect timeout (which would hold
    /// their actor, heartbeat included).
    pub fn store_degraded(&self) -> bool {
        lock(&self.store).status == "degraded"
    }

    pub fn channel(&self, name: &'static str, f: impl FnOnce(&mut ChannelStatus)) {
        f(lock(&self.channels).entry(name).or_default());
    }

    /// A channel's status (`ok` before any attempt).
    pub fn channel_status(&self, name: &str) -> ChannelStatus {
        lock(&self.channels).get(name).cloned().unwrap_or_default()
    }
}
