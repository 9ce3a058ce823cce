//! `[cluster]`: several instances on one PostgreSQL database (DESIGN.md § Cluster).

use super::{invalid, ConfigError};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This instance's name among the others; unset: `hostname:port`.
    pub instance_id: Option<String>,
    /// How long a leader that stopped renewing keeps its lease: the longest handover.
    pub failover_secs: f64,
    /// How often each instance tells it is alive (and the leader renews its lease).
    pub heartbeat_secs: f64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            instance_id: None,
            failover_secs: 5.0,
            heartbeat_secs: 1.0,
        }
    }
}

impl ClusterConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.heartbeat_secs.is_finite() && self.heartbeat_secs >= 0.1) {
            return Err(invalid("cluster.heartbeat_secs", "must be at least 0.1"));
        }
        if !(self.failover_secs.is_finite() && self.failover_secs >= 2.0 * self.heartbeat_secs) {
            return Err(invalid(
                "cluster.failover_secs",
                "must be at least twice cluster.heartbeat_secs (a lease outlives one missed renewal)",
            ));
        }
        if let Some(id) = &self.instance_id {
            let ok = !id.is_empty()
                && id.len() <= 128
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
            if !ok {
                return Err(invalid(
                    "cluster.instance_id",
                    "must be 1-128 letters, digits, '-', '_', '.' or ':'",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn the_cluster_table_is_checked() {
        let mut c = Config::from_toml("").unwrap();
        c.validate().unwrap();
        assert_eq!(
            (c.cluster.failover_secs, c.cluster.heartbeat_secs),
            (5.0, 1.0)
        );
        for (text, key) in [
            ("[cluster]\nfailover_secs = 1\n", "cluster.failover_secs"),
            ("[cluster]\nheartbeat_secs = 0\n", "cluster.heartbeat_secs"),
            ("[cluster]\ninstance_id = \"a b\"\n", "cluster.instance_id"),
            ("[cluster]\nleader = true\n", "leader"),
        ] {
            let e = Config::from_toml(text)
                .and_then(|mut c| c.validate().map(|_| c).map_err(|e| e.to_string()))
                .expect_err(text);
            assert!(e.to_string().contains(key), "{text}: {e}");
        }
        let mut c = Config::from_toml("[cluster]\ninstance_id = \"eu-1:8000\"\n").unwrap();
        c.validate().unwrap();
    }
}
