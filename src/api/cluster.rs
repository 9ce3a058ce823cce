//! The `cluster` section of `/api/health/comprehensive` and the `proxyvisor_leader` metric:
//! this instance's role, the others, the last handover (DESIGN.md § Cluster).

use crate::clock::rfc3339;
use crate::domain::cluster::{alive, Role};
use crate::state::Shared;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct ClusterHealth {
    instance_id: String,
    /// `leader`, `follower`, or `single` (SQLite: the only instance there can be).
    role: &'static str,
    /// Who holds the lease now; none while it is free (and with SQLite).
    leader_id: Option<String>,
    /// Grows by one at each change of leader.
    term: i64,
    /// Every instance seen within a day, this one included.
    instances: Vec<InstanceHealth>,
    last_handover: Option<HandoverHealth>,
    /// The last heartbeat reached the database.
    reachable: bool,
}

#[derive(Serialize, ToSchema)]
pub struct InstanceHealth {
    id: String,
    /// `host:port`.
    address: String,
    version: String,
    /// `leader` or `follower` as it last told; `stopped` after a clean shutdown; `gone` when
    /// it has not told for `cluster.failover_secs`.
    role: String,
    /// Its last heartbeat (RFC 3339, the database's clock).
    last_seen: String,
}

#[derive(Serialize, ToSchema)]
pub struct HandoverHealth {
    /// When the current term began (RFC 3339).
    at: String,
    term: i64,
    /// The leader before (none for the first one).
    from: Option<String>,
    to: String,
}

/// This instance's role now: a leader whose lease has run out since the last heartbeat
/// follows.
pub fn role(shared: &Shared) -> Role {
    match shared.cluster.load().role {
        Role::Leader if !shared.leadership.leads() => Role::Follower,
        r => r,
    }
}

pub fn cluster_health(shared: &Shared) -> ClusterHealth {
    let view = shared.cluster.load_full();
    let failover_ms = (shared.config.cluster.failover_secs * 1000.0) as u64;
    let instances = (view.instances.iter())
        .map(|i| InstanceHealth {
            id: i.id.clone(),
            address: i.address.clone(),
            version: i.version.clone(),
            role: if i.role != "stopped" && !alive(i.last_seen, view.db_now, failover_ms) {
                "gone".into()
            } else {
                i.role.clone()
            },
            last_seen: rfc3339(i.last_seen),
        })
        .collect();
    ClusterHealth {
        instance_id: view.instance_id.clone(),
        role: role(shared).as_str(),
        leader_id: view.leader_id.clone(),
        term: view.term,
        instances,
        last_handover: view.last_handover.as_ref().map(|h| HandoverHealth {
            at: rfc3339(h.at),
            term: h.term,
            from: h.from.clone(),
            to: h.to.clone(),
        }),
        reachable: view.reachable,
    }
}
