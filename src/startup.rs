//! The composition root, imported by nobody but `main` and the tests: builds and runs the
//! application (store, pool, actors, HTTP server). `main` only reads the config and calls
//! `Application::build`; tests build the same application on port 0 and read the bound port.

use crate::actors::resurrection_manager::ResurrectionManager;
use crate::actors::supervisor::{ChildSpec, Supervisor};
use crate::actors::{
    source_fetcher::SourceFetcher, tier_balancer::TierBalancer, validator_pool::ValidatorPool,
};
use crate::bus::messages::FlushNow;
use crate::clock::now_ms;
use crate::config::Config;
use crate::published::board::StatusBoard;
use crate::published::pool::{Counters, PoolSnapshot};
use crate::state::Shared;
use crate::store::models::ManagedRow;
use crate::store::{Store, StoreError};
use actix::Actor;
use actix_web::dev::{Server, ServerHandle};
use secrecy::SecretString;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("admin token file {path}: {source}")]
    Token {
        path: String,
        source: std::io::Error,
    },
    /// A setting that cannot work (the binary exits 2, as for a bad config file).
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

pub struct Application {
    /// With SQLite: the lock that keeps a second process off the same file, held while the
    /// application lives.
    _single: Option<std::fs::File>,
    port: u16,
    server: Server,
    gateway: Option<crate::gateway::Gateway>,
    shared: Arc<Shared>,
    supervisor: actix::Addr<Supervisor>,
}

impl Application {
    /// Opens the store, loads and publishes the last known pool, starts the supervised actors and
    /// binds the HTTP server. Must run inside an actix system.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        let config = Arc::new(config);
        let url = config.database.url.clone();
        let single = lock_sqlite_file(&url)?;
        let now = now_ms();
        let managed: Vec<ManagedRow> = (config.defs.managed.iter())
            .map(|d| ManagedRow::new(d, "config", now))
            .collect();
        let (store, records) = tokio::task::spawn_blocking(move || {
            let store = Store::open(&url)?;
            store.sync_config_managed(&managed)?;
            let records = store.load_pool()?;
            Ok::<_, StoreError>((store, records))
        })
        .await
        .map_err(|e| StartError::Other(format!("store start-up panicked: {e}")))??;
        log::info!(
            "store: {} ready, {} proxies loaded",
            store.backend().name(),
            records.len()
        );
        if config.server.client_token.is_none()
            && records
                .iter()
                .any(|r| r.managed.is_some() && r.endpoint.credentials.is_some())
        {
            log::warn!(
                "managed proxies with credentials are handed, credentials included, to any \
                 client: set server.client_token to keep them to your own clients"
            );
        }
        let geoip = open_geoip(&config).await?;
        let admin_token = admin_token(&config, &config.database.data_dir())?;
        raise_open_files_limit(config.validation.concurrency);
        let addr = config
            .bind_addr()
            .map_err(|e| StartError::Other(e.to_string()))?;
        let listener = std::net::TcpListener::bind(addr).map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| StartError::Other(e.to_string()))?
            .port();
        let (instance_id, instance_address) = instance_names(&config, addr, port);
        let cluster_store = match store.backend() {
            crate::store::Backend::Postgres(url) => {
                let patience = (config.cluster.heartbeat_secs * 2000.0) as u64;
                Some(Arc::new(crate::store::cluster::ClusterStore::new(
                    url,
                    patience.max(1000),
                )))
            }
            crate::store::Backend::Sqlite(_) => None,
        };
        let leadership = match cluster_store {
            Some(_) => crate::published::cluster::Leadership::elected(),
            None => crate::published::cluster::Leadership::single(),
        };
        let mut cluster = crate::published::cluster::ClusterView::single(instance_id);
        if cluster_store.is_some() {
            cluster.role = crate::domain::cluster::Role::Follower;
        }
        let snapshot = PoolSnapshot::build(records.iter(), Counters::default(), now_ms(), None);
        let board = StatusBoard::default();
        board.store(|s| {
            s.backend = store.backend().name();
            s.status = crate::published::board::StoreState::Ok;
        });
        let shared = Arc::new(Shared {
            config: config.clone(),
            stopping: Default::default(),
            snapshot: arc_swap::ArcSwap::from_pointee(snapshot),
            resurrection: Default::default(),
            monitors: Default::default(),
            usage: Default::default(),
            gateway: Default::default(),
            loads: Default::default(),
            checks_running: Default::default(),
            checks_queued: Default::default(),
            checks_parked: Default::default(),
            cluster: arc_swap::ArcSwap::from_pointee(cluster),
            leadership,
            changes: Default::default(),
            instance_address,
            cluster_store,
            board,
            registry: Default::default(),
            store,
            admin_token,
            geoip,
            preloaded: Mutex::new(Some(records)),
        });

        let specs = vec![
            ChildSpec {
                name: crate::actors::alerter::NAME,
                start: crate::actors::alerter::Alerter::start,
            },
            ChildSpec {
                name: crate::actors::tier_balancer::NAME,
                start: TierBalancer::start,
            },
            ChildSpec {
                name: crate::actors::validator_pool::NAME,
                start: ValidatorPool::start,
            },
            ChildSpec {
                name: crate::actors::allocator::NAME,
                start: crate::actors::allocator::Allocator::start,
            },
            ChildSpec {
                name: crate::actors::resurrection_manager::NAME,
                start: ResurrectionManager::start,
            },
            ChildSpec {
                name: crate::actors::accountant::NAME,
                start: crate::actors::accountant::Accountant::start,
            },
            ChildSpec {
                name: crate::actors::service_monitor::NAME,
                start: crate::actors::service_monitor::ServiceMonitor::start,
            },
            ChildSpec {
                name: crate::actors::source_fetcher::NAME,
                start: SourceFetcher::start,
            },
        ];
        let mut specs = specs;
        if shared.cluster_store.is_some() {
            specs.insert(
                0,
                ChildSpec {
                    name: crate::actors::coordinator::NAME,
                    start: crate::actors::coordinator::Coordinator::start,
                },
            );
        }
        let supervisor = Supervisor::new(shared.clone(), specs).start();
        shared
            .registry
            .restart_child
            .set(supervisor.clone().recipient());
        shared
            .registry
            .stop_children
            .set(supervisor.clone().recipient());

        let server =
            crate::api::server(shared.clone(), listener).map_err(|source| StartError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        log::info!("listening on http://{}:{port}", addr.ip());
        let gateway = match &config.defs.gateway {
            Some(settings) => Some(
                crate::gateway::Gateway::start(shared.clone(), settings.clone(), vec![port])
                    .map_err(|(addr, source)| StartError::Bind {
                        addr: addr.to_string(),
                        source,
                    })?,
            ),
            None => None,
        };
        Ok(Application {
            _single: single,
            port,
            server,
            gateway,
            shared,
            supervisor,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the gateway listens, when it is enabled.
    pub fn gateway(&self) -> Option<crate::gateway::Addrs> {
        self.gateway.as_ref().map(|g| g.addrs())
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM or `handle().stop()`), then writes
    /// what the pool has not yet stored.
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let shared = self.shared.clone();
        let signals = actix_rt::spawn(async move {
            let signal = shutdown_signal().await;
            let drain = shared.config.server.drain_secs;
            log::info!(
                "{signal} received: draining for {drain} s (health answers 503, connections \
                 close after each answer), then finishing requests in flight and writing the pool"
            );
            shared
                .stopping
                .store(true, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs_f64(drain)).await;
            handle.stop(true).await;
        });
        let result = (&mut self.server).await;
        signals.abort();
        if let Some(mut gateway) = self.gateway.take() {
            // Its open tunnels tell their traffic as they close, before the books are written.
            tokio::task::spawn_blocking(move || gateway.stop())
                .await
                .ok();
            log::info!("shutdown: gateway closed");
        }
        let report = |what: &str, r: Result<Result<Result<usize, String>, _>, _>| match r {
            Ok(Ok(Ok(n))) => log::info!("shutdown: {n} pending {what} written"),
            Ok(Ok(Err(e))) => log::error!("shutdown: final write of {what} failed: {e}"),
            _ => log::error!("shutdown: final write of {what} did not finish"),
        };
        let limit = Duration::from_secs(10);
        if let Some(balancer) = self.shared.registry.flush_pool.get() {
            report(
                "pool rows",
                tokio::time::timeout(limit, balancer.send(FlushNow)).await,
            );
        }
        if let Some(accountant) = self.shared.registry.flush_usage.get() {
            report(
                "usage rows",
                tokio::time::timeout(limit, accountant.send(FlushNow)).await,
            );
        }
        if let Some(monitor) = self.shared.registry.flush_monitors.get() {
            report(
                "monitor stats",
                tokio::time::timeout(limit, monitor.send(FlushNow)).await,
            );
        }
        let _ = self
            .supervisor
            .send(crate::bus::messages::StopChildren)
            .await;
        if let Some(cluster) = self.shared.cluster_store.clone() {
            let me = self.shared.cluster.load().instance_id.clone();
            let left = tokio::task::spawn_blocking(move || cluster.leave(&me));
            match tokio::time::timeout(limit, left).await {
                Ok(Ok(Some(Ok(())))) => log::info!("shutdown: left the cluster (lease given up)"),
                _ => {
                    log::warn!("shutdown: could not tell the cluster; the lease runs out by itself")
                }
            }
        }
        result
    }
}

/// Waits for SIGTERM or SIGINT and names it.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            log::warn!("cannot listen for SIGTERM/SIGINT; stop with the server handle");
            std::future::pending().await
        }
    }
}

/// This instance's id (`cluster.instance_id`, or `hostname:port`) and the address the others
/// see (`host:port`: the bound address, or the hostname when bound to every interface).
fn instance_names(config: &Config, addr: std::net::SocketAddr, port: u16) -> (String, String) {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let id = (config.cluster.instance_id.clone()).unwrap_or_else(|| format!("{hostname}:{port}"));
    let host = if addr.ip().is_unspecified() {
        hostname
    } else {
        addr.ip().to_string()
    };
    (id, format!("{host}:{port}"))
}

/// With SQLite, one process per file: an exclusive lock on `FILE.lock` beside it, taken before
/// the store is opened. A second process on the same file stops here with one line (several
/// instances share a PostgreSQL database instead).
fn lock_sqlite_file(url: &str) -> Result<Option<std::fs::File>, StartError> {
    let Ok(crate::store::Backend::Sqlite(path)) = crate::store::Backend::from_url(url) else {
        return Ok(None);
    };
    let lock = std::path::PathBuf::from(format!("{}.lock", path.display()));
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StartError::Other(format!("cannot create {}: {e}", dir.display())))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| StartError::Other(format!("cannot open {}: {e}", lock.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Other(format!(
            "{} is in use by another proxyvisor process (locked: {}); a SQLite store serves one \
             instance, run several on PostgreSQL",
            path.display(),
            lock.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(StartError::Other(format!(
            "cannot lock {}: {e}",
            lock.display()
        ))),
    }
}

/// Each check holds up to two sockets; the usual soft limit of 1024 open files would make
/// checks fail for our own lack of sockets, which would wrongly kill proxies.
fn raise_open_files_limit(concurrency: usize) {
    let needed = concurrency as u64 * 2 + 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed => log::warn!(
            "open files limit is {limit}; validation.concurrency = {concurrency} may need {needed}: \
             lower the concurrency or raise the limit (ulimit -n)"
        ),
        Ok(limit) => log::debug!("open files limit: {limit}"),
        Err(e) => log::warn!("cannot read or raise the open files limit: {e}"),
    }
}

/// Opens `[geoip] path`, if set: a file that cannot be read is a config error.
async fn open_geoip(config: &Config) -> Result<Option<crate::geoip::GeoIp>, StartError> {
    let Some(path) = config.geoip.path.clone() else {
        return Ok(None);
    };
    let db = tokio::task::spawn_blocking(move || crate::geoip::GeoIp::open(path.as_ref()))
        .await
        .map_err(|e| StartError::Other(format!("opening the GeoIP file panicked: {e}")))?
        .map_err(|e| StartError::Config(format!("geoip.path: {e}")))?;
    log::info!(
        "geoip: {} database with {} entries{}",
        db.format(),
        db.len(),
        match db.skipped() {
            0 => String::new(),
            n => format!(", {n} malformed lines skipped"),
        }
    );
    Ok(Some(db))
}

/// The configured admin token, or the one generated at first start and kept in
/// `data_dir/admin_token` (mode 0600).
fn admin_token(config: &Config, data_dir: &Path) -> Result<SecretString, StartError> {
    if let Some(t) = &config.server.admin_token {
        return Ok(t.clone());
    }
    let path = data_dir.join("admin_token");
    let err = |source| StartError::Token {
        path: path.display().to_string(),
        source,
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let t = existing.trim().to_string();
        if !t.is_empty() {
            log::info!("admin token: read from {}", path.display());
            return Ok(t.into());
        }
    }
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let token: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..32)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect()
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(err)?;
    std::io::Write::write_all(&mut file, token.as_bytes()).map_err(err)?;
    log::info!(
        "admin token: generated and stored in {} (mode 0600)",
        path.display()
    );
    Ok(token.into())
}
