//! The gateway's rules: the options a client writes in its proxy username, which targets may
//! be reached, sticky sessions, what counts as a failed attempt, and what traffic costs.

use std::collections::HashMap;
use std::net::IpAddr;

use super::proxy::Protocol;
use super::selection::Strategy;

/// Longest session key.
pub const MAX_SESSION: usize = 64;

/// What a client asked for in its username
/// (`client-strategy-cheapest-country-us-session-abc123-protocol-http+socks5-profile-shop`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    pub strategy: Option<Strategy>,
    pub country: Option<String>,
    /// Upstream kinds allowed; empty: any.
    pub protocols: Vec<Protocol>,
    pub profile: Option<String>,
    pub session: Option<String>,
    /// With a session: a dead upstream is a 502, never a new exit.
    pub strict: bool,
}

/// Reads the options of a username: a free first word, then `name-value` pairs. An unknown
/// option or a bad value is an error naming it (never a silent default).
pub fn parse_options(username: &str) -> Result<Options, String> {
    let mut parts = username.split('-');
    let _client = parts.next();
    let mut o = Options::default();
    let mut seen: Vec<&str> = Vec::new();
    while let Some(name) = parts.next() {
        if name.is_empty() {
            return Err("an empty option name (two `-` in a row)".into());
        }
        let shown: String = name.chars().take(24).collect();
        let value = parts
            .next()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("option `{shown}` has no value"))?;
        if seen.contains(&name) {
            return Err(format!("option `{shown}` is given twice"));
        }
        seen.push(name);
        let bad = |what: &str| {
            let v: String = value.chars().take(24).collect();
            format!("option `{name}`: `{v}` is not {what}")
        };
        match name {
            "strategy" => {
                o.strategy = Some(
                    Strategy::parse(value)
                        .ok_or_else(|| bad("fastest, cheapest, random or least_loaded"))?,
                )
            }
            "country" => {
                if value.len() != 2 || !value.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(bad("a two-letter ISO code"));
                }
                o.country = Some(value.to_ascii_uppercase());
            }
            "protocol" => {
                for p in value.split('+') {
                    let p = Protocol::parse(p)
                        .filter(|_| !p.is_empty())
                        .ok_or_else(|| bad("http, https, socks4 or socks5 (joined by +)"))?;
                    if !o.protocols.contains(&p) {
                        o.protocols.push(p);
                    }
                }
            }
            "profile" => {
                if value.len() > 64 {
                    return Err(bad("a profile name"));
                }
                o.profile = Some(value.to_string());
            }
            "session" => {
                if value.len() > MAX_SESSION
                    || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(bad("a session key of letters, digits and `_` (at most 64)"));
                }
                o.session = Some(value.to_string());
            }
            "strict" => match value {
                "1" | "true" => o.strict = true,
                "0" | "false" => o.strict = false,
                _ => return Err(bad("1 or 0")),
            },
            _ => return Err(format!("unknown option `{shown}`")),
        }
    }
    if o.strict && o.session.is_none() {
        return Err("option `strict` needs a `session`".into());
    }
    Ok(o)
}

/// The user name and password of a `Proxy-Authorization: Basic …` value.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Why a target address may not be reached through an open gateway (it must not become a way
/// into the host's own network): loopback, private, link-local (the cloud metadata address
/// included), unspecified, multicast, or one of the service's own addresses.
pub fn refused_address(ip: IpAddr, own: &[IpAddr]) -> Option<&'static str> {
    let ip = ip.to_canonical();
    if own.iter().any(|o| o.to_canonical() == ip) {
        return Some("the service's own address");
    }
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || o[0] == 0 {
                Some("not a unicast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("a loopback address")
            } else if (seg[0] & 0xfe00) == 0xfc00 {
                Some("a private address")
            } else if (seg[0] & 0xffc0) == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("not a unicast address")
            } else {
                None
            }
        }
    }
}

/// A sticky session: the upstream a key is bound to, until it dies or the TTL runs out.
#[derive(Clone, Debug, PartialEq)]
struct Bound {
    upstream: String,
    until_ms: i64,
}

/// What a sticky session gives a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Sticky {
    /// Use this upstream (the session's).
    Keep(String),
    /// No live binding: pick anew, then `bind` the pick.
    Pick,
    /// The bound upstream is gone and the session is strict: 502.
    Gone,
}

/// The sessions' bindings.
#[derive(Debug, Default)]
pub struct Sessions {
    bound: HashMap<String, Bound>,
}

impl Sessions {
    /// The upstream for `key` at `now`: kept while it works (`alive`) and the binding lives.
    pub fn get(
        &mut self,
        key: &str,
        now: i64,
        strict: bool,
        alive: impl Fn(&str) -> bool,
    ) -> Sticky {
        match self.bound.get(key) {
            Some(b) if b.until_ms > now && alive(&b.upstream) => Sticky::Keep(b.upstream.clone()),
            Some(b) if b.until_ms > now && strict => Sticky::Gone,
            _ => {
                self.bound.remove(key);
                Sticky::Pick
            }
        }
    }

    /// Binds `key` to `upstream` for `ttl_ms` from `now` (a session's TTL runs from its first
    /// pick: the same upstream for that long, then a fresh one).
    pub fn bind(&mut self, key: &str, upstream: &str, now: i64, ttl_ms: i64) {
        let keep_until = self
            .bound
            .get(key)
            .filter(|b| b.upstream == upstream && b.until_ms > now)
            .map(|b| b.until_ms);
        self.bound.insert(
            key.to_string(),
            Bound {
                upstream: upstream.to_string(),
                until_ms: keep_until.unwrap_or(now + ttl_ms),
            },
        );
    }

    /// A strict session whose upstream failed now: it is gone (502 until its TTL ends).
    pub fn failed(&mut self, key: &str, upstream: &str, strict: bool) {
        if !strict && self.bound.get(key).is_some_and(|b| b.upstream == upstream) {
            self.bound.remove(key);
        }
    }

    /// Forgets expired bindings (bounded memory).
    pub fn expire(&mut self, now: i64) {
        self.bound.retain(|_, b| b.until_ms > now);
    }

    pub fn len(&self) -> usize {
        self.bound.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bound.is_empty()
    }
}

/// How one attempt through an upstream ended, before any byte of the answer reached the
/// client.
#[derive(Clone, Debug, PartialEq)]
pub enum Attempt {
    /// It answered (plain HTTP: a status that is not a proxy failure) or the tunnel opened.
    Served,
    /// A proxy failure: try the next upstream (connect error, timeout, refused CONNECT, closed
    /// before the status line, 502/503/504).
    Failed(String),
    /// A paid proxy refused the target (403/429): it is `blocked`; try the next.
    Blocked(u16),
}

/// An answer's status through a plain-HTTP upstream, judged; `managed` says whether the
/// upstream is a paid one (whose 403/429 means the target refuses it).
pub fn judge_status(status: u16, managed: bool) -> Attempt {
    match status {
        502..=504 => Attempt::Failed(format!("the upstream answered {status}")),
        407 => Attempt::Failed("the upstream refused its credentials (407)".into()),
        403 | 429 if managed => Attempt::Blocked(status),
        _ => Attempt::Served,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_from_the_username() {
        let o = parse_options(
            "client-strategy-cheapest-country-us-session-abc_123-protocol-http+socks5",
        )
        .unwrap();
        assert_eq!(o.strategy, Some(Strategy::Cheapest));
        assert_eq!(o.country.as_deref(), Some("US"));
        assert_eq!(o.session.as_deref(), Some("abc_123"));
        assert_eq!(o.protocols, [Protocol::Http, Protocol::Socks5]);
        assert!(!o.strict);
        assert_eq!(parse_options("anyone").unwrap(), Options::default());
        assert!(
            parse_options("c-session-s1-strict-1").unwrap().strict,
            "strict with a session"
        );
    }

    #[test]
    fn unknown_or_bad_options_are_named() {
        for (user, named) in [
            ("c-colour-red", "colour"),
            ("c-strategy-slowest", "strategy"),
            ("c-country-usa", "country"),
            ("c-protocol-ftp", "protocol"),
            ("c-protocol-http+", "protocol"),
            ("c-session-a.b", "session"),
            ("c-strict-yes-session-a", "strict"),
            ("c-country", "country"),
            ("c-country-us-country-de", "country"),
            ("c-strict-1", "strict"),
        ] {
            let e = parse_options(user).unwrap_err();
            assert!(e.contains(named), "{user}: {e}");
        }
        let long = format!("c-{}-x", "n".repeat(500));
        assert!(parse_options(&long).unwrap_err().len() < 80);
    }

    #[test]
    fn basic_credentials_are_read() {
        // "c-session-s1:tok"
        let v = "Basic Yy1zZXNzaW9uLXMxOnRvaw==";
        assert_eq!(
            basic_credentials(v),
            Some(("c-session-s1".to_string(), "tok".to_string()))
        );
        for bad in ["Bearer x", "Basic !!!", "Basic", "Basic dXNlcg=="] {
            assert_eq!(basic_credentials(bad), None, "{bad}");
        }
    }

    #[test]
    fn private_and_own_addresses_are_refused() {
        let own: Vec<IpAddr> = vec!["203.0.113.9".parse().unwrap()];
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "203.0.113.9",
        ] {
            assert!(refused_address(ip.parse().unwrap(), &own).is_some(), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert_eq!(refused_address(ip.parse().unwrap(), &own), None, "{ip}");
        }
    }

    #[test]
    fn a_session_keeps_its_upstream_while_it_works_and_lives() {
        let mut s = Sessions::default();
        let alive = |_: &str| true;
        assert_eq!(s.get("k", 0, false, alive), Sticky::Pick);
        s.bind("k", "http://a:1", 0, 1000);
        assert_eq!(
            s.get("k", 500, false, alive),
            Sticky::Keep("http://a:1".into())
        );
        // Rebinding the same upstream keeps the first deadline.
        s.bind("k", "http://a:1", 600, 1000);
        assert_eq!(
            s.get("k", 1000, false, alive),
            Sticky::Pick,
            "the TTL ran out"
        );
        s.bind("k", "http://a:1", 1000, 1000);
        let dead = |u: &str| u != "http://a:1";
        assert_eq!(s.get("k", 1500, false, dead), Sticky::Pick, "moves on");
        s.bind("k", "http://a:1", 1500, 1000);
        assert_eq!(s.get("k", 1600, true, dead), Sticky::Gone, "strict: 502");
        s.expire(10_000);
        assert!(s.is_empty());
    }

    #[test]
    fn proxy_failures_and_blocks_are_told_from_answers() {
        assert_eq!(judge_status(200, true), Attempt::Served);
        assert_eq!(judge_status(404, false), Attempt::Served);
        assert!(matches!(judge_status(502, false), Attempt::Failed(_)));
        assert!(matches!(judge_status(407, false), Attempt::Failed(_)));
        assert_eq!(judge_status(403, true), Attempt::Blocked(403));
        assert_eq!(
            judge_status(429, false),
            Attempt::Served,
            "a free proxy's 429 is the site's"
        );
    }
}
