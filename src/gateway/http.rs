//! The HTTP side of the gateway: hyper serves each client connection (keep-alive, framing,
//! malformed heads answered 400 and over-long ones 431); every request is authorized, then a
//! `CONNECT` opens a tunnel through the first upstream that gives one, and an absolute-form
//! request is forwarded through the first upstream that answers it well.

use super::route::{self, failed, verdict_of, Account, Refusal, Upstream, Verdict};
use super::upstream::{self, authority, DialError, Meter, Metered};
use super::Ctx;
use crate::domain::gateway::{basic_credentials, judge_status, Attempt, Options};
use crate::domain::proxy::Protocol;
use crate::published::gateway::Outcome;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, Limited};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// How long an upstream may take to begin its answer to a forwarded request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers of one hop, never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

pub async fn serve_connection<S>(ctx: Arc<Ctx>, io: S, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc_ctx = ctx.clone();
    let svc = hyper::service::service_fn(move |req| {
        let ctx = svc_ctx.clone();
        async move { Ok::<_, Infallible>(handle(ctx, peer, req).await) }
    });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(ctx.settings.head_timeout)
        .max_buf_size(ctx.settings.max_head_bytes.max(8192));
    if let Err(e) = b
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades()
        .await
    {
        log::debug!("gateway: {peer}: connection ended: {e}");
    }
}

fn text(status: u16, body: String) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(body + "\n"))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The gateway's own answer to a request it does not forward.
fn refuse(ctx: &Ctx, peer: SocketAddr, what: &str, r: Refusal) -> Response<Body> {
    let status = r.status();
    let outcome = match status {
        502 => Outcome::Failed,
        503 => Outcome::Unavailable,
        _ => Outcome::Refused,
    };
    ctx.shared.gateway.count(outcome);
    if status == 407 {
        log::debug!("gateway: {peer}: 407 for {what}");
    } else {
        log::warn!("gateway: {peer}: {status} for {what}: {}", r.text());
    }
    let mut resp = text(status, r.text());
    if status == 407 {
        resp.headers_mut().insert(
            header::PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"proxyvisor\""),
        );
    }
    resp
}

async fn handle(ctx: Arc<Ctx>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let creds = (req.headers().get(header::PROXY_AUTHORIZATION))
        .and_then(|v| v.to_str().ok())
        .and_then(basic_credentials);
    let (user, pass) = match &creds {
        Some((u, p)) => (Some(u.as_str()), Some(p.as_str())),
        None => (None, None),
    };
    let what = what(&req);
    let opts = match route::authorize(&ctx, user, pass) {
        Ok(o) => o,
        Err(r) => return refuse(&ctx, peer, &what, r),
    };
    let result = if req.method() == Method::CONNECT {
        connect(ctx.clone(), req, opts).await
    } else {
        forward(ctx.clone(), req, opts).await
    };
    match result {
        Ok(resp) => {
            ctx.shared.gateway.count(Outcome::Ok);
            resp
        }
        Err(r) => refuse(&ctx, peer, &what, r),
    }
}

/// `CONNECT host:port` or `GET http://host:port` (never the path: it may hold a secret).
fn what(req: &Request<Incoming>) -> String {
    let host = req.uri().host().map(route::clip).unwrap_or_default();
    let port = req.uri().port_u16().unwrap_or(80);
    format!("{} {host}:{port}", route::clip(req.method().as_str()))
}

/// The host (IPv6 without brackets) and port of a request's target.
fn target_of(uri: &http::Uri, default_port: u16) -> Result<(String, u16), Refusal> {
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Refusal::Bad("the request names no target host".into()))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((host, uri.port_u16().unwrap_or(default_port)))
}

async fn connect(
    ctx: Arc<Ctx>,
    mut req: Request<Incoming>,
    opts: Options,
) -> Result<Response<Body>, Refusal> {
    if req.uri().scheme().is_some() || req.uri().path_and_query().is_some_and(|p| p != "/") {
        return Err(Refusal::Bad("CONNECT takes host:port".into()));
    }
    let (host, port) = target_of(req.uri(), 0)?;
    if port == 0 {
        return Err(Refusal::Bad("CONNECT takes host:port".into()));
    }
    let open = super::tunnel::open(&ctx, &host, port, &opts).await?;
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            super::tunnel::carry(TokioIo::new(upgraded), open).await;
        }
    });
    Ok(Response::new(Empty::new().map_err(|e| match e {}).boxed()))
}

/// A request body: kept (small enough to send again on a retry) or streamed once.
enum RequestBody {
    Kept(Bytes),
    Once(Option<Incoming>),
}

async fn forward(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    opts: Options,
) -> Result<Response<Body>, Refusal> {
    match req.uri().scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(Refusal::Bad(
                "https:// goes through CONNECT (set HTTPS_PROXY to the gateway too)".into(),
            ))
        }
        _ => {
            return Err(Refusal::Bad(
                "this is a forward proxy: send absolute-form requests (GET http://host/path) or \
                 CONNECT host:port"
                    .into(),
            ))
        }
    }
    let (host, port) = target_of(req.uri(), 80)?;
    route::check_target(&ctx, &host, port).await?;
    let plan = route::plan(&ctx, &opts)?;
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    let target = authority(&host, port);
    if !headers.contains_key(header::HOST) {
        if let Ok(v) = HeaderValue::from_str(&target) {
            headers.insert(header::HOST, v);
        }
    }
    let origin_form = parts
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    let length = body.size_hint().exact();
    let mut body = match length {
        Some(n) if n as usize <= ctx.settings.retry_body_max_bytes => {
            let limit = ctx.settings.retry_body_max_bytes;
            let bytes = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| Refusal::Bad(format!("the request body broke off: {e}")))?
                .to_bytes();
            RequestBody::Kept(bytes)
        }
        _ => RequestBody::Once(Some(body)),
    };
    let mut tried = 0;
    for (i, up) in plan.upstreams.iter().enumerate() {
        let this_body: Body = match &mut body {
            RequestBody::Kept(b) => Full::new(b.clone()).map_err(|e| match e {}).boxed(),
            RequestBody::Once(b) => match b.take() {
                Some(b) => b.map_err(|e| Box::new(e) as BoxError).boxed(),
                None => break,
            },
        };
        if i > 0 {
            ctx.shared.gateway.failovers.fetch_add(1, Ordering::Relaxed);
        }
        tried += 1;
        let direct = up.endpoint.protocol == Protocol::Http;
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(if direct {
                parts.uri.to_string()
            } else {
                origin_form.clone()
            })
            .body(this_body)
            .map_err(|e| Refusal::Bad(format!("cannot forward this request: {e}")))?;
        *request.headers_mut() = headers.clone();
        if direct {
            if let Some(auth) = upstream::basic(&up.endpoint) {
                if let Ok(mut v) = HeaderValue::from_str(&auth) {
                    v.set_sensitive(true);
                    request.headers_mut().insert(header::PROXY_AUTHORIZATION, v);
                }
            }
        }
        let meter = Arc::new(Meter::default());
        let verdict = match exchange(&ctx, up, &host, port, request, meter.clone()).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match judge_status(status, up.managed) {
                    Attempt::Served => {
                        route::settle(&ctx, up, &plan, &Verdict::Passed, &target);
                        let mut account = Account::new(ctx.clone(), up, &plan, meter);
                        account.served();
                        return Ok(answer(resp, account));
                    }
                    Attempt::Failed(why) => Verdict::Failed(why),
                    Attempt::Blocked(s) => Verdict::Blocked(s),
                }
            }
            Err(e) => verdict_of(e, up),
        };
        failed(&ctx, up, &plan, verdict, &target, meter);
    }
    let more = if matches!(body, RequestBody::Once(None)) && tried < plan.upstreams.len() {
        " (the request body was too large to send again: gateway.retry_body_max_bytes)"
    } else {
        ""
    };
    Err(Refusal::Failed(format!(
        "{tried} upstreams tried, none answered for {target}{more}"
    )))
}

/// One request through one upstream: connected (or tunnelled) within the connect timeout, the
/// answer's head within `ANSWER_TIMEOUT`.
async fn exchange(
    ctx: &Ctx,
    up: &Upstream,
    host: &str,
    port: u16,
    request: Request<Body>,
    meter: Arc<Meter>,
) -> Result<Response<Incoming>, DialError> {
    let dial = async {
        if up.endpoint.protocol == Protocol::Http {
            upstream::connect(&up.endpoint).await
        } else {
            upstream::tunnel(&up.endpoint, host, port)
                .await
                .map(|(s, _)| s)
        }
    };
    let stream = match tokio::time::timeout(ctx.settings.connect_timeout, dial).await {
        Ok(s) => s?,
        Err(_) => {
            return Err(DialError::Failed(format!(
                "not reached within gateway.connect_timeout_ms ({})",
                ctx.settings.connect_timeout.as_millis()
            )))
        }
    };
    let io = TokioIo::new(Metered::new(stream, meter));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| DialError::Failed(format!("handshake: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    match tokio::time::timeout(ANSWER_TIMEOUT, sender.send_request(request)).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(DialError::Failed(format!("no answer: {e}"))),
        Err(_) => Err(DialError::Failed(format!(
            "no answer within {} s",
            ANSWER_TIMEOUT.as_secs()
        ))),
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<String> = (headers.get_all(header::CONNECTION).iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for name in listed.iter().map(String::as_str).chain(HOP_BY_HOP) {
        if name != "content-length" && name != "host" {
            headers.remove(name);
        }
    }
    headers.remove(header::TRANSFER_ENCODING);
}

/// The upstream's answer for the client, its body counted as it goes.
fn answer(resp: Response<Incoming>, account: Account) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = Counted {
        inner: body,
        _account: account,
    };
    Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed())
}

/// An answer's body that tells its traffic when it ends (or the client goes).
struct Counted {
    inner: Incoming,
    _account: Account,
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
