//! What a proxy is: its protocol, address, optional credentials, and the public URL that names it.

use std::fmt;

/// The protocol a client speaks to the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// Plain HTTP proxy: `GET http://host/path` is forwarded.
    Http,
    /// HTTP proxy that tunnels with `CONNECT` (what proxy lists call "https").
    Https,
    Socks4,
    Socks5,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [Self::Http, Self::Https, Self::Socks4, Self::Socks5];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Socks4 => "socks4",
            Self::Socks5 => "socks5",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            "socks4" | "socks4a" => Some(Self::Socks4),
            "socks5" | "socks5h" | "socks" => Some(Self::Socks5),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a proxy reveals about its client, as seen by a judge page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Anonymity {
    /// Forwards the client's address (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`).
    Transparent,
    /// Hides the client but says it is a proxy (`Via`, `Proxy-Connection`...).
    Anonymous,
    /// Indistinguishable from a direct client.
    Elite,
}

impl Anonymity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transparent => "transparent",
            Self::Anonymous => "anonymous",
            Self::Elite => "elite",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "transparent" => Some(Self::Transparent),
            "anonymous" | "anonymos" => Some(Self::Anonymous),
            "elite" | "high_anonymous" | "high-anonymous" => Some(Self::Elite),
            _ => None,
        }
    }
}

/// Username and password for a proxy. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:***)", self.username)
    }
}

/// Where a proxy is and how to talk to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub credentials: Option<Credentials>,
}

impl Endpoint {
    /// The public URL of the proxy, without credentials: `http://1.2.3.4:8080`. It is the key
    /// that deduplicates proxies across sources.
    pub fn key(&self) -> String {
        if self.host.contains(':') {
            format!("{}://[{}]:{}", self.protocol, self.host, self.port)
        } else {
            format!("{}://{}:{}", self.protocol, self.host, self.port)
        }
    }

    /// The URL with credentials, for clients allowed to see them.
    pub fn url_with_credentials(&self) -> String {
        match &self.credentials {
            None => self.key(),
            Some(c) => {
                let host = if self.host.contains(':') {
                    format!("[{}]", self.host)
                } else {
                    self.host.clone()
                };
                format!(
                    "{}://{}:{}@{}:{}",
                    self.protocol,
                    pct_encode(&c.username),
                    pct_encode(&c.password),
                    host,
                    self.port
                )
            }
        }
    }

    /// Parses `host:port` (taking `default_protocol`) or `scheme://[user:pass@]host:port[/]`.
    pub fn parse(input: &str, default_protocol: Protocol) -> Result<Self, String> {
        let s = input.trim();
        if s.is_empty() {
            return Err("empty".into());
        }
        if s.len() > 512 {
            return Err("too long".into());
        }
        let (protocol, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (
                Protocol::parse(scheme)
                    .ok_or_else(|| format!("unknown scheme `{}`", truncate(scheme, 16)))?,
                rest,
            ),
            None => (default_protocol, s),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err("a proxy address has no path".into());
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                Some(Credentials {
                    username: pct_decode(user),
                    password: pct_decode(pass),
                })
            }
        };
        let (host, port) = split_host_port(hostport)?;
        Ok(Endpoint {
            protocol,
            host,
            port,
            credentials,
        })
    }
}

fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port, bracketed) = if let Some(inner) = s.strip_prefix('[') {
        let (h, p) = inner.split_once("]:").ok_or("bad IPv6 address")?;
        (h, p, true)
    } else {
        let (h, p) = s.rsplit_once(':').ok_or("missing port")?;
        (h, p, false)
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("bad port `{}`", truncate(port, 16)))?;
    if port == 0 {
        return Err("port 0".into());
    }
    if !valid_host(host, bracketed) {
        return Err(format!("bad host `{}`", truncate(host, 32)));
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// An IPv6 address (only in brackets), an IPv4 address, or a DNS name that is not a mangled
/// IPv4 address (`1.2.3`).
fn valid_host(host: &str, bracketed: bool) -> bool {
    if bracketed {
        return host.parse::<std::net::Ipv6Addr>().is_ok();
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let labels_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    labels_ok
        && !host
            .split('.')
            .all(|l| l.chars().all(|c| c.is_ascii_digit()))
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn pct_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn pct_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bare_and_full_forms() {
        let e = Endpoint::parse("1.2.3.4:8080", Protocol::Http).unwrap();
        assert_eq!(e.key(), "http://1.2.3.4:8080");
        let e =
            Endpoint::parse(" socks5://user:p%40ss@Example.com:1080/ ", Protocol::Http).unwrap();
        assert_eq!(e.protocol, Protocol::Socks5);
        assert_eq!(e.host, "example.com");
        assert_eq!(e.key(), "socks5://example.com:1080");
        let c = e.credentials.clone().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("user", "p@ss"));
        assert_eq!(
            e.url_with_credentials(),
            "socks5://user:p%40ss@example.com:1080"
        );
        assert!(!format!("{e:?}").contains("p@ss"));
        assert_eq!(
            Endpoint::parse("proxy-1.example.net:80", Protocol::Http)
                .unwrap()
                .key(),
            "http://proxy-1.example.net:80"
        );
        let e = Endpoint::parse("[::1]:3128", Protocol::Https).unwrap();
        assert_eq!(e.key(), "https://[::1]:3128");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "1.2.3.4",
            "1.2.3.4:0",
            "1.2.3.4:70000",
            "ftp://1.2.3.4:21",
            "http://h:1/path",
            "<html>",
            "a b:80",
            "\u{0}:80",
            "1.2.3:4:5",
            "1.2.3:80",
            "[zz]:80",
            "a..b:80",
        ] {
            assert!(
                Endpoint::parse(bad, Protocol::Http).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
