//! The cluster as the Coordinator last saw it (health, metrics, the dashboard read it), and the
//! leadership that every singleton asks before it acts.

use crate::clock::mono_ms;
use crate::domain::cluster::{Instance, Role, Topic};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Published by the Coordinator after each heartbeat.
#[derive(Clone, Debug)]
pub struct ClusterView {
    pub instance_id: String,
    pub role: Role,
    /// Who holds the lease now (none while it is free).
    pub leader_id: Option<String>,
    pub term: i64,
    /// Every instance seen within a day, with the database's clock at that heartbeat.
    pub instances: Vec<Instance>,
    pub db_now: i64,
    pub last_handover: Option<Handover>,
    /// The last heartbeat reached the database.
    pub reachable: bool,
}

impl ClusterView {
    /// Another instance was alive at the last heartbeat (with SQLite: never).
    pub fn others_alive(&self, failover_ms: u64) -> bool {
        crate::domain::cluster::others_alive(
            &self.instances,
            &self.instance_id,
            self.db_now,
            failover_ms,
        )
    }

    /// The only instance there is (SQLite).
    pub fn single(instance_id: String) -> ClusterView {
        ClusterView {
            instance_id,
            role: Role::Single,
            leader_id: None,
            term: 0,
            instances: Vec::new(),
            db_now: 0,
            last_handover: None,
            reachable: true,
        }
    }
}

/// The last change of leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handover {
    /// When the new term began (database clock).
    pub at: i64,
    pub term: i64,
    /// The leader before (none for the first one).
    pub from: Option<String>,
    pub to: String,
}

/// Whether this instance may act as the leader now: granted by each renewed lease until a
/// heartbeat before it ends, so a leader that can no longer renew stops by itself before any
/// other instance can take over.
pub struct Leadership {
    single: bool,
    /// Leading with no other instance alive at the last heartbeat, and the database away
    /// since: it goes on leading (nobody else can take the lease while nobody reaches the
    /// database), and acts without claims.
    alone: std::sync::atomic::AtomicBool,
    /// On `clock::mono_ms`.
    until: AtomicU64,
    term: AtomicI64,
}

impl Leadership {
    /// Always leads (SQLite: there is no other instance).
    pub fn single() -> Leadership {
        Leadership {
            single: true,
            alone: Default::default(),
            until: AtomicU64::new(u64::MAX),
            term: AtomicI64::new(0),
        }
    }

    /// Leads only while a lease is granted.
    pub fn elected() -> Leadership {
        Leadership {
            single: false,
            alone: Default::default(),
            until: AtomicU64::new(0),
            term: AtomicI64::new(0),
        }
    }

    pub fn leads(&self) -> bool {
        self.single || mono_ms() < self.until.load(Ordering::Acquire)
    }

    pub fn is_single(&self) -> bool {
        self.single
    }

    /// The term this instance leads in (0: none).
    pub fn term(&self) -> i64 {
        if self.leads() {
            self.term.load(Ordering::Acquire)
        } else {
            0
        }
    }

    pub fn grant(&self, term: i64, until_mono_ms: u64) {
        self.alone.store(false, Ordering::Release);
        self.term.store(term, Ordering::Release);
        self.until.store(until_mono_ms, Ordering::Release);
    }

    /// The database is away and this leader saw no other instance: it leads on, alone.
    pub fn lead_alone(&self) {
        self.alone.store(true, Ordering::Release);
        self.until.store(u64::MAX, Ordering::Release);
    }

    /// Single, or leading alone while the database is away: side effects go ahead without a
    /// claim in the database.
    pub fn unclaimed(&self) -> bool {
        self.single || (self.alone.load(Ordering::Acquire) && self.leads())
    }

    pub fn revoke(&self) {
        if !self.single {
            self.alone.store(false, Ordering::Release);
            self.until.store(0, Ordering::Release);
        }
    }
}

/// The version of each topic that instances change in the database (`Topic`), as this one
/// last heard of it (a notice, or a heartbeat): an actor that keeps the topic in memory loads
/// it again when it grows past the version it loaded. Stays 0 with SQLite.
#[derive(Default)]
pub struct Changes {
    versions: [AtomicI64; 4],
}

impl Changes {
    fn slot(&self, topic: Topic) -> &AtomicI64 {
        &self.versions[match topic {
            Topic::Monitors => 0,
            Topic::Managed => 1,
            Topic::Proxies => 2,
            Topic::Pool => 3,
        }]
    }

    pub fn heard(&self, topic: Topic, version: i64) {
        self.slot(topic).fetch_max(version, Ordering::AcqRel);
    }

    pub fn version(&self, topic: Topic) -> i64 {
        self.slot(topic).load(Ordering::Acquire)
    }
}
