//! Gateway traffic per proxy per hour per session: batches add to the rows they touch, so a
//! batch written twice would count twice (the Accountant writes each once) and rows from
//! several writers add up.

use super::schema::usage;
use super::{AnyConnection, Store, StoreError};
use crate::domain::usage::{Slot, Tally};
use diesel::prelude::*;
use diesel::upsert::excluded;

#[derive(Clone, Debug, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = usage)]
pub struct UsageRow {
    pub hour: i64,
    pub proxy: String,
    pub session: String,
    pub requests: i64,
    pub failures: i64,
    pub bytes_up: i64,
    pub bytes_down: i64,
    pub cost: f64,
}

fn i(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

impl UsageRow {
    pub fn new(slot: &Slot, t: &Tally) -> UsageRow {
        UsageRow {
            hour: slot.hour,
            proxy: slot.proxy.clone(),
            session: slot.session.clone(),
            requests: i(t.requests),
            failures: i(t.failures),
            bytes_up: i(t.bytes_up),
            bytes_down: i(t.bytes_down),
            cost: t.cost,
        }
    }

    pub fn slot(&self) -> Slot {
        Slot {
            hour: self.hour,
            proxy: self.proxy.clone(),
            session: self.session.clone(),
        }
    }

    pub fn tally(&self) -> Tally {
        Tally {
            requests: u(self.requests),
            failures: u(self.failures),
            bytes_up: u(self.bytes_up),
            bytes_down: u(self.bytes_down),
            cost: if self.cost.is_finite() {
                self.cost
            } else {
                0.0
            },
        }
    }
}

/// `INSERT ... ON CONFLICT (hour, proxy, session) DO UPDATE` adding the new counts.
macro_rules! add_usage {
    ($values:expr) => {
        diesel::insert_into(usage::table)
            .values($values)
            .on_conflict((usage::hour, usage::proxy, usage::session))
            .do_update()
            .set((
                usage::requests.eq(usage::requests + excluded(usage::requests)),
                usage::failures.eq(usage::failures + excluded(usage::failures)),
                usage::bytes_up.eq(usage::bytes_up + excluded(usage::bytes_up)),
                usage::bytes_down.eq(usage::bytes_down + excluded(usage::bytes_down)),
                usage::cost.eq(usage::cost + excluded(usage::cost)),
            ))
    };
}

impl Store {
    /// Adds these counts in one transaction.
    pub fn add_usage(&self, rows: &[UsageRow]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        on_conn!(&mut *conn, |c| c.transaction(|c| {
            for row in rows {
                add_usage!(row).execute(c)?;
            }
            Ok::<_, diesel::result::Error>(())
        }))?;
        Ok(())
    }

    /// The rows of the hours in `[from, to)` (unix ms).
    pub fn load_usage(&self, from: i64, to: i64) -> Result<Vec<UsageRow>, StoreError> {
        let mut conn = self.conn()?;
        let rows = on_conn!(&mut *conn, |c| usage::table
            .filter(usage::hour.ge(from))
            .filter(usage::hour.lt(to))
            .select(UsageRow::as_select())
            .load(c))?;
        Ok(rows)
    }
}
