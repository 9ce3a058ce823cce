//! The alerts and their outbox (`alerts`, `alert_deliveries`): rows and queries. An alert is
//! stored with one pending delivery per configured channel, in one transaction, before it counts
//! as queued; the Alerter reloads pending deliveries at start.

use super::schema::{alert_deliveries, alerts};
use super::{AnyConnection, Store, StoreError};
use diesel::prelude::*;

pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = alerts)]
pub struct AlertRow {
    pub id: i64,
    pub kind: String,
    pub key: String,
    pub severity: String,
    pub message: String,
    pub repeats: i32,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

/// An alert to store (its id comes from the store).
#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = alerts)]
pub struct NewAlertRow {
    pub kind: String,
    pub key: String,
    pub severity: String,
    pub message: String,
    pub repeats: i32,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

#[derive(
    Clone, Debug, PartialEq, Queryable, Selectable, Insertable, serde::Serialize, serde::Deserialize,
)]
#[diesel(table_name = alert_deliveries)]
pub struct DeliveryRow {
    pub alert_id: i64,
    pub channel: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub sent_at: Option<i64>,
}

impl DeliveryRow {
    pub fn pending(alert_id: i64, channel: &str, at: i64) -> Self {
        DeliveryRow {
            alert_id,
            channel: channel.to_string(),
            state: PENDING.into(),
            attempts: 0,
            last_error: None,
            next_attempt_at: Some(at),
            sent_at: None,
        }
    }
}

/// What became of an alert given to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Stored, with its deliveries.
    New(i64),
    /// Folded into this open alert another instance stored (no new delivery).
    Folded(i64),
    /// Another instance closed (some of) what it would close: that one told the recovery;
    /// not stored.
    AlreadyClosed,
}

/// What follows the insert of an alert, the same on both backends: its deliveries, and the
/// alerts it closes.
macro_rules! after_insert {
    ($c:expr, $id:expr, $channels:expr, $close:expr, $at:expr) => {{
        for channel in $channels {
            diesel::insert_into(alert_deliveries::table)
                .values(DeliveryRow::pending($id, channel, $at))
                .execute($c)?;
        }
        if !$close.is_empty() {
            diesel::update(alerts::table.filter(alerts::id.eq_any($close)))
                .set((alerts::closed_at.eq(Some($at)), alerts::updated_at.eq($at)))
                .execute($c)?;
        }
    }};
}

impl Store {
    /// Stores an alert with a pending delivery (due at once) for each channel and closes the
    /// alerts `close`, in one transaction.
    ///
    /// On PostgreSQL several instances may raise the same alert: one that opens folds into an
    /// open alert of the same kind and key stored less than `cooldown_ms` before it
    /// (`Stored::Folded`; a transaction lock on the kind and key makes concurrent raises wait
    /// for each other), one whose alerts to close were closed meanwhile by another
    /// instance is not stored (`Stored::AlreadyClosed`), and one that neither opens nor closes
    /// anything (the daily report) folds into one of the same kind and key stored within `cooldown_ms`.
    pub fn insert_alert(
        &self,
        alert: &NewAlertRow,
        channels: &[&str],
        close: &[i64],
        cooldown_ms: i64,
    ) -> Result<Stored, StoreError> {
        let at = alert.created_at;
        let mut conn = self.conn()?;
        let stored = match &mut *conn {
            AnyConnection::Postgres(c) => c.transaction(|c| {
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind::<diesel::sql_types::Text, _>(format!(
                        "alert:{}:{}",
                        alert.kind, alert.key
                    ))
                    .execute(c)?;
                if !close.is_empty() {
                    // One of them closed already: another instance told the recovery (this
                    // one closes what it knew and the other did not).
                    let closed_before: i64 = alerts::table
                        .filter(alerts::id.eq_any(close))
                        .filter(alerts::closed_at.is_not_null())
                        .count()
                        .get_result(c)?;
                    diesel::update(
                        alerts::table
                            .filter(alerts::id.eq_any(close))
                            .filter(alerts::closed_at.is_null()),
                    )
                    .set((alerts::closed_at.eq(Some(at)), alerts::updated_at.eq(at)))
                    .execute(c)?;
                    if closed_before > 0 {
                        return Ok(Stored::AlreadyClosed);
                    }
                }
                if alert.closed_at.is_some() && close.is_empty() && cooldown_ms > 0 {
                    // Told once, opening nothing (the daily report): one that another
                    // instance stored within the cooldown stands for it.
                    let told: Option<i64> = alerts::table
                        .filter(alerts::kind.eq(&alert.kind))
                        .filter(alerts::key.eq(&alert.key))
                        .filter(alerts::created_at.gt(at - cooldown_ms))
                        .select(alerts::id)
                        .first(c)
                        .optional()?;
                    if let Some(id) = told {
                        return Ok(Stored::Folded(id));
                    }
                }
                if alert.closed_at.is_none() {
                    let open: Option<i64> = alerts::table
                        .filter(alerts::kind.eq(&alert.kind))
                        .filter(alerts::key.eq(&alert.key))
                        .filter(alerts::closed_at.is_null())
                        .filter(alerts::created_at.gt(at - cooldown_ms))
                        .select(alerts::id)
                        .order(alerts::created_at.desc())
                        .first(c)
                        .optional()?;
                    if let Some(id) = open {
                        diesel::update(alerts::table.find(id))
                            .set((
                                alerts::repeats.eq(alerts::repeats + 1),
                                alerts::updated_at.eq(at),
                            ))
                            .execute(c)?;
                        return Ok(Stored::Folded(id));
                    }
                }
                let id: i64 = diesel::insert_into(alerts::table)
                    .values(alert)
                    .returning(alerts::id)
                    .get_result(c)?;
                after_insert!(c, id, channels, &[] as &[i64], at);
                Ok::<_, diesel::result::Error>(Stored::New(id))
            })?,
            AnyConnection::Sqlite(c) => c.transaction(|c| {
                diesel::insert_into(alerts::table)
                    .values(alert)
                    .execute(c)?;
                let id: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "last_insert_rowid()",
                ))
                .get_result(c)?;
                after_insert!(c, id, channels, close, at);
                Ok::<_, diesel::result::Error>(Stored::New(id))
            })?,
        };
        Ok(stored)
    }

    /// Deletes closed alerts last changed before `before` (unix ms) that have no pending
    /// delivery, with their deliveries; answers how many alerts went.
    pub fn prune_alerts(&self, before: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let n = on_conn!(&mut *conn, |c| c.transaction(|c| {
            let pending: std::collections::HashSet<i64> = alert_deliveries::table
                .filter(alert_deliveries::state.eq(PENDING))
                .select(alert_deliveries::alert_id)
                .load::<i64>(c)?
                .into_iter()
                .collect();
            let old: Vec<i64> = alerts::table
                .filter(alerts::closed_at.is_not_null())
                .filter(alerts::updated_at.lt(before))
                .select(alerts::id)
                .load::<i64>(c)?
                .into_iter()
                .filter(|id| !pending.contains(id))
                .collect();
            for chunk in old.chunks(500) {
                diesel::delete(
                    alert_deliveries::table.filter(alert_deliveries::alert_id.eq_any(chunk)),
                )
                .execute(c)?;
                diesel::delete(alerts::table.filter(alerts::id.eq_any(chunk))).execute(c)?;
            }
            Ok::<_, diesel::result::Error>(old.len())
        }))?;
        Ok(n)
    }

    /// Counts a repeat on an open alert.
    pub fn fold_alert(&self, id: i64, repeats: u32, at: i64) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        on_conn!(&mut *conn, |c| diesel::update(alerts::table.find(id))
            .set((
                alerts::repeats.eq(repeats.min(i32::MAX as u32) as i32),
                alerts::updated_at.eq(at),
            ))
            .execute(c))?;
        Ok(())
    }

    /// Open alerts, newest first, at most `limit`.
    pub fn load_open_alerts(&self, limit: i64) -> Result<Vec<AlertRow>, StoreError> {
        let mut conn = self.conn()?;
        let rows = on_conn!(&mut *conn, |c| alerts::table
            .filter(alerts::closed_at.is_null())
            .order(alerts::id.desc())
            .limit(limit)
            .select(AlertRow::as_select())
            .load(c))?;
        Ok(rows)
    }

    pub fn load_alert(&self, id: i64) -> Result<Option<AlertRow>, StoreError> {
        let mut conn = self.conn()?;
        let row = on_conn!(&mut *conn, |c| alerts::table
            .find(id)
            .select(AlertRow::as_select())
            .first(c)
            .optional())?;
        Ok(row)
    }

    /// Every pending delivery with its alert's creation time, oldest alert first.
    pub fn load_pending_deliveries(&self) -> Result<Vec<(DeliveryRow, i64)>, StoreError> {
        let mut conn = self.conn()?;
        let rows = on_conn!(&mut *conn, |c| alert_deliveries::table
            .inner_join(alerts::table)
            .filter(alert_deliveries::state.eq(PENDING))
            .order(alert_deliveries::alert_id.asc())
            .select((DeliveryRow::as_select(), alerts::created_at))
            .load(c))?;
        Ok(rows)
    }

    /// Writes a delivery's state after an attempt, if it is still pending (another instance
    /// may have settled it meanwhile: that outcome stands), and lets its claim go (PostgreSQL).
    pub fn update_delivery(&self, row: &DeliveryRow) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let target = alert_deliveries::table
            .filter(alert_deliveries::alert_id.eq(row.alert_id))
            .filter(alert_deliveries::channel.eq(&row.channel))
            .filter(alert_deliveries::state.eq(PENDING));
        let values = (
            alert_deliveries::state.eq(&row.state),
            alert_deliveries::attempts.eq(row.attempts),
            alert_deliveries::last_error.eq(&row.last_error),
            alert_deliveries::next_attempt_at.eq(row.next_attempt_at),
            alert_deliveries::sent_at.eq(row.sent_at),
        );
        match &mut *conn {
            AnyConnection::Postgres(c) => c.transaction(|c| {
                diesel::update(target).set(values).execute(c)?;
                diesel::sql_query(
                    "UPDATE alert_deliveries SET claimed_by = NULL, claimed_until = NULL \
                     WHERE alert_id = $1 AND channel = $2 AND claimed_by IS NOT NULL",
                )
                .bind::<diesel::sql_types::BigInt, _>(row.alert_id)
                .bind::<diesel::sql_types::Text, _>(&row.channel)
                .execute(c)?;
                Ok::<_, diesel::result::Error>(())
            })?,
            AnyConnection::Sqlite(c) => {
                diesel::update(target).set(values).execute(c)?;
            }
        }
        Ok(())
    }

    /// The newest `limit` alerts with their deliveries.
    pub fn recent_alerts(
        &self,
        limit: i64,
    ) -> Result<Vec<(AlertRow, Vec<DeliveryRow>)>, StoreError> {
        let mut conn = self.conn()?;
        let (rows, deliveries) = on_conn!(&mut *conn, |c| {
            let rows: Vec<AlertRow> = alerts::table
                .order(alerts::id.desc())
                .limit(limit)
                .select(AlertRow::as_select())
                .load(c)?;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let mut deliveries: Vec<DeliveryRow> = Vec::new();
            for chunk in ids.chunks(super::ROWS_PER_STATEMENT) {
                deliveries.extend(
                    alert_deliveries::table
                        .filter(alert_deliveries::alert_id.eq_any(chunk))
                        .select(DeliveryRow::as_select())
                        .load(c)?,
                );
            }
            Ok::<_, diesel::result::Error>((rows, deliveries))
        })?;
        let mut by_alert: std::collections::HashMap<i64, Vec<DeliveryRow>> = Default::default();
        for d in deliveries {
            by_alert.entry(d.alert_id).or_default().push(d);
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let mut d = by_alert.remove(&r.id).unwrap_or_default();
                d.sort_by(|a, b| a.channel.cmp(&b.channel));
                (r, d)
            })
            .collect())
    }

    /// Kinds of the alerts created since `since` (unix ms), one per alert.
    pub fn alert_kinds_since(&self, since: i64) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let kinds = on_conn!(&mut *conn, |c| alerts::table
            .filter(alerts::created_at.ge(since))
            .select(alerts::kind)
            .load(c))?;
        Ok(kinds)
    }
}
