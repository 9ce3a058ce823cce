//! The forward-proxy gateway: clients set `HTTP_PROXY` (or `socks5h://`) to it and it picks an
//! upstream from the pool snapshot, forwards, fails over, and counts the traffic.
//!
//! It runs on its own tokio runtime (two worker threads), apart from the actors and the API;
//! it reads the published snapshot and usage, and tells the pool (`Report`) and the Accountant
//! (`Traffic`) by message, never waiting on them. `listen`: the listeners, the connection limits
//! and the first request head; `http`: HTTP/1.1 absolute-form requests and `CONNECT`; `socks`:
//! the SOCKS5 listener; `route`: auth, target checks, the upstreams' order, what attempts tell;
//! `upstream`: reaching a target through an upstream, and the byte meter.

mod http;
mod listen;
mod route;
mod socks;
mod tunnel;
mod upstream;

use crate::config::GatewaySettings;
use crate::domain::gateway::Sessions;
use crate::state::Shared;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// What every connection of the gateway shares.
pub struct Ctx {
    shared: Arc<Shared>,
    settings: GatewaySettings,
    /// The service's own listening ports (API, gateway), never a target on its own addresses.
    own_ports: Vec<u16>,
    own_ips: Vec<IpAddr>,
    sessions: Mutex<Sessions>,
    /// Open connections per client address.
    clients: Mutex<HashMap<IpAddr, usize>>,
    /// When each upstream's last passed check was told to the pool.
    passes: Mutex<HashMap<String, i64>>,
    stop: watch::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ctx {
    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        lock(&self.sessions)
    }

    /// Whether a passed check of `url` is due (one a second at most); notes it if so.
    fn pass_due(&self, url: &str, now: i64) -> bool {
        let mut passes = lock(&self.passes);
        if passes.len() > 100_000 {
            passes.retain(|_, at| now - *at < 1000);
        }
        match passes.get(url) {
            Some(at) if now - *at < 1000 => false,
            _ => {
                passes.insert(url.to_string(), now);
                true
            }
        }
    }
}

/// Where the gateway listens.
#[derive(Clone, Copy, Debug)]
pub struct Addrs {
    pub http: SocketAddr,
    pub socks: Option<SocketAddr>,
}

/// The running gateway.
pub struct Gateway {
    addrs: Addrs,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Gateway {
    /// Binds the listeners (an error names the address) and starts serving on its own runtime.
    pub fn start(
        shared: Arc<Shared>,
        settings: GatewaySettings,
        own_ports: Vec<u16>,
    ) -> Result<Gateway, (SocketAddr, std::io::Error)> {
        let bind = |a: SocketAddr| {
            let l = std::net::TcpListener::bind(a).map_err(|e| (a, e))?;
            l.set_nonblocking(true).map_err(|e| (a, e))?;
            let local = l.local_addr().map_err(|e| (a, e))?;
            Ok::<_, (SocketAddr, std::io::Error)>((l, local))
        };
        let (http_listener, http) = bind(settings.bind)?;
        let socks_listener = settings.socks_bind.map(bind).transpose()?;
        let addrs = Addrs {
            http,
            socks: socks_listener.as_ref().map(|(_, a)| *a),
        };
        let mut own_ports = own_ports;
        own_ports.push(http.port());
        own_ports.extend(addrs.socks.map(|a| a.port()));
        let mut own_ips: Vec<IpAddr> = vec![settings.bind.ip()];
        own_ips.extend(settings.socks_bind.map(|a| a.ip()));
        own_ips.retain(|ip| !ip.is_unspecified());
        if settings.moved_to_loopback {
            log::warn!(
                "gateway: no gateway.token and no server.client_token: anyone may use the gateway, \
                 so it listens on loopback only ({http}); set a token to listen on gateway.bind"
            );
        } else if settings.token.is_none() {
            log::warn!("gateway: no token set: any local client may use it ({http})");
        }
        let mut listening = vec![format!("http://{http}")];
        listening.extend(addrs.socks.map(|a| format!("socks5://{a}")));
        *lock(&shared.gateway.listening) = listening.clone();
        let (stop_tx, stop) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            shared,
            settings,
            own_ports,
            own_ips,
            sessions: Mutex::new(Sessions::default()),
            clients: Mutex::new(HashMap::new()),
            passes: Mutex::new(HashMap::new()),
            stop,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("gateway")
            .enable_all()
            .build()
            .map_err(|e| (http, e))?;
        let thread = std::thread::Builder::new()
            .name("gateway".into())
            .spawn(move || {
                runtime.block_on(listen::serve(
                    ctx,
                    http_listener,
                    socks_listener.map(|l| l.0),
                ));
                runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            })
            .map_err(|e| (http, e))?;
        log::info!("gateway: listening on {}", listening.join(" and "));
        Ok(Gateway {
            addrs,
            stop: stop_tx,
            thread: Some(thread),
        })
    }

    pub fn addrs(&self) -> Addrs {
        self.addrs
    }

    /// Stops accepting and closes every connection (each open tunnel tells its traffic first);
    /// returns once the gateway's runtime is gone.
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}
