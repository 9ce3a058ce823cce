//! Parsing proxy lists from sources: plain text (one proxy a line) and JSON (proxifly's shape).
//! Whatever a source sends, parsing never fails: bad entries are skipped and counted.

use super::proxy::{Anonymity, Endpoint, Protocol};
use serde_json::Value;

/// A proxy as a source announced it.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovered {
    pub endpoint: Endpoint,
    pub anonymity: Option<Anonymity>,
    /// ISO 3166 alpha-2, upper case.
    pub country: Option<String>,
}

#[derive(Debug, Default, PartialEq)]
pub struct ParsedList {
    pub proxies: Vec<Discovered>,
    /// Entries that were not proxies (bad lines, objects without ip/port...).
    pub skipped: usize,
    /// The first few reasons, for the log.
    pub samples: Vec<String>,
}

impl ParsedList {
    fn skip(&mut self, why: String) {
        self.skipped += 1;
        if self.samples.len() < 3 {
            // A reason may quote the source: keep it short, whatever the source sent.
            self.samples
                .push(why.chars().take(MAX_SAMPLE_CHARS).collect());
        }
    }
}

/// The longest reason kept in `samples`.
pub const MAX_SAMPLE_CHARS: usize = 120;

/// The format of a list body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Plain,
    Json,
    /// JSON when the body starts with `[`, plain otherwise (proxifly serves both).
    Detect,
}

pub fn parse(body: &[u8], format: Format, default_protocol: Protocol) -> ParsedList {
    let format = match format {
        Format::Detect => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            if first == Some(&b'[') {
                Format::Json
            } else {
                Format::Plain
            }
        }
        f => f,
    };
    match format {
        Format::Json => parse_json(body, default_protocol),
        _ => parse_plain(body, default_protocol),
    }
}

/// One proxy a line: `host:port` or `scheme://[user:pass@]host:port`; anything after the first
/// whitespace is ignored; empty lines and `#` comments are skipped silently.
pub fn parse_plain(body: &[u8], default_protocol: Protocol) -> ParsedList {
    let text = String::from_utf8_lossy(body);
    let mut out = ParsedList::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let token = line.split_whitespace().next().unwrap_or("");
        match Endpoint::parse(token, default_protocol) {
            Ok(endpoint) => out.proxies.push(Discovered {
                endpoint,
                anonymity: None,
                country: None,
            }),
            Err(e) => out.skip(format!(
                "{e}: {}",
                line.chars().take(40).collect::<String>()
            )),
        }
    }
    out
}

/// An array of objects with `ip` (or `host`) and `port`, or a `proxy` URL; optional `protocol`,
/// `anonymity`, and `geolocation.country` (or `country`).
pub fn parse_json(body: &[u8], default_protocol: Protocol) -> ParsedList {
    let mut out = ParsedList::default();
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            out.skip("the JSON is not an array".into());
            return out;
        }
        Err(e) => {
            out.skip(format!("not JSON: {e}"));
            return out;
        }
    };
    for item in items {
        match json_entry(&item, default_protocol) {
            Ok(d) => out.proxies.push(d),
            Err(e) => out.skip(e),
        }
    }
    out
}

fn json_entry(item: &Value, default_protocol: Protocol) -> Result<Discovered, String> {
    let obj = item.as_object().ok_or("entry is not an object")?;
    let text = |k: &str| obj.get(k).and_then(Value::as_str);
    let protocol = match text("protocol") {
        Some(p) => Protocol::parse(p).ok_or_else(|| {
            format!(
                "unknown protocol `{}`",
                p.chars().take(16).collect::<String>()
            )
        })?,
        None => default_protocol,
    };
    let host = text("ip").or_else(|| text("host"));
    let endpoint = match (host, obj.get("port")) {
        (Some(host), Some(port)) => {
            let port = match port {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err("port is not a number".into()),
            };
            Endpoint::parse(&format!("{host}:{port}"), protocol)?
        }
        _ => match text("proxy") {
            Some(url) => Endpoint::parse(url, protocol)?,
            None => return Err("entry has no ip/port".into()),
        },
    };
    let country = obj
        .get("geolocation")
        .and_then(|g| g.get("country"))
        .and_then(Value::as_str)
        .or_else(|| text("country"))
        .map(str::trim)
        .filter(|c| c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase);
    Ok(Discovered {
        endpoint,
        anonymity: text("anonymity").and_then(Anonymity::parse),
        country,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lists_skip_and_count_bad_lines() {
        let body = b"# comment\n1.2.3.4:80\n\nsocks5://5.6.7.8:1080 US\nnot a proxy\n\xff\xfe:12\n";
        let l = parse(body, Format::Detect, Protocol::Http);
        let keys: Vec<_> = l.proxies.iter().map(|d| d.endpoint.key()).collect();
        assert_eq!(keys, ["http://1.2.3.4:80", "socks5://5.6.7.8:1080"]);
        assert_eq!(l.skipped, 2);
    }

    #[test]
    fn proxifly_json_keeps_anonymity_and_country() {
        let body = br#"[
          {"proxy":"http://1.2.3.4:80","protocol":"http","ip":"1.2.3.4","port":80,
           "anonymity":"elite","geolocation":{"country":"us","city":"X"}},
          {"ip":"9.9.9.9","port":"3128"},
          {"protocol":"gopher","ip":"1.1.1.1","port":1},
          {"proxy":"socks4://4.4.4.4:4145"},
          7, null, {"ip":"2.2.2.2"}
        ]"#;
        let l = parse(body, Format::Detect, Protocol::Http);
        assert_eq!(l.proxies.len(), 3);
        assert_eq!(l.proxies[0].anonymity, Some(Anonymity::Elite));
        assert_eq!(l.proxies[0].country.as_deref(), Some("US"));
        assert_eq!(l.proxies[1].endpoint.key(), "http://9.9.9.9:3128");
        assert_eq!(l.proxies[2].endpoint.protocol, Protocol::Socks4);
        assert_eq!(l.skipped, 4);
    }

    /// Found by the `source_plain`, `source_json` and `source_detect` fuzz targets: a long
    /// scheme or protocol was repeated whole in the skip reasons (which reach the log).
    #[test]
    fn skip_reasons_stay_short_whatever_the_source_sends() {
        let scheme = "\0".repeat(400);
        let plain = format!("{scheme}://1.2.3.4:80\n");
        let json = format!(
            r#"[{{"ip":"1.2.3.4","port":80,"protocol":"{}"}}]"#,
            "1".repeat(5000)
        );
        for (body, format) in [
            (plain.as_bytes(), Format::Plain),
            (plain.as_bytes(), Format::Detect),
            (json.as_bytes(), Format::Json),
        ] {
            let l = parse(body, format, Protocol::Http);
            assert_eq!((l.proxies.len(), l.skipped), (0, 1));
            assert!(
                l.samples[0].chars().count() <= MAX_SAMPLE_CHARS,
                "{}",
                l.samples[0]
            );
        }
        let e = Endpoint::parse(&format!("{}://1.2.3.4:80", "x".repeat(400)), Protocol::Http)
            .unwrap_err();
        assert!(e.len() < 64, "{e}");
    }

    #[test]
    fn garbage_never_fails() {
        for body in [
            &b""[..],
            b"{",
            b"[1,2",
            b"\x00\x01\x02",
            b"{\"a\":1}",
            &[b'x'; 100_000],
        ] {
            let l = parse(body, Format::Detect, Protocol::Http);
            assert!(l.proxies.is_empty());
        }
    }
}
