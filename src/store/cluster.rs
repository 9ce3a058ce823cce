//! The cluster's rows in PostgreSQL: the leader's lease (taken and renewed with a conditional
//! UPDATE, its term growing at each change of leader) and the instances' heartbeats. Times are
//! the database's clock (`clock_timestamp()`), the same for every instance.
//!
//! The coordinator has a connection of its own, outside the store's pool: a pool busy with
//! writes or waiting for a dead server must not delay a heartbeat. Its keep-alives, TCP user
//! timeout and statement timeout make a cut connection fail within seconds rather than hang;
//! a beat still stuck on it makes the next one skip (the lease then runs out by itself).

use super::changes::{versions, CHANGES_CHANNEL};
use super::StoreError;
use crate::domain::cluster::{Instance, Lease, Topic};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use std::sync::Mutex;

/// The database's clock, in Unix milliseconds.
const DB_NOW: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
/// SQL: the instance named by parameter `me` holds the lease in the term named by parameter
/// `term`, at `n.now` (the database clock): the fence every claimed side effect passes, so a
/// deposed leader's late claim is refused.
fn holds_lease(me: &str, term: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM cluster_lease WHERE name = 'leader' \
         AND leader_id = {me} AND term = {term} AND expires_at > n.now)"
    )
}

/// Rows of instances not seen for this long are deleted.
const FORGET_AFTER_MS: i64 = 24 * 3600 * 1000;

pub struct ClusterStore {
    url: String,
    conn: Mutex<Option<PgConnection>>,
}

/// What one heartbeat learned.
#[derive(Debug)]
pub struct Beat {
    /// This instance holds the lease (taken or renewed by this beat).
    pub leading: bool,
    pub lease: Lease,
    /// Every instance seen within a day, by id.
    pub instances: Vec<Instance>,
    /// The database's clock at the end of the beat.
    pub now: i64,
    /// Every topic's version (`domain::cluster::Topic`): the fallback for missed notices.
    pub changes: Vec<(Topic, i64)>,
}

#[derive(QueryableByName)]
struct TermRow {
    #[diesel(sql_type = BigInt)]
    #[allow(dead_code)]
    term: i64,
}

#[derive(QueryableByName)]
struct LeaseRow {
    #[diesel(sql_type = Text)]
    leader_id: String,
    #[diesel(sql_type = BigInt)]
    term: i64,
    #[diesel(sql_type = BigInt)]
    expires_at: i64,
    #[diesel(sql_type = BigInt)]
    elected_at: i64,
    #[diesel(sql_type = Text)]
    previous_leader: String,
    #[diesel(sql_type = BigInt)]
    now: i64,
}

#[derive(QueryableByName)]
struct InstanceRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    address: String,
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = BigInt)]
    started_at: i64,
    #[diesel(sql_type = BigInt)]
    last_seen: i64,
}

/// `url` with connection settings that make a dead server or a cut network an error within
/// seconds (the user's own settings in the URL come first and win).
fn with_timeouts(url: &str, timeout_ms: u64) -> String {
    let secs = timeout_ms.div_ceil(1000).max(1);
    let settings = format!(
        "connect_timeout={secs}&keepalives=1&keepalives_idle=1&keepalives_interval=1&\
         keepalives_count={secs}&tcp_user_timeout={timeout_ms}&\
         options=-c%20statement_timeout%3D{timeout_ms}"
    );
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}{settings}")
}

impl ClusterStore {
    /// For the database at `url`; every statement and connection attempt gives up after
    /// `timeout_ms`.
    pub fn new(url: &str, timeout_ms: u64) -> ClusterStore {
        ClusterStore {
            url: with_timeouts(url, timeout_ms),
            conn: Mutex::new(None),
        }
    }

    /// A listener for changes, on a connection of its own with the same timeouts.
    pub fn listener(&self) -> ChangeListener {
        ChangeListener {
            url: self.url.clone(),
            conn: Mutex::new(None),
        }
    }

    /// Runs `f` on the connection, connecting first when there is none; a failed statement
    /// drops the connection (the next call connects again). `None`: an earlier call still
    /// holds it.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        let mut slot = self.conn.try_lock().ok()?;
        if slot.is_none() {
            match PgConnection::establish(&self.url) {
                Ok(c) => *slot = Some(c),
                Err(e) => return Some(Err(StoreError::Connect(e.to_string()))),
            }
        }
        let conn = slot.as_mut()?;
        let result = f(conn);
        if result.is_err() {
            *slot = None;
        }
        Some(result)
    }

    /// One heartbeat of instance `me`: takes the lease when it is free or expired (or renews
    /// it when `me` holds it) for `lease_ms`, writes `me`'s row with the role that gives, and
    /// reads the lease and the instances. `None`: the previous beat is still waiting.
    pub fn beat(&self, me: &Instance, lease_ms: u64) -> Option<Result<Beat, StoreError>> {
        self.with_conn(|c| {
            let taken: Vec<TermRow> = diesel::sql_query(format!(
                "UPDATE cluster_lease SET \
                   term = CASE WHEN leader_id = $1 AND expires_at > n.now THEN term ELSE term + 1 END, \
                   previous_leader = CASE WHEN leader_id = $1 AND expires_at > n.now \
                     THEN previous_leader ELSE leader_id END, \
                   elected_at = CASE WHEN leader_id = $1 AND expires_at > n.now \
                     THEN elected_at ELSE n.now END, \
                   leader_id = $1, \
                   expires_at = n.now + $2 \
                 FROM (SELECT {DB_NOW} AS now) n \
                 WHERE name = 'leader' AND (leader_id = $1 OR expires_at <= n.now) \
                 RETURNING term"
            ))
            .bind::<Text, _>(&me.id)
            .bind::<BigInt, _>(lease_ms as i64)
            .get_results(c)?;
            let leading = !taken.is_empty();
            let role = if leading { "leader" } else { "follower" };
            diesel::sql_query(format!(
                "INSERT INTO instances (id, address, version, role, started_at, last_seen) \
                 VALUES ($1, $2, $3, $4, $5, {DB_NOW}) \
                 ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address, \
                   version = EXCLUDED.version, role = EXCLUDED.role, \
                   started_at = EXCLUDED.started_at, last_seen = EXCLUDED.last_seen"
            ))
            .bind::<Text, _>(&me.id)
            .bind::<Text, _>(&me.address)
            .bind::<Text, _>(&me.version)
            .bind::<Text, _>(role)
            .bind::<BigInt, _>(me.started_at)
            .execute(c)?;
            diesel::sql_query(format!(
                "DELETE FROM instances WHERE last_seen < {DB_NOW} - {FORGET_AFTER_MS}"
            ))
            .execute(c)?;
            let lease: LeaseRow = diesel::sql_query(format!(
                "SELECT leader_id, term, expires_at, elected_at, previous_leader, {DB_NOW} AS now \
                 FROM cluster_lease WHERE name = 'leader'"
            ))
            .get_result(c)?;
            let instances: Vec<InstanceRow> = diesel::sql_query(
                "SELECT id, address, version, role, started_at, last_seen FROM instances \
                 ORDER BY id",
            )
            .get_results(c)?;
            let changes = versions(c)?;
            Ok(Beat {
                leading,
                changes,
                now: lease.now,
                lease: Lease {
                    leader_id: lease.leader_id,
                    term: lease.term,
                    expires_at: lease.expires_at,
                    elected_at: lease.elected_at,
                    previous_leader: lease.previous_leader,
                },
                instances: instances
                    .into_iter()
                    .map(|r| Instance {
                        id: r.id,
                        address: r.address,
                        version: r.version,
                        role: r.role,
                        started_at: r.started_at,
                        last_seen: r.last_seen,
                    })
                    .collect(),
            })
        })
    }

    /// At shutdown: gives the lease up (when `me` holds it) so another instance takes over at
    /// its next beat, and marks `me` stopped.
    pub fn leave(&self, me: &str) -> Option<Result<(), StoreError>> {
        self.with_conn(|c| {
            diesel::sql_query(
                "UPDATE cluster_lease SET expires_at = 0 WHERE name = 'leader' AND leader_id = $1",
            )
            .bind::<Text, _>(me)
            .execute(c)?;
            diesel::sql_query("UPDATE instances SET role = 'stopped' WHERE id = $1")
                .bind::<Text, _>(me)
                .execute(c)?;
            Ok(())
        })
    }
}

impl super::Store {
    /// In a cluster, leases are decided in the database: under a transaction lock every
    /// instance takes in turn, `decide` gets every stored lease and answers the leases to add,
    /// which are stored before the lock goes. With SQLite (one instance, whose Allocator
    /// decides alone) it is the same without the lock.
    pub fn decide_lease<T>(
        &self,
        decide: impl FnOnce(Vec<super::models::LeaseRow>) -> (Vec<super::models::LeaseRow>, T),
    ) -> Result<(T, Vec<super::models::LeaseRow>), StoreError> {
        use super::schema::leases;
        let mut conn = self.conn()?;
        let super::AnyConnection::Postgres(c) = &mut *conn else {
            drop(conn);
            let mut rows = self.load_leases()?;
            let (new, answer) = decide(rows.clone());
            for row in new {
                self.insert_lease(&row)?;
                rows.push(row);
            }
            return Ok((answer, rows));
        };
        let r = c.transaction(|c| {
            diesel::sql_query("SELECT pg_advisory_xact_lock(7236414302)").execute(c)?;
            let mut rows: Vec<super::models::LeaseRow> = leases::table
                .select(super::models::LeaseRow::as_select())
                .load(c)?;
            let (new, answer) = decide(rows.clone());
            for chunk in new.chunks(super::ROWS_PER_STATEMENT) {
                diesel::insert_into(leases::table)
                    .values(chunk)
                    .execute(c)?;
            }
            rows.extend(new);
            Ok::<_, diesel::result::Error>((answer, rows))
        })?;
        Ok(r)
    }

    /// Claims the checks of `keys` for instance `me`, each held `hold_ms` (database time):
    /// answers the keys claimed here and those not stored yet. The others are held by another
    /// instance (or being claimed right now: `SKIP LOCKED`), whose verdict comes through the
    /// store. With SQLite every key is claimed.
    pub fn claim_checks(
        &self,
        keys: &[String],
        me: &str,
        hold_ms: i64,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let mut conn = self.conn()?;
        let super::AnyConnection::Postgres(c) = &mut *conn else {
            return Ok((keys.to_vec(), Vec::new()));
        };
        #[derive(QueryableByName)]
        struct Url {
            #[diesel(sql_type = Text)]
            url: String,
        }
        let claimed: Vec<Url> = diesel::sql_query(format!(
            "WITH c AS (SELECT url FROM proxies WHERE url = ANY($1) \
               AND (check_claimed_until IS NULL OR check_claimed_until < {DB_NOW} \
                    OR check_claimed_by = $2) \
               FOR UPDATE SKIP LOCKED) \
             UPDATE proxies p SET check_claimed_by = $2, \
               check_claimed_until = {DB_NOW} + $3 \
             FROM c WHERE p.url = c.url RETURNING p.url"
        ))
        .bind::<diesel::sql_types::Array<Text>, _>(keys)
        .bind::<Text, _>(me)
        .bind::<BigInt, _>(hold_ms)
        .get_results(c)?;
        let stored: Vec<Url> = diesel::sql_query("SELECT url FROM proxies WHERE url = ANY($1)")
            .bind::<diesel::sql_types::Array<Text>, _>(keys)
            .get_results(c)?;
        let stored: std::collections::HashSet<String> = stored.into_iter().map(|u| u.url).collect();
        let unstored = (keys.iter())
            .filter(|k| !stored.contains(*k))
            .cloned()
            .collect();
        Ok((claimed.into_iter().map(|u| u.url).collect(), unstored))
    }

    /// Claims the repair of `monitor` for instance `me` leading in `term`: true when `me` still
    /// holds the lease in that term (database time) and no repair of it was claimed within the
    /// last `cooldown_ms`. Always true with SQLite (one instance).
    pub fn claim_repair(
        &self,
        monitor: &str,
        me: &str,
        term: i64,
        cooldown_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let super::AnyConnection::Postgres(c) = &mut *conn else {
            return Ok(true);
        };
        let claimed: Vec<TermRow> = diesel::sql_query(format!(
            "INSERT INTO repair_claims (monitor, instance, term, claimed_at) \
             SELECT $1, $2, $3, n.now FROM (SELECT {DB_NOW} AS now) n \
             WHERE {} \
             ON CONFLICT (monitor) DO UPDATE SET instance = EXCLUDED.instance, \
               term = EXCLUDED.term, claimed_at = EXCLUDED.claimed_at \
             WHERE repair_claims.claimed_at < EXCLUDED.claimed_at - $4 \
             RETURNING term",
            holds_lease("$2", "$3")
        ))
        .bind::<Text, _>(monitor)
        .bind::<Text, _>(me)
        .bind::<BigInt, _>(term)
        .bind::<BigInt, _>(cooldown_ms)
        .get_results(c)?;
        Ok(!claimed.is_empty())
    }
}

/// A connection of its own that LISTENs for the changes other instances NOTIFY.
pub struct ChangeListener {
    url: String,
    conn: Mutex<Option<PgConnection>>,
}

impl ChangeListener {
    /// The changes noticed since the last call, without waiting for any. On a new connection
    /// (the first call, or after one failed) it listens first and answers every topic's
    /// version, so nothing NOTIFYed while it was not listening is missed.
    pub fn take(&self) -> Result<Vec<(Topic, i64)>, StoreError> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut changes = Vec::new();
        if slot.is_none() {
            let mut c = PgConnection::establish(&self.url)
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            diesel::sql_query(format!("LISTEN {CHANGES_CHANNEL}")).execute(&mut c)?;
            changes = versions(&mut c)?;
            *slot = Some(c);
        }
        let Some(c) = slot.as_mut() else {
            return Ok(changes);
        };
        let mut failed = None;
        for n in c.notifications_iter() {
            match n {
                Ok(n) => match Topic::parse_notice(&n.payload) {
                    Some(change) => changes.push(change),
                    None => log::debug!("cluster: a notice not understood: {:?}", n.payload),
                },
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            *slot = None;
            return Err(e.into());
        }
        Ok(changes)
    }
}

/// What became of a claim on an alert delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryClaim {
    /// Claimed here: send it.
    Claimed,
    /// Held by another instance (its send may be on its way), or this one no longer leads in
    /// that term: not now.
    Held,
    /// No longer pending (sent or given up by another instance, or gone): nothing to do.
    Settled,
}

#[derive(QueryableByName)]
struct StateRow {
    #[diesel(sql_type = Text)]
    state: String,
}

impl super::Store {
    /// Claims the delivery of alert `alert_id` to `channel` for instance `me` leading in
    /// `term`, for `hold_ms` (database time): granted while the delivery is pending, `me`
    /// holds the lease in that term and no other instance holds a claim on it that has not
    /// run out. The outcome's write (`update_delivery`) lets the claim go. Always `Claimed`
    /// with SQLite (one instance).
    pub fn claim_delivery(
        &self,
        alert_id: i64,
        channel: &str,
        me: &str,
        term: i64,
        hold_ms: i64,
    ) -> Result<DeliveryClaim, StoreError> {
        let mut conn = self.conn()?;
        let super::AnyConnection::Postgres(c) = &mut *conn else {
            return Ok(DeliveryClaim::Claimed);
        };
        let claimed = diesel::sql_query(format!(
            "UPDATE alert_deliveries d SET claimed_by = $3, claimed_until = n.now + $5 \
             FROM (SELECT {DB_NOW} AS now) n \
             WHERE d.alert_id = $1 AND d.channel = $2 AND d.state = 'pending' \
               AND (d.claimed_until IS NULL OR d.claimed_until < n.now OR d.claimed_by = $3) \
               AND {}",
            holds_lease("$3", "$4")
        ))
        .bind::<BigInt, _>(alert_id)
        .bind::<Text, _>(channel)
        .bind::<Text, _>(me)
        .bind::<BigInt, _>(term)
        .bind::<BigInt, _>(hold_ms)
        .execute(c)?;
        if claimed == 1 {
            return Ok(DeliveryClaim::Claimed);
        }
        let state: Option<StateRow> = diesel::sql_query(
            "SELECT state FROM alert_deliveries WHERE alert_id = $1 AND channel = $2",
        )
        .bind::<BigInt, _>(alert_id)
        .bind::<Text, _>(channel)
        .get_result(c)
        .optional()?;
        Ok(match state {
            Some(s) if s.state == super::alerts::PENDING => DeliveryClaim::Held,
            _ => DeliveryClaim::Settled,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timeouts_are_added_to_the_url() {
        let u = super::with_timeouts("postgres://h/db", 2500);
        assert!(u.starts_with("postgres://h/db?connect_timeout=3&"), "{u}");
        assert!(u.contains("tcp_user_timeout=2500"), "{u}");
        assert!(u.contains("statement_timeout%3D2500"), "{u}");
        let u = super::with_timeouts("postgres://h/db?sslmode=disable", 1000);
        assert!(
            u.starts_with("postgres://h/db?sslmode=disable&connect_timeout=1&"),
            "{u}"
        );
    }
}
