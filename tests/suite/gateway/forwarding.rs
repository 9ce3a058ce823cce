//! Clients reach plain and TLS origins through the gateway, cheapest upstream first; a dead or
//! blocked upstream fails over to the next and leaves the pool by the usual rules; all dead is a
//! 502; no or a wrong password is a 407 on every path, and nothing is forwarded.

use super::{assert_no_secret_logged, curl, GatewayWorld, TOKEN, WAIT};
use crate::support::farm::Behaviour;
use crate::support::wait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw bytes to the gateway and reads its first answer (head and `Content-Length` body),
/// or what came before it closed.
pub async fn raw(port: u16, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if out.len() >= end + 4 + len {
                    return;
                }
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), read).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_reqwest_reach_plain_and_tls_origins_through_the_cheapest_upstream() {
    let w = GatewayWorld::start(2, "", "").await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, w.tls.cert_pem.as_ref().unwrap()).unwrap();
    let paid_before = w.paid.hits();

    if let Some((code, out, err)) =
        curl(&["-x", &w.proxy_url("client"), &w.origin.url("/bytes/100")]).await
    {
        assert_eq!((code, out.len()), (0, 100), "{err}");
        let (code, out, err) = curl(&[
            "-x",
            &w.proxy_url("client"),
            "--cacert",
            ca.to_str().unwrap(),
            &w.tls.url("/hello"),
        ])
        .await
        .unwrap();
        assert_eq!((code, out.as_str()), (0, "ok"), "{err}");
    }

    let client = w.client("client-strategy-cheapest");
    let r = client.get(w.origin.url("/bytes/10")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "x".repeat(10));
    let r = client.get(w.tls.url("/hello")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
    let r = client
        .post(w.origin.url("/upload"))
        .body(vec![7u8; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "got 5000");
    // The paid proxy (priority 1) carried every one of them.
    assert!(
        w.paid.hits() >= paid_before + 3,
        "the cheapest upstream is the paid one"
    );
    // Health lists the gateway: where it listens, and what it has done.
    let (_, health) = w.app.get_json("/api/health/comprehensive").await;
    let g = &health["gateway"];
    assert_eq!(g["enabled"], true, "{g}");
    let listening = format!("http://127.0.0.1:{}", w.port());
    assert!(
        g["listening"]
            .as_array()
            .unwrap()
            .contains(&listening.into()),
        "{g}"
    );
    assert!(g["requests"]["ok"].as_u64().unwrap() >= 3, "{g}");
    assert!(g["bytes_down"].as_u64().unwrap() >= 12, "{g}");
    assert!(g["open_connections"].is_u64(), "{g}");
    let (_, metrics) = (200, w.app.get("/metrics").await.text().await.unwrap());
    assert!(
        metrics.contains("proxyvisor_gateway_requests_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert_no_secret_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_cheapest_upstream_fails_over_and_leaves_the_pool() {
    let w = GatewayWorld::start(2, "", "").await;
    let paid = format!("http://{}", w.paid.addr);
    w.paid.set_behaviour_and_wait(Behaviour::Refuse).await;
    let client = w.client("client");
    // Each request still succeeds through the next upstream; each failed attempt through the
    // paid proxy is a failed check, and two in a row kill it.
    wait::until("the paid proxy to leave the pool", WAIT, || async {
        let r = client.get(w.origin.url("/bytes/3")).send().await.unwrap();
        assert_eq!(r.status(), 200, "a request failed over");
        (!w.app.serving().await.contains(&paid)).then_some(())
    })
    .await;
    let metrics = w.app.get("/metrics").await.text().await.unwrap();
    let failovers = metrics
        .lines()
        .find(|l| l.starts_with("proxyvisor_gateway_failovers_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(failovers >= 1.0, "{metrics}");

    // Every upstream dead: 502 naming how many were tried, never a credential.
    for p in &w.farm.proxies {
        p.set_behaviour_and_wait(Behaviour::Refuse).await;
    }
    let r = client.get(w.origin.url("/bytes/3")).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!(status == 502 || status == 503, "{status} {text}");
    if status == 502 {
        assert!(text.contains("upstreams tried"), "{text}");
    }
    assert!(!text.contains(super::PAID_PASS));
    // The gateway's failures are the pool's checks: every upstream leaves it, and the admin
    // hears that nothing is left.
    wait::until("a pool_empty alert", WAIT, || async {
        let r = client.get(w.origin.url("/bytes/3")).send().await.unwrap();
        assert!(matches!(r.status().as_u16(), 502 | 503), "{}", r.status());
        let (_, alerts) = w.app.get_json("/api/alerts").await;
        let kinds: Vec<&str> = (alerts["alerts"].as_array().unwrap().iter())
            .filter_map(|a| a["kind"].as_str())
            .collect();
        kinds.contains(&"pool_empty").then_some(())
    })
    .await;
    assert!(w.app.serving().await.is_empty());
    assert_no_secret_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_upstream_the_target_refuses_is_blocked_and_the_next_one_serves() {
    let w = GatewayWorld::start(1, "", "").await;
    let free_hits = w.farm.proxies[0].hits();
    w.paid.block_target(w.origin.port(), 403);
    let r = w
        .client("client")
        .get(w.origin.url("/bytes/5"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "xxxxx");
    assert!(
        w.farm.proxies[0].hits() > free_hits,
        "the free proxy served"
    );
    wait::until("the paid proxy to be blocked", WAIT, || async {
        let (_, body) = w.app.get_json("/api/v1/proxy/status").await;
        (body["proxies"][0]["status"] == "blocked").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_or_a_wrong_password_is_a_407_on_every_path_and_nothing_is_forwarded() {
    let w = GatewayWorld::start(1, "", "").await;
    let port = w.port();
    let target = format!("127.0.0.1:{}", w.origin.port());
    let basic =
        |user: &str, pass: &str| proxyvisor_testkit::loopback::basic_credentials(user, pass);
    let cases = [
        format!("GET http://{target}/bytes/1 HTTP/1.1\r\nHost: {target}\r\n\r\n"),
        format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
        format!(
            "GET http://{target}/bytes/1 HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n",
            basic("client", "wrong")
        ),
        format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n",
            basic("client", "wrong")
        ),
        format!(
            "GET http://{target}/bytes/1 HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Bearer {TOKEN}\r\n\r\n"
        ),
    ];
    for req in &cases {
        let answer = raw(port, req.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 407"), "{req}\n{answer}");
        assert!(
            answer.contains("proxy-authenticate: Basic realm=\"proxyvisor\""),
            "{answer}"
        );
    }
    // An unknown option is named, never silently ignored.
    let answer = raw(
        port,
        format!(
            "GET http://{target}/bytes/1 HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n",
            basic("client-colour-red", TOKEN)
        )
        .as_bytes(),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("colour"),
        "{answer}"
    );
    assert_eq!(w.origin.requests(), 0, "nothing was forwarded");
    // The right password works.
    let answer = raw(
        port,
        format!(
            "GET http://{target}/bytes/2 HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\nProxy-Authorization: {}\r\n\r\n",
            basic("client", TOKEN)
        )
        .as_bytes(),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("xx"),
        "{answer}"
    );
}
