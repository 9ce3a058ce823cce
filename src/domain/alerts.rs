//! Alerts: what happened (`Kind`), how bad (`Severity`), and the event every actor sends the
//! Alerter. The Alerter's rules (folding repeats within `alerts.cooldown_secs`, closing an alert
//! once on recovery, retry backoff of the outbox) live here too.

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
