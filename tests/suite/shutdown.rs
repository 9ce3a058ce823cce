//! SIGTERM: the real binary drains (health 503, connections closed after each answer), finishes
//! the requests in flight, writes what it has not yet stored, and exits 0.

use crate::farm_config;
use crate::support::app::{http_client, sqlite_db};
use crate::support::farm::{Anonymity, Behaviour, Farm};
use crate::support::process::ServiceProcess;
use crate::support::source::SourceServer;
use crate::support::wait;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_the_pool_and_exits_0() {
    let spec = vec![(Behaviour::Good, Anonymity::Elite, 0); 20];
    let farm = Farm::start(&spec).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (db_url, db) = sqlite_db();
    // Nothing is written behind during the test: only the final write can store the pool.
    let config = farm_config(&db_url, &source.url("/list.txt"), &farm, "")
        .replace("flush_interval_ms = 200", "flush_interval_ms = 600000");
    let mut service = ServiceProcess::start(&config, "drain_secs = 1", "warn").await;
    let client = http_client();
    let list = service.url("/list");
    wait::until("the farm to be served", Duration::from_secs(30), || async {
        let body = client.get(&list).send().await.ok()?.text().await.ok()?;
        (body.lines().count() == 20).then_some(())
    })
    .await;

    // Clients keep asking on keep-alive connections, behind a "load balancer" that probes
    // `/health` and routes them away once it answers 503 (the drain after the signal).
    let routed_away = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let broken = Arc::new(Mutex::new(Vec::<String>::new()));
    let balancer = {
        let (routed_away, client, url) =
            (routed_away.clone(), client.clone(), service.url("/health"));
        tokio::spawn(async move {
            while !routed_away.load(Ordering::Relaxed) {
                if let Ok(r) = client.get(&url).send().await {
                    if r.status() == 503 {
                        routed_away.store(true, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (routed_away, answered, broken) =
            (routed_away.clone(), answered.clone(), broken.clone());
        let (client, url) = (http_client(), service.url("/api/proxy/alive?count=5"));
        clients.push(tokio::spawn(async move {
            while !routed_away.load(Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => match r.text().await {
                        Ok(_) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => broken.lock().unwrap().push(format!("body: {e}")),
                    },
                    Ok(r) => broken
                        .lock()
                        .unwrap()
                        .push(format!("status {}", r.status())),
                    Err(e) => broken.lock().unwrap().push(format!("{e:?}")),
                }
            }
        }));
    }
    let before = answered.load(Ordering::Relaxed);
    wait::until("some load", Duration::from_secs(10), || async {
        (answered.load(Ordering::Relaxed) > before + 20).then_some(())
    })
    .await;
    let status = service.terminate().await;
    assert!(
        routed_away.load(Ordering::Relaxed),
        "health never said stopping"
    );
    balancer.await.unwrap();
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(status.code(), Some(0), "{}", service.log());
    let broken = broken.lock().unwrap();
    assert!(broken.is_empty(), "requests cut off: {broken:?}");

    let store = proxyvisor::store::Store::open(&db_url).unwrap();
    let rows = store.load_proxies().unwrap();
    assert_eq!(rows.len(), 20, "the pool was not written at shutdown");
    assert!(
        rows.iter()
            .all(|r| r.tier == "primary" || r.tier == "standby"),
        "{:?}",
        rows.iter().map(|r| &r.tier).collect::<Vec<_>>()
    );
    drop(db);
}
