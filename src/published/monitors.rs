//! The watched services, as the ServiceMonitor publishes them (for `/api/monitors`, health,
//! metrics and the dashboard).

use crate::domain::service_health::Service;
use crate::domain::service_stats::RepairRecord;
use std::sync::Arc;

/// Where a monitor is defined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    #[default]
    Config,
    Api,
}

/// One monitor as `GET /api/monitors` shows it.
#[derive(Clone, Debug, Default)]
pub struct MonitorView {
    pub name: String,
    pub url: String,
    pub origin: Origin,
    pub action: &'static str,
    pub interval_ms: u64,
    pub service: Service,
    pub uptime_percent: Option<f64>,
    pub avg_response_ms: Option<u64>,
    pub p95_response_ms: Option<u32>,
    pub checks_ok: u64,
    pub checks_total: u64,
    pub repairs: u64,
    pub predictive_restarts: u64,
    pub last_repair: Option<RepairRecord>,
    pub last_check_at: Option<i64>,
    pub last_latency_ms: Option<u64>,
}

/// Every monitor, by name, as last published.
#[derive(Debug, Default)]
pub struct MonitorsView {
    pub monitors: Vec<Arc<MonitorView>>,
    pub published_at: i64,
}
