//! The gateway's listeners: each accepted connection is counted against
//! `gateway.max_connections` and `gateway.max_connections_per_client` (past them: `503` at
//! once), and an HTTP connection's first request head must arrive within
//! `gateway.head_timeout_ms` (`408`) and fit `gateway.max_head_bytes` (`431`) before hyper
//! serves it.

use super::upstream::find_end;
use super::{lock, Ctx};
use crate::published::gateway::Outcome;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Serves both listeners until the gateway stops.
pub async fn serve(
    ctx: Arc<Ctx>,
    http: std::net::TcpListener,
    socks: Option<std::net::TcpListener>,
) {
    let accept = |l: std::net::TcpListener, socks: bool| {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            match TcpListener::from_std(l) {
                Ok(l) => accept_loop(ctx, l, socks).await,
                Err(e) => log::error!("gateway: cannot listen: {e}"),
            }
        })
    };
    let mut tasks = vec![accept(http, false)];
    tasks.extend(socks.map(|l| accept(l, true)));
    let mut stop = ctx.stop.clone();
    let _ = stop.wait_for(|s| *s).await;
    for t in tasks {
        t.abort();
    }
}

/// A connection counted against the limits while it lives.
pub struct Admitted {
    ctx: Arc<Ctx>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.ctx
            .shared
            .gateway
            .open_connections
            .fetch_sub(1, Ordering::Relaxed);
        let mut clients = lock(&self.ctx.clients);
        if let Some(n) = clients.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                clients.remove(&self.ip);
            }
        }
    }
}

/// Counts the connection in, unless a limit is reached.
fn admit(ctx: &Arc<Ctx>, ip: IpAddr) -> Result<Admitted, &'static str> {
    let open = &ctx.shared.gateway.open_connections;
    if open.fetch_add(1, Ordering::Relaxed) >= ctx.settings.max_connections {
        open.fetch_sub(1, Ordering::Relaxed);
        return Err("gateway.max_connections");
    }
    let mut clients = lock(&ctx.clients);
    let n = clients.entry(ip).or_insert(0);
    if *n >= ctx.settings.max_connections_per_client {
        drop(clients);
        open.fetch_sub(1, Ordering::Relaxed);
        return Err("gateway.max_connections_per_client");
    }
    *n += 1;
    Ok(Admitted {
        ctx: ctx.clone(),
        ip,
    })
}

async fn accept_loop(ctx: Arc<Ctx>, listener: TcpListener, socks: bool) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, mostly: wait a little rather than spin.
                log::warn!("gateway: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Counted in order of arrival, before the connection's task runs.
        let admitted = admit(&ctx, peer.ip());
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let admitted = match admitted {
                Ok(a) => a,
                Err(limit) => {
                    ctx.shared.gateway.count(Outcome::Unavailable);
                    log::warn!("gateway: {peer} refused: {limit} reached");
                    if !socks {
                        let text = format!("too many connections ({limit})");
                        reply(stream, 503, &text, &[]).await;
                    }
                    return;
                }
            };
            let mut stop = ctx.stop.clone();
            let work = async {
                if socks {
                    super::socks::serve(ctx.clone(), stream, peer).await
                } else {
                    serve_http(ctx.clone(), stream, peer).await
                }
            };
            tokio::select! {
                _ = work => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            drop(admitted);
        });
    }
}

/// A short text answer written straight to the socket, then the connection closes.
pub async fn reply(mut stream: TcpStream, status: u16, text: &str, extra: &[(&str, &str)]) {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        text.len() + 1
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(text);
    head.push('\n');
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.shutdown().await
    };
    if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(5), write).await {
        // A lingering close: what the client still sends is read and dropped for a moment,
        // so closing with unread bytes does not reset the connection before it read the answer.
        let mut sink = [0u8; 4096];
        let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }
}

enum Head {
    Complete(Vec<u8>),
    TooLarge,
    Closed,
}

/// Reads until the end of the first request head (or more than `max` bytes).
async fn first_head(stream: &mut TcpStream, max: usize) -> io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_end(&buf[from..]) {
            if from + end > max {
                return Ok(Head::TooLarge);
            }
            return Ok(Head::Complete(buf));
        }
        if buf.len() > max {
            return Ok(Head::TooLarge);
        }
    }
}

async fn serve_http(ctx: Arc<Ctx>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let s = &ctx.settings;
    let refuse = |status: u16, why: String| {
        ctx.shared.gateway.count(Outcome::Refused);
        log::warn!("gateway: {peer}: {status} {why}");
        (status, why)
    };
    let buf = match tokio::time::timeout(s.head_timeout, first_head(&mut stream, s.max_head_bytes))
        .await
    {
        Ok(Ok(Head::Complete(buf))) => buf,
        Ok(Ok(Head::Closed)) | Ok(Err(_)) => return,
        Ok(Ok(Head::TooLarge)) => {
            let (st, why) = refuse(
                431,
                format!(
                    "request head over gateway.max_head_bytes ({})",
                    s.max_head_bytes
                ),
            );
            return reply(stream, st, &why, &[]).await;
        }
        Err(_) => {
            let (st, why) = refuse(
                408,
                format!(
                    "request head not complete within gateway.head_timeout_ms ({})",
                    s.head_timeout.as_millis()
                ),
            );
            return reply(stream, st, &why, &[]).await;
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 128];
    if let Err(e) = httparse::Request::new(&mut headers).parse(&buf) {
        let (st, why) = refuse(400, format!("malformed request head: {e}"));
        return reply(stream, st, &why, &[]).await;
    }
    super::http::serve_connection(ctx.clone(), Prefixed::new(buf, stream), peer).await;
}

/// A stream whose first bytes were already read: they are read again first.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = (self.prefix.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
