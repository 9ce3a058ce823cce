//! The plumbing every loopback server of the tests (and the bench) is built on: binding
//! 127.0.0.1, an accept loop that ends on a shutdown signal, reading and writing HTTP/1.1 heads
//! and small answers, and closing politely. Raw tokio TCP; a peer's mistake ends its connection,
//! never a panic.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// Largest request head any loopback server accepts.
pub const MAX_HEAD: usize = 64 * 1024;

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
pub fn origin_form(target: &str) -> &str {
    match strip_prefix_ci(target, "http://") {
        Some(rest) => match rest.find(['/', '?']) {
            Some(i) => &rest[i..],
            None => "/",
        },
        None => target,
    }
}

pub fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Standard base64 (RFC 4648, with `=` padding).
pub fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Basic base64(user:pass)`: the `Proxy-Authorization` value a farm proxy
/// expects after [`FarmProxy::require_auth`].
pub fn basic_credentials(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{user}:{pass}").as_bytes())
    )
}

/// Locks, ignoring poisoning (the guarded data is always valid).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
