//! Several instances on one database: who leads, for how long it may believe so, and which
//! instances are gone. Times are milliseconds: the database's clock for what is stored (every
//! instance reads the same one), a monotonic one for what an instance believes of itself.

/// What an instance is to the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Holds the lease: runs the singletons (sources, resurrection, repairs, alert deliveries,
    /// the daily report).
    Leader,
    /// Serves and validates; leaves the singletons to the leader.
    Follower,
    /// The only instance there can be (SQLite): leads, with nobody to hand over to.
    Single,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Single => "single",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Leader, Role::Follower, Role::Single]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Runs the singletons.
    pub fn leads(self) -> bool {
        self != Role::Follower
    }
}

/// What an instance keeps in memory that another one may change in the database: each has a
/// version there, raised with each change (and NOTIFYed as `topic:version`), so that the others
/// load it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// Monitors added or removed through the admin API.
    Monitors,
    /// Managed proxies added, changed or removed.
    Managed,
    /// Proxies deleted from the pool (dead ones a source no longer lists).
    Proxies,
    /// Check results and new proxies written (the others take them in at once).
    Pool,
}

impl Topic {
    pub const ALL: [Topic; 4] = [Topic::Monitors, Topic::Managed, Topic::Proxies, Topic::Pool];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Monitors => "monitors",
            Topic::Managed => "managed",
            Topic::Proxies => "proxies",
            Topic::Pool => "pool",
        }
    }

    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// A notification's payload, `topic:version`.
    pub fn parse_notice(payload: &str) -> Option<(Topic, i64)> {
        let (topic, version) = payload.split_once(':')?;
        Some((Topic::parse(topic)?, version.parse().ok()?))
    }
}

/// The lease row as the database holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub leader_id: String,
    /// Grows by one at each change of leader (and when a leader retakes an expired lease).
    pub term: i64,
    pub expires_at: i64,
    /// When this term began, and who led before it.
    pub elected_at: i64,
    pub previous_leader: String,
}

impl Lease {
    /// Whether `me` holds it at database time `now`.
    pub fn held_by(&self, me: &str, now: i64) -> bool {
        self.leader_id == me && self.expires_at > now
    }
}

/// Until when (on this instance's monotonic clock) a leader whose renewal was sent at `sent`
/// may act as leader: one heartbeat less than the lease the database gave it, so it stops
/// before any other instance can take over, however late the answer came.
pub fn acts_until(sent: u64, failover_ms: u64, heartbeat_ms: u64) -> u64 {
    sent + failover_ms.saturating_sub(heartbeat_ms)
}

/// One row of the `instances` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub address: String,
    pub version: String,
    pub role: String,
    pub started_at: i64,
    pub last_seen: i64,
}

/// Whether an instance last seen at `last_seen` is still alive at database time `now`: it has
/// told within the failover time.
pub fn alive(last_seen: i64, now: i64, failover_ms: u64) -> bool {
    now - last_seen <= failover_ms as i64
}

/// Whether any instance but `me` is alive (and not stopped) at database time `now`.
pub fn others_alive(instances: &[Instance], me: &str, now: i64, failover_ms: u64) -> bool {
    (instances.iter())
        .any(|i| i.id != me && i.role != "stopped" && alive(i.last_seen, now, failover_ms))
}

/// How long after its last heartbeat a gone instance is still worth an alert (older rows are
/// history: an instance stopped for good long ago).
pub fn alert_window_ms(failover_ms: u64) -> i64 {
    (failover_ms as i64 * 10).max(60_000)
}

/// The instances (other than `me`) a leader alerts about at database time `now`: gone without
/// a clean stop, recently enough (`alert_window_ms`), and not alerted yet.
pub fn newly_gone<'a>(
    instances: &'a [Instance],
    me: &str,
    now: i64,
    failover_ms: u64,
    alerted: &std::collections::HashSet<String>,
) -> Vec<&'a Instance> {
    (instances.iter())
        .filter(|i| i.id != me && i.role != "stopped" && !alerted.contains(&i.id))
        .filter(|i| !alive(i.last_seen, now, failover_ms))
        .filter(|i| now - i.last_seen <= alert_window_ms(failover_ms))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_held_by_its_leader_until_it_expires() {
        let lease = Lease {
            leader_id: "a".into(),
            term: 3,
            expires_at: 10_000,
            elected_at: 1_000,
            previous_leader: "b".into(),
        };
        assert!(lease.held_by("a", 9_999));
        assert!(!lease.held_by("a", 10_000));
        assert!(!lease.held_by("b", 5_000));
    }

    #[test]
    fn a_leader_stops_acting_a_heartbeat_before_its_lease_ends() {
        // Sent at 100, lease of 5 s, heartbeat 1 s: acts until 4.1 s, whatever the delay of
        // the answer (the database counted its 5 s from later than 100).
        assert_eq!(acts_until(100, 5_000, 1_000), 4_100);
        assert_eq!(acts_until(100, 500, 1_000), 100);
    }

    fn instance(id: &str, role: &str, last_seen: i64) -> Instance {
        Instance {
            id: id.into(),
            address: format!("{id}:8000"),
            version: "1".into(),
            role: role.into(),
            started_at: 0,
            last_seen,
        }
    }

    #[test]
    fn instances_not_seen_within_the_failover_time_are_gone_and_alerted_once() {
        assert!(alive(1_000, 6_000, 5_000));
        assert!(!alive(1_000, 6_001, 5_000));
        let now = 100_000;
        let all = [
            instance("me", "leader", now),
            instance("alive", "follower", now - 1_000),
            instance("killed", "leader", now - 6_000),
            instance("stopped", "stopped", now - 6_000),
            instance("ancient", "follower", now - 61_000),
        ];
        let mut alerted = std::collections::HashSet::new();
        let ids = |v: Vec<&Instance>| v.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(newly_gone(&all, "me", now, 5_000, &alerted)),
            ["killed"]
        );
        alerted.insert("killed".to_string());
        assert!(newly_gone(&all, "me", now, 5_000, &alerted).is_empty());
        // A long failover widens the window.
        assert_eq!(alert_window_ms(10_000), 100_000);
    }

    #[test]
    fn roles_read_back_and_say_who_leads() {
        for r in [Role::Leader, Role::Follower, Role::Single] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert!(Role::Single.leads() && Role::Leader.leads() && !Role::Follower.leads());
        assert_eq!(Role::parse("boss"), None);
    }

    #[test]
    fn a_change_notice_names_its_topic_and_version() {
        assert_eq!(
            Topic::parse_notice("managed:12"),
            Some((Topic::Managed, 12))
        );
        for t in Topic::ALL {
            let notice = format!("{}:3", t.as_str());
            assert_eq!(Topic::parse_notice(&notice), Some((t, 3)));
        }
        for bad in ["", "managed", "managed:", "other:1", "monitors:x", ":4"] {
            assert_eq!(Topic::parse_notice(bad), None, "{bad}");
        }
    }
}
