//! Alerts: what happened (`Kind`), how bad (`Severity`), and the event every actor sends the
//! Alerter; the Alerter's rules, one file each: folding repeats within `alerts.cooldown_secs` and
//! closing an alert once on recovery (`fold`), the outbox's retry backoff (`delivery`), the
//! message text (`render`), the daily report (`report`), and when the pool and managed proxies
//! raise alerts (`pool`).

mod delivery;
mod fold;
mod pool;
mod render;
mod report;

pub use delivery::*;
pub use fold::*;
pub use pool::*;
pub use render::*;
pub use report::*;

use serde::Serialize;

/// The structured kind of an alert, as `/api/alerts`, the email subject and the first Telegram
/// line show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ServiceDown,
    ServiceDegraded,
    RepairStarted,
    RepairFailed,
    ServiceRecovered,
    PredictiveRestart,
    PoolBelowMinimum,
    PoolEmpty,
    ManagedProxyStatus,
    ActorFailed,
    /// Gateway traffic's cost today passed a limit (a proxy's `daily_cost_limit` or
    /// `gateway.cost_alert_daily`).
    Cost,
    /// An instance of the cluster stopped telling it is alive (raised by the leader).
    Cluster,
    DailyReport,
    Test,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ServiceDown => "service_down",
            Kind::ServiceDegraded => "service_degraded",
            Kind::RepairStarted => "repair_started",
            Kind::RepairFailed => "repair_failed",
            Kind::ServiceRecovered => "service_recovered",
            Kind::PredictiveRestart => "predictive_restart",
            Kind::PoolBelowMinimum => "pool_below_minimum",
            Kind::PoolEmpty => "pool_empty",
            Kind::ManagedProxyStatus => "managed_proxy_status",
            Kind::ActorFailed => "actor_failed",
            Kind::Cost => "cost",
            Kind::Cluster => "cluster",
            Kind::DailyReport => "daily_report",
            Kind::Test => "test",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Sent without a notification sound (Telegram `disable_notification`).
    Info,
    Warning,
    Critical,
}

/// Something an admin should hear of. `key` names the thing it is about (e.g.
/// `service:backend`), so repeats fold and a recovery closes the alerts of the same key.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertEvent {
    pub kind: Kind,
    pub key: String,
    pub severity: Severity,
    /// Plain text, no secrets.
    pub message: String,
    /// Unix ms.
    pub at: i64,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::ServiceDown,
        Kind::ServiceDegraded,
        Kind::RepairStarted,
        Kind::RepairFailed,
        Kind::ServiceRecovered,
        Kind::PredictiveRestart,
        Kind::PoolBelowMinimum,
        Kind::PoolEmpty,
        Kind::ManagedProxyStatus,
        Kind::ActorFailed,
        Kind::Cost,
        Kind::Cluster,
        Kind::DailyReport,
        Kind::Test,
    ];

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// Telegram's `disable_notification`: info arrives without a sound.
    pub fn silent(self) -> bool {
        self == Severity::Info
    }
}

impl AlertEvent {
    pub fn new(
        kind: Kind,
        key: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
        at: i64,
    ) -> Self {
        AlertEvent {
            kind,
            key: key.into(),
            severity,
            message: message.into(),
            at,
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "../props/alerts.rs"]
mod props;
