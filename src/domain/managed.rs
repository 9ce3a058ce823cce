//! Managed (paid) proxies: what defines one, how a definition is validated, and the health
//! status reported for it (`healthy`, `degraded`, `down`, `blocked`, or `unknown` before its
//! first check).

use super::lifecycle::{Health, Rules, Tier};
use super::proxy::{Endpoint, Protocol};
use serde::Serialize;

/// The kinds a managed proxy may be.
pub const KINDS: [&str; 4] = ["free", "vps", "datacenter", "residential"];

/// Longest name accepted.
pub const MAX_NAME: usize = 64;

/// A name given to a managed proxy or a monitor, trimmed: 1 to `MAX_NAME` characters, no
/// control characters and no `/` (it goes into URL paths).
pub fn checked_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(format!("`name` must be 1 to {MAX_NAME} characters"));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err("`name` must not hold control characters or `/`".into());
    }
    Ok(name)
}

/// A managed proxy as configured or created through the admin API.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedProxy {
    pub name: String,
    /// With its credentials, if any: they are used for checks and handed to clients only.
    pub endpoint: Endpoint,
    pub kind: String,
    pub cost_per_gb: f64,
    pub priority: i32,
    /// Leases this proxy may hold at once; `None`: `allocation.max_leases_per_proxy`.
    pub max_leases: Option<u32>,
    pub limits: CostLimits,
}

/// What a managed proxy may cost a day through the gateway: a `cost` alert past `daily_limit`,
/// no use by the gateway past `daily_cap` (until the next UTC day).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CostLimits {
    pub daily_limit: Option<f64>,
    pub daily_cap: Option<f64>,
}

impl CostLimits {
    /// Each limit, when given, is a number >= 0.
    pub fn new(daily_limit: Option<f64>, daily_cap: Option<f64>) -> Result<CostLimits, String> {
        for (name, v) in [
            ("daily_cost_limit", daily_limit),
            ("daily_cost_cap", daily_cap),
        ] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(format!("`{name}` must be a number >= 0"));
            }
        }
        Ok(CostLimits {
            daily_limit,
            daily_cap,
        })
    }
}

impl ManagedProxy {
    /// Validates every field; the error names the field and never repeats the URL (it may hold
    /// a password).
    pub fn new(
        name: &str,
        url: &str,
        kind: &str,
        cost_per_gb: f64,
        priority: i32,
        max_leases: Option<u32>,
    ) -> Result<ManagedProxy, String> {
        let name = checked_name(name)?;
        let endpoint = Endpoint::parse(url, Protocol::Http)
            .map_err(|e| format!("`url` is not a proxy URL: {e}"))?;
        if !KINDS.contains(&kind) {
            return Err(format!("`kind` must be one of {}", KINDS.join(", ")));
        }
        if !cost_per_gb.is_finite() || cost_per_gb < 0.0 {
            return Err("`cost_per_gb` must be a number >= 0".into());
        }
        if max_leases == Some(0) {
            return Err("`max_leases` must be at least 1".into());
        }
        Ok(ManagedProxy {
            name: name.to_string(),
            endpoint,
            kind: kind.to_string(),
            cost_per_gb,
            priority,
            max_leases,
            limits: CostLimits::default(),
        })
    }

    /// This definition with its cost limits.
    pub fn with_limits(mut self, limits: CostLimits) -> ManagedProxy {
        self.limits = limits;
        self
    }
}

/// A change to a managed proxy: each field given replaces the old value. The name is what
/// names the proxy and cannot change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Patch {
    pub url: Option<String>,
    pub kind: Option<String>,
    pub cost_per_gb: Option<f64>,
    pub priority: Option<i32>,
    pub max_leases: Option<u32>,
    pub daily_cost_limit: Option<f64>,
    pub daily_cost_cap: Option<f64>,
}

impl Patch {
    pub fn is_empty(&self) -> bool {
        *self == Patch::default()
    }
}

impl ManagedProxy {
    /// This definition with `patch` applied, validated as a new one would be.
    pub fn patched(&self, patch: &Patch) -> Result<ManagedProxy, String> {
        let url = match &patch.url {
            Some(u) => u.clone(),
            None => self.endpoint.url_with_credentials(),
        };
        ManagedProxy::new(
            &self.name,
            &url,
            patch.kind.as_deref().unwrap_or(&self.kind),
            patch.cost_per_gb.unwrap_or(self.cost_per_gb),
            patch.priority.unwrap_or(self.priority),
            patch.max_leases.or(self.max_leases),
        )
        .and_then(|def| {
            let limits = CostLimits::new(
                patch.daily_cost_limit.or(self.limits.daily_limit),
                patch.daily_cost_cap.or(self.limits.daily_cap),
            )?;
            Ok(def.with_limits(limits))
        })
    }
}

/// What a managed proxy's health looks like to its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not checked yet.
    Unknown,
    Healthy,
    /// Serving, but slow, flaky, or failing checks (not yet `dead_after_failures` in a row).
    Degraded,
    /// Dead (or blacklisted): `dead_after_failures` failed checks in a row.
    Down,
    /// The check target refuses it (403 or 429) through this proxy.
    Blocked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::Blocked => "blocked",
        }
    }
}

/// Statuses a target answers when it refuses a client: forbidden, too many requests.
pub fn is_refusal(status: u16) -> bool {
    status == 403 || status == 429
}

/// The status of a proxy from its health.
pub fn status(h: &Health, rules: &Rules) -> Status {
    if h.checks_total == 0 {
        return Status::Unknown;
    }
    if h.consecutive_failures > 0 && h.last_status.is_some_and(is_refusal) {
        return Status::Blocked;
    }
    match h.tier {
        Tier::Dead | Tier::Blacklisted => Status::Down,
        Tier::Fresh => Status::Unknown,
        Tier::Emergency => Status::Degraded,
        _ if h.consecutive_failures > 0 || h.is_slow(rules) => Status::Degraded,
        _ => Status::Healthy,
    }
}

/// Percentage of passed checks, to one decimal; `None` before the first check.
pub fn uptime_percent(h: &Health) -> Option<f64> {
    (h.checks_total > 0)
        .then(|| (h.checks_ok as f64 * 1000.0 / h.checks_total as f64).round() / 10.0)
}

/// Mean latency of the passed checks.
pub fn average_latency_ms(h: &Health) -> Option<u64> {
    (h.checks_ok > 0).then(|| h.latency_total_ms / h.checks_ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::{apply_check, test_rules, CheckResult};

    fn check(h: &mut Health, ok: bool, latency_ms: u32, status: Option<u16>) {
        let r = CheckResult {
            ok,
            latency_ms,
            status,
            at: h.checks_total as i64 + 1,
        };
        apply_check(h, r, &test_rules());
    }

    #[test]
    fn definitions_are_validated_without_echoing_the_url() {
        let ok = ManagedProxy::new("dc-1", "http://u:secret@10.0.0.1:3128", "vps", 0.5, 1, None)
            .unwrap();
        assert_eq!(ok.endpoint.key(), "http://10.0.0.1:3128");
        assert_eq!(ok.endpoint.credentials.as_ref().unwrap().password, "secret");
        for (name, url, kind, cost, max) in [
            ("", "http://1.2.3.4:1", "vps", 0.0, None),
            ("a/b", "http://1.2.3.4:1", "vps", 0.0, None),
            ("x", "ftp://u:secret@1.2.3.4:1", "vps", 0.0, None),
            ("x", "http://1.2.3.4:1", "mainframe", 0.0, None),
            ("x", "http://1.2.3.4:1", "vps", -1.0, None),
            ("x", "http://1.2.3.4:1", "vps", f64::NAN, None),
            ("x", "http://1.2.3.4:1", "vps", 0.0, Some(0)),
        ] {
            let e = ManagedProxy::new(name, url, kind, cost, 1, max).unwrap_err();
            assert!(!e.contains("secret"), "{e}");
        }
        let long = "n".repeat(MAX_NAME + 1);
        assert!(ManagedProxy::new(&long, "http://1.2.3.4:1", "vps", 0.0, 1, None).is_err());
    }

    #[test]
    fn a_patch_replaces_only_what_it_names_and_is_validated() {
        let old =
            ManagedProxy::new("dc-1", "http://u:pw@10.0.0.1:3128", "vps", 0.5, 1, Some(2)).unwrap();
        let cheaper = old
            .patched(&Patch {
                cost_per_gb: Some(0.1),
                ..Patch::default()
            })
            .unwrap();
        assert_eq!(cheaper.cost_per_gb, 0.1);
        assert_eq!(cheaper.endpoint, old.endpoint, "credentials kept");
        assert_eq!((cheaper.priority, cheaper.max_leases), (1, Some(2)));
        let moved = old
            .patched(&Patch {
                url: Some("http://10.0.0.2:8080".into()),
                priority: Some(7),
                ..Patch::default()
            })
            .unwrap();
        assert_eq!(moved.endpoint.key(), "http://10.0.0.2:8080");
        assert!(moved.endpoint.credentials.is_none());
        assert_eq!((moved.name.as_str(), moved.priority), ("dc-1", 7));
        let bad = Patch {
            kind: Some("mainframe".into()),
            ..Patch::default()
        };
        assert!(old.patched(&bad).is_err());
        assert!(Patch::default().is_empty() && !bad.is_empty());
    }

    #[test]
    fn status_follows_the_checks() {
        let rules = test_rules();
        let mut h = Health::default();
        assert_eq!(status(&h, &rules), Status::Unknown);
        check(&mut h, true, 50, Some(204));
        assert_eq!(status(&h, &rules), Status::Healthy);
        check(&mut h, false, 50, None);
        assert_eq!(
            status(&h, &rules),
            Status::Degraded,
            "failing, not dead yet"
        );
        check(&mut h, false, 50, Some(403));
        assert_eq!(status(&h, &rules), Status::Blocked);
        for _ in 0..rules.dead_after_failures {
            check(&mut h, false, 50, None);
        }
        assert_eq!(h.tier, Tier::Dead);
        assert_eq!(status(&h, &rules), Status::Down);
        check(&mut h, true, rules.slow_threshold_ms + 1, Some(204));
        assert_eq!(status(&h, &rules), Status::Degraded, "slow");
        check(&mut h, true, 10, Some(204));
        check(&mut h, false, 10, Some(429));
        assert_eq!(status(&h, &rules), Status::Blocked, "429 too");
    }

    #[test]
    fn uptime_and_average_latency() {
        let mut h = Health::default();
        assert_eq!(uptime_percent(&h), None);
        assert_eq!(average_latency_ms(&h), None);
        check(&mut h, true, 100, Some(204));
        check(&mut h, true, 300, Some(204));
        check(&mut h, false, 900, None);
        assert_eq!(uptime_percent(&h), Some(66.7));
        assert_eq!(
            average_latency_ms(&h),
            Some(200),
            "failed checks do not count"
        );
    }
}
