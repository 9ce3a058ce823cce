//! The Coordinator keeps this instance's place in the cluster (PostgreSQL only): every
//! `cluster.heartbeat_secs` it tells the database it is alive and takes or renews the leader's
//! lease (`store::cluster`), grants or withdraws this instance's [`Leadership`], publishes the
//! cluster view for health, metrics and the dashboard, and, while it leads, raises a `cluster`
//! alert when another instance stops telling it is alive (`domain::cluster::newly_gone`).
//!
//! It also hears what other instances changed (`domain::cluster::Topic`): a listener on a
//! connection of its own takes their NOTIFYs every `LISTEN_EVERY`, and each heartbeat reads
//! every topic's version as the fallback; both go to `Shared::changes`, which the actors that
//! keep a topic in memory follow.
//!
//! The heartbeat runs on its own connection in a blocking task; the actor never waits for it.
//! A heartbeat that cannot reach the database extends nothing, so a leader cut off from it
//! stops acting a heartbeat before its lease ends (`domain::cluster::acts_until`), before any
//! other instance can take over.
//!
//! [`Leadership`]: crate::published::cluster::Leadership

use crate::clock::{mono_ms, now_ms};
use crate::domain::alerts::{AlertEvent, Kind, Severity};
use crate::domain::cluster::{acts_until, alive, newly_gone, others_alive, Instance, Role};
use crate::published::cluster::{ClusterView, Handover};
use crate::state::Shared;
use crate::store::cluster::{Beat, ChangeListener, ClusterStore};
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = crate::bus::names::COORDINATOR;

pub struct Coordinator {
    shared: Arc<Shared>,
    store: Arc<ClusterStore>,
    me: Instance,
    failover_ms: u64,
    heartbeat_ms: u64,
    /// The role the last heartbeat gave, and whether the database answered it.
    role: Role,
    reachable: bool,
    /// At the last heartbeat this instance led and saw no other alive.
    alone: bool,
    /// Gone instances already alerted about (while they stay gone).
    alerted: std::collections::HashSet<String>,
    /// Hears the changes other instances NOTIFY; a look is on its way.
    listener: Arc<ChangeListener>,
    listening: bool,
    listen_failing: bool,
}

/// How often the listener's connection is looked at for notices (without waiting on it).
const LISTEN_EVERY: Duration = Duration::from_millis(50);

/// A heartbeat still waiting this long is abandoned (the next one skips while it holds the
/// connection).
const BEAT_PATIENCE: Duration = Duration::from_secs(10);

impl Coordinator {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, Coordinator::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        let c = &shared.config.cluster;
        let view = shared.cluster.load_full();
        let me = Instance {
            id: view.instance_id.clone(),
            address: shared.instance_address.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            role: Role::Follower.as_str().to_string(),
            started_at: now_ms(),
            last_seen: 0,
        };
        let store = (shared.cluster_store.clone()).expect("the Coordinator runs with PostgreSQL");
        Coordinator {
            listener: Arc::new(store.listener()),
            listening: false,
            listen_failing: false,
            store,
            me,
            failover_ms: (c.failover_secs * 1000.0) as u64,
            heartbeat_ms: (c.heartbeat_secs * 1000.0) as u64,
            role: Role::Follower,
            reachable: true,
            alerted: Default::default(),
            alone: false,
            shared,
        }
    }

    fn beat(&mut self, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let me = self.me.clone();
        let lease_ms = self.failover_ms;
        let sent = mono_ms();
        let work = tokio::task::spawn_blocking(move || store.beat(&me, lease_ms));
        let fut = async move { tokio::time::timeout(BEAT_PATIENCE, work).await };
        ctx.spawn(fut.into_actor(self).map(move |r, act, _| match r {
            Ok(Ok(Some(Ok(beat)))) => act.on_beat(beat, sent),
            Ok(Ok(None)) => log::debug!("{NAME}: the previous heartbeat is still waiting"),
            Ok(Ok(Some(Err(e)))) => act.on_unreachable(&e.to_string()),
            Ok(Err(e)) => act.on_unreachable(&format!("the heartbeat task failed: {e}")),
            Err(_) => act.on_unreachable("no answer within 10 s"),
        }));
    }

    /// Takes the notices of changes that arrived (in a blocking task, one at a time).
    fn listen(&mut self, ctx: &mut Context<Self>) {
        if self.listening {
            return;
        }
        self.listening = true;
        let listener = self.listener.clone();
        let work = tokio::task::spawn_blocking(move || listener.take());
        ctx.spawn(work.into_actor(self).map(|r, act, _| {
            act.listening = false;
            match r {
                Ok(Ok(changes)) => {
                    act.listen_failing = false;
                    for (topic, version) in changes {
                        act.shared.changes.heard(topic, version);
                    }
                }
                Ok(Err(e)) if !act.listen_failing => {
                    act.listen_failing = true;
                    log::warn!(
                        "{NAME}: cannot listen for the other instances' changes ({e}); the \
                         heartbeat reads them meanwhile"
                    );
                }
                Ok(Err(_)) => {}
                Err(e) => log::warn!("{NAME}: the listener's task failed: {e}"),
            }
        }));
    }

    fn on_beat(&mut self, beat: Beat, sent: u64) {
        for &(topic, version) in &beat.changes {
            self.shared.changes.heard(topic, version);
        }
        let lead = &self.shared.leadership;
        if beat.leading {
            lead.grant(
                beat.lease.term,
                acts_until(sent, self.failover_ms, self.heartbeat_ms),
            );
        } else {
            lead.revoke();
        }
        if !self.reachable {
            log::info!("{NAME}: the database answers the heartbeat again");
            self.reachable = true;
        }
        let role = if beat.leading {
            Role::Leader
        } else {
            Role::Follower
        };
        if role != self.role {
            match role {
                Role::Leader => log::info!(
                    "{NAME}: {} leads now (term {}; before: {})",
                    self.me.id,
                    beat.lease.term,
                    if beat.lease.previous_leader.is_empty() {
                        "nobody"
                    } else {
                        &beat.lease.previous_leader
                    }
                ),
                _ => log::info!(
                    "{NAME}: {} follows {} (term {})",
                    self.me.id,
                    beat.lease.leader_id,
                    beat.lease.term
                ),
            }
            self.role = role;
        }
        self.alone =
            beat.leading && !others_alive(&beat.instances, &self.me.id, beat.now, self.failover_ms);
        // One that came back may be alerted about again when it goes.
        self.alerted.retain(|id| {
            (beat.instances.iter())
                .any(|i| &i.id == id && !alive(i.last_seen, beat.now, self.failover_ms))
        });
        if role == Role::Leader {
            let gone = newly_gone(
                &beat.instances,
                &self.me.id,
                beat.now,
                self.failover_ms,
                &self.alerted,
            );
            let gone: Vec<String> = gone.into_iter().map(|i| i.id.clone()).collect();
            for id in gone {
                self.shared.registry.alert(AlertEvent::new(
                    Kind::Cluster,
                    format!("instance:{id}"),
                    Severity::Warning,
                    format!(
                        "instance {id} stopped telling it is alive (no heartbeat for {} s)",
                        self.failover_ms / 1000
                    ),
                    now_ms(),
                ));
                log::warn!("{NAME}: instance {id} is gone");
                self.alerted.insert(id);
            }
        }
        let lease = &beat.lease;
        let held = lease.expires_at > beat.now && !lease.leader_id.is_empty();
        self.shared.cluster.store(Arc::new(ClusterView {
            instance_id: self.me.id.clone(),
            role,
            leader_id: held.then(|| lease.leader_id.clone()),
            term: lease.term,
            instances: beat.instances,
            db_now: beat.now,
            last_handover: (lease.term > 0).then(|| Handover {
                at: lease.elected_at,
                term: lease.term,
                from: (!lease.previous_leader.is_empty()).then(|| lease.previous_leader.clone()),
                to: lease.leader_id.clone(),
            }),
            reachable: true,
        }));
    }

    /// The database did not answer: nothing is renewed (a leader goes on only until its
    /// granted time runs out), and the view says so.
    fn on_unreachable(&mut self, error: &str) {
        // The store is on the same server: admin changes are refused at once rather than each
        // waiting for a connection (the pool's next write or ping clears it).
        (self.shared.board).store_failed(&format!("the cluster's heartbeat: {error}"));
        if self.alone && self.shared.leadership.leads() {
            // Nobody else was there to take over: leading on beats leading nobody (the
            // services go on being watched and repaired).
            if self.reachable {
                log::warn!(
                    "{NAME}: cannot reach the database for the heartbeat ({error}); no other \
                     instance was alive: {} leads on alone until it is back",
                    self.me.id
                );
                self.reachable = false;
            }
            self.shared.leadership.lead_alone();
        } else if self.reachable {
            log::warn!(
                "{NAME}: cannot reach the database for the heartbeat ({error}); {}",
                if self.shared.leadership.leads() {
                    "leading only until the lease runs out"
                } else {
                    "following"
                }
            );
            self.reachable = false;
        }
        let leads = self.shared.leadership.leads();
        let mut view = ClusterView::clone(&self.shared.cluster.load_full());
        view.reachable = false;
        view.role = if leads { Role::Leader } else { Role::Follower };
        if !leads && self.role == Role::Leader {
            log::warn!("{NAME}: {} steps down: its lease ran out", self.me.id);
            view.leader_id = None;
        }
        self.role = view.role;
        self.shared.cluster.store(Arc::new(view));
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
        self.beat(ctx);
        let every = Duration::from_millis(self.heartbeat_ms.max(100));
        super::every(ctx, every, |act, ctx| act.beat(ctx));
        super::every(ctx, LISTEN_EVERY, |act, ctx| act.listen(ctx));
    }
}

super::controlled!(Coordinator, NAME, []);
