//! The Allocator hands out leases: capacity per proxy (its `max_leases`, else `allocation.max_leases_per_proxy`), least
//! loaded first. One actor decides every allocation in turn, so concurrent requests never put a
//! proxy over capacity; each lease is stored before it is answered, and expired leases free their
//! slots by themselves. It publishes the load per proxy for `/api/allocation` and `least_loaded`.
//! In a cluster the decision is made in the store instead, where every instance's leases are
//! (`Store::decide_lease`), and the book follows the store.

use crate::bus::messages::{Allocate, Release, Renew};
use crate::clock::now_ms;
use crate::domain::leases::{Lease, LeaseBook};
use crate::domain::selection::Strategy;
use crate::published::loads::Loads;
use crate::state::Shared;
use crate::store::models::LeaseRow;
use actix::prelude::*;
use rand::seq::SliceRandom;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = crate::bus::names::ALLOCATOR;
const TICK: Duration = Duration::from_millis(100);
/// In a cluster, how often the book takes in the other instances' leases.
const REFRESH_EVERY: Duration = Duration::from_millis(500);

pub struct Allocator {
    shared: Arc<Shared>,
    book: LeaseBook,
    /// In a cluster: a read of the stored leases is on its way.
    refreshing: bool,
    /// In a cluster: requests waiting for the decision on its way to end, and whether one is.
    waiting: Vec<(Asked, tokio::sync::oneshot::Sender<Result<Lease, String>>)>,
    deciding: bool,
}

/// A lease request to decide in the store (in a cluster).
struct Asked {
    id: String,
    /// Candidate proxies and their capacity, best first.
    order: Vec<(String, u32)>,
    count: usize,
    ttl_ms: i64,
    session: Option<String>,
}

impl Allocator {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, Allocator::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        Allocator {
            shared,
            book: LeaseBook::default(),
            refreshing: false,
            waiting: Vec::new(),
            deciding: false,
        }
    }

    fn publish(&self) {
        self.shared.loads.store(Arc::new(Loads {
            per_proxy: self.book.loads().clone(),
            leases: self.book.len(),
        }));
    }

    /// Forgets expired leases and deletes them from the store (best effort: a lease left behind
    /// is expired again at the next start).
    fn expire(&mut self, ctx: &mut Context<Self>) {
        let ids = self.book.expire(now_ms());
        if ids.is_empty() {
            return;
        }
        self.publish();
        let store = self.shared.store.clone();
        ctx.spawn(
            async move {
                let r = store.call(move |s| s.delete_leases(&ids)).await;
                if let Err(e) = r {
                    log::warn!("{NAME}: cannot delete expired leases: {e}");
                }
            }
            .into_actor(self),
        );
    }

    /// Runs a store write; on failure, `undo` puts the book back as it was.
    fn stored<T: 'static>(
        &mut self,
        write: impl FnOnce(&crate::store::Store) -> Result<(), crate::store::StoreError>
            + Send
            + 'static,
        answer: T,
        undo: impl FnOnce(&mut Self) + 'static,
    ) -> ResponseActFuture<Self, Result<T, String>> {
        let store = self.shared.store.clone();
        let fut = async move { store.call(move |s| write(s)).await };
        Box::pin(fut.into_actor(self).map(move |r, act, _| match r {
            Ok(()) => Ok(answer),
            Err(e) => {
                undo(act);
                act.publish();
                Err(format!("the store did not take the lease: {e}"))
            }
        }))
    }
}

impl Allocator {
    /// Another instance on the same database was alive at the last heartbeat.
    fn others_alive(&self) -> bool {
        let failover_ms = (self.shared.config.cluster.failover_secs * 1000.0) as u64;
        self.shared.cluster.load().others_alive(failover_ms)
    }

    /// The live leases of `rows` as this instance's book.
    fn rebuild(&mut self, rows: Vec<LeaseRow>, now: i64) {
        let mut book = LeaseBook::default();
        for row in rows {
            let lease = row.into_lease();
            if lease.expires_at > now {
                book.restore(lease);
            }
        }
        self.book = book;
        self.publish();
    }

    /// In a cluster the lease is decided in the store, where every instance's leases are: under
    /// a lock the instances take in turn, so requests spread over them never put a proxy over
    /// its capacity. Requests that come while a decision is on its way wait for it and are
    /// decided together in the next one (one transaction, one pooled connection, however many
    /// come at once). The book is rebuilt from what the store holds.
    fn allocate_in_store(
        &mut self,
        ask: Asked,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<Lease, String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiting.push((ask, tx));
        self.decide_waiting(ctx);
        let answer = async move {
            (rx.await).unwrap_or_else(|_| Err("the allocator stopped before deciding".into()))
        };
        Box::pin(answer.into_actor(self))
    }

    /// Decides every waiting request in one store transaction (one batch at a time).
    fn decide_waiting(&mut self, ctx: &mut Context<Self>) {
        if self.deciding || self.waiting.is_empty() {
            return;
        }
        self.deciding = true;
        let (asks, replies): (Vec<Asked>, Vec<_>) =
            std::mem::take(&mut self.waiting).into_iter().unzip();
        let now = now_ms();
        let decide = move |rows: Vec<LeaseRow>| {
            let mut book = LeaseBook::default();
            for row in rows {
                let lease = row.into_lease();
                if lease.expires_at > now {
                    book.restore(lease);
                }
            }
            let mut new = Vec::new();
            let mut answers = Vec::with_capacity(asks.len());
            for ask in asks {
                if let Some(l) = ask.session.as_deref().and_then(|s| book.by_session(s, now)) {
                    answers.push(l.clone());
                    continue;
                }
                let candidates = ask.order.iter().map(|(u, c)| (u.as_str(), *c));
                let expires_at = now + ask.ttl_ms;
                let lease = book.allocate(ask.id, candidates, ask.count, expires_at, ask.session);
                new.push(LeaseRow::new(&lease, now));
                answers.push(lease);
            }
            (new, answers)
        };
        let store = self.shared.store.clone();
        let fut = async move { store.call(move |s| s.decide_lease(decide)).await };
        ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| {
            act.deciding = false;
            match r {
                Ok((answers, rows)) => {
                    act.rebuild(rows, now);
                    for (reply, lease) in replies.into_iter().zip(answers) {
                        let _ = reply.send(Ok(lease));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(format!("the store did not take the lease: {e}")));
                    }
                }
            }
            act.decide_waiting(ctx);
        }));
    }

    /// In a cluster: the book follows the leases the other instances made (for
    /// `/api/allocation` and renewals and releases asked here).
    fn refresh(&mut self, ctx: &mut Context<Self>) {
        // Alone on the database (or on SQLite) the book is the store's.
        if !self.others_alive() || self.refreshing {
            return;
        }
        self.refreshing = true;
        let store = self.shared.store.clone();
        let load = async move { store.call(move |s| s.load_leases()).await };
        ctx.spawn(load.into_actor(self).map(|r, act, _| {
            act.refreshing = false;
            match r {
                Ok(rows) => act.rebuild(rows, now_ms()),
                Err(e) => log::debug!("{NAME}: cannot read the cluster's leases: {e}"),
            }
        }));
    }
}

impl Actor for Allocator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
        let store = self.shared.store.clone();
        let load = async move { store.call(move |s| s.load_leases()).await };
        ctx.wait(load.into_actor(self).map(|r, act, _| match r {
            Ok(rows) => {
                let now = now_ms();
                for row in rows {
                    let lease = row.into_lease();
                    if lease.expires_at > now {
                        act.book.restore(lease);
                    }
                }
                log::info!("{NAME}: {} live leases restored", act.book.len());
                act.publish();
            }
            Err(e) => log::error!("{NAME}: cannot load leases: {e}"),
        }));
        super::every(ctx, TICK, |act, ctx| act.expire(ctx));
        super::every(ctx, REFRESH_EVERY, |act, ctx| act.refresh(ctx));
    }
}

impl Handler<Allocate> for Allocator {
    type Result = ResponseActFuture<Self, Result<Lease, String>>;

    fn handle(&mut self, msg: Allocate, ctx: &mut Self::Context) -> Self::Result {
        self.expire(ctx);
        let now = now_ms();
        if let Some(lease) = msg
            .session
            .as_deref()
            .and_then(|s| self.book.by_session(s, now))
        {
            return Box::pin(actix::fut::ready(Ok(lease.clone())));
        }
        let snap = self.shared.snapshot();
        let capacity = self.shared.config.allocation.max_leases_per_proxy;
        fn slots(s: &crate::domain::selection::Served, capacity: u32) -> (&str, u32) {
            (s.url.as_str(), s.max_leases.unwrap_or(capacity))
        }
        let mut order: Vec<(&str, u32)> = match msg.strategy {
            Strategy::Cheapest => snap.cheapest_iter().map(|s| slots(s, capacity)).collect(),
            _ => snap.serving.iter().map(|s| slots(s, capacity)).collect(),
        };
        if msg.strategy == Strategy::Random {
            order.shuffle(&mut rand::rng());
        }
        let id: String = {
            use rand::Rng;
            let mut rng = rand::rng();
            (0..16)
                .map(|_| format!("{:02x}", rng.random::<u8>()))
                .collect()
        };
        // With others alive on the database the decision is made there; alone, this actor is
        // the only one deciding, as with SQLite.
        if self.others_alive() {
            let order: Vec<(String, u32)> =
                order.into_iter().map(|(u, c)| (u.to_string(), c)).collect();
            let ask = Asked {
                id,
                order,
                count: msg.count,
                ttl_ms: msg.ttl_ms,
                session: msg.session,
            };
            return self.allocate_in_store(ask, ctx);
        }
        let lease = self
            .book
            .allocate(id, order, msg.count, now + msg.ttl_ms, msg.session);
        self.publish();
        let row = LeaseRow::new(&lease, now);
        let id = lease.id.clone();
        self.stored(
            move |s| s.insert_lease(&row),
            lease,
            move |act| {
                act.book.release(&id);
            },
        )
    }
}

impl Allocator {
    /// A lease asked of this instance that its book does not hold may have been made on
    /// another one a moment ago (the book follows the store every `REFRESH_EVERY`): in a
    /// cluster, that lease is read from the store first, then `then` runs.
    fn known_or_loaded<T: 'static>(
        &mut self,
        id: &str,
        then: impl FnOnce(&mut Self, &mut Context<Self>) -> ResponseActFuture<Self, T> + 'static,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, T> {
        if self.book.get(id).is_some() || !self.others_alive() {
            return then(self, ctx);
        }
        let store = self.shared.store.clone();
        let key = id.to_string();
        let load = async move { store.call(move |s| s.load_lease(&key)).await };
        Box::pin(load.into_actor(self).then(move |r, act, ctx| {
            match r {
                Ok(Some(row)) => {
                    let lease = row.into_lease();
                    if lease.expires_at > now_ms() && act.book.get(&lease.id).is_none() {
                        act.book.restore(lease);
                        act.publish();
                    }
                }
                Ok(None) => {}
                Err(e) => log::debug!("{NAME}: cannot read the lease from the store: {e}"),
            }
            then(act, ctx)
        }))
    }

    fn renew(&mut self, msg: Renew) -> ResponseActFuture<Self, Result<Option<Lease>, String>> {
        let Some(old) = self.book.get(&msg.id).map(|l| l.expires_at) else {
            return Box::pin(actix::fut::ready(Ok(None)));
        };
        let expires_at = now_ms() + msg.ttl_ms;
        let lease = self.book.renew(&msg.id, expires_at).cloned();
        let (store, id) = (self.shared.store.clone(), msg.id.clone());
        let write = async move { store.call(move |s| s.renew_lease(&id, expires_at)).await };
        Box::pin(write.into_actor(self).map(move |r, act, _| match r {
            Ok(true) => Ok(lease),
            // Released through another instance meanwhile: gone here too.
            Ok(false) => {
                act.book.release(&msg.id);
                act.publish();
                Ok(None)
            }
            Err(e) => {
                act.book.renew(&msg.id, old);
                act.publish();
                Err(format!("the store did not take the lease: {e}"))
            }
        }))
    }

    /// The lease is deleted from the store first and its slots freed only then: freeing first
    /// and undoing on a failed write could put a proxy over capacity if its slot was taken
    /// meanwhile.
    fn release(&mut self, msg: Release) -> ResponseActFuture<Self, Result<bool, String>> {
        if self.book.get(&msg.id).is_none() {
            return Box::pin(actix::fut::ready(Ok(false)));
        }
        let store = self.shared.store.clone();
        let ids = vec![msg.id.clone()];
        let write = async move { store.call(move |s| s.delete_leases(&ids)).await };
        Box::pin(write.into_actor(self).map(move |r, act, _| {
            let stored = match r {
                Ok(n) => n > 0,
                Err(e) => return Err(format!("the store did not take the release: {e}")),
            };
            // Not stored: released through another instance before (gone here too).
            let released = act.book.release(&msg.id).is_some() && stored;
            act.publish();
            Ok(released)
        }))
    }
}

impl Handler<Renew> for Allocator {
    type Result = ResponseActFuture<Self, Result<Option<Lease>, String>>;

    fn handle(&mut self, msg: Renew, ctx: &mut Self::Context) -> Self::Result {
        self.expire(ctx);
        let id = msg.id.clone();
        self.known_or_loaded(&id, move |act, _| act.renew(msg), ctx)
    }
}

impl Handler<Release> for Allocator {
    type Result = ResponseActFuture<Self, Result<bool, String>>;

    fn handle(&mut self, msg: Release, ctx: &mut Self::Context) -> Self::Result {
        self.expire(ctx);
        let id = msg.id.clone();
        self.known_or_loaded(&id, move |act, _| act.release(msg), ctx)
    }
}

super::controlled!(Allocator, NAME, [allocate, renew, release]);
