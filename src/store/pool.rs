//! The pool as the store keeps it: rows read back as records (the managed proxies' definitions
//! attached), for the TierBalancer at start and after a restart, and for the ResurrectionManager.

use super::models::ProxyRow;
use super::{Store, StoreError};
use crate::clock::now_ms;
use crate::domain::record::{attach_managed, ProxyRecord};

impl Store {
    /// The stored pool, managed proxies included (stored health rows of managed proxies whose
    /// definition is gone are deleted).
    pub fn load_pool(&self) -> Result<Vec<ProxyRecord>, StoreError> {
        let mut defs = Vec::new();
        for row in self.load_managed()? {
            let name = row.name.clone();
            match row.into_def() {
                Ok(d) => defs.push(d),
                Err(e) => log::warn!("store: skipping managed proxy `{name}`: {e}"),
            }
        }
        let (records, orphans) = attach_managed(records_of(self.load_proxies()?), &defs, now_ms());
        self.write_batch(&[], &orphans)?;
        Ok(records)
    }
}

impl Store {
    /// The rows checked or first seen after `since` (Unix ms), as records; managed proxies'
    /// rows are left out (their definitions come from the config and the admin API).
    pub fn load_changed(&self, since: i64) -> Result<Vec<ProxyRecord>, StoreError> {
        use super::schema::proxies;
        use super::AnyConnection;
        use diesel::prelude::*;
        let mut conn = self.conn()?;
        let rows = on_conn!(&mut *conn, |c| proxies::table
            .filter(
                proxies::last_checked_at
                    .gt(since)
                    .or(proxies::first_seen_at.gt(since)),
            )
            .filter(proxies::source.ne(crate::domain::record::MANAGED_SOURCE))
            .select(ProxyRow::as_select())
            .load(c))?;
        Ok(records_of(rows))
    }
}

/// Stored rows as records; rows that do not make a valid record are skipped with a warning.
pub fn records_of(rows: Vec<ProxyRow>) -> Vec<ProxyRecord> {
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let url = row.url.clone();
        match row.into_record() {
            Ok(r) => records.push(r),
            Err(e) => log::warn!("store: skipping stored proxy {url}: {e}"),
        }
    }
    records
}
