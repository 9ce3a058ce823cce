//! What a monitor is once its `[[monitors]]` table (or admin API body) is validated: the check,
//! the health rules and the recovery action, with its secret kept out of `Debug` and answers.

use super::service_health::Rules;
use std::collections::BTreeMap;

/// The shortest check interval.
pub const MIN_INTERVAL_MS: u64 = 1000;
pub const RENDER_API: &str = "https://api.render.com";
pub const RAILWAY_API: &str = "https://backboard.railway.com";

/// A secret (an API key, a webhook header): `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How a down service is repaired.
#[derive(Clone, Debug, PartialEq)]
pub enum Recovery {
    /// Alerts only.
    None,
    Render {
        api_base: String,
        service_id: String,
        key: Secret,
    },
    Railway {
        api_base: String,
        service_id: String,
        environment_id: String,
        key: Secret,
    },
    Webhook {
        method: String,
        url: String,
        /// Header values may be secrets.
        headers: Vec<(String, Secret)>,
        body: Option<String>,
    },
    Command {
        command: String,
    },
}

impl Recovery {
    pub fn action(&self) -> &'static str {
        match self {
            Recovery::None => "none",
            Recovery::Render { .. } => "render",
            Recovery::Railway { .. } => "railway",
            Recovery::Webhook { .. } => "webhook",
            Recovery::Command { .. } => "command",
        }
    }
}

/// A validated monitor.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorDef {
    pub name: String,
    pub url: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub expect_status: u16,
    pub expect_body: Option<String>,
    pub rules: Rules,
    pub recovery: Recovery,
    /// Limit on one repair call or command.
    pub repair_timeout_ms: u64,
}

/// `s` if it is an http(s) URL (the config's own rule).
/// Header names and values as configured, for building a request.
pub fn header_pairs(headers: &[(String, Secret)]) -> BTreeMap<&str, &str> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.0.as_str()))
        .collect()
}
