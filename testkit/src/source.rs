#![allow(dead_code)]
//! An HTTP server on 127.0.0.1 serving proxy lists whose content and
//! behaviour tests change at runtime, per path.
//!
//! One request per connection (`Connection: close`, `Content-Length` set).
//! Routes are matched on the exact request target first, then on the path
//! without its query string. Unknown paths answer 404.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::loopback::{
    bind_loopback, close_gracefully, read_request, response_head, spawn_accept_loop, write_response,
};

#[derive(Clone)]
enum Content {
    /// 200 with this body and its ETag (quoted).
    Body { body: Bytes, etag: String },
    /// This status with a short body.
    Status(u16),
}

#[derive(Clone, Default)]
struct Route {
    /// `None`: 404 (a route that only has a delay so far).
    content: Option<Content>,
    /// Wait before answering (the answer is read after the wait).
    delay: Duration,
}

#[derive(Default)]
struct Counts {
    hits: usize,
    conditional: usize,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    counts: HashMap<String, Counts>,
}

/// Proxy-list source server; see the module docs.
pub struct SourceServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Arc<watch::Sender<bool>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Route key for a path given by a test: always starts with `/`.
fn key(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// `"<hash>-<len>"` of a body (quoted, as sent in the ETag header).
fn etag_of(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:016x}-{:x}\"", hasher.finish(), body.len())
}

/// Whether an `If-None-Match` value (a list, possibly weak, or `*`) matches.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

impl SourceServer {
    pub async fn start() -> SourceServer {
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(Mutex::new(State::default()));
        let shutdown = Arc::new(watch::channel(false).0);
        let shared = state.clone();
        spawn_accept_loop(listener, shutdown.clone(), move |stream| {
            serve(stream, shared.clone())
        });
        SourceServer {
            addr,
            state,
            shutdown,
        }
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, key(path))
    }

    /// Serve 200 with `body` (ETag = hash of body; a matching
    /// `If-None-Match` gets 304). Keeps any delay set with `set_slow`.
    pub fn set_body(&self, path: &str, body: impl Into<Vec<u8>>) {
        let body = Bytes::from(body.into());
        let etag = etag_of(&body);
        let mut st = lock(&self.state);
        st.routes.entry(key(path)).or_default().content = Some(Content::Body { body, etag });
    }

    /// Serve `status` with a short body. Keeps any delay.
    pub fn set_status(&self, path: &str, status: u16) {
        let mut st = lock(&self.state);
        st.routes.entry(key(path)).or_default().content = Some(Content::Status(status));
    }

    /// Wait `delay` before answering this path (other paths unaffected).
    /// `Duration::ZERO` removes the delay.
    pub fn set_slow(&self, path: &str, delay: Duration) {
        let mut st = lock(&self.state);
        st.routes.entry(key(path)).or_default().delay = delay;
    }

    /// Forgets the route (it answers 404 again). Counters are kept.
    pub fn remove(&self, path: &str) {
        lock(&self.state).routes.remove(&key(path));
    }

    /// Requests received for `path`.
    pub fn hits(&self, path: &str) -> usize {
        lock(&self.state)
            .counts
            .get(&key(path))
            .map_or(0, |c| c.hits)
    }

    /// Requests for `path` that carried `If-None-Match` or `If-Modified-Since`.
    pub fn conditional_hits(&self, path: &str) -> usize {
        lock(&self.state)
            .counts
            .get(&key(path))
            .map_or(0, |c| c.conditional)
    }

    /// Stops accepting (in-flight requests finish).
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Some((req, _)) = read_request(&mut stream).await else {
        return;
    };
    // Absolute-form (request sent through a proxy) → origin-form.
    let target = match req.target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]).to_string(),
        None => req.target.clone(),
    };
    let conditional =
        req.header("If-None-Match").is_some() || req.header("If-Modified-Since").is_some();

    let (route_key, delay) = {
        let mut st = lock(&state);
        let route_key = if st.routes.contains_key(&target) {
            target.clone()
        } else {
            target.split('?').next().unwrap_or("/").to_string()
        };
        let counts = st.counts.entry(route_key.clone()).or_default();
        counts.hits += 1;
        if conditional {
            counts.conditional += 1;
        }
        let delay = st
            .routes
            .get(&route_key)
            .map(|r| r.delay)
            .unwrap_or_default();
        (route_key, delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let content = lock(&state)
        .routes
        .get(&route_key)
        .and_then(|r| r.content.clone());

    let head_only = req.method.eq_ignore_ascii_case("HEAD");
    let text = [("Content-Type", "text/plain".to_string())];
    let written = match content {
        None => write_response(&mut stream, 404, &text, b"not found\n").await,
        Some(Content::Status(code)) => {
            let body = format!("status {code}\n");
            write_response(&mut stream, code, &text, body.as_bytes()).await
        }
        Some(Content::Body { body, etag }) => {
            let not_modified = req
                .header("If-None-Match")
                .is_some_and(|inm| etag_matches(inm, &etag));
            if not_modified {
                write_response(&mut stream, 304, &[("ETag", etag)], b"").await
            } else {
                let headers = [("Content-Type", "text/plain".to_string()), ("ETag", etag)];
                let head = response_head(200, &headers, body.len());
                let mut result = stream.write_all(head.as_bytes()).await;
                if result.is_ok() && !head_only {
                    result = stream.write_all(&body).await;
                }
                result
            }
        }
    };
    if written.is_ok() {
        close_gracefully(stream).await;
    }
}
