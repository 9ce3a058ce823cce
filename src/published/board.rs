//! The status board behind `/api/health/comprehensive`, metrics and the dashboard: what each
//! actor, source, the store and each alert channel last reported. Each lock is held only to copy
//! a value in or out, never across IO.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

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

/// Where a source's last fetch left it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Not fetched yet (or a fetch asked for now).
    #[default]
    Pending,
    Ok,
    /// The server said the list is unchanged (304).
    NotModified,
    /// The meta file said the list is unchanged (not fetched).
    Unchanged,
    Error,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct SourceStatus {
    pub name: String,
    pub kind: String,
    /// The URL without credentials or query string.
    pub url: String,
    pub status: SourceState,
    pub error: Option<String>,
    pub last_fetch_at: Option<String>,
    pub last_ok_at: Option<String>,
    pub proxies: usize,
    pub skipped: usize,
}

/// Whether the store takes writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreState {
    #[default]
    Ok,
    /// The last write failed and is being retried.
    Degraded,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct StoreStatus {
    pub backend: &'static str,
    pub status: StoreState,
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelState {
    #[default]
    Ok,
    Failing,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelStatus {
    pub state: ChannelState,
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
            state: ChannelState::Ok,
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
    /// Something found the store away (a write that failed, the cluster's heartbeat): changes
    /// that must be stored first are refused at once until a write or a ping goes through.
    pub fn store_failed(&self, error: &str) {
        let mut s = lock(&self.store);
        s.status = StoreState::Degraded;
        s.last_error = Some(error.to_string());
    }

    pub fn store_degraded(&self) -> bool {
        lock(&self.store).status == StoreState::Degraded
    }

    pub fn channel(&self, name: &'static str, f: impl FnOnce(&mut ChannelStatus)) {
        f(lock(&self.channels).entry(name).or_default());
    }

    /// A channel's status (`ok` before any attempt).
    pub fn channel_status(&self, name: &str) -> ChannelStatus {
        lock(&self.channels).get(name).cloned().unwrap_or_default()
    }
}
