//! The farm's origin: a tiny HTTP/1.1 server on 127.0.0.1 that the farm's proxies forward to
//! and the checks ask for (`/ok`, the judge pages, `/status/NNN`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::loopback::*;

/// Body served by the origin at `/ok`.
pub const ORIGIN_BODY: &str = "proxyvisor-origin-ok";

/// Minimal HTTP/1.1 origin. One request per connection, then close.
///
/// * `/ok` → 200 with [`ORIGIN_BODY`]
/// * `/judge` → 200 whose body lists every request header received, one per
///   line as `Name: value` (names exactly as received)
/// * `/judge.json` → the same as httpbin's `/get` does it:
///   `{"headers":{"Name":"value",...},"origin":"<peer address>"}`
/// * `/judge.php` → as PHP judges (azenv) do it: `HTTP_NAME = value` lines and
///   `REMOTE_ADDR = <peer address>`
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

    /// The port it listens on (what [`FarmProxy::block_target`] takes).
    pub fn port(&self) -> u16 {
        self.addr.port()
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
    let peer = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
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
        "/judge.json" => {
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let body = serde_json::json!({"args": {}, "headers": headers, "origin": peer});
            (200, body.to_string().into_bytes())
        }
        "/judge.php" => {
            let mut body = format!("REMOTE_ADDR = {peer}\nREQUEST_METHOD = {}\n", req.method);
            for (name, value) in &req.headers {
                let name = name.to_ascii_uppercase().replace('-', "_");
                body.push_str(&format!("HTTP_{name} = {value}\n"));
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
