//! Several instances on one PostgreSQL database (DESIGN.md § Cluster): three real processes of
//! the binary, one leader chosen through the lease row, a handover within the failover time when
//! the leader is killed, the followers answering all the while. Skipped (with a notice) when
//! `TEST_DATABASE_URL` is unset.

use crate::support::app::{http_client, postgres_db};
use crate::support::process::ServiceProcess;
use crate::support::wait;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FAILOVER_SECS: f64 = 2.0;

/// The instances' ids.
const IDS: [&str; 3] = ["a", "b", "c"];

/// A farm config (`crate::farm_config`) as instance `id` of a cluster with the tests' short
/// failover.
fn member(farm_config: &str, id: &str) -> String {
    farm_config.replace(
        "[database]",
        &format!(
            "[cluster]\ninstance_id = \"{id}\"\nfailover_secs = {FAILOVER_SECS}\n\
             heartbeat_secs = 0.25\n[database]"
        ),
    )
}

/// Instances `a`, `b` and `c`, each up before the next starts.
async fn start_three(config: impl Fn(&str) -> String, extra_server: &str) -> Vec<ServiceProcess> {
    let mut svcs = Vec::new();
    for id in IDS {
        svcs.push(ServiceProcess::start(&config(id), extra_server, "info").await);
    }
    svcs
}

fn config(db: &str, id: &str) -> String {
    format!(
        "sources = []\n\
         [database]\nurl = \"{db}\"\n\
         [cluster]\ninstance_id = \"{id}\"\nfailover_secs = {FAILOVER_SECS}\nheartbeat_secs = 0.25\n"
    )
}

/// `stop` for each one.
async fn stop_all(svcs: &mut [ServiceProcess]) {
    for s in svcs.iter_mut() {
        stop(s).await;
    }
}

/// Waits (until `deadline`) for `holds` to answer `Some(true)` of every one of `svcs`.
async fn until_every<'a, F, Fut>(
    what: &str,
    deadline: Duration,
    svcs: &'a [ServiceProcess],
    holds: F,
) where
    F: Fn(&'a ServiceProcess) -> Fut,
    Fut: std::future::Future<Output = Option<bool>>,
{
    wait::until(what, deadline, || async {
        for s in svcs {
            if holds(s).await != Some(true) {
                return None;
            }
        }
        Some(())
    })
    .await
}

/// SIGTERM, and a clean exit (else the end of its log).
async fn stop(s: &mut ServiceProcess) {
    let status = s.terminate().await;
    let log = s.log();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    assert!(status.success(), "{status}: {:?}", tail);
}

async fn cluster_of(client: &reqwest::Client, svc: &ServiceProcess) -> Option<Value> {
    let r = client
        .get(svc.url("/api/health/comprehensive"))
        .send()
        .await
        .ok()?;
    let body: Value = r.json().await.ok()?;
    Some(body["cluster"].clone())
}

async fn leader_metric(client: &reqwest::Client, svc: &ServiceProcess) -> Option<f64> {
    let text = client
        .get(svc.url("/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    (text.lines())
        .find_map(|l| l.strip_prefix("proxyvisor_leader "))
        .and_then(|v| v.trim().parse().ok())
}

/// The id of the one instance all of `svcs` name as leader, once they agree, each sees the
/// others alive, and exactly one of them says it leads.
async fn agreed_leader(client: &reqwest::Client, svcs: &[&ServiceProcess]) -> Option<String> {
    let mut leaders = Vec::new();
    let mut leading = 0;
    for s in svcs {
        let c = cluster_of(client, s).await?;
        leaders.push(c["leader_id"].as_str()?.to_string());
        leading += usize::from(c["role"] == "leader");
        let alive = (c["instances"].as_array()?.iter())
            .filter(|i| i["role"] == "leader" || i["role"] == "follower")
            .count();
        if alive != svcs.len() {
            return None;
        }
    }
    leaders.dedup();
    (leaders.len() == 1 && leading == 1).then(|| leaders.remove(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_a_handover_within_the_failover_time_when_it_is_killed() {
    let Some((db, _db)) = postgres_db("cluster_handover") else {
        return;
    };
    let client = http_client();
    let mut svcs = start_three(|id| config(&db, id), "").await;
    let all: Vec<&ServiceProcess> = svcs.iter().collect();
    let leader = wait::until("one leader all agree on", Duration::from_secs(20), || {
        agreed_leader(&client, &all)
    })
    .await;
    let index = IDS
        .iter()
        .position(|id| *id == leader)
        .expect("the leader is one of them");
    for (i, s) in svcs.iter().enumerate() {
        let expected = if i == index { 1.0 } else { 0.0 };
        assert_eq!(leader_metric(&client, s).await, Some(expected), "{i}");
    }

    // The followers answer every request while the leader dies and another takes over.
    let mut killed = svcs.remove(index);
    let urls: Vec<String> = (svcs.iter())
        .map(|s| s.url("/api/proxy/alive?count=1"))
        .collect();
    let running = Arc::new(AtomicBool::new(true));
    let (asked, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let loop_ = {
        let (client, running, asked, failed) = (
            client.clone(),
            running.clone(),
            asked.clone(),
            failed.clone(),
        );
        tokio::spawn(async move {
            while running.load(Ordering::SeqCst) {
                for u in &urls {
                    asked.fetch_add(1, Ordering::SeqCst);
                    let ok = match client.get(u).send().await {
                        Ok(r) => r.status().is_success(),
                        Err(_) => false,
                    };
                    if !ok {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    killed.kill9().await;
    let killed_at = Instant::now();
    let rest: Vec<&ServiceProcess> = svcs.iter().collect();
    let new_leader = wait::until("a new leader", Duration::from_secs(20), || async {
        for s in &rest {
            let c = cluster_of(&client, s).await?;
            if c["role"] == "leader" {
                return Some(c["instance_id"].as_str()?.to_string());
            }
        }
        None
    })
    .await;
    let took = killed_at.elapsed();
    assert!(
        took < Duration::from_secs_f64(FAILOVER_SECS + 1.0),
        "the handover took {took:?}"
    );
    assert_ne!(new_leader, leader);
    // Both survivors agree, and the dead one is shown gone.
    let c = wait::until(
        "the survivors to agree",
        Duration::from_secs(10),
        || async {
            let a = cluster_of(&client, rest[0]).await?;
            let b = cluster_of(&client, rest[1]).await?;
            let same =
                a["leader_id"] == new_leader.as_str() && b["leader_id"] == new_leader.as_str();
            let gone = (a["instances"].as_array()?.iter())
                .any(|i| i["id"] == leader.as_str() && i["role"] == "gone");
            (same && gone).then_some(a)
        },
    )
    .await;
    assert_eq!(c["last_handover"]["from"], leader.as_str(), "{c}");
    assert_eq!(c["last_handover"]["to"], new_leader.as_str(), "{c}");
    assert!(c["term"].as_i64() >= Some(2), "{c}");
    running.store(false, Ordering::SeqCst);
    loop_.await.unwrap();
    assert!(asked.load(Ordering::SeqCst) > 10);
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "a follower failed a request"
    );

    // The new leader told of the one that went: a `cluster` alert in the shared store.
    let key = format!("instance:{leader}");
    wait::until("a cluster alert", Duration::from_secs(10), || async {
        let r = client.get(rest[0].url("/api/alerts")).send().await.ok()?;
        let body: Value = r.json().await.ok()?;
        (body["alerts"].as_array()?.iter())
            .any(|a| a["kind"] == "cluster" && a["key"] == key.as_str())
            .then_some(())
    })
    .await;
    stop_all(&mut svcs).await;
}

/// A watched service that crashes while the leader is dead and another is taking over: one
/// restart call at the hosting provider, one down and one recovered message to the admin,
/// though every instance watched it go down and come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_crashing_during_the_handover_is_restarted_once_and_told_once() {
    use crate::support::hosting::{HostedService, Mode, RenderApi};
    use crate::support::telegram::TelegramServer;
    let Some((db, _db)) = postgres_db("cluster_repair") else {
        return;
    };
    let svc = HostedService::start().await;
    let render = RenderApi::start("rnd-test-key").await;
    render.heals(&svc, 300);
    let telegram = TelegramServer::start("123:tg-token").await;
    let tables = format!(
        "[[monitors]]\nname = \"backend\"\nurl = \"{}\"\ninterval_secs = 1\ntimeout_ms = 500\n\
         failures_before_down = 2\n[monitors.recovery]\naction = \"render\"\n\
         service_id = \"srv-backend\"\napi_key = \"rnd-test-key\"\napi_base = \"{}\"\n\
         cooldown_secs = 30\n\
         [alerts]\ndaily_report_at = \"\"\n[alerts.telegram]\nbot_token = \"123:tg-token\"\n\
         chat_id = 42\napi_base = \"{}\"\n",
        svc.url("/health"),
        render.base_url(),
        telegram.api_base()
    );
    let client = http_client();
    let mut svcs = start_three(|id| config(&db, id) + &tables, "").await;
    let all: Vec<&ServiceProcess> = svcs.iter().collect();
    let leader = wait::until("one leader", Duration::from_secs(20), || {
        agreed_leader(&client, &all)
    })
    .await;
    let status_on = |s: &ServiceProcess| {
        let url = s.url("/api/monitors");
        let client = client.clone();
        async move {
            let body: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            Some(body["monitors"][0]["status"].as_str()?.to_string())
        }
    };
    wait::until("backend up everywhere", Duration::from_secs(20), || async {
        for s in &all {
            if status_on(s).await.as_deref() != Some("up") {
                return None;
            }
        }
        Some(())
    })
    .await;

    let index = IDS.iter().position(|id| *id == leader).unwrap();
    let mut killed = svcs.remove(index);
    killed.kill9().await;
    svc.set_mode_and_wait(Mode::Crashed).await;
    let rest: Vec<&ServiceProcess> = svcs.iter().collect();
    wait::until(
        "the restart and the service up again",
        Duration::from_secs(30),
        || async {
            let mut up = true;
            for s in &rest {
                up &= status_on(s).await.as_deref() == Some("up");
            }
            (render.restarts() >= 1 && up).then_some(())
        },
    )
    .await;
    // Every alert delivered, then counted: one down, one recovered, one restart.
    let texts = wait::until(
        "down and recovered delivered",
        Duration::from_secs(20),
        || async {
            let body: Value = (client.get(rest[0].url("/api/alerts")).send().await.ok()?)
                .json()
                .await
                .ok()?;
            let service: Vec<&Value> = (body["alerts"].as_array()?.iter())
                .filter(|a| a["key"] == "service:backend")
                .collect();
            let delivered = service.iter().all(|a| a.to_string().contains("\"sent\""));
            let kinds: Vec<&str> = service.iter().filter_map(|a| a["kind"].as_str()).collect();
            let told = kinds.contains(&"service_down") && kinds.contains(&"service_recovered");
            (told && delivered).then(|| telegram.messages())
        },
    )
    .await;
    let count = |kind: &str| {
        (texts.iter())
            .filter(|m| m.text.contains(kind) && m.text.contains("backend"))
            .count()
    };
    assert_eq!(count("service_down"), 1, "{texts:?}");
    assert_eq!(count("service_recovered"), 1, "{texts:?}");
    assert_eq!(render.restarts(), 1, "{:?}", render.calls());
    stop_all(&mut svcs).await;
}

/// The leader alone fetches the sources, and the pool follows what the other instances checked:
/// a proxy reported dead on one instance is no longer served by the others a second after that
/// one stopped serving it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fetch_serves_all_and_a_proxy_dead_on_one_is_dropped_by_the_others_within_a_second() {
    use crate::support::farm::{Anonymity, Behaviour, Farm};
    use crate::support::source::SourceServer;
    let Some((db, _db)) = postgres_db("cluster_pool") else {
        return;
    };
    let farm = Farm::start(&[(Behaviour::Good, Anonymity::Elite, 0); 3]).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    // No re-checks and no resurrection while the test looks: only the reports move the victim.
    let pool = crate::farm_config(&db, &source.url("/list.txt"), &farm, "")
        .replace(
            "revalidate_interval_secs = 1",
            "revalidate_interval_secs = 3600",
        )
        .replace("delays_secs = [1, 3600]", "delays_secs = [3600]");
    let client = http_client();
    let mut svcs = start_three(|id| member(&pool, id), "admin_token = \"pool-admin\"").await;
    let serving = |s: &ServiceProcess| {
        let url = s.url("/list?limit=10");
        let client = client.clone();
        async move {
            let text = client.get(url).send().await.ok()?.text().await.ok()?;
            Some(text.lines().map(str::to_string).collect::<Vec<_>>())
        }
    };
    until_every(
        "every instance to serve the three",
        Duration::from_secs(30),
        &svcs,
        |s| async { Some(serving(s).await?.len() == 3) },
    )
    .await;
    // The leader alone fetched the list; the others took its proxies from the store.
    assert_eq!(source.hits("/list.txt"), 1);
    let victim = farm.proxies[0].url();
    for _ in 0..2 {
        let r = client
            .post(svcs[0].url("/api/proxy/report"))
            .json(&serde_json::json!({"proxy": victim, "ok": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    wait::until("instance a to drop it", Duration::from_secs(5), || async {
        (!serving(&svcs[0]).await?.contains(&victim)).then_some(())
    })
    .await;
    until_every(
        "b and c to drop it within a second",
        Duration::from_secs(1),
        &svcs[1..],
        |s| async { Some(!serving(s).await?.contains(&victim)) },
    )
    .await;
    for s in &svcs[1..] {
        assert_eq!(serving(s).await.unwrap().len(), 2);
    }

    // The list no longer names it: the leader's next fetch deletes it (dead and unlisted), and
    // the others drop it too.
    let dead_on = |s: &ServiceProcess| {
        let (client, url) = (client.clone(), s.url("/api/ultra/stats"));
        async move {
            let v: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            v["tiers"]["dead"].as_u64()
        }
    };
    until_every(
        "it to be dead everywhere",
        Duration::from_secs(5),
        &svcs,
        |s| async { Some(dead_on(s).await? == 1) },
    )
    .await;
    let host_port = victim.trim_start_matches("http://").to_string();
    let rest: String = (farm.plain_list().lines())
        .filter(|l| l.trim() != host_port)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(rest.lines().count(), 2, "{rest}");
    source.set_body("/list.txt", rest);
    let all: Vec<&ServiceProcess> = svcs.iter().collect();
    let leader = agreed_leader(&client, &all).await.expect("a leader");
    let leader =
        svcs[IDS.iter().position(|i| *i == leader).unwrap()].url("/api/admin/sources/farm/fetch");
    let r = client
        .post(leader)
        .bearer_auth("pool-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    until_every(
        "it deleted everywhere",
        Duration::from_secs(5),
        &svcs,
        |s| async { Some(dead_on(s).await? == 0) },
    )
    .await;
    stop_all(&mut svcs).await;
}

/// Validation is shared: with three instances on a farm of 2,000 proxies, every proxy is
/// checked once in the round (the farm counts the connections each proxy took), not three
/// times, and every instance serves all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_check_every_proxy_of_a_round_once() {
    use crate::support::farm::{Anonymity, Behaviour, Farm};
    use crate::support::source::SourceServer;
    let Some((db, _db)) = postgres_db("cluster_validation") else {
        return;
    };
    const N: usize = 2_000;
    // 200 ms per check, 100 at once per instance: one alone would take 4 s for the round.
    let farm = Farm::start(&vec![(Behaviour::Good, Anonymity::Elite, 200); N]).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    // No judge (one connection per check), no re-checks while the test looks.
    let pool = crate::farm_config(&db, &source.url("/list.txt"), &farm, "")
        .replace(
            &format!("judge_url = \"{}\"\n", farm.origin.url("/judge")),
            "",
        )
        .replace(
            "revalidate_interval_secs = 1",
            "revalidate_interval_secs = 3600",
        )
        .replace(
            "timeout_ms = 1000\nconcurrency = 50",
            "timeout_ms = 5000\nconcurrency = 100",
        )
        .replace("slow_threshold_ms = 1000", "slow_threshold_ms = 5000");
    assert!(!pool.contains("judge_url"), "{pool}");
    let client = http_client();
    let mut svcs = start_three(|id| member(&pool, id), "").await;
    let serving = |s: &ServiceProcess| {
        let url = s.url(&format!("/list?limit={N}"));
        let client = client.clone();
        async move {
            let text = client.get(url).send().await.ok()?.text().await.ok()?;
            Some(text.lines().count())
        }
    };
    until_every(
        "every instance to serve the whole farm",
        Duration::from_secs(60),
        &svcs,
        |s| async { Some(serving(s).await? == N) },
    )
    .await;
    let hits: Vec<usize> = farm.proxies.iter().map(|p| p.hits()).collect();
    let twice = hits.iter().filter(|&&h| h > 1).count();
    let never = hits.iter().filter(|&&h| h == 0).count();
    assert_eq!(
        (twice, never),
        (0, 0),
        "proxies checked more than once / never"
    );
    // The work was shared: each instance made some of the checks.
    for s in &svcs {
        let r = client.get(s.url("/api/ultra/stats")).send().await.unwrap();
        let stats: Value = r.json().await.unwrap();
        let checks = stats["checks_total"].as_u64().unwrap_or(0);
        assert!(
            checks > 0 && checks < N as u64,
            "{checks} checks on one instance"
        );
    }
    stop_all(&mut svcs).await;
}

/// Instances started together on a fresh database (`docker compose up --scale`) take turns at
/// its migrations instead of colliding, and all come up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_started_together_on_a_fresh_database_all_come_up() {
    let Some((db, _db)) = postgres_db("cluster_start") else {
        return;
    };
    let (a, b, c) = (config(&db, "a"), config(&db, "b"), config(&db, "c"));
    let (mut a, mut b, mut c) = tokio::join!(
        ServiceProcess::start(&a, "", "info"),
        ServiceProcess::start(&b, "", "info"),
        ServiceProcess::start(&c, "", "info"),
    );
    let client = http_client();
    let all = [&a, &b, &c];
    wait::until("one leader all agree on", Duration::from_secs(20), || {
        agreed_leader(&client, &all)
    })
    .await;
    for s in [&mut a, &mut b, &mut c] {
        stop(s).await;
    }
}

/// Leases are decided in the database: 1,000 requests spread over three instances at once never
/// put a proxy over its capacity (by the answers and by each instance's `/api/allocation`),
/// and the three agree on the totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_asked_of_three_instances_at_once_never_overfill_a_proxy() {
    use crate::support::farm::{Anonymity, Behaviour, Farm};
    use crate::support::source::SourceServer;
    use std::collections::HashMap;
    let Some((db, _db)) = postgres_db("cluster_leases") else {
        return;
    };
    const PROXIES: usize = 10;
    const CAPACITY: usize = 5;
    // A burst: each instance decides what comes meanwhile in one transaction.
    const ASKS: usize = 1_000;
    let farm = Farm::start(&[(Behaviour::Good, Anonymity::Elite, 0); PROXIES]).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let pool = crate::farm_config(
        &db,
        &source.url("/list.txt"),
        &farm,
        &format!("[allocation]\nmax_leases_per_proxy = {CAPACITY}\n"),
    )
    .replace(
        "revalidate_interval_secs = 1",
        "revalidate_interval_secs = 3600",
    );
    let client = http_client();
    let mut svcs = start_three(|id| member(&pool, id), "").await;
    let allocation = |s: &ServiceProcess| {
        let url = s.url("/api/allocation");
        let client = client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .ok()?
                .json::<Value>()
                .await
                .ok()
        }
    };
    wait::until(
        "every instance to serve the farm",
        Duration::from_secs(30),
        || async {
            for s in &svcs {
                let a = allocation(s).await?;
                if a["total_capacity"] != (PROXIES * CAPACITY) as u64 {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let asks = (0..ASKS).map(|i| {
        let url = svcs[i % 3].url("/api/leases");
        let client = client.clone();
        async move {
            let r = client
                .post(url)
                .json(&serde_json::json!({"count": 1, "ttl_secs": 600}))
                .send()
                .await
                .expect("an answer");
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.expect("JSON")
        }
    });
    let answers = futures_util::future::join_all(asks).await;
    let mut held: HashMap<String, usize> = HashMap::new();
    for a in &answers {
        for p in a["proxies"].as_array().expect("proxies") {
            *held.entry(p.as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    assert!(held.values().all(|&n| n <= CAPACITY), "{held:?}");
    assert_eq!(held.values().sum::<usize>(), PROXIES * CAPACITY, "{held:?}");
    wait::until(
        "the three to agree on the totals",
        Duration::from_secs(10),
        || async {
            let mut seen = Vec::new();
            for s in &svcs {
                let a = allocation(s).await?;
                let over = (a["proxies"].as_object()?.values())
                    .any(|p| p["current"].as_u64() > p["max"].as_u64());
                assert!(!over, "over capacity: {a}");
                seen.push((a["current_leases"].clone(), a["leases"].clone()));
            }
            let all_same = seen.windows(2).all(|w| w[0] == w[1]);
            (all_same && seen[0].0 == (PROXIES * CAPACITY) as u64 && seen[0].1 == ASKS as u64)
                .then_some(())
        },
    )
    .await;

    // A lease is renewed and released through instances other than the one that made it, at
    // once (before their books have followed the store).
    let first = (answers.iter())
        .find(|a| a["allocated"] == 1)
        .and_then(|a| a["lease_id"].as_str())
        .expect("a lease");
    let r = client
        .delete(svcs[1].url(&format!("/api/leases/{first}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = (client.post(svcs[0].url("/api/leases")))
        .json(&serde_json::json!({"count": 1, "ttl_secs": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "the freed slot is taken again");
    let fresh = r.json::<Value>().await.unwrap();
    assert_eq!(fresh["allocated"], 1, "{fresh}");
    let fresh = fresh["lease_id"].as_str().unwrap().to_string();
    let r = (client.post(svcs[1].url(&format!("/api/leases/{fresh}/renew"))))
        .json(&serde_json::json!({"ttl_secs": 900}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "renewed through another instance");
    let r = client
        .delete(svcs[2].url(&format!("/api/leases/{fresh}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "released through a third");
    let r = client
        .delete(svcs[0].url(&format!("/api/leases/{fresh}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "released once");
    stop_all(&mut svcs).await;
}

/// The one database the cluster stands on is cut (through a relay) until every instance has
/// seen it and the leader has stepped down: all go on serving their last snapshot, no request
/// fails; once it is back one instance leads again and what was acknowledged before is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_cut_leaves_no_leader_and_every_instance_serving_then_one_leads_again() {
    use crate::support::farm::{Anonymity, Behaviour, Farm};
    use crate::support::relay::Relay;
    use crate::support::source::SourceServer;
    let Some((direct, _db)) = postgres_db("cluster_cut") else {
        return;
    };
    let (relay, db) = Relay::in_front_of(&direct).await;
    let farm = Farm::start(&[(Behaviour::Good, Anonymity::Elite, 0); 2]).await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let pool = crate::farm_config(&db, &source.url("/list.txt"), &farm, "").replace(
        "revalidate_interval_secs = 1",
        "revalidate_interval_secs = 3600",
    );
    let client = http_client();
    let mut svcs = start_three(|id| member(&pool, id), "").await;
    let all: Vec<&ServiceProcess> = svcs.iter().collect();
    wait::until(
        "one leader and the farm served",
        Duration::from_secs(30),
        || async {
            for s in &all {
                let text = client
                    .get(s.url("/list"))
                    .send()
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                if text.lines().count() != 2 {
                    return None;
                }
            }
            agreed_leader(&client, &all).await
        },
    )
    .await;
    // Acknowledged before the cut.
    let r = client
        .post(svcs[0].url("/api/leases"))
        .json(&serde_json::json!({"count": 1, "ttl_secs": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let urls: Vec<String> = svcs
        .iter()
        .map(|s| s.url("/api/proxy/alive?count=2"))
        .collect();
    let running = Arc::new(AtomicBool::new(true));
    let (asked, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (client, running, asked, failed) = (
            client.clone(),
            running.clone(),
            asked.clone(),
            failed.clone(),
        );
        tokio::spawn(async move {
            while running.load(Ordering::SeqCst) {
                for u in &urls {
                    asked.fetch_add(1, Ordering::SeqCst);
                    let served = async {
                        let body: Value = client.get(u).send().await.ok()?.json().await.ok()?;
                        (body["count"] == 2).then_some(())
                    };
                    if served.await.is_none() {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    relay.cut();
    wait::until(
        "every instance to see the cut and none to lead",
        Duration::from_secs(20),
        || async {
            for s in &all {
                let c = cluster_of(&client, s).await?;
                if c["reachable"] != false || c["role"] == "leader" {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    for s in &all {
        assert_eq!(leader_metric(&client, s).await, Some(0.0));
    }
    relay.restore().await;
    wait::until("one leader again", Duration::from_secs(20), || {
        agreed_leader(&client, &all)
    })
    .await;
    running.store(false, Ordering::SeqCst);
    load.await.unwrap();
    assert!(asked.load(Ordering::SeqCst) > 10);
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "a request failed during the cut"
    );
    wait::until(
        "the lease on every instance",
        Duration::from_secs(10),
        || async {
            for s in &all {
                let a: Value = client
                    .get(s.url("/api/allocation"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                if a["leases"] != 1 {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    stop_all(&mut svcs).await;
}

/// An admin's restart asked of a follower is made there, once (only automatic repairs wait
/// for the leader).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admins_restart_asked_of_a_follower_is_made_once() {
    use crate::support::hosting::{HostedService, RenderApi};
    let Some((db, _db)) = postgres_db("cluster_manual") else {
        return;
    };
    let svc = HostedService::start().await;
    let render = RenderApi::start("rnd-test-key").await;
    let tables = format!(
        "[[monitors]]\nname = \"backend\"\nurl = \"{}\"\ninterval_secs = 1\ntimeout_ms = 500\n\
         [monitors.recovery]\naction = \"render\"\nservice_id = \"srv-backend\"\n\
         api_key = \"rnd-test-key\"\napi_base = \"{}\"\ncooldown_secs = 30\n",
        svc.url("/health"),
        render.base_url(),
    );
    let client = http_client();
    let mut svcs = start_three(|id| config(&db, id) + &tables, "admin_token = \"tok\"").await;
    let all: Vec<&ServiceProcess> = svcs.iter().collect();
    let leader = wait::until("one leader", Duration::from_secs(20), || {
        agreed_leader(&client, &all)
    })
    .await;
    let follower = IDS.iter().position(|id| *id != leader).unwrap();
    let r = client
        .post(svcs[follower].url("/api/admin/monitors/backend/restart"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait::until("the restart call", Duration::from_secs(10), || async {
        (render.restarts() >= 1).then_some(())
    })
    .await;
    stop_all(&mut svcs).await;
    assert_eq!(render.restarts(), 1, "{:?}", render.calls());
}

/// An alert delivery on its way when its leader loses the database is not sent again by the
/// next leader: it was claimed under the old term, the old leader's send finishes, and its
/// outcome, kept while the store was away, is recorded when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_when_its_leader_is_cut_off_is_sent_once() {
    use crate::support::relay::Relay;
    use crate::support::telegram::TelegramServer;
    let Some((direct, _db)) = postgres_db("cluster_delivery") else {
        return;
    };
    // Instance a reaches the database through a relay; b and c directly.
    let (relay, relayed) = Relay::in_front_of(&direct).await;
    let telegram = TelegramServer::start("123:tg-token").await;
    let alerts = format!(
        "[alerts]\ndaily_report_at = \"\"\n[alerts.telegram]\nbot_token = \"123:tg-token\"\n\
         chat_id = 42\napi_base = \"{}\"\n",
        telegram.api_base()
    );
    let data = tempfile::tempdir().unwrap();
    let conf = |id: &str| {
        let db = if id == "a" { &relayed } else { &direct };
        let dir = data.path().join(id);
        config(db, id).replace(
            "[cluster]",
            &format!("data_dir = \"{}\"\n[cluster]", dir.display()),
        ) + &alerts
    };
    let admin = "admin_token = \"cluster-admin\"";
    let client = http_client();
    let mut svcs = start_three(conf, admin).await;
    let all: Vec<&ServiceProcess> = svcs.iter().collect();
    let leader = wait::until("one leader", Duration::from_secs(20), || {
        agreed_leader(&client, &all)
    })
    .await;
    assert_eq!(leader, "a", "the first one up leads");

    // The leader sends; Telegram takes the message and answers only 5 s later.
    telegram.hold(1, Duration::from_secs(5));
    let r = client
        .post(svcs[0].url("/api/admin/alerts/test"))
        .bearer_auth("cluster-admin")
        .json(&serde_json::json!({"message": "in flight at the cut"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    // (a's loss also raises a `cluster` alert: other messages are left out.)
    let in_flight = || {
        (telegram.messages().iter())
            .filter(|m| m.text.contains("in flight at the cut"))
            .count()
    };
    wait::until("the message to arrive", Duration::from_secs(10), || async {
        (in_flight() == 1).then_some(())
    })
    .await;
    // Then a loses the database: b or c leads, while a's send is still on its way.
    relay.stall();
    let rest: Vec<&ServiceProcess> = svcs[1..].iter().collect();
    let next = wait::until("a new leader", Duration::from_secs(15), || {
        agreed_leader(&client, &rest)
    })
    .await;
    assert_ne!(next, "a");
    let delivery = |svc: &ServiceProcess| {
        let (client, url) = (client.clone(), svc.url("/api/alerts"));
        async move {
            let body: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            let a = (body["alerts"].as_array()?.iter()).find(|a| a["id"] == id)?;
            Some(a["deliveries"]["telegram"].clone())
        }
    };
    // The new leader takes the pending delivery in, and finds it claimed.
    let new_leader = rest[IDS[1..].iter().position(|i| *i == next).unwrap()];
    let held = format!("alert #{id} → telegram: claimed by another instance");
    wait::until(
        "the new leader to find the delivery claimed",
        Duration::from_secs(10),
        || async { (new_leader.log().contains(&held) || in_flight() > 1).then_some(()) },
    )
    .await;
    assert_eq!(in_flight(), 1, "sent again meanwhile");
    relay.restore().await;
    wait::until(
        "the old leader's outcome recorded",
        Duration::from_secs(20),
        || async {
            let d = delivery(rest[0]).await?;
            (d["state"] == "sent").then_some(())
        },
    )
    .await;
    let texts: Vec<String> = telegram.messages().into_iter().map(|m| m.text).collect();
    assert_eq!(in_flight(), 1, "{texts:?}");
    stop_all(&mut svcs).await;
}

/// The daily report, told by two instances at a handover (each leading when it was due): the
/// second folds into the first in the database, so one report is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_report_stored_twice_in_a_day_is_delivered_once() {
    use proxyvisor::store::alerts::{NewAlertRow, Stored};
    let Some((db, _db)) = postgres_db("cluster_daily") else {
        return;
    };
    tokio::task::spawn_blocking(move || {
        let store = proxyvisor::store::Store::open(&db).unwrap();
        let now = proxyvisor::clock::now_ms();
        let report = |at: i64| NewAlertRow {
            kind: "daily_report".into(),
            key: "daily_report".into(),
            severity: "info".into(),
            message: "pool: 3 primary".into(),
            repeats: 1,
            created_at: at,
            updated_at: at,
            closed_at: Some(at),
        };
        let half_day = 12 * 3_600_000;
        let first = store.insert_alert(&report(now), &["telegram"], &[], half_day);
        let Ok(Stored::New(id)) = first else {
            panic!("{first:?}");
        };
        let second = store.insert_alert(&report(now + 40), &["telegram"], &[], half_day);
        assert_eq!(second.unwrap(), Stored::Folded(id));
        let pending = store.load_pending_deliveries().unwrap();
        assert_eq!(pending.len(), 1, "{pending:?}");
        // The next day's is a report of its own.
        let next = store.insert_alert(&report(now + 86_400_000), &["telegram"], &[], half_day);
        assert!(matches!(next, Ok(Stored::New(n)) if n != id), "{next:?}");
    })
    .await
    .unwrap();
}

/// Monitors and managed proxies added, changed or removed through one instance's admin API
/// reach the others at once (NOTIFY): the heartbeat, the fallback, is set to 5 s here, and each
/// change is seen everywhere within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_made_on_one_instance_reach_the_others_at_once() {
    let Some((db, _db)) = postgres_db("cluster_changes") else {
        return;
    };
    let conf = |id: &str| {
        config(&db, id)
            .replace("heartbeat_secs = 0.25", "heartbeat_secs = 5")
            .replace(
                &format!("failover_secs = {FAILOVER_SECS}"),
                "failover_secs = 15",
            )
    };
    let admin = "admin_token = \"cluster-admin\"";
    let client = http_client();
    let mut svcs = start_three(conf, admin).await;
    const SOON: Duration = Duration::from_secs(2);
    let send = |svc: &ServiceProcess, method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut r = client
            .request(method, svc.url(path))
            .bearer_auth("cluster-admin");
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
    };
    let get = |svc: &ServiceProcess, path: &str| {
        let (client, url) = (client.clone(), svc.url(path));
        async move {
            let v: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            Some(v)
        }
    };
    // Everywhere, `check` holds of what `path` answers.
    let everywhere = |what: &'static str, path: &'static str, check: fn(&Value) -> bool| {
        let svcs = &svcs;
        until_every(what, SOON, svcs, move |s| async move {
            Some(check(&get(s, path).await?))
        })
    };

    // A monitor added on b is watched by all; removed on c, by none.
    let monitor = serde_json::json!({
        "name": "api-made", "url": "http://127.0.0.1:9/health", "interval_secs": 60,
    });
    let (code, body) = send(
        &svcs[1],
        reqwest::Method::POST,
        "/api/admin/monitors",
        Some(monitor),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    everywhere("the monitor on every instance", "/api/monitors", |v| {
        monitor_names(v) == ["api-made"]
    })
    .await;
    let (code, body) = send(
        &svcs[2],
        reqwest::Method::DELETE,
        "/api/admin/monitors/api-made",
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    everywhere("the monitor gone everywhere", "/api/monitors", |v| {
        monitor_names(v).is_empty()
    })
    .await;

    // A managed proxy added on a, changed on b, removed on c.
    let paid = serde_json::json!({"name": "paid", "url": "http://127.0.0.1:9", "priority": 5});
    let (code, body) = send(
        &svcs[0],
        reqwest::Method::POST,
        "/api/admin/proxies",
        Some(paid),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    everywhere(
        "the managed proxy everywhere",
        "/api/v1/proxy/status",
        |v| paid_priority(v) == Some(5),
    )
    .await;
    let patch = serde_json::json!({"priority": 2});
    let (code, body) = send(
        &svcs[1],
        reqwest::Method::PATCH,
        "/api/admin/proxies/paid",
        Some(patch),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    everywhere("the change everywhere", "/api/v1/proxy/status", |v| {
        paid_priority(v) == Some(2)
    })
    .await;
    let (code, body) = send(
        &svcs[2],
        reqwest::Method::DELETE,
        "/api/admin/proxies/paid",
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    everywhere(
        "the managed proxy gone everywhere",
        "/api/v1/proxy/status",
        |v| paid_priority(v).is_none(),
    )
    .await;
    stop_all(&mut svcs).await;
}

/// The monitors' names in `GET /api/monitors`.
fn monitor_names(v: &Value) -> Vec<String> {
    (v["monitors"].as_array().into_iter().flatten())
        .filter_map(|m| m["name"].as_str().map(String::from))
        .collect()
}

/// The priority of managed proxy `paid` in `GET /api/v1/proxy/status`.
fn paid_priority(v: &Value) -> Option<i64> {
    (v["proxies"].as_array()?.iter())
        .find(|p| p["name"] == "paid")
        .and_then(|p| p["priority"].as_i64())
}

/// Every instance runs the gateway: requests through each one's gateway reach the origin, each
/// instance's traffic is stored in the one database (`/api/usage` on any of them counts all of
/// it), and with the leader killed the others' gateways go on forwarding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_forwards_through_its_gateway_and_usage_adds_up() {
    use crate::support::farm::{Anonymity, Behaviour, Farm};
    use crate::support::origin::CountingOrigin;
    use crate::support::process::free_port;
    use crate::support::source::SourceServer;
    let Some((db, _db)) = postgres_db("cluster_gateway") else {
        return;
    };
    let farm = Farm::start(&[(Behaviour::Good, Anonymity::Elite, 0); 2]).await;
    let origin = CountingOrigin::start().await;
    let source = SourceServer::start().await;
    source.set_body("/list.txt", farm.plain_list());
    let gateways: Vec<u16> = IDS.iter().map(|_| free_port()).collect();
    let pool = crate::farm_config(&db, &source.url("/list.txt"), &farm, "");
    let conf = |id: &str| {
        let port = gateways[IDS.iter().position(|i| *i == id).unwrap()];
        member(&pool, id)
            + &format!(
                "[gateway]\nenabled = true\nbind = \"127.0.0.1:{port}\"\ntoken = \"gw\"\n\
                 allowed_ports = [{}]\nallow_private = true\n",
                origin.port()
            )
    };
    let client = http_client();
    let mut svcs = start_three(conf, "admin_token = \"gw-admin\"").await;
    let through = |port: u16| {
        reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(format!("http://user:gw@127.0.0.1:{port}")).unwrap())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    };
    let url = origin.url("/bytes/1000");
    wait::until(
        "every gateway to forward",
        Duration::from_secs(30),
        || async {
            for &port in &gateways {
                let r = through(port).get(&url).send().await.ok()?;
                (r.status() == 200).then_some(())?;
            }
            Some(())
        },
    )
    .await;
    let before = origin.requests();
    for &port in &gateways {
        for _ in 0..4 {
            let r = through(port).get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.bytes().await.unwrap().len(), 1000);
        }
    }
    assert_eq!(origin.requests(), before + 12);
    let usage = |s: &ServiceProcess| {
        let (client, url) = (client.clone(), s.url("/api/usage?group=proxy"));
        async move {
            let r = client.get(url).bearer_auth("gw-admin").send().await.ok()?;
            let v: Value = r.json().await.ok()?;
            v["total"]["requests"].as_u64()
        }
    };
    let total = (before + 12) as u64;
    until_every(
        "every instance's usage counted on each",
        Duration::from_secs(10),
        &svcs,
        |s| async { Some(usage(s).await? == total) },
    )
    .await;

    // The leader killed: the others' gateways forward on.
    let all: Vec<&ServiceProcess> = svcs.iter().collect();
    let leader = agreed_leader(&client, &all).await.expect("a leader");
    let index = IDS.iter().position(|i| *i == leader).unwrap();
    svcs.remove(index).kill9().await;
    for (i, &port) in gateways.iter().enumerate() {
        if i == index {
            continue;
        }
        for _ in 0..3 {
            let r = through(port).get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "through {}", IDS[i]);
        }
    }
    stop_all(&mut svcs).await;
}
