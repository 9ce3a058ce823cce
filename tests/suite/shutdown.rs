//! SIGTERM: the real binary finishes, writes what it has not yet stored, and exits 0.

use crate::farm_config;
use crate::support::app::sqlite_db;
use crate::support::farm::{Anonymity, Behaviour, Farm};
use crate::support::source::SourceServer;
use crate::support::wait;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_the_pool_and_exits_0() {
    let spec = vec![(Behaviour::Good, Anonymity::Elite, 0); 20];
    let farm = Farm::start(&spec).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (db_url, db) = sqlite_db();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Nothing is written behind during the test: only the final write can store the pool.
    let config = farm_config(&db_url, &source.url("/list.txt"), &farm, "")
        .replace("flush_interval_ms = 200", "flush_interval_ms = 600000")
        + &format!("[server]\nbind = \"127.0.0.1:{port}\"\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxyvisor.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_proxyvisor"))
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let client = crate::support::app::http_client();
    let list = format!("http://127.0.0.1:{port}/list");
    wait::until("the farm to be served", Duration::from_secs(30), || async {
        let body = client.get(&list).send().await.ok()?.text().await.ok()?;
        (body.lines().count() == 20).then_some(())
    })
    .await;

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait::until("the service to exit", Duration::from_secs(20), || {
        let exited = child.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert_eq!(status.code(), Some(0));

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
