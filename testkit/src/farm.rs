//! An in-process "proxy farm" on 127.0.0.1: a tiny HTTP origin (`origin`) plus HTTP
//! proxies whose behaviour (good, slow, refusing, black-holing, returning
//! garbage or errors) tests can switch at runtime.
//!
//! Everything is raw tokio TCP. Servers run as tasks on the current runtime and
//! never panic because of a peer: errors on one connection just end it.
//! Upstream connections are only ever made to loopback addresses (or
//! `localhost`); anything else is treated as a failed connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// Body a `Garbage` proxy answers with (a "captive portal").
pub const GARBAGE_BODY: &str = "<html>captive portal</html>";

/// `Via` value added by Transparent and Anonymous proxies.
pub const VIA: &str = "1.1 farm-proxy";

/// `Proxy-Authenticate` value of a farm proxy's `407` answer.
pub const AUTH_CHALLENGE: &str = "Basic realm=\"farm\"";

pub use crate::gauge::Gauge;
use crate::gauge::GaugeGuard;
use crate::loopback::*;
pub use crate::loopback::{base64_encode, basic_credentials};
pub use crate::origin::{Origin, ORIGIN_BODY};

// ---------------------------------------------------------------------------
// Farm proxies
// ---------------------------------------------------------------------------

/// What a [`FarmProxy`] does with a connection. Read per accepted connection
/// from the current switch, so changes apply to the next connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Working HTTP forward proxy (absolute-form requests and CONNECT),
    /// after sleeping the configured latency before connecting upstream.
    /// Honours [`FarmProxy::require_auth`] (407) and
    /// [`FarmProxy::block_target`] (in that order).
    Good,
    /// Like `Good`, but first sleeps `slow_ms` (default 3000 ms).
    Slow,
    /// The port refuses connections (the listener is closed; ECONNREFUSED).
    Refuse,
    /// Accepts and then never answers; held until `shutdown()` or the client closes.
    Blackhole,
    /// Reads the request and answers `200 OK` with a captive-portal page,
    /// for CONNECT too (so a tunnel never opens).
    Garbage,
    /// Reads the request and answers `502 Bad Gateway`.
    Error,
    /// Up and down: the first connection and every other one after it are served as `Good`,
    /// the others as `Error`.
    Flapping,
}

impl Behaviour {
    const ALL: [Behaviour; 7] = [
        Behaviour::Good,
        Behaviour::Slow,
        Behaviour::Refuse,
        Behaviour::Blackhole,
        Behaviour::Garbage,
        Behaviour::Error,
        Behaviour::Flapping,
    ];

    fn to_u8(self) -> u8 {
        self as u8
    }

    fn from_u8(v: u8) -> Behaviour {
        Self::ALL
            .get(v as usize)
            .copied()
            .unwrap_or(Behaviour::Good)
    }
}

/// Which identifying headers a `Good`/`Slow` proxy adds to forwarded
/// (non-CONNECT) requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Anonymity {
    /// Adds `X-Forwarded-For: 127.0.0.1` and `Via: 1.1 farm-proxy`.
    Transparent,
    /// Adds only `Via: 1.1 farm-proxy`.
    Anonymous,
    /// Adds nothing.
    Elite,
    /// Adds `Via` and an `X-Forwarded-For` that does not hold the client's address
    /// (`unknown, 10.20.30.40`): anonymous, not transparent.
    ForwardsOther,
}

const APPLIED_UNKNOWN: u8 = u8::MAX;

struct ProxyShared {
    /// Connections open now and at most, shared by the proxies of one farm.
    gauge: Arc<Gauge>,
    addr: SocketAddr,
    anonymity: Anonymity,
    behaviour: AtomicU8,
    latency_ms: AtomicU64,
    slow_ms: AtomicU64,
    hits: AtomicUsize,
    /// Expected `Proxy-Authorization` credentials (the base64 part of
    /// `Basic ...`), if authentication is required.
    auth: Mutex<Option<String>>,
    /// Requests answered `407`.
    auth_failures: AtomicUsize,
    /// Upstream port → status answered instead of forwarding there.
    blocked: Mutex<HashMap<u16, u16>>,
    /// Requests answered with a block status.
    blocked_hits: AtomicUsize,
    /// Upstream port → extra milliseconds before forwarding there.
    target_delays: Mutex<HashMap<u16, u64>>,
    /// Wakes the accept loop when the behaviour changes.
    changed: Notify,
    /// Behaviour the accept loop has put into effect (listener state).
    applied: watch::Sender<u8>,
    shutdown: watch::Sender<bool>,
}

impl ProxyShared {
    fn behaviour(&self) -> Behaviour {
        Behaviour::from_u8(self.behaviour.load(Ordering::SeqCst))
    }

    /// Whether `req` passes the current auth requirement (if any).
    fn authorized(&self, req: &RequestHead) -> bool {
        let expected = lock(&self.auth);
        let Some(expected) = expected.as_deref() else {
            return true;
        };
        let Some(value) = req.header("Proxy-Authorization") else {
            return false;
        };
        match value.split_once(' ') {
            Some((scheme, creds)) => {
                scheme.eq_ignore_ascii_case("Basic") && creds.trim() == expected
            }
            None => false,
        }
    }

    /// Status to answer instead of forwarding to upstream `port`, if blocked.
    fn blocked_status(&self, port: u16) -> Option<u16> {
        lock(&self.blocked).get(&port).copied()
    }

    fn publish_applied(&self, b: Behaviour) {
        self.applied.send_if_modified(|v| {
            let changed = *v != b.to_u8();
            *v = b.to_u8();
            changed
        });
    }
}

/// One HTTP proxy of the farm, listening on `addr` (127.0.0.1).
pub struct FarmProxy {
    pub addr: SocketAddr,
    shared: Arc<ProxyShared>,
}

impl FarmProxy {
    pub async fn start(behaviour: Behaviour, anonymity: Anonymity, latency_ms: u64) -> FarmProxy {
        Self::start_counted(behaviour, anonymity, latency_ms, Arc::default()).await
    }

    /// `start`, its connections counted in `gauge`.
    pub async fn start_counted(
        behaviour: Behaviour,
        anonymity: Anonymity,
        latency_ms: u64,
        gauge: Arc<Gauge>,
    ) -> FarmProxy {
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(ProxyShared {
            gauge,
            addr,
            anonymity,
            behaviour: AtomicU8::new(behaviour.to_u8()),
            latency_ms: AtomicU64::new(latency_ms),
            slow_ms: AtomicU64::new(3000),
            hits: AtomicUsize::new(0),
            auth: Mutex::new(None),
            auth_failures: AtomicUsize::new(0),
            blocked: Mutex::new(HashMap::new()),
            blocked_hits: AtomicUsize::new(0),
            target_delays: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            applied: watch::channel(APPLIED_UNKNOWN).0,
            shutdown: watch::channel(false).0,
        });
        // A proxy started as Refuse only bound to learn its port.
        let listener = (behaviour != Behaviour::Refuse).then_some(listener);
        tokio::spawn(proxy_accept_loop(shared.clone(), listener));
        let proxy = FarmProxy { addr, shared };
        proxy.settle().await;
        proxy
    }

    /// Switches behaviour. The accept loop closes/rebinds the listener for
    /// `Refuse` within a few ms; await [`settle`](Self::settle) (or use
    /// [`set_behaviour_and_wait`](Self::set_behaviour_and_wait)) to be sure.
    pub fn set_behaviour(&self, b: Behaviour) {
        self.shared.behaviour.store(b.to_u8(), Ordering::SeqCst);
        self.shared.changed.notify_one();
    }

    /// `set_behaviour` + `settle`.
    pub async fn set_behaviour_and_wait(&self, b: Behaviour) {
        self.set_behaviour(b);
        self.settle().await;
    }

    /// Waits (up to 5 s) until the listener state matches the current
    /// behaviour (closed for `Refuse`, bound otherwise).
    pub async fn settle(&self) {
        let mut applied = self.shared.applied.subscribe();
        let shared = &self.shared;
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            applied.wait_for(|v| *v == shared.behaviour().to_u8()),
        )
        .await;
    }

    pub fn behaviour(&self) -> Behaviour {
        self.shared.behaviour()
    }

    pub fn anonymity(&self) -> Anonymity {
        self.shared.anonymity
    }

    /// Delay before connecting upstream (Good and Slow).
    pub fn set_latency_ms(&self, ms: u64) {
        self.shared.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// Delay a `Slow` proxy waits before doing anything (default 3000).
    pub fn set_slow_ms(&self, ms: u64) {
        self.shared.slow_ms.store(ms, Ordering::SeqCst);
    }

    /// Connections accepted so far (all behaviours).
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// From the next request on, a `Good`/`Slow` proxy answers `407 Proxy
    /// Authentication Required` (with `Proxy-Authenticate: Basic
    /// realm="farm"`) to any request, absolute-form or CONNECT, whose
    /// `Proxy-Authorization` is not `Basic base64(user:pass)`. Replaces any
    /// earlier credentials.
    pub fn require_auth(&self, user: &str, pass: &str) {
        let creds = base64_encode(format!("{user}:{pass}").as_bytes());
        *lock(&self.shared.auth) = Some(creds);
    }

    /// Stops requiring authentication (from the next request on).
    pub fn clear_auth(&self) {
        *lock(&self.shared.auth) = None;
    }

    /// Whether authentication is currently required.
    pub fn auth_required(&self) -> bool {
        lock(&self.shared.auth).is_some()
    }

    /// Requests refused with `407` so far.
    pub fn auth_failures(&self) -> usize {
        self.shared.auth_failures.load(Ordering::SeqCst)
    }

    /// From the next request on, a `Good`/`Slow` proxy answers `status`
    /// (e.g. 403 or 429, with a short text body) instead of forwarding any
    /// request, absolute-form or CONNECT, whose upstream port is `port`: "the
    /// target site refuses this proxy". Authentication is checked first.
    /// Replaces an earlier status for the same port.
    pub fn block_target(&self, port: u16, status: u16) {
        lock(&self.shared.blocked).insert(port, status);
    }

    /// Forwards to `port` again (from the next request on).
    pub fn unblock_target(&self, port: u16) {
        lock(&self.shared.blocked).remove(&port);
    }

    /// Waits `ms` more before forwarding to upstream `port` (a target that is slow through
    /// this proxy only).
    pub fn delay_target(&self, port: u16, ms: u64) {
        lock(&self.shared.target_delays).insert(port, ms);
    }

    /// Unblocks every port.
    pub fn unblock_all(&self) {
        lock(&self.shared.blocked).clear();
    }

    /// Requests answered with a [`block_target`](Self::block_target) status
    /// so far.
    pub fn blocked_hits(&self) -> usize {
        self.shared.blocked_hits.load(Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Closes the listener and drops held (Blackhole) connections.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        self.shared.changed.notify_one();
    }
}

/// Accepts while the behaviour is not `Refuse`; for `Refuse` it drops the
/// listener and rebinds the same port once the behaviour changes back.
async fn proxy_accept_loop(shared: Arc<ProxyShared>, mut listener: Option<TcpListener>) {
    let mut stop = shared.shutdown.subscribe();
    // Last non-Refuse behaviour, for connections that race a switch to Refuse.
    let mut serving = Behaviour::Good;
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let current = shared.behaviour();
        if current == Behaviour::Refuse {
            if let Some(l) = listener.take() {
                drain_backlog(&shared, l, serving);
            }
            shared.publish_applied(current);
            tokio::select! {
                _ = shared.changed.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        serving = current;
        if listener.is_none() {
            match bind_reuse(shared.addr) {
                Ok(l) => listener = Some(l),
                Err(_) => {
                    // Port briefly unavailable: retry soon.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                        _ = shared.changed.notified() => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            }
        }
        let Some(l) = listener.as_ref() else {
            continue;
        };
        shared.publish_applied(current);
        tokio::select! {
            accepted = l.accept() => match accepted {
                Ok((stream, _)) => {
                    // Decided per connection from the switch as it is now.
                    let hit = shared.hits.fetch_add(1, Ordering::SeqCst) + 1;
                    let b = match shared.behaviour() {
                        Behaviour::Refuse => serving,
                        Behaviour::Flapping if hit % 2 == 1 => Behaviour::Good,
                        Behaviour::Flapping => Behaviour::Error,
                        b => b,
                    };
                    tokio::spawn(handle_proxy_conn(shared.clone(), stream, b));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            _ = shared.changed.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

/// Before closing the listener for `Refuse`, serves connections the kernel
/// already completed (they were made before the switch) instead of resetting
/// them.
fn drain_backlog(shared: &Arc<ProxyShared>, listener: TcpListener, b: Behaviour) {
    let Ok(listener) = listener.into_std() else {
        return;
    };
    // `into_std` keeps the socket non-blocking: this stops at WouldBlock.
    while let Ok((stream, _)) = listener.accept() {
        if stream.set_nonblocking(true).is_err() {
            continue;
        }
        let Ok(stream) = TcpStream::from_std(stream) else {
            continue;
        };
        shared.hits.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(handle_proxy_conn(shared.clone(), stream, b));
    }
}

async fn handle_proxy_conn(shared: Arc<ProxyShared>, mut stream: TcpStream, b: Behaviour) {
    let mut open = Some(shared.gauge.enter());
    match b {
        // Never chosen for an accepted connection (Flapping is decided at accept); close if
        // it ever is.
        Behaviour::Refuse | Behaviour::Flapping => {}
        Behaviour::Good => forward(&shared, stream, &mut open).await,
        Behaviour::Slow => {
            let slow = shared.slow_ms.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(slow)).await;
            forward(&shared, stream, &mut open).await;
        }
        Behaviour::Blackhole => {
            // Never answers; what the client sends is read and dropped only to notice when it
            // gives up (so the farm's open-connection count is true).
            let mut stop = shared.shutdown.subscribe();
            let gone = async {
                let mut sink = [0u8; 1024];
                while matches!(tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await, Ok(n) if n > 0)
                {
                }
            };
            tokio::select! {
                _ = stop.wait_for(|s| *s) => {}
                _ = gone => {}
            }
        }
        Behaviour::Garbage => {
            let _ = tokio::time::timeout(Duration::from_secs(2), read_head(&mut stream)).await;
            let headers = [("Content-Type", "text/html".to_string())];
            let body = GARBAGE_BODY.as_bytes();
            if write_response(&mut stream, 200, &headers, body)
                .await
                .is_ok()
            {
                close_gracefully(stream).await;
            }
        }
        Behaviour::Error => {
            let _ = tokio::time::timeout(Duration::from_secs(2), read_head(&mut stream)).await;
            let headers = [("Content-Type", "text/plain".to_string())];
            let body = b"farm proxy: bad gateway\n";
            if write_response(&mut stream, 502, &headers, body)
                .await
                .is_ok()
            {
                close_gracefully(stream).await;
            }
        }
    }
}

async fn reply_error(client: TcpStream, status: u16) {
    reply_with(client, status, &[]).await;
}

/// Answers `status` with a short text body plus `extra` headers, then closes.
async fn reply_with(mut client: TcpStream, status: u16, extra: &[(&str, String)]) {
    let body = format!("farm proxy: {}\n", reason(status));
    let mut headers = vec![("Content-Type", "text/plain".to_string())];
    headers.extend(extra.iter().cloned());
    if write_response(&mut client, status, &headers, body.as_bytes())
        .await
        .is_ok()
    {
        close_gracefully(client).await;
    }
}

/// Where a proxied request goes: upstream host and port, plus the
/// origin-form path for absolute-form requests (`None` for CONNECT).
/// `None` if the target is malformed (or not `http://`).
fn upstream_of(req: &RequestHead) -> Option<(String, u16, Option<String>)> {
    if req.method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = split_host_port(&req.target, 443)?;
        return Some((host, port, None));
    }
    let rest = strip_prefix_ci(&req.target, "http://")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = split_host_port(authority, 80)?;
    Some((host, port, Some(path)))
}

/// A working forward proxy: CONNECT tunnels, or absolute-form requests
/// rewritten to origin-form with `Connection: close`. A forwarded request stops counting as
/// open (`open` is dropped) as its answer starts to come back, before a byte of it reaches the
/// client: the client may be done with it before the origin's close reaches this proxy, and a
/// new request it makes then must not look like two at once.
async fn forward(shared: &ProxyShared, mut client: TcpStream, open: &mut Option<GaugeGuard>) {
    let Some((req, leftover)) = read_request(&mut client).await else {
        return;
    };
    let latency = shared.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    if !shared.authorized(&req) {
        shared.auth_failures.fetch_add(1, Ordering::SeqCst);
        let challenge = [("Proxy-Authenticate", AUTH_CHALLENGE.to_string())];
        return reply_with(client, 407, &challenge).await;
    }
    let Some((host, port, path)) = upstream_of(&req) else {
        return reply_error(client, 400).await;
    };
    if let Some(status) = shared.blocked_status(port) {
        shared.blocked_hits.fetch_add(1, Ordering::SeqCst);
        return reply_error(client, status).await;
    }
    let delay = lock(&shared.target_delays).get(&port).copied();
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let Ok(mut upstream) = connect_loopback(&host, port).await else {
        return reply_error(client, 502).await;
    };

    let Some(path) = path else {
        // CONNECT
        let established = b"HTTP/1.1 200 Connection established\r\n\r\n";
        if client.write_all(established).await.is_err() {
            return;
        }
        if !leftover.is_empty() && upstream.write_all(&leftover).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    };

    let mut head = format!("{} {} {}\r\n", req.method, path, req.version);
    const DROPPED: [&str; 4] = [
        "Proxy-Authorization",
        "Proxy-Connection",
        "Connection",
        "Keep-Alive",
    ];
    for (name, value) in &req.headers {
        if DROPPED.iter().any(|d| d.eq_ignore_ascii_case(name)) {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match shared.anonymity {
        Anonymity::Transparent => {
            head.push_str("X-Forwarded-For: 127.0.0.1\r\n");
            head.push_str(&format!("Via: {VIA}\r\n"));
        }
        Anonymity::Anonymous => head.push_str(&format!("Via: {VIA}\r\n")),
        Anonymity::ForwardsOther => {
            head.push_str("X-Forwarded-For: unknown, 10.20.30.40\r\n");
            head.push_str(&format!("Via: {VIA}\r\n"));
        }
        Anonymity::Elite => {}
    }
    head.push_str("Connection: close\r\n\r\n");
    if upstream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    if !leftover.is_empty() && upstream.write_all(&leftover).await.is_err() {
        return;
    }

    // Request body (if any) flows up; the response flows back until the
    // origin closes, which ends the exchange.
    let (mut client_rd, mut client_wr) = client.split();
    let (mut up_rd, mut up_wr) = upstream.split();
    let request_side = async {
        let _ = tokio::io::copy(&mut client_rd, &mut up_wr).await;
        std::future::pending::<()>().await
    };
    let response_side = async {
        let mut first = [0u8; 4096];
        if let Ok(n @ 1..) = tokio::io::AsyncReadExt::read(&mut up_rd, &mut first).await {
            // Uncounted before the client can have a byte of it (so before it can be done).
            open.take();
            if client_wr.write_all(&first[..n]).await.is_ok() {
                let _ = tokio::io::copy(&mut up_rd, &mut client_wr).await;
            }
        }
        let _ = client_wr.shutdown().await;
    };
    tokio::select! {
        _ = request_side => {}
        _ = response_side => {}
    }
}

// ---------------------------------------------------------------------------
// Farm
// ---------------------------------------------------------------------------

/// An origin plus a set of farm proxies.
pub struct Farm {
    pub origin: Origin,
    pub proxies: Vec<FarmProxy>,
    /// Connections to any of the proxies, open now and at most at once.
    pub open: Arc<Gauge>,
}

impl Farm {
    /// Starts the origin and one proxy per `(behaviour, anonymity, latency_ms)`.
    pub async fn start(spec: &[(Behaviour, Anonymity, u64)]) -> Farm {
        let origin = Origin::start().await;
        let open = Arc::<Gauge>::default();
        let mut proxies = Vec::with_capacity(spec.len());
        for &(behaviour, anonymity, latency_ms) in spec {
            let proxy = FarmProxy::start_counted(behaviour, anonymity, latency_ms, open.clone());
            proxies.push(proxy.await);
        }
        Farm {
            origin,
            proxies,
            open,
        }
    }

    /// Every proxy as `127.0.0.1:PORT\n`, in start order.
    pub fn plain_list(&self) -> String {
        self.proxies
            .iter()
            .map(|p| format!("{}\n", p.addr))
            .collect()
    }

    /// URLs (`http://127.0.0.1:PORT`) of proxies currently behaving as `b`.
    pub fn urls_with(&self, b: Behaviour) -> Vec<String> {
        self.proxies
            .iter()
            .filter(|p| p.behaviour() == b)
            .map(FarmProxy::url)
            .collect()
    }

    /// [`FarmProxy::require_auth`] on every proxy.
    pub fn require_auth(&self, user: &str, pass: &str) {
        for p in &self.proxies {
            p.require_auth(user, pass);
        }
    }

    /// [`FarmProxy::clear_auth`] on every proxy.
    pub fn clear_auth(&self) {
        for p in &self.proxies {
            p.clear_auth();
        }
    }

    /// [`FarmProxy::block_target`] on the proxies at these indices (start
    /// order); out-of-range indices are ignored.
    pub fn block_target_on(&self, indices: &[usize], port: u16, status: u16) {
        for &i in indices {
            if let Some(p) = self.proxies.get(i) {
                p.block_target(port, status);
            }
        }
    }

    /// [`FarmProxy::unblock_target`] on every proxy.
    pub fn unblock_target(&self, port: u16) {
        for p in &self.proxies {
            p.unblock_target(port);
        }
    }

    /// Shuts down the origin and every proxy.
    pub fn shutdown(&self) {
        self.origin.shutdown();
        for p in &self.proxies {
            p.shutdown();
        }
    }
}
