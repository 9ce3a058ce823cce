//! The SourceFetcher downloads each source's list on its interval (conditional GET; for proxifly
//! the meta file first, to skip an unchanged list), parses it, and hands the whole list to the
//! TierBalancer. A failing source (5xx, timeout, oversized or garbage body) leaves the pool as it
//! is and is reported on the status board.

use crate::bus::messages::{FetchNow, SourceList};
use crate::clock::{now_ms, rfc3339};
use crate::config::{secs, SourceConfig, SourceKind};
use crate::domain::source_list::{self, Format};
use crate::published::board::SourceState;
use crate::state::Shared;
use actix::prelude::*;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::StatusCode;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = crate::bus::names::SOURCE_FETCHER;
/// In a cluster, how often it looks whether this instance has started leading.
const LEADERSHIP_WATCH: Duration = Duration::from_millis(250);

/// What conditional requests need to remember about a source.
#[derive(Clone, Debug, Default)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
    meta_fingerprint: Option<u64>,
}

enum Fetched {
    List {
        list: source_list::ParsedList,
        validators: Validators,
    },
    NotModified(Validators),
    MetaUnchanged,
}

pub struct SourceFetcher {
    shared: Arc<Shared>,
    client: reqwest::Client,
    validators: HashMap<String, Validators>,
    busy: HashSet<String>,
    /// In a cluster: this instance led at the last look.
    leading: bool,
}

impl SourceFetcher {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, SourceFetcher::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        let client = crate::net::client(None, Some(Duration::from_secs(10)));
        SourceFetcher {
            shared,
            client,
            validators: HashMap::new(),
            busy: HashSet::new(),
            leading: false,
        }
    }

    fn fetch(&mut self, source: SourceConfig, ctx: &mut Context<Self>) {
        if !self.busy.insert(source.name.clone()) {
            return;
        }
        let client = self.client.clone();
        let validators = self
            .validators
            .get(&source.name)
            .cloned()
            .unwrap_or_default();
        let src = source.clone();
        let fut = async move { fetch_source(&client, &src, validators).await };
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
            act.busy.remove(&source.name);
            act.finish(&source, result, ctx);
        }));
    }

    fn finish(
        &mut self,
        source: &SourceConfig,
        result: Result<Fetched, String>,
        ctx: &mut Context<Self>,
    ) {
        let now = rfc3339(now_ms());
        let name = &source.name;
        match result {
            Ok(Fetched::List { list, validators }) => {
                self.validators.insert(name.clone(), validators);
                if list.skipped > 0 {
                    log::warn!(
                        "source {name}: {} entries skipped as malformed (e.g. {})",
                        list.skipped,
                        list.samples.join("; ")
                    );
                }
                // An answer with nothing usable is a failure: the pool keeps what it has rather
                // than treat the list as empty.
                let error = (list.proxies.is_empty() && list.skipped > 0)
                    .then(|| "no valid proxy in the answer".to_string());
                match &error {
                    Some(e) => log::warn!("source {name}: {e}; pool kept as it is"),
                    None => log::info!("source {name}: {} proxies listed", list.proxies.len()),
                }
                self.shared.board.source(name, |s| {
                    s.status = if error.is_some() {
                        SourceState::Error
                    } else {
                        SourceState::Ok
                    };
                    s.last_fetch_at = Some(now.clone());
                    if error.is_none() {
                        s.last_ok_at = Some(now);
                    }
                    s.error = error.clone();
                    s.proxies = list.proxies.len();
                    s.skipped = list.skipped;
                });
                if error.is_some() {
                    return;
                }
                // A list the TierBalancer did not take (it is restarting) is fetched again in
                // full next time: its validators are forgotten, so no 304 hides it.
                let list = SourceList {
                    source: name.clone(),
                    priority: source.priority,
                    proxies: list.proxies,
                };
                let name = name.clone();
                match self.shared.registry.source_list.get() {
                    Some(balancer) => {
                        ctx.spawn(balancer.send(list).into_actor(self).map(move |r, act, _| {
                            if r.is_err() {
                                log::warn!("source {name}: the pool restarted before taking the list; it is fetched again in full next time");
                                act.validators.remove(&name);
                            }
                        }));
                    }
                    None => {
                        log::warn!("source {name}: the pool is restarting; the list is fetched again in full next time");
                        self.validators.remove(&name);
                    }
                }
            }
            Ok(unchanged) => {
                let status = match unchanged {
                    Fetched::NotModified(validators) => {
                        self.validators.insert(name.clone(), validators);
                        SourceState::NotModified
                    }
                    _ => SourceState::Unchanged,
                };
                log::debug!("source {name}: {status:?}");
                self.shared.board.source(name, |s| {
                    s.status = status;
                    s.error = None;
                    s.last_fetch_at = Some(now.clone());
                    s.last_ok_at = Some(now);
                });
            }
            Err(e) => {
                log::warn!("source {name}: fetch failed, pool kept as it is: {e}");
                self.shared.board.source(name, |s| {
                    s.status = SourceState::Error;
                    s.error = Some(e);
                    s.last_fetch_at = Some(now);
                });
            }
        }
    }
}

async fn fetch_source(
    client: &reqwest::Client,
    source: &SourceConfig,
    mut validators: Validators,
) -> Result<Fetched, String> {
    let timeout = Duration::from_millis(source.timeout_ms);
    if let (SourceKind::Proxifly, Some(meta_url)) = (source.kind, &source.meta_url) {
        // The meta file changes whenever the lists do; when it did not, the list did not either.
        match get_body(client.get(meta_url).timeout(timeout), 1024 * 1024).await {
            Ok((_, body)) => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                body.hash(&mut h);
                let fingerprint = h.finish();
                if validators.meta_fingerprint == Some(fingerprint) {
                    return Ok(Fetched::MetaUnchanged);
                }
                validators.meta_fingerprint = Some(fingerprint);
            }
            Err(e) => log::debug!("source {}: meta file unavailable ({e})", source.name),
        }
    }
    let mut request = client.get(&source.url).timeout(timeout);
    if let Some(etag) = &validators.etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &validators.last_modified {
        request = request.header(IF_MODIFIED_SINCE, lm);
    }
    let (headers, body) = match get_body(request, source.max_bytes).await {
        Ok(r) => r,
        Err(e) if e == NOT_MODIFIED => return Ok(Fetched::NotModified(validators)),
        Err(e) => {
            // The meta said "changed" but the list failed: look again next time.
            return Err(e);
        }
    };
    validators.etag = header(&headers, ETAG);
    validators.last_modified = header(&headers, LAST_MODIFIED);
    let format = match source.kind {
        SourceKind::Plain => Format::Plain,
        SourceKind::Json => Format::Json,
        SourceKind::Proxifly => Format::Detect,
    };
    let default_protocol = source.default_protocol();
    let list =
        tokio::task::spawn_blocking(move || source_list::parse(&body, format, default_protocol))
            .await
            .map_err(|e| format!("parser failed: {e}"))?;
    Ok(Fetched::List { list, validators })
}

const NOT_MODIFIED: &str = "not modified";

fn header(h: &reqwest::header::HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    h.get(name)?.to_str().ok().map(str::to_string)
}

/// GETs a body of at most `max_bytes`, streaming so an oversized answer is cut off early.
async fn get_body(
    request: reqwest::RequestBuilder,
    max_bytes: u64,
) -> Result<(reqwest::header::HeaderMap, Vec<u8>), String> {
    let mut response = request.send().await.map_err(describe)?;
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        return Err(NOT_MODIFIED.into());
    }
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    if response.content_length().is_some_and(|n| n > max_bytes) {
        return Err(format!("body larger than the {max_bytes} bytes allowed"));
    }
    let headers = response.headers().clone();
    let body = crate::net::read_body(&mut response, max_bytes as usize).await;
    if let Some(e) = body.error {
        return Err(describe(e));
    }
    if body.cut {
        return Err(format!("body larger than the {max_bytes} bytes allowed"));
    }
    Ok((headers, body.bytes))
}

fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}

impl Actor for SourceFetcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
        self.leading = self.shared.leadership.leads();
        for source in self.shared.config.sources() {
            self.shared.board.source(&source.name, |s| {
                s.name = source.name.clone();
                s.kind = source.kind.as_str().into();
                s.url = crate::redact::url(&source.url);
                // A new entry is `pending`; a restarted fetcher keeps what the last one saw.
            });
            if self.leading {
                self.fetch(source.clone(), ctx);
            }
            super::every(ctx, secs(source.interval_secs), move |act, ctx| {
                // In a cluster the leader alone fetches (the others take the new proxies from
                // the store); an admin's fetch runs wherever it is asked.
                if act.shared.leadership.leads() {
                    act.fetch(source.clone(), ctx)
                }
            });
        }
        // An instance that starts leading fetches every source at once.
        if !self.shared.leadership.is_single() {
            super::every(ctx, LEADERSHIP_WATCH, |act, ctx| {
                let leads = act.shared.leadership.leads();
                if leads && !act.leading {
                    log::info!("{NAME}: this instance leads: fetching every source");
                    for source in act.shared.config.sources() {
                        act.fetch(source, ctx);
                    }
                }
                act.leading = leads;
            });
        }
    }
}

impl Handler<FetchNow> for SourceFetcher {
    type Result = bool;
    fn handle(&mut self, msg: FetchNow, ctx: &mut Self::Context) -> bool {
        let source = self
            .shared
            .config
            .sources()
            .into_iter()
            .find(|s| s.name == msg.0);
        match source {
            Some(s) => {
                self.fetch(s, ctx);
                true
            }
            None => false,
        }
    }
}

super::controlled!(SourceFetcher, NAME, [fetch_now]);
