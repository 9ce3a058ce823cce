//! When the pool and managed proxies raise alerts.

use super::*;

/// The key of the pool's alerts.
pub const POOL_KEY: &str = "pool";

/// What the pool's serving count has done, as the TierBalancer tells it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolWatch {
    /// Some proxy has served.
    served: bool,
    /// `minimum_guaranteed` has been met (since the last alert).
    met: bool,
    /// An alert is out (below minimum or empty) and no recovery yet.
    alerted: bool,
    empty: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolAlert {
    /// Fell below `minimum_guaranteed` (once per crossing).
    BelowMinimum { serving: usize, minimum: usize },
    /// Nothing serves any more, after something did.
    Empty,
    /// Back at `minimum_guaranteed` after an alert.
    Recovered { serving: usize, minimum: usize },
}

impl PoolWatch {
    /// Called at each publication with the serving count; `checked` says whether any check has
    /// run in this process (before that, the counts are the stored pool's, not news).
    pub fn observe(&mut self, serving: usize, minimum: usize, checked: bool) -> Option<PoolAlert> {
        if serving > 0 {
            self.served = true;
            self.empty = false;
        }
        if !checked {
            return None;
        }
        if serving == 0 {
            if !self.served || self.empty {
                return None;
            }
            self.empty = true;
            self.alerted = true;
            self.met = false;
            return Some(PoolAlert::Empty);
        }
        if serving >= minimum {
            self.met = true;
            if self.alerted {
                self.alerted = false;
                return Some(PoolAlert::Recovered { serving, minimum });
            }
            return None;
        }
        if self.met {
            self.met = false;
            self.alerted = true;
            return Some(PoolAlert::BelowMinimum { serving, minimum });
        }
        None
    }
}

impl PoolAlert {
    pub fn event(self, at: i64) -> AlertEvent {
        match self {
            PoolAlert::BelowMinimum { serving, minimum } => AlertEvent::new(
                Kind::PoolBelowMinimum,
                POOL_KEY,
                Severity::Warning,
                format!("{serving} serving proxies, below tiers.minimum_guaranteed = {minimum}"),
                at,
            ),
            PoolAlert::Empty => AlertEvent::new(
                Kind::PoolEmpty,
                POOL_KEY,
                Severity::Critical,
                "no proxy serves any more: every checked proxy failed",
                at,
            ),
            PoolAlert::Recovered { serving, minimum } => AlertEvent::new(
                Kind::ServiceRecovered,
                POOL_KEY,
                Severity::Info,
                format!("the pool is back: {serving} serving proxies (minimum {minimum})"),
                at,
            ),
        }
    }
}

/// A managed proxy's status change worth an alert: between `healthy`, `degraded`, `down` and
/// `blocked` (not from or to `unknown`, not the first sighting).
pub fn managed_status_alert(
    name: &str,
    before: Option<crate::domain::managed::Status>,
    now: crate::domain::managed::Status,
    at: i64,
) -> Option<AlertEvent> {
    use crate::domain::managed::Status;
    let before = before.filter(|b| *b != Status::Unknown)?;
    if now == Status::Unknown || now == before {
        return None;
    }
    let severity = match now {
        Status::Healthy => Severity::Info,
        Status::Degraded => Severity::Warning,
        _ => Severity::Critical,
    };
    Some(AlertEvent::new(
        Kind::ManagedProxyStatus,
        format!("managed:{name}:{}", now.as_str()),
        severity,
        format!(
            "managed proxy `{name}` is {} (was {})",
            now.as_str(),
            before.as_str()
        ),
        at,
    ))
}
