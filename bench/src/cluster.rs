//! `cluster`: three instances of the service on one PostgreSQL database; the leader is killed
//! (SIGKILL) again and again, and the time until another instance says it leads is measured
//! (polled on every survivor's `/api/health/comprehensive`). The killed one is started again
//! before the next kill, so there are always three.

use super::*;
use diesel::{Connection, PgConnection, RunQueryDsl};

pub(crate) const INSTANCES: usize = 3;
pub(crate) const KILLS: usize = 5;
pub(crate) const FAILOVER_SECS: f64 = 5.0;
pub(crate) const HEARTBEAT_SECS: f64 = 1.0;
const HEALTH_POLL: Duration = Duration::from_millis(20);
const HANDOVER_DEADLINE: Duration = Duration::from_secs(60);

/// A fresh database on the server of `BENCH_DATABASE_URL` (or `TEST_DATABASE_URL`), dropped
/// at the end.
struct BenchDb {
    base: String,
    name: String,
    url: String,
}

impl BenchDb {
    fn create() -> Result<BenchDb> {
        let base = std::env::var("BENCH_DATABASE_URL")
            .or_else(|_| std::env::var("TEST_DATABASE_URL"))
            .map_err(|_| {
                "cluster: set BENCH_DATABASE_URL (or TEST_DATABASE_URL) to a PostgreSQL server"
            })?;
        let name = format!("proxyvisor_bench_cluster_{}", std::process::id());
        let mut conn = PgConnection::establish(&base).map_err(|e| format!("{base}: {e}"))?;
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn)?;
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn)?;
        let (prefix, _) = base
            .rsplit_once('/')
            .ok_or("the database URL has no database name")?;
        let url = format!("{prefix}/{name}");
        Ok(BenchDb { base, name, url })
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.base) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

fn instance_config(db: &str, id: &str, port: u16) -> String {
    format!(
        "sources = []\n[server]\nbind = \"127.0.0.1:{port}\"\n[database]\nurl = {db}\n\
         [cluster]\ninstance_id = \"{id}\"\nfailover_secs = {FAILOVER_SECS}\n\
         heartbeat_secs = {HEARTBEAT_SECS}\n",
        db = toml_string(db),
    )
}

/// One instance: its id, port, folder and process.
struct Member {
    id: String,
    port: u16,
    dir: TempDir,
    service: Service,
}

impl Member {
    async fn start(binary: &Path, db: &str, id: &str, port: u16, dir: TempDir) -> Result<Member> {
        let config = dir.path().join("proxyvisor.toml");
        std::fs::write(&config, instance_config(db, id, port))
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let log = dir.path().join(format!("{id}.log"));
        let mut service = Service::start(binary, &config, port, log)?;
        service.wait_healthy().await?;
        Ok(Member {
            id: id.to_string(),
            port,
            dir,
            service,
        })
    }
}

/// The `cluster` object of an instance's health.
async fn cluster_of(port: u16) -> Option<Value> {
    let (status, body) = http_get(port, "/api/health/comprehensive").await.ok()?;
    if status != StatusCode::OK {
        return None;
    }
    let v: Value = serde_json::from_slice(&body).ok()?;
    Some(v["cluster"].clone())
}

/// Waits until every member names the same leader and exactly one says it leads; its index.
async fn agreed_leader(members: &[Member]) -> Result<usize> {
    let started = Instant::now();
    loop {
        let mut leaders = Vec::new();
        let mut leading = Vec::new();
        for (i, m) in members.iter().enumerate() {
            if let Some(c) = cluster_of(m.port).await {
                leaders.push(c["leader_id"].as_str().unwrap_or("").to_string());
                if c["role"] == "leader" {
                    leading.push(i);
                }
            }
        }
        leaders.dedup();
        if leaders.len() == 1 && leading.len() == 1 && !leaders[0].is_empty() {
            return Ok(leading[0]);
        }
        if started.elapsed() > HANDOVER_DEADLINE {
            return Err(format!("no agreed leader after {HANDOVER_DEADLINE:?}").into());
        }
        tokio::time::sleep(HEALTH_POLL).await;
    }
}

/// The throughput farm: this many good proxies answering after `FARM_LATENCY_MS`, checked
/// `FARM_CONCURRENCY` at once per instance.
const FARM_SIZE: usize = 5_000;
const FARM_LATENCY_MS: u64 = 600;
const FARM_CONCURRENCY: usize = 100;

fn farm_config(db: &str, id: &str, port: u16, list: &str, check: &str) -> String {
    format!(
        "{}[[sources]]\nname = \"farm\"\nkind = \"plain\"\nurl = {list}\ninterval_secs = 3600\n\
         [validation]\ncheck_url = {check}\nexpect_status = 200\nexpect_body = {body}\n\
         timeout_ms = 5000\nconcurrency = {FARM_CONCURRENCY}\npark_after_ms = 0\n\
         revalidate_interval_secs = 3600\n\
         [tiers]\nslow_threshold_ms = 5000\n",
        instance_config(db, id, port).replace("sources = []\n", ""),
        list = toml_string(list),
        check = toml_string(check),
        body = toml_string(ORIGIN_BODY),
    )
}

/// With `k` instances on a fresh database: the time from spawning them until every one
/// shows the whole farm classified.
async fn classify_with(binary: &Path, k: usize, list: &str, check: &str) -> Result<Duration> {
    let db = BenchDb::create()?;
    let started = Instant::now();
    let mut members = Vec::new();
    for i in 0..k {
        let id = format!("t{i}");
        let dir = TempDir::create(&format!("cluster-{id}"))?;
        let port = free_port(&HashSet::new())?;
        let config = dir.path().join("proxyvisor.toml");
        std::fs::write(&config, farm_config(&db.url, &id, port, list, check))
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let log = dir.path().join(format!("{id}.log"));
        let service = Service::start(binary, &config, port, log)?;
        members.push(Member {
            id,
            port,
            dir,
            service,
        });
    }
    let took = loop {
        let mut done = true;
        for m in &mut members {
            m.service.ensure_running()?;
            done &= match m.service.stats().await {
                Ok(s) => s.total == FARM_SIZE as u64 && s.fresh == 0,
                Err(_) => false,
            };
        }
        if done {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!("{k} instances: not classified after 300 s").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for m in &mut members {
        m.service.stop().await?;
    }
    Ok(took)
}

pub(crate) async fn bench(binary: &Path, kills: usize) -> Result<()> {
    let farm = Farm::start(&vec![
        (Behaviour::Good, Anonymity::Elite, FARM_LATENCY_MS);
        FARM_SIZE
    ])
    .await;
    let source = SourceServer::start().await;
    source.set_body("/list", farm.plain_list());
    let (list, check) = (source.url("/list"), farm.origin.url("/ok"));
    let mut times = Vec::new();
    for k in 1..=INSTANCES {
        let t = classify_with(binary, k, &list, &check).await?;
        eprintln!(
            "cluster: {k} instance(s) classified {FARM_SIZE} proxies in {:.2} s",
            t.as_secs_f64()
        );
        times.push(t.as_secs_f64());
    }
    farm.shutdown();
    source.shutdown();
    print_throughput(&times);
    let db = BenchDb::create()?;
    let mut members = Vec::new();
    for i in 0..INSTANCES {
        let id = format!("i{i}");
        let dir = TempDir::create(&format!("cluster-{id}"))?;
        let port = free_port(&HashSet::new())?;
        members.push(Member::start(binary, &db.url, &id, port, dir).await?);
    }
    let mut handovers = Vec::with_capacity(kills);
    for k in 1..=kills {
        let leader = agreed_leader(&members).await?;
        let mut dead = members.remove(leader);
        dead.service.kill()?;
        let killed = Instant::now();
        let took = loop {
            let mut found = false;
            for m in &members {
                if let Some(c) = cluster_of(m.port).await {
                    found |= c["role"] == "leader";
                }
            }
            if found {
                break killed.elapsed();
            }
            if killed.elapsed() > HANDOVER_DEADLINE {
                return Err(format!("kill {k}: no new leader after {HANDOVER_DEADLINE:?}").into());
            }
            tokio::time::sleep(HEALTH_POLL).await;
        };
        eprintln!(
            "cluster: kill {k}/{kills} of {}: a new leader after {:.2} s",
            dead.id,
            took.as_secs_f64()
        );
        handovers.push(took.as_secs_f64());
        let (id, port) = (dead.id.clone(), dead.port);
        let dir = std::mem::replace(&mut dead.dir, TempDir::create("cluster-spare")?);
        drop(dead);
        members.push(Member::start(binary, &db.url, &id, port, dir).await?);
    }
    for m in &mut members {
        m.service.stop().await?;
    }
    print_cluster(&handovers);
    Ok(())
}

fn print_throughput(times: &[f64]) {
    println!("## Validation with 1, 2 and 3 instances (`cluster`)\n");
    println!(
        "A farm of {} good proxies answering after {FARM_LATENCY_MS} ms (in the bench process), \
         one plain-list source, `concurrency = {FARM_CONCURRENCY}` per instance and \
         `park_after_ms = 0` (no parked checks: the permits bound the checks, so the work to \
         share is known), no judge; k \
         instances on a fresh PostgreSQL database each time. Time from spawning them until \
         every one shows `tiers.total == {}` and `tiers.fresh == 0` (polled every 100 ms): \
         start-up, the leader's fetch, the first flush and the sync are included. One instance \
         alone needs at least {:.0} s of checking ({} × {FARM_LATENCY_MS} ms / {FARM_CONCURRENCY}).\n",
        thousands(FARM_SIZE as u64),
        FARM_SIZE,
        FARM_SIZE as f64 * FARM_LATENCY_MS as f64 / 1000.0 / FARM_CONCURRENCY as f64,
        thousands(FARM_SIZE as u64),
    );
    println!("| instances | all classified | checks/s | × one instance |");
    println!("|---|---|---|---|");
    for (i, t) in times.iter().enumerate() {
        println!(
            "| {} | {t:.2} s | {:.0} | {:.2} |",
            i + 1,
            FARM_SIZE as f64 / t,
            times[0] / t
        );
    }
    println!();
}

fn print_cluster(handovers: &[f64]) {
    println!("## Handover (`cluster`)\n");
    println!(
        "{INSTANCES} instances of the `proxyvisor` binary on one fresh PostgreSQL database \
         (this machine's server, loopback), no sources, `cluster.failover_secs = \
         {FAILOVER_SECS}`, `heartbeat_secs = {HEARTBEAT_SECS}` (the defaults). Each round: \
         wait until all agree on one leader, SIGKILL it, time until a survivor's \
         `/api/health/comprehensive` says `\"role\": \"leader\"` (polled every {} ms on each), \
         start the killed one again.\n",
        HEALTH_POLL.as_millis()
    );
    println!("| kill | handover |");
    println!("|---|---|");
    for (i, h) in handovers.iter().enumerate() {
        println!("| {} | {h:.2} s |", i + 1);
    }
    let max = handovers.iter().cloned().fold(0.0, f64::max);
    println!(
        "| **median** | **{:.2} s** (max {max:.2} s; {:.2} × failover_secs) |\n",
        median(handovers),
        median(handovers) / FAILOVER_SECS
    );
}
