//! `monitors`: 2,000 watched services at a 1 s interval against one loopback "fleet" server in
//! this process (keep-alive HTTP/1.1; each service is a path that answers 200, or 503 once
//! "crashed"). Measures the service's CPU and memory while it watches them, and the detection
//! latency from a crash to the state change (`down_since` in `/api/monitors`, taken by the
//! service) against the rule's bound (`failures_before_down` × `interval`).

use super::{median, mib, percentile, thousands, Result, Service, TempDir};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const SERVICES: usize = 2_000;
const INTERVAL_SECS: u64 = 1;
const FAILURES_BEFORE_DOWN: u64 = 2;
/// Services crashed per run, one every `CRASH_EVERY`.
const CRASHES: usize = 100;
const CRASH_EVERY: Duration = Duration::from_millis(20);
const STEADY: Duration = Duration::from_secs(10);
const DEADLINE: Duration = Duration::from_secs(120);

/// The services' answers: `down[i]` → 503.
struct Fleet {
    port: u16,
    down: Arc<Vec<AtomicBool>>,
}

impl Fleet {
    async fn start() -> Result<Fleet> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let down: Arc<Vec<AtomicBool>> =
            Arc::new((0..SERVICES).map(|_| AtomicBool::new(false)).collect());
        let states = down.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let states = states.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read);
                    let mut line = String::new();
                    loop {
                        // Request line, then headers up to the empty line (GETs have no body).
                        line.clear();
                        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        loop {
                            line.clear();
                            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" || line == "\n" {
                                break;
                            }
                        }
                        let i: Option<usize> =
                            path.strip_prefix("/s/").and_then(|n| n.parse().ok());
                        let up = i
                            .and_then(|i| states.get(i))
                            .is_some_and(|d| !d.load(Ordering::Relaxed));
                        let answer: &[u8] = if up {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                        } else {
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\ndown"
                        };
                        if write.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Fleet { port, down })
    }
}

fn config(port: u16, db: &Path, fleet: u16) -> String {
    let mut c = format!(
        "sources = []\n[server]\nbind = \"127.0.0.1:{port}\"\nadmin_token = \"bench\"\n\
         [database]\nurl = \"sqlite://{}\"\n",
        db.display()
    );
    for i in 0..SERVICES {
        c.push_str(&format!(
            "[[monitors]]\nname = \"svc-{i}\"\nurl = \"http://127.0.0.1:{fleet}/s/{i}\"\n\
             interval_secs = {INTERVAL_SECS}\ntimeout_ms = 1000\n\
             failures_before_down = {FAILURES_BEFORE_DOWN}\n"
        ));
    }
    c
}

/// `/api/monitors` as (name → (status, down_since ms)).
async fn monitors(service: &Service) -> Result<Vec<(String, String, Option<i64>)>> {
    let (_, body) = service.get("/api/monitors").await?;
    let v: Value = serde_json::from_slice(&body)?;
    let list = v["monitors"]
        .as_array()
        .ok_or("no monitors in /api/monitors")?;
    Ok(list
        .iter()
        .map(|m| {
            let down_since = m["down_since"]
                .as_str()
                .and_then(|s| humantime::parse_rfc3339(s).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64);
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["status"].as_str().unwrap_or("").to_string(),
                down_since,
            )
        })
        .collect())
}

async fn wait_all(
    service: &mut Service,
    what: &str,
    want: impl Fn(&str) -> bool,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        service.ensure_running()?;
        let all = monitors(service).await?;
        if all.len() == SERVICES && all.iter().all(|(_, s, _)| want(s)) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > DEADLINE {
            return Err(format!("{what}: not reached in {} s", DEADLINE.as_secs()).into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Run {
    cores: f64,
    rss_kib: u64,
    p50_ms: u32,
    p99_ms: u32,
    max_ms: u32,
}

pub async fn bench(binary: &Path, runs: usize) -> Result<()> {
    let dir = TempDir::create("monitors")?;
    let fleet = Fleet::start().await?;
    let port = super::free_port(&std::collections::HashSet::new())?;
    let path = dir.path().join("proxyvisor.toml");
    std::fs::write(&path, config(port, &dir.path().join("m.db"), fleet.port))?;
    let mut service = Service::start(binary, &path, port, dir.path().join("service.log"))?;
    service.wait_healthy().await?;
    let all_up = wait_all(&mut service, "all up", |s| s == "up").await?;
    eprintln!(
        "monitors: {SERVICES} up after {:.1} s",
        all_up.as_secs_f64()
    );
    let bound_ms = (FAILURES_BEFORE_DOWN * INTERVAL_SECS * 1000) as u32;
    let mut results = Vec::new();
    for run in 1..=runs {
        // Steady state: CPU over STEADY while every service is up.
        let cpu0 = service.cpu_secs().ok_or("no CPU figure")?;
        let t0 = Instant::now();
        tokio::time::sleep(STEADY).await;
        let cores =
            (service.cpu_secs().ok_or("no CPU figure")? - cpu0) / t0.elapsed().as_secs_f64();
        let rss_kib = service.rss_kib().unwrap_or(0);
        // Crash CRASHES services (spread over the run's services), one every CRASH_EVERY.
        let picked: Vec<usize> = (0..CRASHES)
            .map(|k| (k * SERVICES / CRASHES + run) % SERVICES)
            .collect();
        let mut crashed_at = Vec::with_capacity(CRASHES);
        for &i in &picked {
            fleet.down[i].store(true, Ordering::Relaxed);
            crashed_at.push((i, proxyvisor::clock::now_ms()));
            tokio::time::sleep(CRASH_EVERY).await;
        }
        let started = Instant::now();
        let latencies: Vec<u32> = loop {
            service.ensure_running()?;
            let all = monitors(&service).await?;
            let seen: Vec<u32> = crashed_at
                .iter()
                .filter_map(|(i, at)| {
                    let name = format!("svc-{i}");
                    let (_, _, since) = all.iter().find(|(n, _, _)| *n == name)?;
                    since.map(|s| (s - at).max(0) as u32)
                })
                .collect();
            if seen.len() == CRASHES {
                break seen;
            }
            if started.elapsed() > DEADLINE {
                return Err(format!("only {} of {CRASHES} crashes detected", seen.len()).into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let mut sorted = latencies.clone();
        sorted.sort_unstable();
        let r = Run {
            cores,
            rss_kib,
            p50_ms: percentile(&sorted, 0.5),
            p99_ms: percentile(&sorted, 0.99),
            max_ms: *sorted.last().unwrap_or(&0),
        };
        eprintln!(
            "monitors: run {run}/{runs}: {:.2} cores, p50 {} ms, p99 {} ms",
            r.cores, r.p50_ms, r.p99_ms
        );
        results.push(r);
        for &i in &picked {
            fleet.down[i].store(false, Ordering::Relaxed);
        }
        wait_all(&mut service, "all up again", |s| s == "up").await?;
    }
    let peak = service.peak_rss_kib();
    let stopped = service.stop().await?;
    println!("## Watching services (`monitors`)\n");
    println!(
        "{} monitors (`interval_secs = {INTERVAL_SECS}`, `failures_before_down = \
         {FAILURES_BEFORE_DOWN}`, action none) against one keep-alive loopback server in the bench \
         process: {} checks/s. All up {:.1} s after the start. Per run: CPU of the service over \
         {} s with every service up, then {CRASHES} services made to answer 503, one every {} ms; \
         detection latency = the service's `down_since` − the crash time. The rule's bound is \
         {bound_ms} ms (a crash just after a check is seen by the next {FAILURES_BEFORE_DOWN} \
         checks).\n",
        thousands(SERVICES as u64),
        thousands(SERVICES as u64 / INTERVAL_SECS),
        all_up.as_secs_f64(),
        STEADY.as_secs(),
        CRASH_EVERY.as_millis()
    );
    println!("| run | service CPU (cores) | RSS | detection p50 | p99 | max | p99 / bound |");
    println!("|---|---|---|---|---|---|---|");
    for (i, r) in results.iter().enumerate() {
        println!(
            "| {} | {:.2} | {} | {} ms | {} ms | {} ms | {:.2} |",
            i + 1,
            r.cores,
            mib(r.rss_kib),
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.p99_ms as f64 / bound_ms as f64
        );
    }
    let m = |f: fn(&Run) -> f64| median(&results.iter().map(f).collect::<Vec<_>>());
    println!(
        "| **median** | **{:.2}** | **{}** | **{:.0} ms** | **{:.0} ms** | **{:.0} ms** | **{:.2}** |\n",
        m(|r| r.cores),
        mib(m(|r| r.rss_kib as f64) as u64),
        m(|r| r.p50_ms as f64),
        m(|r| r.p99_ms as f64),
        m(|r| r.max_ms as f64),
        m(|r| r.p99_ms as f64) / bound_ms as f64
    );
    println!(
        "Service: peak RSS (VmHWM) {}, stop after SIGTERM {}.\n",
        peak.map_or("?".into(), mib),
        stopped.describe()
    );
    Ok(())
}
