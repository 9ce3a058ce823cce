//! Monitors created through the admin API (stored before they are answered, loaded at start),
//! and what every monitor has seen (written behind, so uptime survives restarts).

use super::schema::{monitor_stats, monitors};
use super::{AnyConnection, Store, StoreError};
use crate::domain::cluster::Topic;
use crate::domain::service_stats::Saved;
use diesel::prelude::*;
use diesel::upsert::excluded;

#[derive(Clone, Debug, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = monitors)]
pub struct MonitorRow {
    pub name: String,
    /// The JSON of a `[[monitors]]` table.
    pub definition: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = monitor_stats)]
pub struct MonitorStatsRow {
    pub name: String,
    pub checks_total: i64,
    pub checks_ok: i64,
    pub latency_sum_ms: i64,
    pub latency_count: i64,
    pub available_ms: i64,
    pub unavailable_ms: i64,
    pub repairs: i64,
    pub predictive_restarts: i64,
    pub last_repair: Option<String>,
    pub updated_at: i64,
}

fn i(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

impl MonitorStatsRow {
    pub fn new(name: &str, s: &Saved, now: i64) -> Self {
        MonitorStatsRow {
            name: name.to_string(),
            checks_total: i(s.checks_total),
            checks_ok: i(s.checks_ok),
            latency_sum_ms: i(s.latency_sum_ms),
            latency_count: i(s.latency_count),
            available_ms: s.available_ms,
            unavailable_ms: s.unavailable_ms,
            repairs: i(s.repairs),
            predictive_restarts: i(s.predictive_restarts),
            last_repair: s
                .last_repair
                .as_ref()
                .and_then(|r| serde_json::to_string(r).ok()),
            updated_at: now,
        }
    }

    /// The stored stats; a `last_repair` that does not parse is dropped.
    pub fn saved(&self) -> Saved {
        Saved {
            checks_total: u(self.checks_total),
            checks_ok: u(self.checks_ok),
            latency_sum_ms: u(self.latency_sum_ms),
            latency_count: u(self.latency_count),
            available_ms: self.available_ms.max(0),
            unavailable_ms: self.unavailable_ms.max(0),
            repairs: u(self.repairs),
            predictive_restarts: u(self.predictive_restarts),
            last_repair: self
                .last_repair
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
        }
    }
}

/// `INSERT ... ON CONFLICT (name) DO UPDATE` of every column.
macro_rules! upsert_stats {
    ($values:expr) => {
        diesel::insert_into(monitor_stats::table)
            .values($values)
            .on_conflict(monitor_stats::name)
            .do_update()
            .set((
                monitor_stats::checks_total.eq(excluded(monitor_stats::checks_total)),
                monitor_stats::checks_ok.eq(excluded(monitor_stats::checks_ok)),
                monitor_stats::latency_sum_ms.eq(excluded(monitor_stats::latency_sum_ms)),
                monitor_stats::latency_count.eq(excluded(monitor_stats::latency_count)),
                monitor_stats::available_ms.eq(excluded(monitor_stats::available_ms)),
                monitor_stats::unavailable_ms.eq(excluded(monitor_stats::unavailable_ms)),
                monitor_stats::repairs.eq(excluded(monitor_stats::repairs)),
                monitor_stats::predictive_restarts.eq(excluded(monitor_stats::predictive_restarts)),
                monitor_stats::last_repair.eq(excluded(monitor_stats::last_repair)),
                monitor_stats::updated_at.eq(excluded(monitor_stats::updated_at)),
            ))
    };
}

impl Store {
    pub fn load_monitor_stats(&self) -> Result<Vec<MonitorStatsRow>, StoreError> {
        let mut conn = self.conn()?;
        let rows = on_conn!(&mut *conn, |c| monitor_stats::table
            .select(MonitorStatsRow::as_select())
            .load(c))?;
        Ok(rows)
    }

    /// Writes these stats in one transaction (row by row on SQLite, whose batch upserts diesel
    /// does not build).
    pub fn save_monitor_stats(&self, rows: &[MonitorStatsRow]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        match &mut *conn {
            AnyConnection::Postgres(c) => c.transaction(|c| {
                for chunk in rows.chunks(500) {
                    upsert_stats!(chunk).execute(c)?;
                }
                Ok::<_, diesel::result::Error>(())
            })?,
            AnyConnection::Sqlite(c) => c.transaction(|c| {
                for row in rows {
                    upsert_stats!(row).execute(c)?;
                }
                Ok::<_, diesel::result::Error>(())
            })?,
        }
        Ok(())
    }

    pub fn load_monitors(&self) -> Result<Vec<MonitorRow>, StoreError> {
        let mut conn = self.conn()?;
        let rows = on_conn!(&mut *conn, |c| monitors::table
            .select(MonitorRow::as_select())
            .order(monitors::created_at)
            .load(c))?;
        Ok(rows)
    }

    /// Adds a monitor; a taken name is a conflict (`StoreError::is_conflict`).
    pub fn insert_monitor(&self, row: &MonitorRow) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        changing!(&mut *conn, Topic::Monitors, |c| diesel::insert_into(
            monitors::table
        )
        .values(row)
        .execute(c))?;
        Ok(())
    }

    /// Removes a monitor and its stats; `Ok(false)` when there is no such monitor.
    pub fn delete_monitor(&self, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = changing!(&mut *conn, Topic::Monitors, |c| c.transaction(|c| {
            diesel::delete(monitor_stats::table.find(name)).execute(c)?;
            diesel::delete(monitors::table.find(name)).execute(c)
        }))?;
        Ok(n > 0)
    }
}
