//! Talking to servers directly (sources, watched services, hosting APIs, Telegram): one way to
//! build the HTTP client (never through a proxy, the one shared rustls configuration), to read
//! an answer's body up to a size, and to read `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

pub const USER_AGENT: &str = concat!("proxyvisor/", env!("CARGO_PKG_VERSION"));

/// A client for direct requests; `timeout` bounds each whole request, `connect_timeout` its
/// connection.
pub fn client(timeout: Option<Duration>, connect_timeout: Option<Duration>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_backend_preconfigured((*shared_tls_config()).clone())
        .user_agent(USER_AGENT)
        .pool_idle_timeout(Duration::from_secs(30))
        .no_proxy();
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    if let Some(t) = connect_timeout {
        b = b.connect_timeout(t);
    }
    b.build().unwrap_or_default()
}

/// What was read of an answer's body.
#[derive(Debug, Default)]
pub struct Body {
    /// At most the `max` bytes asked for.
    pub bytes: Vec<u8>,
    /// The server sent more than `max`: the rest was not read.
    pub cut: bool,
    /// The body broke off (or timed out) after `bytes`.
    pub error: Option<reqwest::Error>,
}

/// Reads `resp`'s body, at most `max` bytes: a huge or endless answer costs no more than that.
pub async fn read_body(resp: &mut reqwest::Response, max: usize) -> Body {
    let mut body = Body::default();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = max - body.bytes.len();
                if chunk.len() > room {
                    body.bytes.extend_from_slice(&chunk[..room]);
                    body.cut = true;
                    return body;
                }
                body.bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return body,
            Err(e) => {
                body.error = Some(e);
                return body;
            }
        }
    }
}

/// The wait a server asks for, in seconds, from the first of `names` that holds a number of
/// seconds under a day (`Retry-After: 120`; Render's `Ratelimit-Reset`). HTTP dates are not
/// read: the caller's own backoff applies.
pub fn retry_after_secs(headers: &reqwest::header::HeaderMap, names: &[&str]) -> Option<f64> {
    names
        .iter()
        .filter_map(|name| {
            headers
                .get(*name)?
                .to_str()
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .find(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
}

/// One rustls configuration (ring, webpki roots) shared by every check and HTTP client. Its first
/// call also makes ring the process-wide rustls provider, which reqwest's clients need.
pub fn shared_tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            // Fails only when a provider is installed already, which is as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_the_first_usable_header() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "soon".parse().unwrap());
        h.insert("ratelimit-reset", "0.5".parse().unwrap());
        assert_eq!(
            retry_after_secs(&h, &["retry-after", "ratelimit-reset"]),
            Some(0.5)
        );
        h.insert("retry-after", "90000".parse().unwrap());
        assert_eq!(retry_after_secs(&h, &["retry-after"]), None);
        assert_eq!(retry_after_secs(&h, &["x-none"]), None);
    }
}
