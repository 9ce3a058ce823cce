//! `kill -9` at any moment loses nothing that was acknowledged: leases given out, managed proxies
//! added and alerts queued are all there after the restart, and the restarted service serves its
//! last pool at once, before any check.

use crate::farm_config;
use crate::support::app::{http_client, sqlite_db, ADMIN_TOKEN};
use crate::support::farm::{Anonymity, Behaviour, Farm};
use crate::support::process::{free_port, ServiceProcess};
use crate::support::source::SourceServer;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Acked {
    leases: Vec<String>,
    managed: Vec<String>,
    alerts: Vec<i64>,
}

async fn get(client: &reqwest::Client, url: String) -> Value {
    let r = client
        .get(url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Everything acknowledged before the kill is there; the pool is served before any check.
async fn verify(svc: &ServiceProcess, acked: &Acked) {
    let client = http_client();
    let alive = get(&client, svc.url("/api/proxy/alive?count=5")).await;
    assert!(
        alive["count"].as_u64().unwrap() > 0,
        "the last pool is served at once: {alive}"
    );
    for id in &acked.leases {
        let r = client
            .post(svc.url(&format!("/api/leases/{id}/renew")))
            .json(&json!({"ttl_secs": 3600}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged lease {id} lost");
    }
    let status = get(&client, svc.url("/api/v1/proxy/status")).await;
    let names: HashSet<&str> = status["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for n in &acked.managed {
        assert!(
            names.contains(n.as_str()),
            "acknowledged managed proxy {n} lost"
        );
    }
    let alerts = get(&client, svc.url("/api/alerts?limit=1000")).await;
    let ids: HashSet<i64> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_i64())
        .collect();
    for id in &acked.alerts {
        assert!(ids.contains(id), "acknowledged alert {id} lost");
    }
}

/// Keeps asking for leases, managed proxies and alerts, recording each acknowledgement.
fn traffic(
    svc: &ServiceProcess,
    round: usize,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = http_client();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for kind in 0..3 {
        let (client, acked, stop, next) =
            (client.clone(), acked.clone(), stop.clone(), next.clone());
        let base = svc.url("");
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (path, body) = match kind {
                    0 => ("/api/leases", json!({"count": 1, "ttl_secs": 3600})),
                    1 => (
                        "/api/admin/proxies",
                        json!({"name": format!("paid-{round}-{i}"), "url": format!("http://127.0.0.2:{}", 1024 + round * 10_000 + i)}),
                    ),
                    _ => ("/api/admin/alerts/test", json!({"message": format!("round {round} #{i}")})),
                };
                let Ok(r) = client
                    .post(format!("{base}{path}"))
                    .bearer_auth(ADMIN_TOKEN)
                    .json(&body)
                    .send()
                    .await
                else {
                    continue;
                };
                let status = r.status().as_u16();
                let Ok(v) = r.json::<Value>().await else { continue };
                let mut a = acked.lock().unwrap();
                match (kind, status) {
                    (0, 201) => a.leases.push(v["lease_id"].as_str().unwrap().to_string()),
                    (1, 201) => a.managed.push(v["proxy"]["name"].as_str().unwrap().to_string()),
                    (2, 202) => a.alerts.push(v["id"].as_i64().unwrap()),
                    _ => {}
                }
            }
        }));
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_traffic_loses_nothing_acknowledged() {
    let farm = Farm::start(&vec![(Behaviour::Good, Anonymity::Elite, 0); 20]).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (db_url, _db) = sqlite_db();
    let config = farm_config(
        &db_url,
        &source.url("/list.txt"),
        &farm,
        "[alerts]\ncooldown_secs = 0\ndaily_report_at = \"\"\n",
    );
    let server = format!("admin_token = \"{ADMIN_TOKEN}\"");
    let port = free_port();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut svc = ServiceProcess::start_on(port, &config, &server, "warn").await;
    let client = http_client();
    crate::support::wait::until("the farm to be served", Duration::from_secs(30), || async {
        let v = get(&client, svc.url("/api/proxy/alive?count=20")).await;
        (v["count"] == 20 && v["degraded"] == false).then_some(())
    })
    .await;
    for round in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = traffic(&svc, round, acked.clone(), stop.clone());
        // Killed at a random point: after a random number of acknowledgements this round.
        let target = {
            let a = acked.lock().unwrap();
            a.leases.len() + a.managed.len() + a.alerts.len() + rand::rng().random_range(5..60)
        };
        crate::support::wait::until(
            "traffic to be acknowledged",
            Duration::from_secs(30),
            || async {
                let a = acked.lock().unwrap();
                (a.leases.len() + a.managed.len() + a.alerts.len() >= target).then_some(())
            },
        )
        .await;
        svc.kill9().await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        svc = ServiceProcess::start_on(port, &config, &server, "warn").await;
        let a = std::mem::take(&mut *acked.lock().unwrap());
        assert!(
            !a.leases.is_empty() && !a.managed.is_empty() && !a.alerts.is_empty(),
            "no traffic was acknowledged in round {round}"
        );
        verify(&svc, &a).await;
        *acked.lock().unwrap() = a;
    }
    svc.terminate().await;
}
