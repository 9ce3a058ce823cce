//! The store: SQLite by default, PostgreSQL when the URL says so, through one diesel code path.
//! Every method blocks: async code calls them through [`Store::call`], never on an event loop.

pub mod models;
pub mod schema;

use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel::upsert::excluded;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use models::{LeaseRow, ManagedRow, ProxyRow};
use schema::{leases, managed_proxies, proxies};
use std::path::PathBuf;
use std::time::Duration;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// SQLite limits the variables of one statement; 25 columns × 400 rows stays well under it.
const ROWS_PER_STATEMENT: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the store: {0}")]
    Connect(String),
    #[error("store query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("store migration failed: {0}")]
    Migration(String),
    /// The blocking task running the call panicked or was cancelled.
    #[error("the store task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// A uniqueness constraint refused the write (a name or URL taken).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Which database, chosen from the URL's scheme (never by trying each in turn).
#[derive(Clone, Debug, PartialEq)]
pub enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, String> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err("has no file path after sqlite://".into());
            }
            Ok(Backend::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres(url.to_string()))
        } else {
            Err("must start with sqlite:// or postgres://".into())
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Where the service keeps its own files (the admin token): beside the SQLite file, or `data/`.
    pub fn data_dir(&self) -> PathBuf {
        match self {
            Backend::Sqlite(p) => p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
            Backend::Postgres(_) => PathBuf::from("data"),
        }
    }
}

/// One connection of either backend. Queries that both share are written once in the
/// `on_conn!` macro below and compiled for each.
pub enum AnyConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs the same diesel code on whichever connection this is.
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            AnyConnection::Postgres($c) => $body,
            AnyConnection::Sqlite($c) => $body,
        }
    };
}

/// `on_conn!` for a change other instances keep in memory: on PostgreSQL the write and the
/// raise of `topic`'s version (with its NOTIFY) are one transaction, so a change is never
/// stored without the others hearing of it.
macro_rules! changing {
    ($conn:expr, $topic:expr, |$c:ident| $body:expr) => {
        match $conn {
            AnyConnection::Postgres($c) => $c.transaction(|$c| {
                let r = $body?;
                crate::store::changes::note_change($c, $topic)?;
                Ok::<_, diesel::result::Error>(r)
            }),
            AnyConnection::Sqlite($c) => $body,
        }
    };
}

// After `on_conn!` and `changing!`, which they use.
pub mod alerts;
pub mod changes;
pub mod cluster;
pub mod journal;
pub mod monitors;
pub mod pool;
pub mod usage;

/// `INSERT ... ON CONFLICT (url) DO UPDATE` of every column but the key and `first_seen_at`.
macro_rules! upsert_proxies {
    ($values:expr) => {
        diesel::insert_into(proxies::table)
            .values($values)
            .on_conflict(proxies::url)
            .do_update()
            .set((
                proxies::protocol.eq(excluded(proxies::protocol)),
                proxies::host.eq(excluded(proxies::host)),
                proxies::port.eq(excluded(proxies::port)),
                proxies::username.eq(excluded(proxies::username)),
                proxies::password.eq(excluded(proxies::password)),
                proxies::source.eq(excluded(proxies::source)),
                proxies::kind.eq(excluded(proxies::kind)),
                proxies::cost_per_gb.eq(excluded(proxies::cost_per_gb)),
                proxies::priority.eq(excluded(proxies::priority)),
                proxies::anonymity.eq(excluded(proxies::anonymity)),
                proxies::country.eq(excluded(proxies::country)),
                proxies::tier.eq(excluded(proxies::tier)),
                proxies::deaths.eq(excluded(proxies::deaths)),
                proxies::consecutive_passes.eq(excluded(proxies::consecutive_passes)),
                proxies::consecutive_failures.eq(excluded(proxies::consecutive_failures)),
                proxies::checks_total.eq(excluded(proxies::checks_total)),
                proxies::checks_ok.eq(excluded(proxies::checks_ok)),
                proxies::latency_ms.eq(excluded(proxies::latency_ms)),
                proxies::last_checked_at.eq(excluded(proxies::last_checked_at)),
                proxies::last_ok_at.eq(excluded(proxies::last_ok_at)),
                proxies::dead_since.eq(excluded(proxies::dead_since)),
                proxies::last_status.eq(excluded(proxies::last_status)),
                proxies::latency_total_ms.eq(excluded(proxies::latency_total_ms)),
            ))
    };
}

/// `UPDATE managed_proxies` of everything but the name and creation time.
macro_rules! update_managed {
    ($row:expr) => {
        diesel::update(managed_proxies::table.find(&$row.name)).set((
            managed_proxies::url.eq(&$row.url),
            managed_proxies::username.eq(&$row.username),
            managed_proxies::password.eq(&$row.password),
            managed_proxies::kind.eq(&$row.kind),
            managed_proxies::cost_per_gb.eq($row.cost_per_gb),
            managed_proxies::priority.eq($row.priority),
            managed_proxies::max_leases.eq($row.max_leases),
            managed_proxies::origin.eq(&$row.origin),
            managed_proxies::daily_cost_limit.eq($row.daily_cost_limit),
            managed_proxies::daily_cost_cap.eq($row.daily_cost_cap),
            managed_proxies::updated_at.eq($row.updated_at),
        ))
    };
}

pub struct Manager {
    backend: Backend,
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        match &self.backend {
            Backend::Postgres(url) => PgConnection::establish(url).map(AnyConnection::Postgres),
            Backend::Sqlite(path) => {
                let mut c = SqliteConnection::establish(&path.to_string_lossy())?;
                // WAL lets readers run beside the writer; busy_timeout waits out a short lock.
                diesel::connection::SimpleConnection::batch_execute(
                    &mut c,
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                )
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(AnyConnection::Sqlite(c))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        on_conn!(conn, |c| {
            diesel::connection::SimpleConnection::batch_execute(c, "SELECT 1")
        })
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
    }

    fn has_broken(&self, _conn: &mut AnyConnection) -> bool {
        false
    }
}

/// A pool of connections to the store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
}

impl Store {
    /// Runs `f` with the store on a blocking thread (diesel blocks): the one way async code
    /// calls the store. A panic in `f` or a cancelled task is a [`StoreError::Task`].
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Connects (creating the SQLite file and its folder if needed) and runs pending migrations.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        let backend = Backend::from_url(url).map_err(StoreError::Connect)?;
        if let Backend::Sqlite(path) = &backend {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Connect(format!("{}: {e}", dir.display())))?;
            }
        }
        let size = match backend {
            Backend::Sqlite(_) => 4,
            Backend::Postgres(_) => 8,
        };
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .error_handler(Box::new(r2d2::LoggingErrorHandler))
            .build(Manager {
                backend: backend.clone(),
            })
            .map_err(|e| StoreError::Connect(e.to_string()))?;
        let store = Store { pool, backend };
        store.migrate()?;
        Ok(store)
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub(crate) fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Connect(e.to_string()))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let result = match &mut *conn {
            // Instances starting together take turns (a session lock held by this
            // connection): two running the same migration at once would collide.
            AnyConnection::Postgres(c) => {
                diesel::connection::SimpleConnection::batch_execute(
                    c,
                    "SELECT pg_advisory_lock(7236414301)",
                )?;
                let r = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
                diesel::connection::SimpleConnection::batch_execute(
                    c,
                    "SELECT pg_advisory_unlock(7236414301)",
                )?;
                r
            }
            AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        };
        result.map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Is the store answering?
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        on_conn!(&mut *conn, |c| {
            diesel::connection::SimpleConnection::batch_execute(c, "SELECT 1")
        })?;
        Ok(())
    }

    pub fn load_proxies(&self) -> Result<Vec<ProxyRow>, StoreError> {
        let mut conn = self.conn()?;
        let rows = on_conn!(&mut *conn, |c| proxies::table
            .select(ProxyRow::as_select())
            .load(c))?;
        Ok(rows)
    }

    /// Which of `keys` (URLs) are stored.
    pub fn stored_keys(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let mut stored = Vec::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            stored.extend(on_conn!(&mut *conn, |c| proxies::table
                .filter(proxies::url.eq_any(chunk))
                .select(proxies::url)
                .load::<String>(c))?);
        }
        Ok(stored)
    }

    /// The proxies in one tier (`dead`, say), through the tier index.
    pub fn load_proxies_in(&self, tier: &str) -> Result<Vec<ProxyRow>, StoreError> {
        let mut conn = self.conn()?;
        let rows = on_conn!(&mut *conn, |c| proxies::table
            .filter(proxies::tier.eq(tier))
            .select(ProxyRow::as_select())
            .load(c))?;
        Ok(rows)
    }

    /// Writes one batch in one transaction: upserts by URL, then deletes.
    pub fn write_batch(&self, upserts: &[ProxyRow], deletes: &[String]) -> Result<(), StoreError> {
        if upserts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        // Batch inserts with ON CONFLICT do not compile for SQLite in diesel (no DEFAULT
        // keyword), so SQLite upserts row by row; inside one transaction that is still fast.
        match &mut *conn {
            AnyConnection::Postgres(c) => c.transaction(|c| {
                for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
                    upsert_proxies!(chunk).execute(c)?;
                }
                let mut deleted = 0;
                for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
                    deleted += diesel::delete(proxies::table.filter(proxies::url.eq_any(chunk)))
                        .execute(c)?;
                }
                if deleted > 0 {
                    changes::note_change(c, crate::domain::cluster::Topic::Proxies)?;
                }
                if !upserts.is_empty() {
                    changes::note_change(c, crate::domain::cluster::Topic::Pool)?;
                }
                Ok::<_, diesel::result::Error>(())
            })?,
            AnyConnection::Sqlite(c) => c.transaction(|c| {
                for row in upserts {
                    upsert_proxies!(row).execute(c)?;
                }
                for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
                    diesel::delete(proxies::table.filter(proxies::url.eq_any(chunk))).execute(c)?;
                }
                Ok::<_, diesel::result::Error>(())
            })?,
        }
        Ok(())
    }

    pub fn load_leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let mut conn = self.conn()?;
        let rows = on_conn!(&mut *conn, |c| leases::table
            .select(LeaseRow::as_select())
            .load(c))?;
        Ok(rows)
    }

    /// One stored lease, by id.
    pub fn load_lease(&self, id: &str) -> Result<Option<LeaseRow>, StoreError> {
        let mut conn = self.conn()?;
        let row = on_conn!(&mut *conn, |c| leases::table
            .find(id)
            .select(LeaseRow::as_select())
            .first(c)
            .optional())?;
        Ok(row)
    }

    pub fn insert_lease(&self, row: &LeaseRow) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        on_conn!(&mut *conn, |c| diesel::insert_into(leases::table)
            .values(row)
            .execute(c))?;
        Ok(())
    }

    /// Moves a lease's end; `Ok(false)` when it is not stored (released or expired through
    /// another instance).
    pub fn renew_lease(&self, id: &str, expires_at: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = on_conn!(&mut *conn, |c| diesel::update(leases::table.find(id))
            .set(leases::expires_at.eq(expires_at))
            .execute(c))?;
        Ok(n > 0)
    }

    /// Deletes leases; answers how many were stored.
    pub fn delete_leases(&self, ids: &[String]) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let mut n = 0;
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            n += on_conn!(&mut *conn, |c| diesel::delete(
                leases::table.filter(leases::id.eq_any(chunk))
            )
            .execute(c))?;
        }
        Ok(n)
    }

    pub fn load_managed(&self) -> Result<Vec<ManagedRow>, StoreError> {
        let mut conn = self.conn()?;
        let rows = on_conn!(&mut *conn, |c| managed_proxies::table
            .select(ManagedRow::as_select())
            .load(c))?;
        Ok(rows)
    }

    /// Adds a managed proxy; a taken name or URL is a conflict (`StoreError::is_conflict`).
    pub fn insert_managed(&self, row: &ManagedRow) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        changing!(&mut *conn, crate::domain::cluster::Topic::Managed, |c| {
            diesel::insert_into(managed_proxies::table)
                .values(row)
                .execute(c)
        })?;
        Ok(())
    }

    /// Replaces the definition named `row.name` (keeping its creation time); `Ok(false)` when
    /// there is none.
    pub fn update_managed(&self, row: &ManagedRow) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = changing!(&mut *conn, crate::domain::cluster::Topic::Managed, |c| {
            update_managed!(row).execute(c)
        })?;
        Ok(n > 0)
    }

    /// Removes a managed proxy's definition and its health row; `Ok(false)` when there is none.
    pub fn delete_managed(&self, name: &str, url: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = changing!(&mut *conn, crate::domain::cluster::Topic::Managed, |c| c
            .transaction(|c| {
                let n = diesel::delete(managed_proxies::table.find(name)).execute(c)?;
                diesel::delete(proxies::table.find(url)).execute(c)?;
                Ok::<_, diesel::result::Error>(n)
            }))?;
        Ok(n > 0)
    }

    /// Makes the stored definitions from the config match `rows` (all with origin `config`): each
    /// is added or replaced, one made through the API with the same URL gives way, and config
    /// ones the config no longer lists are removed.
    pub fn sync_config_managed(&self, rows: &[ManagedRow]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        on_conn!(&mut *conn, |c| c.transaction(|c| {
            let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
            diesel::delete(
                managed_proxies::table
                    .filter(managed_proxies::origin.eq("config"))
                    .filter(managed_proxies::name.ne_all(&names)),
            )
            .execute(c)?;
            for row in rows {
                diesel::delete(
                    managed_proxies::table
                        .filter(managed_proxies::url.eq(&row.url))
                        .filter(managed_proxies::name.ne(&row.name)),
                )
                .execute(c)?;
                let updated = update_managed!(row).execute(c)?;
                if updated == 0 {
                    diesel::insert_into(managed_proxies::table)
                        .values(row)
                        .execute(c)?;
                }
            }
            Ok::<_, diesel::result::Error>(())
        }))?;
        Ok(())
    }
}
