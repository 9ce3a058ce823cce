//! What instances keep in memory and another one may change (`domain::cluster::Topic`): each
//! topic's version in `cluster_changes`, raised with every change in its transaction along
//! with a NOTIFY on `proxyvisor_changes` (`topic:version`). PostgreSQL only.

use crate::domain::cluster::Topic;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

/// The channel instances LISTEN on for changes (`domain::cluster::Topic`).
pub(super) const CHANGES_CHANNEL: &str = "proxyvisor_changes";

#[derive(QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    topic: String,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// Raises the version of `topic` and NOTIFYs it, on `c` (in the caller's transaction, if any:
/// the notice goes out when it commits).
pub fn note_change(c: &mut PgConnection, topic: Topic) -> QueryResult<()> {
    diesel::sql_query(format!(
        "WITH v AS (INSERT INTO cluster_changes (topic, version) VALUES ($1, 1) \
           ON CONFLICT (topic) DO UPDATE SET version = cluster_changes.version + 1 \
           RETURNING version) \
         SELECT pg_notify('{CHANGES_CHANNEL}', $1 || ':' || v.version) FROM v"
    ))
    .bind::<Text, _>(topic.as_str())
    .execute(c)?;
    Ok(())
}

/// The versions of every topic changed so far.
pub(super) fn versions(c: &mut PgConnection) -> QueryResult<Vec<(Topic, i64)>> {
    let rows: Vec<VersionRow> =
        diesel::sql_query("SELECT topic, version FROM cluster_changes").get_results(c)?;
    Ok((rows.into_iter())
        .filter_map(|r| Some((Topic::parse(&r.topic)?, r.version)))
        .collect())
}
