#![allow(dead_code)]
//! An in-process "proxy farm" on 127.0.0.1: a tiny HTTP origin plus HTTP
//! proxies whose behaviour (good, slow, refusing, black-holing, returning
//! garbage or errors) tests can switch at runtime.
//!
//! Everything is raw tokio TCP. Servers run as tasks on the current runtime and
//! never panic because of a peer: errors on one connection just end it.
//! Upstream connections are only ever made to loopback addresses (or
//! `localhost`); anything else is treated as a failed connection.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Notify};

/// Body served by the origin at `/ok`.
pub const ORIGIN_BODY: &str = "proxyvisor-origin-ok";

/// Largest request head any farm server accepts.
pub const MAX_HEAD: usize = 64 * 1024;

/// Body a `Garbage` proxy answers with (a "captive portal").
pub const GARBAGE_BODY: &str = "<html>captive portal</html>";

/// `Via` value added by Transparent and Anonymous proxies.
pub const VIA: &str = "1.1 farm-proxy";

// ---------------------------------------------------------------------------
// Shared helpers (also used by `source` and `socks`)
// ---------------------------------------------------------------------------

/// A parsed HTTP/1.x request head.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub version: String,
    /// Headers in arrival order; names exactly as received, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads up to and including the first `\r\n\r\n` (at most [`MAX_HEAD`]
/// bytes). Returns the head and any bytes read past it. `None` on EOF, error
/// or an oversized head.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        let search_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf[search_from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(search_from + pos + 4);
            return Some((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

/// Parses a request head (request line + headers). Malformed header lines are
/// skipped; a malformed request line gives `None`.
pub fn parse_head(head: &[u8]) -> Option<RequestHead> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let mut parts = lines.next()?.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let version = parts.next().unwrap_or("HTTP/1.0").to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    Some(RequestHead {
        method,
        target,
        version,
        headers,
    })
}

/// [`read_head`] + [`parse_head`]: the request head and bytes read past it.
pub async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<(RequestHead, Vec<u8>)> {
    let (head, rest) = read_head(stream).await?;
    Some((parse_head(&head)?, rest))
}

/// Standard reason phrase (or a generic one).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Whether a response with this status may carry a body.
pub fn status_has_body(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

/// Builds a `Connection: close` response head. `Content-Length` is added
/// (as `content_length`) unless the status forbids a body.
pub fn response_head(status: u16, headers: &[(&str, String)], content_length: usize) -> String {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if status_has_body(status) {
        head.push_str(&format!("Content-Length: {content_length}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    head
}

/// Writes a complete `Connection: close` response (the body is dropped for
/// statuses that cannot have one).
pub async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<()> {
    let head = response_head(status, headers, body.len());
    stream.write_all(head.as_bytes()).await?;
    if status_has_body(status) && !body.is_empty() {
        stream.write_all(body).await?;
    }
    stream.flush().await
}

/// Sends FIN, then drains what the peer still sends (for up to 2 s) so the
/// close is a clean FIN rather than an RST that could eat our response.
pub async fn close_gracefully(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

/// Splits `host:port`, `[v6]:port`, `host` or a bare IPv6 address.
pub fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => default_port,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return Some((host.to_string(), port));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()?),
        _ => (authority, default_port),
    };
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port))
}

/// Connects to `host:port`, but only if it is a loopback address or
/// `localhost` (no DNS): the farm never reaches outside 127.0.0.1 / ::1.
pub async fn connect_loopback(host: &str, port: u16) -> io::Result<TcpStream> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse()
            .map_err(|_| io::Error::new(io::ErrorKind::PermissionDenied, "farm: not loopback"))?
    };
    if !ip.is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "farm: only loopback targets are allowed",
        ));
    }
    TcpStream::connect((ip, port)).await
}

/// Binds a listener with SO_REUSEADDR, so the same port can be bound again
/// while old accepted connections (or TIME_WAIT entries) still exist.
pub fn bind_reuse(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Binds `127.0.0.1:0` (panics only if that is impossible).
pub fn bind_loopback() -> TcpListener {
    bind_reuse(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind 127.0.0.1:0")
}

/// Spawns an accept loop that runs `on_conn` as its own task per connection
/// until `shutdown` turns true. The loop keeps `shutdown` alive, so dropping
/// the server handle leaves the server running.
pub fn spawn_accept_loop<F, Fut>(
    listener: TcpListener,
    shutdown: Arc<watch::Sender<bool>>,
    on_conn: F,
) where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut stop = shutdown.subscribe();
        loop {
            if *stop.borrow_and_update() {
                return;
            }
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(on_conn(stream));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                _ = stop.changed() => {}
            }
        }
    });
}

/// Strips `http://authority` from an absolute-form target, leaving the path.
fn origin_form(target: &str) -> &str {
    match strip_prefix_ci(target, "http://") {
        Some(rest) => match rest.find(['/', '?']) {
            Some(i) => &rest[i..],
            None => "/",
        },
        None => target,
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

// ---------------------------------------------------------------------------
// Origin
// ---------------------------------------------------------------------------

/// Minimal HTTP/1.1 origin. One request per connection, then close.
///
/// * `/ok` → 200 with [`ORIGIN_BODY`]
/// * `/judge` → 200 whose body lists every request header received, one per
///   line as `Name: value` (names exactly as received)
/// * `/status/NNN` → status NNN with an empty body
/// * anything else → 404
pub struct Origin {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    shutdown: Arc<watch::Sender<bool>>,
}

impl Origin {
    pub async fn start() -> Origin {
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("local_addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let shutdown = Arc::new(watch::channel(false).0);
        let counter = hits.clone();
        spawn_accept_loop(listener, shutdown.clone(), move |stream| {
            serve_origin(stream, counter.clone())
        });
        Origin {
            addr,
            hits,
            shutdown,
        }
    }

    /// Requests received (complete request heads).
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT{path}`, e.g. `url("/ok")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops accepting (in-flight requests finish).
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

async fn serve_origin(mut stream: TcpStream, hits: Arc<AtomicUsize>) {
    let Some((req, _)) = read_request(&mut stream).await else {
        return;
    };
    hits.fetch_add(1, Ordering::SeqCst);
    let path = origin_form(&req.target);
    let path = path.split('?').next().unwrap_or(path);
    let (status, body): (u16, Vec<u8>) = match path {
        "/ok" => (200, ORIGIN_BODY.as_bytes().to_vec()),
        "/judge" => {
            let mut body = String::new();
            for (name, value) in &req.headers {
                body.push_str(&format!("{name}: {value}\n"));
            }
            (200, body.into_bytes())
        }
        p => match p.strip_prefix("/status/").map(str::parse::<u16>) {
            Some(Ok(code)) if (100..=999).contains(&code) => (code, Vec::new()),
            _ => (404, b"not found\n".to_vec()),
        },
    };
    let headers = [("Content-Type", "text/plain".to_string())];
    if write_response(&mut stream, status, &headers, &body)
        .await
        .is_ok()
    {
        close_gracefully(stream).await;
    }
}

// ---------------------------------------------------------------------------
// Farm proxies
// ---------------------------------------------------------------------------

/// What a [`FarmProxy`] does with a connection. Read per accepted connection
/// from the current switch, so changes apply to the next connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Working HTTP forward proxy (absolute-form requests and CONNECT),
    /// after sleeping the configured latency before connecting upstream.
    Good,
    /// Like `Good`, but first sleeps `slow_ms` (default 3000 ms).
    Slow,
    /// The port refuses connections (the listener is closed; ECONNREFUSED).
    Refuse,
    /// Accepts and then never reads or writes; held until `shutdown()`.
    Blackhole,
    /// Reads the request and answers `200 OK` with a captive-portal page,
    /// for CONNECT too (so a tunnel never opens).
    Garbage,
    /// Reads the request and answers `502 Bad Gateway`.
    Error,
}

impl Behaviour {
    const ALL: [Behaviour; 6] = [
        Behaviour::Good,
        Behaviour::Slow,
        Behaviour::Refuse,
        Behaviour::Blackhole,
        Behaviour::Garbage,
        Behaviour::Error,
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
}

const APPLIED_UNKNOWN: u8 = u8::MAX;

struct ProxyShared {
    addr: SocketAddr,
    anonymity: Anonymity,
    behaviour: AtomicU8,
    latency_ms: AtomicU64,
    slow_ms: AtomicU64,
    hits: AtomicUsize,
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
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(ProxyShared {
            addr,
            anonymity,
            behaviour: AtomicU8::new(behaviour.to_u8()),
            latency_ms: AtomicU64::new(latency_ms),
            slow_ms: AtomicU64::new(3000),
            hits: AtomicUsize::new(0),
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
                    let b = match shared.behaviour() {
                        Behaviour::Refuse => serving,
                        b => b,
                    };
                    shared.hits.fetch_add(1, Ordering::SeqCst);
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
    match b {
        // Never chosen for an accepted connection; close if it ever is.
        Behaviour::Refuse => {}
        Behaviour::Good => forward(&shared, stream).await,
        Behaviour::Slow => {
            let slow = shared.slow_ms.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(slow)).await;
            forward(&shared, stream).await;
        }
        Behaviour::Blackhole => {
            let mut stop = shared.shutdown.subscribe();
            let _ = stop.wait_for(|s| *s).await;
            drop(stream);
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

async fn reply_error(mut client: TcpStream, status: u16) {
    let body = format!("farm proxy: {}\n", reason(status));
    let headers = [("Content-Type", "text/plain".to_string())];
    if write_response(&mut client, status, &headers, body.as_bytes())
        .await
        .is_ok()
    {
        close_gracefully(client).await;
    }
}

/// A working forward proxy: CONNECT tunnels, or absolute-form requests
/// rewritten to origin-form with `Connection: close`.
async fn forward(shared: &ProxyShared, mut client: TcpStream) {
    let Some((req, leftover)) = read_request(&mut client).await else {
        return;
    };
    let latency = shared.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    if req.method.eq_ignore_ascii_case("CONNECT") {
        let Some((host, port)) = split_host_port(&req.target, 443) else {
            return reply_error(client, 400).await;
        };
        let Ok(mut upstream) = connect_loopback(&host, port).await else {
            return reply_error(client, 502).await;
        };
        let established = b"HTTP/1.1 200 Connection established\r\n\r\n";
        if client.write_all(established).await.is_err() {
            return;
        }
        if !leftover.is_empty() && upstream.write_all(&leftover).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }

    let Some(rest) = strip_prefix_ci(&req.target, "http://") else {
        return reply_error(client, 400).await;
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let Some((host, port)) = split_host_port(authority, 80) else {
        return reply_error(client, 400).await;
    };
    let Ok(mut upstream) = connect_loopback(&host, port).await else {
        return reply_error(client, 502).await;
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
        let _ = tokio::io::copy(&mut up_rd, &mut client_wr).await;
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
}

impl Farm {
    /// Starts the origin and one proxy per `(behaviour, anonymity, latency_ms)`.
    pub async fn start(spec: &[(Behaviour, Anonymity, u64)]) -> Farm {
        let origin = Origin::start().await;
        let mut proxies = Vec::with_capacity(spec.len());
        for &(behaviour, anonymity, latency_ms) in spec {
            proxies.push(FarmProxy::start(behaviour, anonymity, latency_ms).await);
        }
        Farm { origin, proxies }
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

    /// Shuts down the origin and every proxy.
    pub fn shutdown(&self) {
        self.origin.shutdown();
        for p in &self.proxies {
            p.shutdown();
        }
    }
}
