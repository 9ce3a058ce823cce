//! The judge (anonymity) is asked only through proxies that passed their check, and never holds
//! up their verdict: a proxy serves as soon as it passed, and its grade follows when the judge
//! answers.

use crate::farm_config;
use crate::support::app::{sqlite_db, TestApp};
use crate::support::farm::{Anonymity, Behaviour, Farm};
use crate::support::source::SourceServer;
use crate::support::wait;
use proxyvisor_testkit::loopback::{bind_loopback, read_request, spawn_accept_loop};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(20);

/// A judge page that holds every request until it is opened, then answers with the request's
/// headers as `Name: value` lines.
struct HeldJudge {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
    open: Arc<watch::Sender<bool>>,
    shutdown: Arc<watch::Sender<bool>>,
}

impl HeldJudge {
    fn start() -> HeldJudge {
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("local_addr");
        let judge = HeldJudge {
            addr,
            requests: Arc::default(),
            answered: Arc::default(),
            open: Arc::new(watch::channel(false).0),
            shutdown: Arc::new(watch::channel(false).0),
        };
        let (requests, answered, open) = (
            judge.requests.clone(),
            judge.answered.clone(),
            judge.open.clone(),
        );
        spawn_accept_loop(listener, judge.shutdown.clone(), move |mut stream| {
            let (requests, answered, mut open) =
                (requests.clone(), answered.clone(), open.subscribe());
            async move {
                let Some((head, _)) = read_request(&mut stream).await else {
                    return;
                };
                requests.fetch_add(1, Ordering::SeqCst);
                if open.wait_for(|o| *o).await.is_err() {
                    return;
                }
                let body: String = (head.headers.iter())
                    .map(|(n, v)| format!("{n}: {v}\n"))
                    .collect();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(answer.as_bytes()).await.is_ok() {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                let _ = stream.shutdown().await;
            }
        });
        judge
    }

    fn url(&self) -> String {
        format!("http://{}/judge", self.addr)
    }
}

impl Drop for HeldJudge {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_proxy_serves_before_the_judge_answers_and_is_graded_after() {
    let farm = Farm::start(&[
        (Behaviour::Good, Anonymity::Transparent, 0),
        (Behaviour::Error, Anonymity::Elite, 0),
        (Behaviour::Refuse, Anonymity::Elite, 0),
    ])
    .await;
    let judge = HeldJudge::start();
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (db, _db) = sqlite_db();
    // A judge that answered only at the timeout would hold a verdict waiting for it 30 s.
    let config = farm_config(&db, &source.url("/list.txt"), &farm, "")
        .replace(&farm.origin.url("/judge"), &judge.url())
        .replace(
            "timeout_ms = 1000\nconcurrency = 50\nrevalidate_interval_secs = 1\n",
            "timeout_ms = 30000\nconcurrency = 50\nrevalidate_interval_secs = 3600\n",
        );
    assert!(config.contains(&judge.url()), "{config}");
    assert!(config.contains("timeout_ms = 30000"), "{config}");
    let app = TestApp::start(&config).await;
    let good = farm.proxies[0].url();

    wait::until("the passing proxy to serve", WAIT, || async {
        app.serving().await.contains(&good).then_some(())
    })
    .await;
    // The judge was asked (our own address first, directly), has answered nothing, and the
    // proxy serves anyway, ungraded.
    wait::until("the judge to be asked", WAIT, || async {
        (judge.requests.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    assert_eq!(judge.answered.load(Ordering::SeqCst), 0);
    let (_, body) = app.get_json("/api/proxy/alive?count=1&detail=true").await;
    assert_eq!(body["details"][0]["url"], good.as_str(), "{body}");
    assert!(body["details"][0]["anonymity"].is_null(), "{body}");

    judge.open.send_replace(true);
    wait::until("the grade to follow the verdict", WAIT, || async {
        let (_, body) = app.get_json("/api/proxy/alive?count=1&detail=true").await;
        (body["details"][0]["anonymity"] == "transparent").then_some(())
    })
    .await;
    // Only the passing proxy went to the judge: the direct request for our own address and
    // the one through it. The others were checked without it.
    wait::until("every proxy to be checked", WAIT, || async {
        let (_, stats) = app.get_json("/api/ultra/stats").await;
        (stats["checks_total"].as_u64() >= Some(3)).then_some(())
    })
    .await;
    assert_eq!(judge.requests.load(Ordering::SeqCst), 2);
    app.stop().await;
}
