//! Monitors created through the admin API: stored before they are answered, loaded at start.

use super::schema::monitors;
use super::{AnyConnection, Store, StoreError};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = monitors)]
pub struct MonitorRow {
    pub name: String,
    /// The JSON of a `[[monitors]]` table.
    pub definition: String,
    pub created_at: i64,
}

impl Store {
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
        on_conn!(&mut *conn, |c| diesel::insert_into(monitors::table)
            .values(row)
            .execute(c))?;
        Ok(())
    }

    /// `Ok(false)` when there is no such monitor.
    pub fn delete_monitor(&self, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = on_conn!(&mut *conn, |c| diesel::delete(monitors::table.find(name))
            .execute(c))?;
        Ok(n > 0)
    }
}
