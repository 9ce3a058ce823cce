//! Reaching a target through an upstream proxy: a TCP connection to an HTTP proxy (for
//! absolute-form requests), or a tunnel through it (HTTP `CONNECT`, SOCKS4a, SOCKS5 with its
//! credentials); and the meter that counts every byte that then passes, each way.

use crate::domain::proxy::{Endpoint, Protocol};
use base64::Engine;
use hyper_util::client::legacy::connect::proxy::{SocksV4, SocksV5};
use hyper_util::client::legacy::connect::HttpConnector;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tower_service::Service;

/// Longest answer head an upstream may give to a `CONNECT`.
const MAX_CONNECT_HEAD: usize = 16 * 1024;

/// Why an upstream did not give a way to the target.
#[derive(Debug)]
pub enum DialError {
    /// Not reached, or it broke the handshake (the text names no credentials).
    Failed(String),
    /// It answered the `CONNECT` with this status.
    Refused(u16),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Failed(e) => f.write_str(e),
            DialError::Refused(s) => write!(f, "it answered the CONNECT with {s}"),
        }
    }
}

/// Bytes up (written: client → target) and down (read: target → client).
#[derive(Debug, Default)]
pub struct Meter {
    up: AtomicU64,
    down: AtomicU64,
}

impl Meter {
    /// Counts bytes that passed outside the metered stream.
    pub fn add(&self, up: u64, down: u64) {
        self.up.fetch_add(up, Ordering::Relaxed);
        self.down.fetch_add(down, Ordering::Relaxed);
    }

    /// `(up, down)` so far.
    pub fn read(&self) -> (u64, u64) {
        (
            self.up.load(Ordering::Relaxed),
            self.down.load(Ordering::Relaxed),
        )
    }
}

/// A stream to an upstream whose bytes the meter counts.
pub struct Metered<S> {
    inner: S,
    meter: Arc<Meter>,
}

impl<S> Metered<S> {
    pub fn new(inner: S, meter: Arc<Meter>) -> Self {
        Metered { inner, meter }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.meter.down.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.meter.up.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.meter.up.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `host:port`, IPv6 hosts bracketed.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `Basic …` for the upstream's credentials.
pub fn basic(up: &Endpoint) -> Option<String> {
    let c = up.credentials.as_ref()?;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    Some(format!("Basic {token}"))
}

/// A TCP connection to the upstream proxy itself.
pub async fn connect(up: &Endpoint) -> Result<TcpStream, DialError> {
    let s = TcpStream::connect((up.host.as_str(), up.port))
        .await
        .map_err(|e| DialError::Failed(format!("connect: {e}")))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// A tunnel through `up` to `host:port`, and any bytes the upstream sent past its answer.
pub async fn tunnel(
    up: &Endpoint,
    host: &str,
    port: u16,
) -> Result<(TcpStream, Vec<u8>), DialError> {
    match up.protocol {
        Protocol::Http | Protocol::Https => http_connect(up, host, port).await,
        Protocol::Socks4 | Protocol::Socks5 => {
            let proxy: http::Uri = format!("http://{}", authority(&up.host, up.port))
                .parse()
                .map_err(|e| DialError::Failed(format!("bad proxy address: {e}")))?;
            let dst: http::Uri = format!("http://{}", authority(host, port))
                .parse()
                .map_err(|_| DialError::Failed("the target is not a host name".into()))?;
            let mut tcp = HttpConnector::new();
            tcp.enforce_http(false);
            tcp.set_nodelay(true);
            let io = if up.protocol == Protocol::Socks4 {
                SocksV4::new(proxy, tcp)
                    .call(dst)
                    .await
                    .map_err(|e| DialError::Failed(format!("SOCKS4: {e:?}")))?
            } else {
                let mut socks = SocksV5::new(proxy, tcp);
                if let Some(c) = &up.credentials {
                    socks = socks.with_auth(c.username.clone(), c.password.clone());
                }
                socks
                    .call(dst)
                    .await
                    .map_err(|e| DialError::Failed(format!("SOCKS5: {}", socks_error(&e))))?
            };
            Ok((io.into_inner(), Vec::new()))
        }
    }
}

/// A SOCKS error as text, without the credentials a `Debug` of the config might hold.
fn socks_error<E: std::fmt::Debug>(e: &E) -> String {
    let text = format!("{e:?}");
    text.chars().take(120).collect()
}

/// `CONNECT host:port` to an HTTP proxy, its answer read and judged.
async fn http_connect(
    up: &Endpoint,
    host: &str,
    port: u16,
) -> Result<(TcpStream, Vec<u8>), DialError> {
    let mut s = connect(up).await?;
    let target = authority(host, port);
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = basic(up) {
        head.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| DialError::Failed(format!("CONNECT: {e}")))?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 2048];
    let end = loop {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| DialError::Failed(format!("CONNECT: {e}")))?;
        if n == 0 {
            return Err(DialError::Failed(
                "CONNECT: closed before the status line".into(),
            ));
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = find_end(&buf[from..]) {
            break from + i;
        }
        if buf.len() > MAX_CONNECT_HEAD {
            return Err(DialError::Failed("CONNECT: answer head too long".into()));
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&buf[..end]) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(DialError::Failed("CONNECT: not an HTTP answer".into())),
    }
    let code = resp.code.unwrap_or(0);
    if !(200..300).contains(&code) {
        return Err(DialError::Refused(code));
    }
    Ok((s, buf[end..].to_vec()))
}

/// The index just past the first `\r\n\r\n`.
pub fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}
