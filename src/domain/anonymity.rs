//! Judging a proxy's anonymity from what a judge page saw of the request.

use super::proxy::Anonymity;

/// Headers that carry the client's own address.
const REVEALING: [&str; 5] = [
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "client-ip",
    "x-client-ip",
];
/// Headers that say a proxy was there.
const PROXY_MARKS: [&str; 4] = ["via", "proxy-connection", "x-proxy-id", "x-bluecoat-via"];

/// The judge page lists the request's headers one a line, as `Name: value` or (PHP style)
/// `HTTP_NAME = value`.
pub fn judge(body: &str) -> Anonymity {
    let mut level = Anonymity::Elite;
    for line in body.lines() {
        let name = line
            .split([':', '='])
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
            .replace('_', "-");
        let name = name.strip_prefix("http-").unwrap_or(&name);
        if REVEALING.contains(&name) {
            return Anonymity::Transparent;
        }
        if PROXY_MARKS.contains(&name) {
            level = Anonymity::Anonymous;
        }
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(judge("Host: a\nUser-Agent: x\n"), Anonymity::Elite);
        assert_eq!(judge("Host: a\nVia: 1.1 squid\n"), Anonymity::Anonymous);
        assert_eq!(
            judge("Via: 1.1 x\nX-Forwarded-For: 1.2.3.4\n"),
            Anonymity::Transparent
        );
        assert_eq!(
            judge("HTTP_X_FORWARDED_FOR = 1.2.3.4\n"),
            Anonymity::Transparent
        );
        assert_eq!(judge("HTTP_VIA = 1.1 x\n"), Anonymity::Anonymous);
    }
}
