//! The resurrection schedule's numbers, as the ResurrectionManager publishes them.

use serde::Serialize;
use std::collections::BTreeMap;

/// What `GET /api/resurrection/stats` shows.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ResurrectionStats {
    /// Dead proxies by death number ("1": waiting for their first re-check, ...).
    #[schema(value_type = BTreeMap<String, usize>)]
    pub dead_by_death: BTreeMap<u32, usize>,
    pub waiting: usize,
    pub due_now: usize,
    pub next_due_at: Option<String>,
    pub attempts: u64,
    pub successes: u64,
    pub resurrection_rate: f64,
}
