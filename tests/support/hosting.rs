#![allow(dead_code)]
//! Loopback stand-ins for watched services and the hosting APIs that restart
//! them: a [`HostedService`] whose health can be switched at runtime, a
//! [`RenderApi`] (REST), a [`RailwayApi`] (GraphQL) and a [`WebhookSink`].
//!
//! The three APIs share one server core, [`StandIn`] (call recording, injected
//! failures, healing a linked service), reached through `Deref`. Servers are
//! raw tokio TCP on 127.0.0.1 built on the `farm` helpers: one request per
//! connection, `Connection: close`. Dropping a handle shuts its server down.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use proxyvisor_testkit::loopback::{
    bind_loopback, bind_reuse, close_gracefully, read_request, spawn_accept_loop, write_response,
    RequestHead,
};

/// Body of every successful [`HostedService`] answer.
pub const HEALTH_BODY: &str = "ok";

/// Largest request body a stand-in reads.
pub const MAX_BODY: usize = 1024 * 1024;

/// Longest a stand-in waits for a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`HostedService::set_mode_and_wait`] waits for the listener.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Locks, ignoring poisoning (the guarded data is always valid).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// HostedService
// ---------------------------------------------------------------------------

/// How a [`HostedService`] behaves; read per request (the listener state per
/// change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 200 with [`HEALTH_BODY`] on any path.
    Up,
    /// The port refuses connections (listener closed); leaving this mode
    /// re-binds the same port. Accepted connections are dropped unanswered.
    Crashed,
    /// Reads the request, never answers; the connection is dropped once the
    /// mode changes (the process was restarted) or the service shuts down.
    Hang,
    /// Like `Up`, after this many milliseconds.
    Slow(u64),
    /// Answers this status (e.g. 500, 503) with body `error`.
    Error(u16),
}

/// State shared by a service's accept loop, its connections and heal tasks.
struct ServiceShared {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Whether the accept loop holds a bound listener (`None` until it runs).
    listening: watch::Sender<Option<bool>>,
    hits: AtomicUsize,
    shutdown: watch::Sender<bool>,
}

/// The watched service: an HTTP server on 127.0.0.1 answering any path
/// (`GET /health` included) according to its [`Mode`].
pub struct HostedService {
    shared: Arc<ServiceShared>,
}

impl HostedService {
    /// Starts a service in `Up` mode on a fresh port.
    pub async fn start() -> HostedService {
        Self::start_in(Mode::Up).await
    }

    /// Starts a service in `mode` on a fresh port (bound even when `Crashed`,
    /// to reserve the port, then closed).
    pub async fn start_in(mode: Mode) -> HostedService {
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(ServiceShared {
            addr,
            mode: watch::channel(mode).0,
            listening: watch::channel(None).0,
            hits: AtomicUsize::new(0),
            shutdown: watch::channel(false).0,
        });
        tokio::spawn(service_accept_loop(shared.clone(), Some(listener)));
        let service = HostedService { shared };
        service.settle().await;
        service
    }

    /// `http://127.0.0.1:PORT{path}`, e.g. `url("/health")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.shared.addr, path)
    }

    /// The port; the same for the service's whole life, crashes included.
    pub fn port(&self) -> u16 {
        self.shared.addr.port()
    }

    /// Requests received so far (complete request heads, any mode).
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *self.shared.mode.borrow()
    }

    /// Switches mode. Entering or leaving `Crashed` closes or re-binds the
    /// listener a few ms later: use [`set_mode_and_wait`](Self::set_mode_and_wait)
    /// when the port state matters.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    /// `set_mode`, then waits (panics after 5 s) until the listener matches it.
    pub async fn set_mode_and_wait(&self, mode: Mode) {
        self.set_mode(mode);
        self.settle().await;
    }

    /// Waits (panics after 5 s) until the listener is closed if the mode is
    /// `Crashed`, bound otherwise.
    pub async fn settle(&self) {
        let mut listening = self.shared.listening.subscribe();
        let shared = &self.shared;
        let settled = tokio::time::timeout(
            SETTLE_TIMEOUT,
            listening.wait_for(|l| *l == Some(*shared.mode.borrow() != Mode::Crashed)),
        )
        .await;
        assert!(
            matches!(settled, Ok(Ok(_))),
            "hosted service on port {} did not settle in mode {:?}",
            self.port(),
            self.mode()
        );
    }

    /// Closes the listener and drops held (`Hang`) connections.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }
}

impl Drop for HostedService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Accepts while the mode is not `Crashed`; for `Crashed` it drops the
/// listener and re-binds the same port once the mode changes back.
async fn service_accept_loop(shared: Arc<ServiceShared>, mut listener: Option<TcpListener>) {
    let mut stop = shared.shutdown.subscribe();
    let mut mode = shared.mode.subscribe();
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let current = *mode.borrow_and_update();
        if current == Mode::Crashed {
            listener = None;
            shared.listening.send_replace(Some(false));
            tokio::select! {
                _ = mode.changed() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        if listener.is_none() {
            match bind_reuse(shared.addr) {
                Ok(l) => listener = Some(l),
                Err(_) => {
                    // Port briefly unavailable: retry soon.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                        _ = mode.changed() => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            }
        }
        let Some(l) = listener.as_ref() else {
            continue;
        };
        shared.listening.send_replace(Some(true));
        tokio::select! {
            accepted = l.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_hosted(shared.clone(), stream));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            _ = mode.changed() => {}
            _ = stop.changed() => {}
        }
    }
}

async fn serve_hosted(shared: Arc<ServiceShared>, mut stream: TcpStream) {
    let Some(_) = read_request(&mut stream).await else {
        return;
    };
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let mode = *shared.mode.borrow();
    let (status, body) = match mode {
        Mode::Up => (200, HEALTH_BODY),
        Mode::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            (200, HEALTH_BODY)
        }
        Mode::Error(status) => (status, "error"),
        // Raced a crash: the process is gone.
        Mode::Crashed => return,
        Mode::Hang => {
            let mut modes = shared.mode.subscribe();
            let mut stop = shared.shutdown.subscribe();
            tokio::select! {
                _ = modes.wait_for(|m| *m != Mode::Hang) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            return;
        }
    };
    let headers = [("Content-Type", "text/plain".to_string())];
    if write_response(&mut stream, status, &headers, body.as_bytes())
        .await
        .is_ok()
    {
        close_gracefully(stream).await;
    }
}

// ---------------------------------------------------------------------------
// Shared API core
// ---------------------------------------------------------------------------

/// One request received by a stand-in API, with the status it was answered.
#[derive(Clone, Debug)]
pub struct Call {
    /// Request method, e.g. `POST`.
    pub method: String,
    /// Request target as received (path and query).
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// Every header, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body (lossy UTF-8; chunked bodies decoded).
    pub body: String,
    /// When the request was complete.
    pub at: Instant,
    /// Status it was answered with.
    pub status: u16,
}

impl Call {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// An API's answer to one request.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    /// A successful restart or deploy: heal the linked service.
    heals: bool,
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            heals: false,
        }
    }

    fn healing(mut self) -> Answer {
        self.heals = true;
        self
    }
}

/// Failures injected by a test, applied before the API's own routing.
#[derive(Default)]
struct Faults {
    rate_limited: usize,
    reset_secs: u64,
    fail_with: Option<u16>,
}

/// Server core shared by [`RenderApi`], [`RailwayApi`] and [`WebhookSink`]
/// (reached through `Deref`). Each request is answered, in this order: 429
/// while [`rate_limit_next`](Self::rate_limit_next) calls remain, else the
/// [`fail_with`](Self::fail_with) status, else the API's own answer.
pub struct StandIn {
    addr: SocketAddr,
    calls: Mutex<Vec<Call>>,
    faults: Mutex<Faults>,
    heal: Mutex<Option<(Arc<ServiceShared>, Duration)>>,
    heals_scheduled: AtomicUsize,
    shutdown: Arc<watch::Sender<bool>>,
}

impl StandIn {
    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `http://127.0.0.1:PORT` (an API base URL).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request received so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// Answers every request `status` (with a JSON error body) until
    /// [`stop_failing`](Self::stop_failing).
    pub fn fail_with(&self, status: u16) {
        lock(&self.faults).fail_with = Some(status);
    }

    /// Undoes [`fail_with`](Self::fail_with).
    pub fn stop_failing(&self) {
        lock(&self.faults).fail_with = None;
    }

    /// Answers the next `n` requests 429 with `Ratelimit-Reset` and
    /// `Retry-After` set to `reset_secs` (replaces an earlier setting).
    pub fn rate_limit_next(&self, n: usize, reset_secs: u64) {
        let mut faults = lock(&self.faults);
        faults.rate_limited = n;
        faults.reset_secs = reset_secs;
    }

    /// Links `service`: each successful restart or deploy from now on sets it
    /// to [`Mode::Up`] `after_ms` later (a spawned task).
    pub fn heals(&self, service: &HostedService, after_ms: u64) {
        *lock(&self.heal) = Some((service.shared.clone(), Duration::from_millis(after_ms)));
    }

    /// Unlinks the service: restarts and deploys leave it as it is.
    pub fn does_not_heal(&self) {
        *lock(&self.heal) = None;
    }

    /// Heal tasks started so far (successful restarts or deploys while linked).
    pub fn heals_scheduled(&self) -> usize {
        self.heals_scheduled.load(Ordering::SeqCst)
    }

    /// Stops accepting (in-flight requests finish).
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// The injected failure answer for the next request, if any (consumes one
    /// rate-limited call).
    fn fault(&self, error_body: fn(&str) -> Value) -> Option<Answer> {
        let mut faults = lock(&self.faults);
        if faults.rate_limited > 0 {
            faults.rate_limited -= 1;
            let reset = faults.reset_secs.to_string();
            let mut answer = Answer::json(429, error_body("rate limit exceeded"));
            answer.headers = vec![
                ("Ratelimit-Limit", "1".to_string()),
                ("Ratelimit-Remaining", "0".to_string()),
                ("Ratelimit-Reset", reset.clone()),
                ("Retry-After", reset),
            ];
            return Some(answer);
        }
        let status = faults.fail_with?;
        Some(Answer::json(status, error_body("injected failure")))
    }

    /// Schedules the linked service's heal, if one is linked.
    fn heal(&self) {
        let Some((service, after)) = lock(&self.heal).clone() else {
            return;
        };
        self.heals_scheduled.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            service.mode.send_replace(Mode::Up);
        });
    }
}

/// The routing part of one stand-in API.
trait Api: Send + Sync + 'static {
    /// The body of an error answer (injected failures included).
    fn error_body(message: &str) -> Value;

    /// Answers a request that passed the injected failures.
    fn answer(&self, req: &RequestHead, body: &str) -> Answer;
}

/// A stand-in's core plus its API state.
struct Server<A> {
    core: StandIn,
    api: A,
}

/// Starts a stand-in server for `api` on a fresh port.
fn start_server<A: Api>(api: A) -> Arc<Server<A>> {
    let listener = bind_loopback();
    let addr = listener.local_addr().expect("local_addr");
    let shutdown = Arc::new(watch::channel(false).0);
    let server = Arc::new(Server {
        core: StandIn {
            addr,
            calls: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults::default()),
            heal: Mutex::new(None),
            heals_scheduled: AtomicUsize::new(0),
            shutdown: shutdown.clone(),
        },
        api,
    });
    let shared = server.clone();
    spawn_accept_loop(listener, shutdown, move |stream| {
        serve_api(shared.clone(), stream)
    });
    server
}

async fn serve_api<A: Api>(server: Arc<Server<A>>, mut stream: TcpStream) {
    let Some((req, rest)) = read_request(&mut stream).await else {
        return;
    };
    let Ok(Some(body)) =
        tokio::time::timeout(BODY_TIMEOUT, read_body(&mut stream, &req, rest)).await
    else {
        return;
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    let answer = server
        .core
        .fault(A::error_body)
        .unwrap_or_else(|| server.api.answer(&req, &body));
    lock(&server.core.calls).push(Call {
        method: req.method.clone(),
        path: req.target.clone(),
        authorization: req.header("Authorization").map(str::to_string),
        headers: req.headers.clone(),
        body,
        at: Instant::now(),
        status: answer.status,
    });
    if answer.heals && (200..300).contains(&answer.status) {
        server.core.heal();
    }
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    headers.extend(answer.headers);
    if write_response(&mut stream, answer.status, &headers, answer.body.as_bytes())
        .await
        .is_ok()
    {
        close_gracefully(stream).await;
    }
}

/// Reads the request body after the head (`rest` is what was read past it):
/// `Content-Length` bytes, or a chunked body decoded. `None` on EOF, error
/// or a body over [`MAX_BODY`].
async fn read_body(stream: &mut TcpStream, req: &RequestHead, mut buf: Vec<u8>) -> Option<Vec<u8>> {
    let chunked = req
        .header("Transfer-Encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let length = match chunked {
        true => None,
        false => Some(
            req.header("Content-Length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0),
        ),
    };
    let mut chunk = [0u8; 4096];
    loop {
        match length {
            Some(len) if buf.len() >= len => {
                buf.truncate(len);
                return Some(buf);
            }
            Some(len) if len > MAX_BODY => return None,
            None => {
                if let Some(body) = decode_chunked(&buf) {
                    return Some(body);
                }
            }
            Some(_) => {}
        }
        if buf.len() > MAX_BODY + 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Decodes a chunked body (trailers ignored); `None` while incomplete.
fn decode_chunked(buf: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = pos + buf.get(pos..)?.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&buf[pos..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        pos = line_end + 2;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(buf.get(pos..pos + size)?);
        pos += size + 2;
    }
}

/// Whether `value` is `Bearer <expected>` (scheme case-insensitive).
fn bearer_matches(value: Option<&str>, expected: &str) -> bool {
    value
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("Bearer") && token.trim() == expected
        })
}

/// The request path without its query string.
fn path_of(req: &RequestHead) -> &str {
    req.target.split('?').next().unwrap_or("/")
}

// ---------------------------------------------------------------------------
// Render
// ---------------------------------------------------------------------------

/// Render's REST API state.
struct RenderState {
    key: String,
    restarts: AtomicUsize,
    deploys: AtomicUsize,
}

impl Api for RenderState {
    fn error_body(message: &str) -> Value {
        json!({ "message": message })
    }

    fn answer(&self, req: &RequestHead, _body: &str) -> Answer {
        if !bearer_matches(req.header("Authorization"), &self.key) {
            return Answer::json(401, Self::error_body("unauthorized"));
        }
        let route = path_of(req)
            .strip_prefix("/v1/services/")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(id, _)| !id.is_empty());
        match (req.method.as_str(), route) {
            ("POST", Some((id, "restart"))) => {
                self.restarts.fetch_add(1, Ordering::SeqCst);
                Answer::json(202, json!({ "serviceId": id, "status": "restarting" })).healing()
            }
            ("POST", Some((id, "deploys"))) => {
                let n = self.deploys.fetch_add(1, Ordering::SeqCst) + 1;
                let deploy =
                    json!({ "id": format!("dep-{n}"), "serviceId": id, "status": "created" });
                Answer::json(202, deploy).healing()
            }
            _ => Answer::json(404, Self::error_body("not found")),
        }
    }
}

/// Stand-in for Render's REST API: `POST /v1/services/{id}/restart` and
/// `POST /v1/services/{id}/deploys`, answered 202 with a JSON body; a wrong
/// `Authorization: Bearer` key gets 401, anything else 404. Errors are
/// `{"message": ...}`. Shared behaviour (calls, failures, healing): [`StandIn`].
pub struct RenderApi {
    server: Arc<Server<RenderState>>,
}

impl RenderApi {
    /// Starts on a fresh port, accepting `Authorization: Bearer <expected_key>`.
    pub async fn start(expected_key: &str) -> RenderApi {
        let server = start_server(RenderState {
            key: expected_key.to_string(),
            restarts: AtomicUsize::new(0),
            deploys: AtomicUsize::new(0),
        });
        RenderApi { server }
    }

    /// Restarts answered 202 so far.
    pub fn restarts(&self) -> usize {
        self.server.api.restarts.load(Ordering::SeqCst)
    }

    /// Deploys answered 202 so far.
    pub fn deploys(&self) -> usize {
        self.server.api.deploys.load(Ordering::SeqCst)
    }
}

impl Deref for RenderApi {
    type Target = StandIn;

    fn deref(&self) -> &StandIn {
        &self.server.core
    }
}

impl Drop for RenderApi {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------
// Railway
// ---------------------------------------------------------------------------

/// Mutations a [`RailwayApi`] counts as redeploys.
pub const RAILWAY_REDEPLOYS: [&str; 3] = [
    "serviceInstanceRedeploy",
    "serviceInstanceDeployV2",
    "deploymentRedeploy",
];

/// Railway's GraphQL API state.
struct RailwayState {
    token: String,
    deployment_id: Mutex<String>,
    lookups: Mutex<Vec<(String, String)>>,
    restarted: Mutex<Vec<String>>,
    redeploys: AtomicUsize,
}

/// A GraphQL `{"errors": [...]}` answer with HTTP 200.
fn graphql_error(message: &str) -> Answer {
    Answer::json(200, RailwayState::error_body(message))
}

impl Api for RailwayState {
    fn error_body(message: &str) -> Value {
        json!({ "errors": [{ "message": message }] })
    }

    fn answer(&self, req: &RequestHead, body: &str) -> Answer {
        if req.method != "POST" || path_of(req) != "/graphql/v2" {
            return Answer::json(404, Self::error_body("not found"));
        }
        if !bearer_matches(req.header("Authorization"), &self.token) {
            return graphql_error("Not Authorized");
        }
        let Ok(request) = serde_json::from_str::<Value>(body) else {
            return Answer::json(400, Self::error_body("body is not JSON"));
        };
        let Some(query) = request.get("query").and_then(Value::as_str) else {
            return Answer::json(400, Self::error_body("no query"));
        };
        let vars = request.get("variables").cloned().unwrap_or(Value::Null);

        if query.contains("deploymentRestart") {
            let Some(id) = graphql_arg(query, "deploymentRestart", "id", &vars) else {
                return graphql_error("deploymentRestart: missing id");
            };
            if id != *lock(&self.deployment_id) {
                return graphql_error("Deployment not found");
            }
            lock(&self.restarted).push(id);
            return Answer::json(200, json!({ "data": { "deploymentRestart": true } })).healing();
        }
        if let Some(name) = RAILWAY_REDEPLOYS.iter().find(|m| query.contains(*m)) {
            self.redeploys.fetch_add(1, Ordering::SeqCst);
            return Answer::json(200, json!({ "data": { *name: true } })).healing();
        }
        if query.contains("serviceInstance(") {
            let service = graphql_arg(query, "serviceInstance", "serviceId", &vars);
            let environment = graphql_arg(query, "serviceInstance", "environmentId", &vars);
            let (Some(service), Some(environment)) = (service, environment) else {
                return graphql_error("serviceInstance: serviceId and environmentId are required");
            };
            lock(&self.lookups).push((service, environment));
            let id = lock(&self.deployment_id).clone();
            let data = json!({ "serviceInstance": { "latestDeployment": { "id": id } } });
            return Answer::json(200, json!({ "data": data }));
        }
        graphql_error("unsupported query")
    }
}

/// The value of argument `name` of the first `field(...)` in `query` that
/// has it: a `"string"` literal, a bare token, or `$var` looked up in `vars`.
fn graphql_arg(query: &str, field: &str, name: &str, vars: &Value) -> Option<String> {
    let open = format!("{field}(");
    query.match_indices(&open).find_map(|(at, _)| {
        let args = &query[at + open.len()..];
        arg_in(&args[..args.find(')')?], name, vars)
    })
}

/// The value of argument `name` in an argument list (`a: "x", b: $y`).
fn arg_in(args: &str, name: &str, vars: &Value) -> Option<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut from = 0;
    let value = loop {
        let at = from + args[from..].find(name)?;
        from = at + name.len();
        // Not a longer name, nor a variable declaration (`$id: String!`).
        let starts_name = !args[..at]
            .chars()
            .next_back()
            .is_some_and(|c| is_ident(c) || c == '$');
        if let Some(value) = args[from..].trim_start().strip_prefix(':') {
            if starts_name {
                break value.trim_start();
            }
        }
    };
    if let Some(literal) = value.strip_prefix('"') {
        return Some(literal[..literal.find('"')?].to_string());
    }
    let token: String = value
        .chars()
        .take_while(|&c| is_ident(c) || c == '$')
        .collect();
    match token.strip_prefix('$') {
        Some(var) => match vars.get(var)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        },
        None => (!token.is_empty()).then_some(token),
    }
}

/// Stand-in for Railway's GraphQL API at `POST /graphql/v2`: a query with
/// `serviceInstance(serviceId, environmentId)` gets the latest deployment's
/// id; `deploymentRestart(id)` of that id restarts (any other id: "Deployment
/// not found"); [`RAILWAY_REDEPLOYS`] mutations redeploy. Arguments may be
/// inline or `$variables`. A wrong bearer token, like every GraphQL error,
/// is `{"errors":[{"message":...}]}` with HTTP 200. Shared behaviour:
/// [`StandIn`].
pub struct RailwayApi {
    server: Arc<Server<RailwayState>>,
}

impl RailwayApi {
    /// Starts on a fresh port, accepting `Authorization: Bearer <token>`; the
    /// latest deployment is `dep-1`.
    pub async fn start(token: &str) -> RailwayApi {
        let server = start_server(RailwayState {
            token: token.to_string(),
            deployment_id: Mutex::new("dep-1".to_string()),
            lookups: Mutex::new(Vec::new()),
            restarted: Mutex::new(Vec::new()),
            redeploys: AtomicUsize::new(0),
        });
        RailwayApi { server }
    }

    /// `http://127.0.0.1:PORT/graphql/v2`.
    pub fn endpoint(&self) -> String {
        self.url("/graphql/v2")
    }

    /// Sets the id the latest-deployment lookup answers (and restarts accept).
    pub fn set_deployment_id(&self, id: &str) {
        *lock(&self.server.api.deployment_id) = id.to_string();
    }

    /// `(serviceId, environmentId)` of each answered lookup, in order.
    pub fn lookups(&self) -> Vec<(String, String)> {
        lock(&self.server.api.lookups).clone()
    }

    /// Successful `deploymentRestart` calls so far.
    pub fn restarts(&self) -> usize {
        lock(&self.server.api.restarted).len()
    }

    /// Deployment ids of the successful restarts, in order.
    pub fn restarted_deployments(&self) -> Vec<String> {
        lock(&self.server.api.restarted).clone()
    }

    /// Successful redeploy mutations so far.
    pub fn redeploys(&self) -> usize {
        self.server.api.redeploys.load(Ordering::SeqCst)
    }
}

impl Deref for RailwayApi {
    type Target = StandIn;

    fn deref(&self) -> &StandIn {
        &self.server.core
    }
}

impl Drop for RailwayApi {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------
// Webhook
// ---------------------------------------------------------------------------

/// Webhook sink state.
struct WebhookState {
    status: Mutex<u16>,
}

impl Api for WebhookState {
    fn error_body(message: &str) -> Value {
        json!({ "message": message })
    }

    fn answer(&self, _req: &RequestHead, _body: &str) -> Answer {
        let status = *lock(&self.status);
        Answer::json(status, json!({ "status": status })).healing()
    }
}

/// Records any request (any method and path) and answers the configured
/// status (default 200) with a small JSON body; a 2xx answer heals a linked
/// service. Shared behaviour: [`StandIn`].
pub struct WebhookSink {
    server: Arc<Server<WebhookState>>,
}

impl WebhookSink {
    /// Starts on a fresh port, answering 200.
    pub async fn start() -> WebhookSink {
        let server = start_server(WebhookState {
            status: Mutex::new(200),
        });
        WebhookSink { server }
    }

    /// Answers `status` from the next request on.
    pub fn set_status(&self, status: u16) {
        *lock(&self.server.api.status) = status;
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        lock(&self.server.core.calls).len()
    }
}

impl Deref for WebhookSink {
    type Target = StandIn;

    fn deref(&self) -> &StandIn {
        &self.server.core
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.shutdown();
    }
}
