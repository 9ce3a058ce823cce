//! The integration suite: one test binary (each `tests/*.rs` would link its own), every test on
//! real sockets on loopback.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod feedback;
mod never_empty;
mod params;
mod pipeline;
mod resurrection;
mod shutdown;
mod sources;
mod supervision;

use support::farm::{Farm, ORIGIN_BODY};

/// A config whose pool comes from `list_url` and is checked against the farm's origin, with
/// timings small enough for tests. `extra` is appended (more tables).
pub fn farm_config(db_url: &str, list_url: &str, farm: &Farm, extra: &str) -> String {
    format!(
        r#"
[database]
url = "{db_url}"
flush_interval_ms = 200

[[sources]]
name = "farm"
kind = "plain"
url = "{list_url}"
interval_secs = 3600
timeout_ms = 1000
max_bytes = 1048576

[validation]
check_url = "{check}"
expect_status = 200
expect_body = "{ORIGIN_BODY}"
judge_url = "{judge}"
timeout_ms = 1000
concurrency = 50
revalidate_interval_secs = 1

[tiers]
primary_target = 100
minimum_guaranteed = 1
slow_threshold_ms = 1000
promote_after_passes = 2
dead_after_failures = 2

[resurrection]
delays_secs = [3600]

{extra}
"#,
        check = farm.origin.url("/ok"),
        judge = farm.origin.url("/judge"),
    )
}
