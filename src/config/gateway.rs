//! `[gateway]` read into what the gateway runs on: addresses parsed, durations typed, the
//! password chosen, and the loopback-only rule for a gateway without one.

use super::{invalid, Config, ConfigError};
use secrecy::{ExposeSecret, SecretString};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// A valid `[gateway]` with `enabled = true`.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// The HTTP listener's address (loopback when there is no password).
    pub bind: SocketAddr,
    pub socks_bind: Option<SocketAddr>,
    /// The password clients give: `gateway.token`, else `server.client_token`; `None`: the
    /// gateway takes anyone, on loopback only.
    pub token: Option<SecretString>,
    /// Set when `bind` (or `socks_bind`) was moved to loopback for want of a password.
    pub moved_to_loopback: bool,
    pub max_attempts: usize,
    pub connect_timeout: Duration,
    pub session_ttl_ms: i64,
    pub retry_body_max_bytes: usize,
    pub allowed_ports: Vec<u16>,
    pub allow_private: bool,
    pub head_timeout: Duration,
    pub max_head_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub cost_alert_daily: Option<f64>,
}

impl GatewaySettings {
    pub fn token(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.expose_secret())
    }
}

fn addr(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse()
        .map_err(|_| invalid(key, "must be an address like 0.0.0.0:8001"))
}

/// The loopback address of `a`'s family, same port.
fn to_loopback(a: SocketAddr) -> SocketAddr {
    let ip = match a.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, a.port())
}

impl Config {
    /// `[gateway]`, checked; `None` when it is not enabled.
    pub(super) fn gateway_settings(&self) -> Result<Option<GatewaySettings>, ConfigError> {
        let g = &self.gateway;
        if !g.enabled {
            return Ok(None);
        }
        let mut bind = addr("gateway.bind", &g.bind)?;
        let mut socks_bind = match &g.socks_bind {
            Some(s) => Some(addr("gateway.socks_bind", s)?),
            None => None,
        };
        if let Some(t) = &g.token {
            if t.expose_secret().trim().is_empty() {
                return Err(invalid("gateway.token", "must not be empty"));
            }
        }
        let token = g.token.clone().or_else(|| self.server.client_token.clone());
        let mut moved_to_loopback = false;
        if token.is_none() {
            for a in [Some(&mut bind), socks_bind.as_mut()].into_iter().flatten() {
                if !a.ip().is_loopback() {
                    *a = to_loopback(*a);
                    moved_to_loopback = true;
                }
            }
        }
        let at_least_1 = |key: &str, v: u64| {
            if v == 0 {
                Err(invalid(key, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        at_least_1("gateway.max_attempts", g.max_attempts.into())?;
        at_least_1("gateway.connect_timeout_ms", g.connect_timeout_ms)?;
        at_least_1("gateway.head_timeout_ms", g.head_timeout_ms)?;
        at_least_1("gateway.max_connections", g.max_connections as u64)?;
        at_least_1(
            "gateway.max_connections_per_client",
            g.max_connections_per_client as u64,
        )?;
        if g.max_attempts > 100 {
            return Err(invalid("gateway.max_attempts", "must be at most 100"));
        }
        if !g.session_ttl_secs.is_finite() || g.session_ttl_secs <= 0.0 {
            return Err(invalid(
                "gateway.session_ttl_secs",
                "must be a number of seconds above 0",
            ));
        }
        if !(1024..=1 << 20).contains(&g.max_head_bytes) {
            return Err(invalid(
                "gateway.max_head_bytes",
                "must be from 1024 to 1048576",
            ));
        }
        if g.allowed_ports.is_empty() || g.allowed_ports.contains(&0) {
            return Err(invalid(
                "gateway.allowed_ports",
                "must list at least one port from 1 to 65535",
            ));
        }
        if g.cost_alert_daily
            .is_some_and(|c| !c.is_finite() || c < 0.0)
        {
            return Err(invalid("gateway.cost_alert_daily", "must be a number >= 0"));
        }
        Ok(Some(GatewaySettings {
            bind,
            socks_bind,
            token,
            moved_to_loopback,
            max_attempts: g.max_attempts as usize,
            connect_timeout: Duration::from_millis(g.connect_timeout_ms),
            session_ttl_ms: (g.session_ttl_secs * 1000.0).min(1e15) as i64,
            retry_body_max_bytes: g.retry_body_max_bytes,
            allowed_ports: g.allowed_ports.clone(),
            allow_private: g.allow_private,
            head_timeout: Duration::from_millis(g.head_timeout_ms),
            max_head_bytes: g.max_head_bytes,
            max_connections: g.max_connections,
            max_connections_per_client: g.max_connections_per_client,
            cost_alert_daily: g.cost_alert_daily,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Result<Option<GatewaySettings>, String> {
        let mut c = Config::from_toml(toml).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c.defs.gateway)
    }

    #[test]
    fn off_by_default_and_loopback_without_a_password() {
        assert!(settings("").unwrap().is_none());
        let g = settings("[gateway]\nenabled = true").unwrap().unwrap();
        assert_eq!(g.bind.to_string(), "127.0.0.1:8001");
        assert!(g.moved_to_loopback && g.token().is_none());
        let g = settings("[server]\nclient_token = \"c\"\n[gateway]\nenabled = true")
            .unwrap()
            .unwrap();
        assert_eq!(
            (g.bind.to_string().as_str(), g.token()),
            ("0.0.0.0:8001", Some("c"))
        );
        let g = settings("[gateway]\nenabled = true\ntoken = \"g\"\nsocks_bind = \"[::]:1080\"")
            .unwrap()
            .unwrap();
        assert_eq!(g.token(), Some("g"));
        assert_eq!(g.socks_bind.unwrap().to_string(), "[::]:1080");
        assert_eq!(
            (g.max_attempts, g.allowed_ports.as_slice()),
            (3, &[80, 443][..])
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (toml, key) in [
            ("bind = \"nowhere\"", "gateway.bind"),
            ("max_attempts = 0", "gateway.max_attempts"),
            ("allowed_ports = []", "gateway.allowed_ports"),
            ("session_ttl_secs = -1.0", "gateway.session_ttl_secs"),
            ("cost_alert_daily = -5.0", "gateway.cost_alert_daily"),
            ("token = \" \"", "gateway.token"),
            ("max_head_bytes = 10", "gateway.max_head_bytes"),
        ] {
            let e = settings(&format!("[gateway]\nenabled = true\n{toml}")).unwrap_err();
            assert!(e.contains(key), "{toml}: {e}");
        }
        let e = settings("[gateway]\nenabeld = true").unwrap_err();
        assert!(e.contains("enabeld"), "{e}");
    }
}
