//! Hostile clients get a clear 4xx (or a SOCKS failure) and a log line, never a panic and never
//! a way into the host's network: malformed heads, heads over the limit, heads sent byte by
//! byte, ports outside `gateway.allowed_ports`, the service's own ports, loopback, private and
//! link-local targets (by their resolved address), and too many connections.

use super::forwarding::raw;
use super::{GatewayWorld, TOKEN};
use proxyvisor_testkit::loopback::basic_credentials;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn connect(target: &str) -> String {
    format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n",
        basic_credentials("c", TOKEN)
    )
}

fn get(url: &str, host: &str) -> String {
    format!(
        "GET {url} HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: {}\r\n\r\n",
        basic_credentials("c", TOKEN)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_huge_slow_and_forbidden_requests_get_a_clear_4xx() {
    let own = proxyvisor_testkit::process::free_port();
    let w = GatewayWorld::start_with(
        1,
        &format!(
            "bind = \"127.0.0.1:{own}\"\nhead_timeout_ms = 600\nmax_head_bytes = 4096\n\
             max_connections_per_client = 3"
        ),
        "",
        &[own],
        "cost_per_gb = 1.0",
    )
    .await;
    // The own port is allowed, and still never a target: the gateway would call itself.
    assert_eq!(w.port(), own);
    let port = w.port();
    let origin = format!("127.0.0.1:{}", w.origin.port());

    for (req, status, says) in [
        ("GARBAGE\r\n\r\n".to_string(), "400", ""),
        ("GET http://a b c HTTP/1.1\r\n\r\n".to_string(), "400", ""),
        (
            format!(
                "GET http://{origin}/ HTTP/1.1\r\nX-Big: {}\r\n\r\n",
                "a".repeat(8000)
            ),
            "431",
            "",
        ),
        (connect("127.0.0.1:22"), "403", "allowed_ports"),
        (
            connect(&format!("127.0.0.1:{own}")),
            "403",
            "this service itself",
        ),
        (
            connect(&format!("localhost:{own}")),
            "403",
            "this service itself",
        ),
        (get("/relative", &origin), "400", "absolute-form"),
        (
            get(&format!("https://{origin}/"), &origin),
            "400",
            "CONNECT",
        ),
        (connect("no-port-here"), "400", ""),
    ] {
        let answer = raw(port, req.as_bytes()).await;
        let first = req
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(60)
            .collect::<String>();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")) && answer.contains(says),
            "{first}: {answer}"
        );
    }
    assert_eq!(w.origin.requests(), 0);

    // A head sent byte by byte, never finished: 408 once head_timeout_ms is over.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let trickle = tokio::spawn(async move {
        for b in b"GET http://example.com/ HTTP/1.1\r\nHost: exa".iter() {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    });
    let answer = trickle.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Past max_connections_per_client: 503 at once.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    crate::support::wait::until("3 open connections", super::WAIT, || async {
        let metrics = w.app.get("/metrics").await.text().await.unwrap();
        metrics
            .lines()
            .any(|l| l == "proxyvisor_gateway_open_connections 3")
            .then_some(())
    })
    .await;
    let answer = raw(port, b"").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(held);
    // Once they close, the gateway serves again.
    let request = get(&format!("http://{origin}/bytes/2"), &origin);
    crate::support::wait::until("the held connections to close", super::WAIT, || async {
        raw(port, request.as_bytes())
            .await
            .starts_with("HTTP/1.1 200")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_allow_private_loopback_private_and_metadata_targets_are_refused() {
    let w = GatewayWorld::start(1, "allow_private = false\nsocks_bind = \"127.0.0.1:0\"", "").await;
    let port = w.port();
    let o = w.origin.port();
    for target in [
        format!("127.0.0.1:{o}"),
        format!("localhost:{o}"),
        format!("[::1]:{o}"),
        format!("10.0.0.1:{o}"),
        format!("169.254.169.254:{o}"),
    ] {
        let answer = raw(port, connect(&target).as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{target}: {answer}");
        let answer = raw(port, get(&format!("http://{target}/"), &target).as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{target}: {answer}");
    }
    assert_eq!(w.origin.requests(), 0);

    // SOCKS5: the same refusal is "not allowed by ruleset" (2); garbage just closes.
    let socks = w.app.gateway.unwrap().socks.unwrap().port();
    let mut s = TcpStream::connect(("127.0.0.1", socks)).await.unwrap();
    s.write_all(&[5, 1, 2]).await.unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).await.unwrap();
    assert_eq!(m, [5, 2]);
    let mut auth = vec![1, 1, b'c', TOKEN.len() as u8];
    auth.extend_from_slice(TOKEN.as_bytes());
    s.write_all(&auth).await.unwrap();
    s.read_exact(&mut m).await.unwrap();
    assert_eq!(m, [1, 0], "the password is right");
    let mut req = vec![5, 1, 0, 1, 127, 0, 0, 1];
    req.extend_from_slice(&o.to_be_bytes());
    s.write_all(&req).await.unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[1], 2, "{reply:?}");
    let mut g = TcpStream::connect(("127.0.0.1", socks)).await.unwrap();
    g.write_all(b"\x16\x03\x01 hello, this is not SOCKS")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), g.read_to_end(&mut out)).await;
    assert!(out.is_empty(), "{out:?}");
    // Still serving.
    let answer = raw(port, b"GARBAGE\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"));
}
