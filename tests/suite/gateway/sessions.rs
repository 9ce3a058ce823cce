//! Sticky sessions (kept while they work and for `gateway.session_ttl_secs`, moved when their
//! upstream dies, a 502 when strict), and SOCKS: a SOCKS5 listener for clients, SOCKS4 and
//! SOCKS5 upstreams (with credentials) chosen by the `protocol` option.

use super::{assert_no_secret_logged, curl, GatewayWorld, TOKEN, WAIT};
use crate::support::farm::{Anonymity, Behaviour, FarmProxy};
use crate::support::socks::{Socks4Proxy, Socks5Proxy};
use crate::support::wait;
use serde_json::json;

/// Which of the world's upstreams carried a request: the paid one, or free proxy `i`.
#[derive(Debug, PartialEq, Clone, Copy)]
enum Via {
    Paid,
    Free(usize),
}

fn hits(w: &GatewayWorld) -> (usize, Vec<usize>) {
    (
        w.paid.hits(),
        w.farm.proxies.iter().map(|p| p.hits()).collect(),
    )
}

async fn via(w: &GatewayWorld, user: &str) -> (u16, Option<Via>) {
    let before = hits(w);
    let r = w
        .client(user)
        .get(w.origin.url("/bytes/1"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    let after = hits(w);
    let v = if after.0 > before.0 {
        Some(Via::Paid)
    } else {
        (0..after.1.len())
            .find(|&i| after.1[i] > before.1[i])
            .map(Via::Free)
    };
    (status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_session_keeps_its_upstream_for_its_ttl_then_takes_a_fresh_one() {
    let w = GatewayWorld::start(2, "session_ttl_secs = 5", "").await;
    assert_eq!(via(&w, "c-session-s1").await, (200, Some(Via::Paid)));
    // A cheaper proxy comes: a request without a session goes there ...
    let cheaper = FarmProxy::start(Behaviour::Good, Anonymity::Elite, 0).await;
    let (status, body) = w
        .app
        .send(
            reqwest::Method::POST,
            "/api/admin/proxies",
            Some(crate::support::app::ADMIN_TOKEN),
            Some(
                &json!({"name": "cheaper", "url": format!("http://{}", cheaper.addr),
                         "kind": "datacenter", "cost_per_gb": 0.1, "priority": 0}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    wait::until("the order to change", WAIT, || async {
        let before = cheaper.hits();
        let (status, v) = via(&w, "c").await;
        (status == 200 && v.is_none() && cheaper.hits() > before).then_some(())
    })
    .await;
    // ... while the session keeps its upstream until its TTL ends, then takes a fresh one.
    assert_eq!(via(&w, "c-session-s1").await, (200, Some(Via::Paid)));
    wait::until("the session to move on after its TTL", WAIT, || async {
        (via(&w, "c-session-s1").await == (200, None)).then_some(())
    })
    .await;
    // The cheaper one goes again; the sessions below run on the free proxies.
    let (status, _) = w
        .app
        .send(
            reqwest::Method::DELETE,
            "/api/admin/proxies/cheaper",
            Some(crate::support::app::ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200);
    cheaper.set_behaviour_and_wait(Behaviour::Refuse).await;
    w.paid.set_behaviour_and_wait(Behaviour::Refuse).await;

    // A session whose upstream dies moves to another one; a strict one gets a 502.
    let (_, Some(Via::Free(i))) = via(&w, "c-session-loose").await else {
        panic!("a free proxy serves");
    };
    assert_eq!(
        via(&w, "c-session-hard-strict-1").await,
        (200, Some(Via::Free(i)))
    );
    w.farm.proxies[i]
        .set_behaviour_and_wait(Behaviour::Refuse)
        .await;
    let (status, moved) = via(&w, "c-session-loose").await;
    assert_eq!(status, 200);
    assert_ne!(moved, Some(Via::Free(i)));
    let (status, _) = via(&w, "c-session-hard-strict-1").await;
    assert_eq!(status, 502, "a strict session never changes its exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_clients_and_socks_upstreams_with_credentials() {
    let s5 = Socks5Proxy::start(Some(("s5user".into(), "s5-S3CRET".into()))).await;
    let s4 = Socks4Proxy::start().await;
    let tables = format!(
        r#"
[[managed_proxies]]
name = "socks5-up"
url = "socks5://s5user:s5-S3CRET@{}"
kind = "datacenter"
cost_per_gb = 1.0
priority = 2

[[managed_proxies]]
name = "socks4-up"
url = "socks4://{}"
kind = "datacenter"
cost_per_gb = 1.0
priority = 3
"#,
        s5.addr, s4.addr
    );
    let w = GatewayWorld::start(1, "socks_bind = \"127.0.0.1:0\"", &tables).await;
    w.wait_serving(4).await;
    let socks = w.app.gateway.unwrap().socks.expect("the SOCKS5 listener");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, w.tls.cert_pem.as_ref().unwrap()).unwrap();

    // An HTTP client, through each SOCKS upstream kind: a tunnel and a plain request.
    let (s5_before, s4_before) = (s5.hits(), s4.hits());
    for user in ["c-protocol-socks5", "c-protocol-socks4"] {
        let r = w.client(user).get(w.tls.url("/x")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "ok", "{user}");
        let r = w
            .client(user)
            .get(w.origin.url("/bytes/3"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "xxx", "{user}");
    }
    assert!(
        s5.hits() >= s5_before + 2 && s4.hits() >= s4_before + 2,
        "each SOCKS upstream carried both"
    );

    // A SOCKS5 client (curl, names resolved by the far side).
    let before = s5.hits();
    let url = format!(
        "socks5h://c-protocol-socks5:{TOKEN}@127.0.0.1:{}",
        socks.port()
    );
    if let Some((code, out, err)) = curl(&["-x", &url, &w.origin.url("/bytes/7")]).await {
        assert_eq!((code, out.as_str()), (0, "xxxxxxx"), "{err}");
        assert!(s5.hits() > before);
        let (code, out, err) = curl(&[
            "-x",
            &url,
            "--cacert",
            ca.to_str().unwrap(),
            &w.tls.url("/y"),
        ])
        .await
        .unwrap();
        assert_eq!((code, out.as_str()), (0, "ok"), "{err}");
        let served = w.origin.requests();
        let wrong = format!("socks5h://c:wrong@127.0.0.1:{}", socks.port());
        let (code, _, _) = curl(&["-x", &wrong, &w.origin.url("/bytes/1")])
            .await
            .unwrap();
        assert_ne!(code, 0, "a wrong password is refused");
        let none = format!("socks5h://127.0.0.1:{}", socks.port());
        let (code, _, _) = curl(&["-x", &none, &w.origin.url("/bytes/1")])
            .await
            .unwrap();
        assert_ne!(code, 0, "no password is refused");
        assert_eq!(w.origin.requests(), served, "nothing was forwarded");
    }
    let logs = proxyvisor::logbuf::ring();
    for e in logs.recent(logs.capacity(), log::LevelFilter::Trace) {
        assert!(!e.message.contains("s5-S3CRET"), "{}", e.message);
    }
    assert_no_secret_logged();
}
