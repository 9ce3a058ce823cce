//! Parked checks (`validation.park_after_ms`): a check still unanswered gives its permit back and
//! waits on its own timer until `timeout_ms`, so silent proxies no longer hold up the round; the
//! verdicts stay as they were: an answer before the timeout passes, none fails.

use crate::farm_config;
use crate::support::app::{sqlite_db, TestApp};
use crate::support::farm::{Anonymity, Behaviour, Farm};
use crate::support::source::SourceServer;
use crate::support::wait;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The farm config with these validation settings and no rolling revalidation.
fn config(db: &str, source: &SourceServer, farm: &Farm, validation: &str) -> String {
    farm_config(db, &source.url("/list.txt"), farm, "")
        .replace(
            "timeout_ms = 1000\nconcurrency = 50\nrevalidate_interval_secs = 1\n",
            &format!("{validation}\nrevalidate_interval_secs = 3600\n"),
        )
        .replace("slow_threshold_ms = 1000", "slow_threshold_ms = 10000")
        // No judge: one connection per check, so the farm's count is the checks' count.
        .replace(
            &format!("judge_url = \"{}\"\n", farm.origin.url("/judge")),
            "",
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_check_passes_when_answered_just_before_the_timeout_and_fails_at_it() {
    // One permit. One proxy answers after 1.2 s (timeout 1.6 s); three never answer.
    let mut spec = vec![(Behaviour::Slow, Anonymity::Elite, 0)];
    spec.extend(vec![(Behaviour::Blackhole, Anonymity::Elite, 0); 3]);
    let farm = Farm::start(&spec).await;
    farm.proxies[0].set_slow_ms(1200);
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (db, _db) = sqlite_db();
    let validation = "timeout_ms = 1600\nconcurrency = 1\npark_after_ms = 100";
    let app = TestApp::start(&config(&db, &source, &farm, validation)).await;
    let slow = farm.proxies[0].url();
    wait::until("every proxy to be judged", WAIT, || async {
        let (_, r) = app.get_json("/api/resurrection/stats").await;
        let served = app.serving().await;
        (r["dead"] == 3 && served == [slow.clone()]).then_some(())
    })
    .await;
    // With one permit, all four were connected at once: the three silent ones and the slow
    // one waited parked, not in turn.
    assert_eq!(farm.open.peak(), 4, "checks were parked");
    // The slow proxy's check took its 1.2 s, within the timeout: it passed, with that latency.
    let (_, proxies) = app.get_json("/api/proxy/alive?count=10&detail=true").await;
    let row = (proxies["details"].as_array().unwrap().iter())
        .find(|p| p["url"] == slow.as_str())
        .cloned()
        .unwrap_or_default();
    let latency = row["latency_ms"].as_u64().unwrap_or(0);
    assert!((1200..1600).contains(&latency), "{proxies}");
    // The silent ones failed at the timeout, not when they were parked: each one's verdict
    // (the TierBalancer's debug line) says so, with the latency of a whole timeout.
    let ring = proxyvisor::logbuf::ring();
    let lines: Vec<String> = (ring.recent(ring.capacity(), log::LevelFilter::Trace))
        .into_iter()
        .map(|e| e.message)
        .collect();
    for p in &farm.proxies[1..] {
        let verdict = lines
            .iter()
            .find(|l| l.contains(&p.host_port()) && l.contains("Died"))
            .unwrap_or_else(|| panic!("no verdict logged for {}", p.host_port()));
        assert!(verdict.contains("timeout after 1600 ms"), "{verdict}");
        let latency: u64 = verdict
            .split("latency_ms: ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(latency >= 1600, "{verdict}");
    }
    // The round's summary: its checks, and the bound of one timeout plus the answered work.
    let summary = "validation round done: 4 checks (1 passed, 3 timed out) in";
    let line = (lines.iter())
        .find(|l| l.contains(summary))
        .unwrap_or_else(|| panic!("no round summary in the log: {lines:?}"));
    assert!(line.contains("bound for this list"), "{line}");
    assert!(line.contains("one timeout, 1.6 s"), "{line}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_bounds_the_checks_that_are_connecting_and_exchanging() {
    // Eight proxies answering after 300 ms, two permits, parking only after 3 s: at most
    // two checks are ever open at once, and every proxy passes.
    let farm = Farm::start(&[(Behaviour::Good, Anonymity::Elite, 300); 8]).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let (db, _db) = sqlite_db();
    let validation = "timeout_ms = 5000\nconcurrency = 2\npark_after_ms = 3000";
    let app = TestApp::start(&config(&db, &source, &farm, validation)).await;
    wait::until("every proxy to serve", WAIT, || async {
        (app.serving().await.len() == 8).then_some(())
    })
    .await;
    let peak = farm.open.peak();
    assert!((1..=2).contains(&peak), "{peak} checks open at once");
    app.stop().await;
}
