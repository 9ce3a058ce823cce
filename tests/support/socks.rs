#![allow(dead_code)]
//! SOCKS5 (RFC 1928, with RFC 1929 username/password) and SOCKS4/4a proxies
//! on 127.0.0.1. CONNECT only. Targets must be loopback (or `localhost`);
//! anything else is answered like a refused connection.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use proxyvisor_testkit::loopback::{bind_loopback, connect_loopback, spawn_accept_loop};

// ---------------------------------------------------------------------------
// SOCKS5
// ---------------------------------------------------------------------------

/// A SOCKS5 server. With `auth = Some((user, pass))` it only offers
/// username/password auth and rejects wrong credentials (status 1, close);
/// with `None` it only offers "no authentication".
pub struct Socks5Proxy {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    shutdown: Arc<watch::Sender<bool>>,
}

impl Socks5Proxy {
    pub async fn start(auth: Option<(String, String)>) -> Socks5Proxy {
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("local_addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let shutdown = Arc::new(watch::channel(false).0);
        let auth = Arc::new(auth);
        let counter = hits.clone();
        spawn_accept_loop(listener, shutdown.clone(), move |stream| {
            counter.fetch_add(1, Ordering::SeqCst);
            serve_socks5(stream, auth.clone())
        });
        Socks5Proxy {
            addr,
            hits,
            shutdown,
        }
    }

    /// `socks5://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("socks5://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops accepting (open tunnels continue).
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

const SOCKS5_OK: u8 = 0x00;
const SOCKS5_REFUSED: u8 = 0x05;
const SOCKS5_BAD_COMMAND: u8 = 0x07;
const SOCKS5_BAD_ATYP: u8 = 0x08;

/// Reply with bound address 0.0.0.0:0.
async fn socks5_reply(stream: &mut TcpStream, code: u8) -> bool {
    let reply = [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
    stream.write_all(&reply).await.is_ok()
}

async fn serve_socks5(mut stream: TcpStream, auth: Arc<Option<(String, String)>>) {
    // Method negotiation.
    let mut greeting = [0u8; 2];
    if stream.read_exact(&mut greeting).await.is_err() || greeting[0] != 5 {
        return;
    }
    let mut methods = vec![0u8; greeting[1] as usize];
    if stream.read_exact(&mut methods).await.is_err() {
        return;
    }
    let wanted = if auth.is_some() { 0x02 } else { 0x00 };
    if !methods.contains(&wanted) {
        let _ = stream.write_all(&[5, 0xFF]).await;
        return;
    }
    if stream.write_all(&[5, wanted]).await.is_err() {
        return;
    }

    // RFC 1929 username/password sub-negotiation.
    if let Some((user, pass)) = auth.as_ref() {
        let mut head = [0u8; 2];
        if stream.read_exact(&mut head).await.is_err() || head[0] != 1 {
            return;
        }
        let mut got_user = vec![0u8; head[1] as usize];
        let mut plen = [0u8; 1];
        if stream.read_exact(&mut got_user).await.is_err()
            || stream.read_exact(&mut plen).await.is_err()
        {
            return;
        }
        let mut got_pass = vec![0u8; plen[0] as usize];
        if stream.read_exact(&mut got_pass).await.is_err() {
            return;
        }
        let ok = got_user == user.as_bytes() && got_pass == pass.as_bytes();
        if stream
            .write_all(&[1, if ok { 0 } else { 1 }])
            .await
            .is_err()
            || !ok
        {
            return;
        }
    }

    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT
    let mut req = [0u8; 4];
    if stream.read_exact(&mut req).await.is_err() || req[0] != 5 {
        return;
    }
    let host = match req[3] {
        1 => {
            let mut ip = [0u8; 4];
            if stream.read_exact(&mut ip).await.is_err() {
                return;
            }
            Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            if stream.read_exact(&mut len).await.is_err() {
                return;
            }
            let mut name = vec![0u8; len[0] as usize];
            if stream.read_exact(&mut name).await.is_err() {
                return;
            }
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut ip = [0u8; 16];
            if stream.read_exact(&mut ip).await.is_err() {
                return;
            }
            Ipv6Addr::from(ip).to_string()
        }
        _ => {
            socks5_reply(&mut stream, SOCKS5_BAD_ATYP).await;
            return;
        }
    };
    let mut port = [0u8; 2];
    if stream.read_exact(&mut port).await.is_err() {
        return;
    }
    let port = u16::from_be_bytes(port);
    if req[1] != 1 {
        socks5_reply(&mut stream, SOCKS5_BAD_COMMAND).await;
        return;
    }

    let Ok(mut upstream) = connect_loopback(&host, port).await else {
        socks5_reply(&mut stream, SOCKS5_REFUSED).await;
        return;
    };
    if socks5_reply(&mut stream, SOCKS5_OK).await {
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
    }
}

// ---------------------------------------------------------------------------
// SOCKS4 / SOCKS4a
// ---------------------------------------------------------------------------

/// A SOCKS4 server (also SOCKS4a domain names), no auth, CONNECT only.
/// Replies 0x5A (granted) or 0x5B (rejected / failed).
pub struct Socks4Proxy {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    shutdown: Arc<watch::Sender<bool>>,
}

impl Socks4Proxy {
    pub async fn start() -> Socks4Proxy {
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("local_addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let shutdown = Arc::new(watch::channel(false).0);
        let counter = hits.clone();
        spawn_accept_loop(listener, shutdown.clone(), move |stream| {
            counter.fetch_add(1, Ordering::SeqCst);
            serve_socks4(stream)
        });
        Socks4Proxy {
            addr,
            hits,
            shutdown,
        }
    }

    /// `socks4://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("socks4://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops accepting (open tunnels continue).
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

const SOCKS4_GRANTED: u8 = 0x5A;
const SOCKS4_REJECTED: u8 = 0x5B;

/// Reads a NUL-terminated string of at most `max` bytes.
async fn read_cstring(stream: &mut TcpStream, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.ok()?;
        if byte[0] == 0 {
            return Some(out);
        }
        if out.len() >= max {
            return None;
        }
        out.push(byte[0]);
    }
}

async fn socks4_reply(stream: &mut TcpStream, code: u8) -> bool {
    let reply = [0, code, 0, 0, 0, 0, 0, 0];
    stream.write_all(&reply).await.is_ok()
}

async fn serve_socks4(mut stream: TcpStream) {
    // VN CD DSTPORT(2) DSTIP(4) USERID NUL [DOMAIN NUL]
    let mut req = [0u8; 8];
    if stream.read_exact(&mut req).await.is_err() || req[0] != 4 {
        return;
    }
    let port = u16::from_be_bytes([req[2], req[3]]);
    let ip = Ipv4Addr::new(req[4], req[5], req[6], req[7]);
    if read_cstring(&mut stream, 255).await.is_none() {
        return;
    }
    // SOCKS4a: 0.0.0.x (x != 0) means a domain name follows.
    let octets = ip.octets();
    let host = if octets[..3] == [0, 0, 0] && octets[3] != 0 {
        let Some(name) = read_cstring(&mut stream, 255).await else {
            return;
        };
        String::from_utf8_lossy(&name).into_owned()
    } else {
        ip.to_string()
    };
    if req[1] != 1 {
        socks4_reply(&mut stream, SOCKS4_REJECTED).await;
        return;
    }
    let Ok(mut upstream) = connect_loopback(&host, port).await else {
        socks4_reply(&mut stream, SOCKS4_REJECTED).await;
        return;
    };
    if socks4_reply(&mut stream, SOCKS4_GRANTED).await {
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
    }
}
