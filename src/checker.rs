//! Checking one proxy: open a connection through it (forwarding, CONNECT, SOCKS4 or SOCKS5),
//! request a URL, and judge the answer. Nothing is allocated per proxy beyond the connection
//! itself: the TLS configuration is built once and shared.

use crate::domain::anonymity;
use crate::domain::proxy::{Anonymity, Endpoint, Protocol};
use base64::Engine;
use bytes::Bytes;
use exchange::{exchange, request_head};
use hyper_util::client::legacy::connect::proxy::{SocksV4, SocksV5, Tunnel};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tower_service::Service;

use crate::net::{shared_tls_config, USER_AGENT};

mod exchange;

/// A URL to request through proxies, parsed once.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    https: bool,
    host: String,
    port: u16,
    /// `host[:port]` as sent in `Host`.
    authority: String,
    path_and_query: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let u = url::Url::parse(url).map_err(|e| format!("bad URL {url}: {e}"))?;
        let https = match u.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(format!("unsupported scheme {other}")),
        };
        let host = u.host_str().ok_or("URL without host")?.to_string();
        let port = u
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let authority = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let mut path_and_query = u.path().to_string();
        if let Some(q) = u.query() {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        Ok(Target {
            url: url.to_string(),
            https,
            host: host.trim_matches(['[', ']']).to_string(),
            port,
            authority,
            path_and_query,
        })
    }

    fn absolute_uri(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.path_and_query)
    }

    /// The URI the tunnel connectors are asked to reach (always with an explicit port).
    fn tunnel_uri(&self) -> Result<http::Uri, String> {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("http://{host}:{}/", self.port)
            .parse()
            .map_err(|e| format!("bad target: {e}"))
    }
}

pub use crate::domain::check::{Expectation, Outcome};

#[derive(Clone)]
pub struct Checker {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
}

impl Checker {
    pub fn new(timeout: Duration) -> Checker {
        Checker {
            tls: tokio_rustls::TlsConnector::from(shared_tls_config()),
            timeout,
        }
    }

    /// Requests `target` through `proxy` and judges the answer against `expect`.
    pub async fn check(&self, proxy: &Endpoint, target: &Target, expect: &Expectation) -> Outcome {
        let started = Instant::now();
        let result = self.fetch(proxy, target).await;
        let latency_ms = started.elapsed().as_millis().min(u32::MAX as u128) as u32;
        match result {
            Err(failure) => Outcome {
                ok: false,
                latency_ms,
                status: None,
                failure: Some(failure),
            },
            Ok((status, body)) => {
                // An answer the runtime saw only after the deadline (a loaded machine polls
                // late) is still too late: within `timeout_ms` passes, later fails.
                let failure = if u128::from(latency_ms) >= self.timeout.as_millis() {
                    Some(format!(
                        "answered after the timeout ({latency_ms} ms, timeout {} ms)",
                        self.timeout.as_millis()
                    ))
                } else if status != expect.status {
                    Some(format!("status {status}, expected {}", expect.status))
                } else if let Some(needle) = &expect.body {
                    (!contains(&body, needle.as_bytes())).then(|| "body mismatch".to_string())
                } else {
                    None
                };
                Outcome {
                    ok: failure.is_none(),
                    latency_ms,
                    status: Some(status),
                    failure,
                }
            }
        }
    }

    /// Asks a judge page through the proxy which headers it saw, and grades them against our
    /// own addresses (see [`Checker::own_addresses`]).
    pub async fn anonymity(
        &self,
        proxy: &Endpoint,
        judge: &Target,
        own: &[IpAddr],
    ) -> Option<Anonymity> {
        match self.fetch(proxy, judge).await {
            Ok((200, body)) => Some(anonymity::judge(&String::from_utf8_lossy(&body), own)),
            _ => None,
        }
    }

    /// Our own addresses as the judge sees them: a direct request (no proxy) to the judge; what
    /// it reports as the requester (httpbin's `origin`, PHP's `REMOTE_ADDR`), and the local
    /// address of the connection (what a judge on our network sees).
    pub async fn own_addresses(&self, judge: &Target) -> Result<Vec<IpAddr>, String> {
        let direct = async {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            let io = http
                .call(judge.tunnel_uri()?)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let local = io.inner().local_addr().map(|a| a.ip()).ok();
            let head = request_head(&judge.path_and_query, &judge.authority, USER_AGENT, None);
            let (status, body) = if judge.https {
                let tls = self.tls_to(judge, io).await?;
                exchange(tls, &head).await?
            } else {
                exchange(io.into_inner(), &head).await?
            };
            if status != 200 {
                return Err(format!("the judge answered {status}"));
            }
            let mut own = anonymity::own_addresses(&String::from_utf8_lossy(&body));
            own.extend(local);
            Ok(own)
        };
        match tokio::time::timeout(self.timeout, direct).await {
            Ok(r) => r,
            Err(_) => Err(format!("timeout after {} ms", self.timeout.as_millis())),
        }
    }

    async fn tls_to<IO>(
        &self,
        target: &Target,
        io: TokioIo<IO>,
    ) -> Result<tokio_rustls::client::TlsStream<IO>, String>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let server_name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| format!("bad server name: {e}"))?;
        self.tls
            .connect(server_name, io.into_inner())
            .await
            .map_err(|e| format!("TLS: {e}"))
    }

    /// Status and (capped) body of `target` through `proxy`, within the hard timeout.
    pub async fn fetch(&self, proxy: &Endpoint, target: &Target) -> Result<(u16, Bytes), String> {
        match tokio::time::timeout(self.timeout, self.fetch_inner(proxy, target)).await {
            Ok(r) => r,
            Err(_) => Err(format!("timeout after {} ms", self.timeout.as_millis())),
        }
    }

    async fn fetch_inner(&self, proxy: &Endpoint, target: &Target) -> Result<(u16, Bytes), String> {
        let proxy_uri: http::Uri = format!(
            "http://{}:{}",
            if proxy.host.contains(':') {
                format!("[{}]", proxy.host)
            } else {
                proxy.host.clone()
            },
            proxy.port
        )
        .parse()
        .map_err(|e| format!("bad proxy address: {e}"))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let forward = proxy.protocol == Protocol::Http && !target.https;
        let io = match proxy.protocol {
            _ if forward => http
                .call(proxy_uri)
                .await
                .map_err(|e| format!("connect: {e}"))?,
            Protocol::Http | Protocol::Https => {
                let mut tunnel = Tunnel::new(proxy_uri, http);
                let header = basic_auth(proxy).and_then(|a| {
                    let mut v = http::HeaderValue::from_str(&a).ok()?;
                    v.set_sensitive(true);
                    Some(v)
                });
                if let Some(auth) = header {
                    tunnel = tunnel.with_auth(auth);
                }
                tunnel
                    .call(target.tunnel_uri()?)
                    .await
                    .map_err(|e| format!("CONNECT: {e}"))?
            }
            Protocol::Socks4 => SocksV4::new(proxy_uri, http)
                .call(target.tunnel_uri()?)
                .await
                .map_err(|e| format!("SOCKS4: {e:?}"))?,
            Protocol::Socks5 => {
                let mut socks = SocksV5::new(proxy_uri, http);
                if let Some(c) = &proxy.credentials {
                    socks = socks.with_auth(c.username.clone(), c.password.clone());
                }
                socks
                    .call(target.tunnel_uri()?)
                    .await
                    .map_err(|e| format!("SOCKS5: {e:?}"))?
            }
        };
        let auth = basic_auth(proxy);
        let head = if forward {
            request_head(
                &target.absolute_uri(),
                &target.authority,
                USER_AGENT,
                auth.as_deref(),
            )
        } else {
            request_head(&target.path_and_query, &target.authority, USER_AGENT, None)
        };
        if target.https {
            let tls = self.tls_to(target, io).await?;
            exchange(tls, &head).await
        } else {
            exchange(io.into_inner(), &head).await
        }
    }
}

/// `Basic base64(user:pass)` for a proxy with credentials.
fn basic_auth(proxy: &Endpoint) -> Option<String> {
    let c = proxy.credentials.as_ref()?;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    Some(format!("Basic {token}"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
