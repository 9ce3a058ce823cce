//! Judging a proxy's anonymity from what a judge page saw of the request.
//!
//! The service first learns its own address as the judge sees it ([`own_addresses`], from a
//! direct request), then asks the judge through the proxy and reads the headers it saw
//! ([`headers`]), whatever the page's shape: JSON (`{"headers":{...}}`, the httpbin family, or a
//! flat object), PHP style (`HTTP_X_FORWARDED_FOR = ...`) or `Name: value` lines. Then
//! ([`judge`]): **transparent** = one of our own addresses appears in any header; **anonymous** =
//! proxy headers (`Via`, `X-Forwarded-For`, `Forwarded`, ...) without our address; **elite** =
//! neither.

use super::proxy::Anonymity;
use std::net::IpAddr;

/// Headers that say a proxy was there (an address in them is ours or not: [`judge`] looks).
const PROXY_MARKS: [&str; 13] = [
    "via",
    "x-forwarded-for",
    "forwarded",
    "x-forwarded",
    "forwarded-for",
    "x-real-ip",
    "client-ip",
    "x-client-ip",
    "x-proxy-id",
    "proxy-connection",
    "x-bluecoat-via",
    "proxy-agent",
    "x-originating-ip",
];

/// Fields of a judge's answer that name the requester's address (what the judge saw as the
/// TCP peer), not a header.
const ADDRESS_FIELDS: [&str; 5] = ["origin", "ip", "remote-addr", "client-address", "address"];

/// Fields of JSON judges that are not headers (httpbin's `/get` and the like).
const NOT_HEADERS: [&str; 11] = [
    "origin",
    "ip",
    "remote-addr",
    "remote-port",
    "url",
    "method",
    "args",
    "query",
    "body",
    "form",
    "files",
];

/// The grade of a proxy from the judge's answer through it, given our own addresses.
pub fn judge(body: &str, own: &[IpAddr]) -> Anonymity {
    let mut level = Anonymity::Elite;
    for (name, value) in headers(body) {
        if name == "host" {
            continue; // names the judge, never us
        }
        if addresses_in(&value).any(|a| own.iter().any(|o| same_ip(*o, a))) {
            return Anonymity::Transparent;
        }
        if PROXY_MARKS.contains(&name.as_str()) {
            level = Anonymity::Anonymous;
        }
    }
    level
}

/// The addresses a judge reports for the requester of a direct request (httpbin's `origin`,
/// `ip`, PHP's `REMOTE_ADDR`).
pub fn own_addresses(body: &str) -> Vec<IpAddr> {
    let mut found = Vec::new();
    let mut take = |name: &str, value: &str| {
        if ADDRESS_FIELDS.contains(&name) {
            found.extend(addresses_in(value));
        }
    };
    match serde_json::from_str::<serde_json::Value>(body.trim()) {
        Ok(serde_json::Value::Object(map)) => {
            for (k, v) in &map {
                take(&normalize(k), &text_of(v));
            }
        }
        _ => {
            for line in body.lines() {
                if let Some((name, value, _)) = split_line(line) {
                    take(&name, &value);
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The request headers a judge page lists, as (lowercase name with `-`, value).
pub fn headers(body: &str) -> Vec<(String, String)> {
    let trimmed = body.trim();
    if trimmed.starts_with('{') {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(trimmed) {
            let (inner, flat) = match map.get("headers") {
                Some(serde_json::Value::Object(h)) => (h, false),
                _ => (&map, true),
            };
            return inner
                .iter()
                .map(|(k, v)| (normalize(k), text_of(v)))
                .filter(|(k, _)| !(flat && NOT_HEADERS.contains(&k.as_str())))
                .map(|(k, v)| (k.strip_prefix("http-").map(str::to_string).unwrap_or(k), v))
                .collect();
        }
    }
    body.lines()
        .filter_map(split_line)
        .filter_map(|(name, value, php)| {
            // PHP's `$_SERVER` lists headers as `HTTP_NAME`; its other entries
            // (`REMOTE_ADDR`, `SERVER_NAME`...) are not headers.
            match name.strip_prefix("http-") {
                Some(h) => Some((h.to_string(), value)),
                None if php => None,
                None => Some((name, value)),
            }
        })
        .collect()
}

/// `Name: value` or `NAME = value` (PHP style, third field `true`), with the name normalized.
fn split_line(line: &str) -> Option<(String, String, bool)> {
    let line = line.trim();
    let at = line.find([':', '='])?;
    let (name, rest) = line.split_at(at);
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let php = rest.starts_with('=');
    Some((normalize(name), rest[1..].trim().to_string(), php))
}

fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Every IP address written in a header value: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:443`,
/// `for="..."`, comma-separated lists.
pub fn addresses_in(value: &str) -> impl Iterator<Item = IpAddr> + '_ {
    value
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '"' | '=' | '\''))
        .filter(|t| !t.is_empty())
        .filter_map(parse_address)
}

fn parse_address(token: &str) -> Option<IpAddr> {
    if let Ok(ip) = token.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = token.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    // `1.2.3.4:port`
    let (host, port) = token.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Equal addresses, an IPv4-mapped IPv6 address being its IPv4 one.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Vec<IpAddr> {
        vec!["203.0.113.7".parse().unwrap()]
    }

    #[test]
    fn header_lines() {
        let own = me();
        assert_eq!(judge("Host: a\nUser-Agent: x\n", &own), Anonymity::Elite);
        assert_eq!(
            judge("Host: a\nVia: 1.1 squid\n", &own),
            Anonymity::Anonymous
        );
        assert_eq!(
            judge("Via: 1.1 x\nX-Forwarded-For: 203.0.113.7\n", &own),
            Anonymity::Transparent
        );
    }

    #[test]
    fn a_forwarded_for_without_our_address_is_anonymous() {
        let own = me();
        for value in ["unknown", "10.1.2.3", "198.51.100.1, 10.0.0.1", ""] {
            assert_eq!(
                judge(&format!("X-Forwarded-For: {value}\n"), &own),
                Anonymity::Anonymous,
                "{value}"
            );
        }
        assert_eq!(
            judge("X-Forwarded-For: 10.0.0.1, 203.0.113.7\n", &own),
            Anonymity::Transparent
        );
    }

    #[test]
    fn our_address_in_any_header_is_transparent() {
        let own = me();
        assert_eq!(
            judge("X-Custom-Client: 203.0.113.7\n", &own),
            Anonymity::Transparent
        );
        assert_eq!(
            judge("Forwarded: for=\"203.0.113.7:4711\";proto=http\n", &own),
            Anonymity::Transparent
        );
        let v6: Vec<IpAddr> = vec!["2001:db8::1".parse().unwrap()];
        assert_eq!(
            judge("Forwarded: for=\"[2001:db8::1]:4711\"\n", &v6),
            Anonymity::Transparent
        );
        let mapped: Vec<IpAddr> = vec!["::ffff:203.0.113.7".parse().unwrap()];
        assert_eq!(
            judge("X-Real-IP: 203.0.113.7\n", &mapped),
            Anonymity::Transparent
        );
        // The judge's own name in Host does not count.
        let judge_ip: Vec<IpAddr> = vec!["192.0.2.9".parse().unwrap()];
        assert_eq!(judge("Host: 192.0.2.9:8080\n", &judge_ip), Anonymity::Elite);
    }

    #[test]
    fn php_style() {
        let own = me();
        assert_eq!(
            judge("HTTP_X_FORWARDED_FOR = 203.0.113.7\n", &own),
            Anonymity::Transparent
        );
        assert_eq!(judge("HTTP_VIA = 1.1 x\n", &own), Anonymity::Anonymous);
        // REMOTE_ADDR is the proxy as the judge saw it, not a header.
        assert_eq!(
            judge("REMOTE_ADDR = 203.0.113.7\nHTTP_HOST = judge\n", &own),
            Anonymity::Elite
        );
        assert_eq!(
            own_addresses("REMOTE_ADDR = 203.0.113.7\nHTTP_HOST = judge\n"),
            own
        );
    }

    #[test]
    fn json_judges() {
        let own = me();
        let httpbin = r#"{"args":{},"headers":{"Host":"httpbin.org","X-Forwarded-For":"203.0.113.7"},"origin":"198.51.100.4","url":"http://httpbin.org/get"}"#;
        assert_eq!(judge(httpbin, &own), Anonymity::Transparent);
        let via = r#"{"headers":{"Host":"h","Via":"1.1 proxy"},"origin":"198.51.100.4"}"#;
        assert_eq!(judge(via, &own), Anonymity::Anonymous);
        let clean = r#"{"headers":{"Host":"h","User-Agent":"x"},"origin":"198.51.100.4"}"#;
        assert_eq!(judge(clean, &own), Anonymity::Elite);
        // A flat object of headers; `origin` is the peer, not a header.
        let flat = r#"{"HTTP_X_REAL_IP":"203.0.113.7","origin":"198.51.100.4"}"#;
        assert_eq!(judge(flat, &own), Anonymity::Transparent);
        let flat_peer = r#"{"user-agent":"x","origin":"203.0.113.7"}"#;
        assert_eq!(judge(flat_peer, &own), Anonymity::Elite);
        assert_eq!(
            own_addresses(r#"{"origin":"203.0.113.7","headers":{}}"#),
            own
        );
        assert_eq!(own_addresses(r#"{"ip":"203.0.113.7"}"#), own);
    }

    #[test]
    fn hostile_bodies_do_not_panic() {
        for body in [
            "",
            "{",
            "{\"headers\": 5}",
            ":::",
            "=",
            "[1,2]",
            "\u{0}\u{ffff}:=",
            "[::1",
        ] {
            let _ = judge(body, &me());
            let _ = own_addresses(body);
        }
        assert_eq!(judge("{\"headers\": 5}", &me()), Anonymity::Elite);
    }
}
