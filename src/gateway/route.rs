//! What every gateway request goes through, whatever its protocol: the password and the
//! username's options, the target's check (its port, its resolved addresses), the upstreams to
//! try in the strategy's order (sticky sessions, caps), and what each attempt tells the pool
//! (a passed or failed check) and the Accountant (traffic).

use super::upstream::Meter;
use super::Ctx;
use crate::bus::messages::{Report, Traffic};
use crate::clock::now_ms;
use crate::domain::choice::{self, Ask};
use crate::domain::gateway::{self as rules, Options, Sticky};
use crate::domain::proxy::{Endpoint, Protocol};
use crate::domain::selection::{Filter, Served, Strategy};
use crate::domain::usage::{self, Slot, Tally};
use std::net::IpAddr;
use std::sync::Arc;

/// Why the gateway answers a request itself.
#[derive(Debug)]
pub enum Refusal {
    /// No or a wrong password (407).
    Auth,
    /// Malformed input or a bad option (400).
    Bad(String),
    /// A target the gateway does not reach (403).
    Forbidden(String),
    /// Nothing to try (503).
    Unavailable(String),
    /// Every attempt failed (502).
    Failed(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Auth => 407,
            Refusal::Bad(_) => 400,
            Refusal::Forbidden(_) => 403,
            Refusal::Unavailable(_) => 503,
            Refusal::Failed(_) => 502,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Refusal::Auth => "proxy authentication required: user name (with options) and the \
                              gateway token as password"
                .into(),
            Refusal::Bad(m)
            | Refusal::Forbidden(m)
            | Refusal::Unavailable(m)
            | Refusal::Failed(m) => m.clone(),
        }
    }
}

/// The options of a request from its credentials: with a gateway token set, the password must
/// be it (and the username holds the options); without one, anyone may use the gateway.
pub fn authorize(ctx: &Ctx, user: Option<&str>, pass: Option<&str>) -> Result<Options, Refusal> {
    if let Some(expected) = ctx.settings.token() {
        match pass {
            Some(p) if crate::redact::same_secret(p, expected) => {}
            _ => return Err(Refusal::Auth),
        }
    }
    match user {
        Some(u) => rules::parse_options(u).map_err(Refusal::Bad),
        None => Ok(Options::default()),
    }
}

/// May the gateway reach `host:port`? The port must be allowed; the service's own ports on its
/// own addresses never (a loop); and, unless `allow_private`, no address the name resolves to
/// may be loopback, private or link-local.
pub async fn check_target(ctx: &Ctx, host: &str, port: u16) -> Result<(), Refusal> {
    let s = &ctx.settings;
    if !s.allowed_ports.contains(&port) {
        return Err(Refusal::Forbidden(format!(
            "port {port} is not in gateway.allowed_ports"
        )));
    }
    let literal: Option<IpAddr> = host.trim_matches(['[', ']']).parse().ok();
    let own_port = ctx.own_ports.contains(&port);
    if s.allow_private {
        let local = literal.map_or(host.eq_ignore_ascii_case("localhost"), |ip| {
            ip.is_loopback() || ip.is_unspecified() || ctx.own_ips.contains(&ip)
        });
        if own_port && local {
            return Err(Refusal::Forbidden(
                "the target is this service itself".into(),
            ));
        }
        return Ok(());
    }
    let addrs: Vec<IpAddr> = match literal {
        Some(ip) => vec![ip],
        None => {
            let lookup = tokio::net::lookup_host((host, port));
            match tokio::time::timeout(s.connect_timeout, lookup).await {
                Ok(Ok(a)) => a.map(|a| a.ip()).collect(),
                _ => return Err(Refusal::Failed(format!("cannot resolve {}", clip(host)))),
            }
        }
    };
    if addrs.is_empty() {
        return Err(Refusal::Failed(format!("cannot resolve {}", clip(host))));
    }
    for ip in addrs {
        if let Some(why) = rules::refused_address(ip, &ctx.own_ips) {
            return Err(Refusal::Forbidden(format!(
                "{} resolves to {why} (gateway.allow_private is off)",
                clip(host)
            )));
        }
    }
    Ok(())
}

/// At most 80 characters of a client-given name, for answers and logs.
pub fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// An upstream to try.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// With its credentials.
    pub endpoint: Endpoint,
    /// Public URL.
    pub url: String,
    pub kind: String,
    pub cost_per_gb: f64,
    pub managed: bool,
}

/// The upstreams a request tries, in order, and its sticky session.
pub struct Plan {
    pub upstreams: Vec<Upstream>,
    pub session: Option<(String, bool)>,
}

/// The upstreams for `o`, from the snapshot serving reads: the session's upstream first while it
/// holds, then the strategy's order over the serving pool (then the fill), filtered by the
/// options, without proxies past their daily cap.
pub fn plan(ctx: &Ctx, o: &Options) -> Result<Plan, Refusal> {
    let snap = ctx.shared.snapshot();
    let usage = ctx.shared.usage.load();
    let profile = match &o.profile {
        None => None,
        Some(name) => Some(
            (ctx.shared.config.validation.profiles.iter())
                .position(|p| &p.name == name)
                .ok_or_else(|| {
                    Refusal::Bad(format!("option `profile`: no profile {}", clip(name)))
                })?,
        ),
    };
    let n = ctx.settings.max_attempts;
    let narrowed = !o.protocols.is_empty() || !usage.capped.is_empty();
    let ask = Ask {
        count: if narrowed {
            snap.serving.len().max(n)
        } else {
            n
        },
        strategy: o.strategy.unwrap_or(Strategy::Cheapest),
        filter: Filter {
            protocol: None,
            anonymity: None,
            country: o.country.clone(),
        },
        profile,
        detail: false,
    };
    let loads = ctx.shared.loads.load();
    let load = |url: &str| loads.per_proxy.get(url).copied().unwrap_or(0);
    let picked = choice::pick(snap.pool(), &ask, load, true, &mut rand::rng());
    let usable = |s: &Served| {
        (o.protocols.is_empty() || o.protocols.contains(&s.protocol))
            && !usage.capped.contains(&s.url)
    };
    let upstream = |s: &Served| -> Option<Upstream> {
        let mut endpoint = Endpoint::parse(&s.url, Protocol::Http).ok()?;
        endpoint.credentials = snap.credentials.get(&s.url).cloned();
        Some(Upstream {
            endpoint,
            url: s.url.clone(),
            kind: s.kind.clone(),
            cost_per_gb: s.cost_per_gb,
            managed: snap.managed.iter().any(|m| m.url == s.url),
        })
    };
    let mut upstreams: Vec<Upstream> = Vec::with_capacity(n);
    let mut session = None;
    if let Some(key) = &o.session {
        session = Some((key.clone(), o.strict));
        let alive = |url: &str| snap.serving(url).is_some_and(usable);
        let sticky = ctx.sessions().get(key, now_ms(), o.strict, alive);
        match sticky {
            Sticky::Keep(url) => {
                if let Some(u) = snap.serving(&url).and_then(upstream) {
                    upstreams.push(u);
                }
                if o.strict {
                    return Ok(Plan { upstreams, session });
                }
            }
            Sticky::Gone => {
                return Err(Refusal::Failed(format!(
                    "session {key}: its upstream is gone and the session is strict"
                )))
            }
            Sticky::Pick => {}
        }
    }
    for s in picked.proxies {
        if upstreams.len() >= n {
            break;
        }
        if usable(s) && !upstreams.iter().any(|u| u.url == s.url) {
            upstreams.extend(upstream(s));
        }
    }
    if upstreams.is_empty() {
        return Err(Refusal::Unavailable(
            "no upstream proxy matches right now".into(),
        ));
    }
    Ok(Plan { upstreams, session })
}

/// How one attempt ended, for the pool.
pub enum Verdict {
    Passed,
    Failed(String),
    /// A paid proxy's target refused it (403/429): it is `blocked`.
    Blocked(u16),
}

/// Tells the pool what an attempt showed (a passed check at most once a second per upstream;
/// every failure), and binds or unbinds the session.
pub fn settle(ctx: &Ctx, up: &Upstream, plan: &Plan, verdict: &Verdict, target: &str) {
    let now = now_ms();
    let (ok, status) = match verdict {
        Verdict::Passed => (true, None),
        Verdict::Failed(_) => (false, None),
        Verdict::Blocked(s) => (false, Some(*s)),
    };
    if let Some((key, strict)) = &plan.session {
        let mut sessions = ctx.sessions();
        if ok {
            sessions.bind(key, &up.url, now, ctx.settings.session_ttl_ms);
        } else {
            sessions.failed(key, &up.url, *strict);
        }
    }
    if ok && !ctx.pass_due(&up.url, now) {
        return;
    }
    match verdict {
        Verdict::Passed => {}
        Verdict::Failed(why) => {
            log::info!(
                "gateway: {} failed for {target}: {why}; next upstream",
                up.url
            )
        }
        Verdict::Blocked(s) => {
            log::info!(
                "gateway: {} blocked by {target} ({s}); next upstream",
                up.url
            )
        }
    }
    let sent = ctx.shared.registry.report.send(Report {
        key: up.url.clone(),
        ok,
        status,
    });
    if !sent {
        log::debug!(
            "gateway: the pool is restarting; a check of {} not counted",
            up.url
        );
    }
}

/// The steps of a failed attempt: the pool and the books are told (the next one is tried).
pub fn failed(
    ctx: &Arc<Ctx>,
    up: &Upstream,
    plan: &Plan,
    verdict: Verdict,
    target: &str,
    meter: Arc<Meter>,
) {
    settle(ctx, up, plan, &verdict, target);
    let mut account = Account::new(ctx.clone(), up, plan, meter);
    account.failed();
}

/// A dial's failure, judged: a paid proxy whose target refused it (403/429) is `blocked`.
pub fn verdict_of(e: super::upstream::DialError, up: &Upstream) -> Verdict {
    match e {
        super::upstream::DialError::Refused(s)
            if up.managed && crate::domain::managed::is_refusal(s) =>
        {
            Verdict::Blocked(s)
        }
        e => Verdict::Failed(e.to_string()),
    }
}

/// The traffic of one request or tunnel through an upstream, told as it goes: each call sends
/// what the meter counted since the last.
pub struct Account {
    ctx: Arc<Ctx>,
    up: Upstream,
    session: String,
    meter: Arc<Meter>,
    told: (u64, u64),
    requests: u64,
    failures: u64,
}

impl Account {
    pub fn new(ctx: Arc<Ctx>, up: &Upstream, plan: &Plan, meter: Arc<Meter>) -> Account {
        Account {
            ctx,
            up: up.clone(),
            session: plan
                .session
                .as_ref()
                .map(|s| s.0.clone())
                .unwrap_or_default(),
            meter,
            told: (0, 0),
            requests: 0,
            failures: 0,
        }
    }

    /// This attempt served the request (counted once, at the next `tell`).
    pub fn served(&mut self) {
        self.requests = 1;
    }

    /// This attempt failed.
    pub fn failed(&mut self) {
        self.failures = 1;
    }

    /// Sends what passed since the last call.
    pub fn tell(&mut self) {
        let (up, down) = self.meter.read();
        let (d_up, d_down) = (up - self.told.0, down - self.told.1);
        self.told = (up, down);
        let tally = Tally {
            requests: std::mem::take(&mut self.requests),
            failures: std::mem::take(&mut self.failures),
            bytes_up: d_up,
            bytes_down: d_down,
            cost: usage::cost(d_up + d_down, self.up.cost_per_gb),
        };
        if tally.is_empty() {
            return;
        }
        self.ctx
            .shared
            .gateway
            .add_bytes(&self.up.kind, d_up, d_down);
        let slot = Slot {
            hour: usage::hour_of(now_ms()),
            proxy: self.up.url.clone(),
            session: self.session.clone(),
        };
        if !self
            .ctx
            .shared
            .registry
            .traffic
            .send(Traffic { slot, tally })
        {
            log::warn!(
                "gateway: the accountant is restarting; {} bytes through {} not counted",
                d_up + d_down,
                self.up.url
            );
        }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        self.tell();
    }
}
