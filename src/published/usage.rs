//! Gateway traffic as the Accountant publishes it: each proxy's tally today and this month
//! (UTC), today's total, and the proxies past their `daily_cost_cap` (the gateway skips them).

use crate::domain::usage::Tally;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default)]
pub struct UsageView {
    /// Unix ms of the start of the UTC day these tallies are of.
    pub day: i64,
    /// By proxy (public URL).
    pub today: HashMap<String, Tally>,
    pub month: HashMap<String, Tally>,
    pub total_today: Tally,
    /// Proxies (public URLs) past their cap today.
    pub capped: HashSet<String>,
}
