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
