//! Self-test of the farm's proxy auth and per-target blocking
//! (`FarmProxy::require_auth` / `block_target`), through reqwest.

use crate::support::farm::{
    base64_encode, basic_credentials, Anonymity, Behaviour, FarmProxy, Origin, AUTH_CHALLENGE,
    ORIGIN_BODY,
};

/// A client that sends everything through `proxy` (optionally with Basic
/// credentials), never exempting loopback.
fn client_via(proxy: &FarmProxy, creds: Option<(&str, &str)>) -> reqwest::Client {
    let mut p = reqwest::Proxy::http(proxy.url()).unwrap().no_proxy(None);
    if let Some((user, pass)) = creds {
        p = p.basic_auth(user, pass);
    }
    // reqwest is built with `rustls-no-provider`: install ring (fails only
    // when a provider is installed already, which is as good).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().proxy(p).build().unwrap()
}

#[test]
fn base64_matches_rfc4648_vectors() {
    let cases = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (plain, encoded) in cases {
        assert_eq!(base64_encode(plain.as_bytes()), encoded, "{plain:?}");
    }
    assert_eq!(
        basic_credentials("Aladdin", "open sesame"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
}

#[tokio::test]
async fn auth_then_block_then_unblock() {
    let origin = Origin::start().await;
    let target = Origin::start().await;
    let proxy = FarmProxy::start(Behaviour::Good, Anonymity::Elite, 0).await;
    let url = origin.url("/ok");

    // No auth required: plain forwarding works.
    let anon = client_via(&proxy, None);
    let resp = anon.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), ORIGIN_BODY);

    proxy.require_auth("user", "s3cret");
    assert!(proxy.auth_required());

    // Without credentials: 407 with a Basic challenge, origin not reached.
    let hits_before = origin.hits();
    let resp = anon.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 407);
    assert_eq!(
        resp.headers()
            .get("proxy-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(AUTH_CHALLENGE)
    );
    assert_eq!(proxy.auth_failures(), 1);

    // Wrong credentials: 407 too.
    let wrong = client_via(&proxy, Some(("user", "wrong")));
    assert_eq!(wrong.get(&url).send().await.unwrap().status(), 407);
    assert_eq!(proxy.auth_failures(), 2);
    assert_eq!(origin.hits(), hits_before);

    // Right credentials: forwarded.
    let authed = client_via(&proxy, Some(("user", "s3cret")));
    let resp = authed.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), ORIGIN_BODY);
    assert_eq!(origin.hits(), hits_before + 1);

    // Blocked for the origin's port: 403, origin not reached; another
    // target through the same proxy still works.
    proxy.block_target(origin.port(), 403);
    let resp = authed.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(origin.hits(), hits_before + 1);
    assert_eq!(proxy.blocked_hits(), 1);
    let resp = authed.get(target.url("/ok")).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // Auth is checked before blocking.
    assert_eq!(anon.get(&url).send().await.unwrap().status(), 407);
    assert_eq!(proxy.auth_failures(), 3);
    assert_eq!(proxy.blocked_hits(), 1);

    // A different status replaces the earlier one.
    proxy.block_target(origin.port(), 429);
    assert_eq!(authed.get(&url).send().await.unwrap().status(), 429);

    // Unblocked: forwarded again.
    proxy.unblock_target(origin.port());
    let resp = authed.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), ORIGIN_BODY);

    // Auth cleared: anonymous requests work again.
    proxy.clear_auth();
    assert_eq!(anon.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(proxy.auth_failures(), 3);
}

/// CONNECT is subject to auth and blocking as well (raw socket: reqwest
/// would need TLS to tunnel).
#[tokio::test]
async fn connect_respects_auth_and_block() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let origin = Origin::start().await;
    let proxy = FarmProxy::start(Behaviour::Good, Anonymity::Elite, 0).await;
    proxy.require_auth("u", "p");

    async fn connect(proxy: &FarmProxy, port: u16, auth: Option<String>) -> String {
        let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        let mut req = format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
        if let Some(a) = auth {
            req.push_str(&format!("Proxy-Authorization: {a}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        // Then speak plain HTTP through the tunnel (if it opened).
        s.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    let port = origin.port();
    let r = connect(&proxy, port, None).await;
    assert!(r.starts_with("HTTP/1.1 407 "), "{r}");
    assert!(
        r.contains(&format!("Proxy-Authenticate: {AUTH_CHALLENGE}")),
        "{r}"
    );

    let good = Some(basic_credentials("u", "p"));
    let r = connect(&proxy, port, good.clone()).await;
    assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
    assert!(r.ends_with(ORIGIN_BODY), "{r}");

    proxy.block_target(port, 403);
    let r = connect(&proxy, port, good.clone()).await;
    assert!(r.starts_with("HTTP/1.1 403 "), "{r}");

    proxy.unblock_target(port);
    let r = connect(&proxy, port, good).await;
    assert!(r.ends_with(ORIGIN_BODY), "{r}");
    assert_eq!(proxy.auth_failures(), 1);
    assert_eq!(proxy.blocked_hits(), 1);
}
