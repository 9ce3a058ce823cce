//! `serve`: 10,000 serving proxies, and how fast `/api/proxy/alive` answers beside `/health`.

use super::*;

// --- serve ----------------------------------------------------------------------------------

/// The stored pool: tier, how many, and their latency range in ms.
pub(crate) const SERVE_POOL: [(Tier, usize, (u32, u32)); 3] = [
    (Tier::Primary, 1_000, (20, 300)),
    (Tier::Standby, 7_000, (301, 1_800)),
    (Tier::Emergency, 2_000, (2_100, 4_500)),
];
pub(crate) const CONNECTIONS: usize = 32;
pub(crate) const WARMUP: Duration = Duration::from_secs(1);
pub(crate) const PHASE: Duration = Duration::from_secs(5);
pub(crate) const ALIVE_COUNT: usize = 100;
/// Checks are never due in `serve`; should one run anyway, it goes to this closed loopback port.
pub(crate) const UNUSED_CHECK_URL: &str = "http://127.0.0.1:9/never-checked";

/// Which endpoint a load phase drives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Route {
    Health,
    Alive,
}

impl Route {
    /// The request target.
    pub(crate) fn path(self) -> String {
        match self {
            Route::Health => "/health".into(),
            Route::Alive => format!("/api/proxy/alive?count={ALIVE_COUNT}"),
        }
    }

    /// Checks an answer's body (once per connection and phase: parsing every answer would load
    /// the shared CPUs).
    pub(crate) fn verify(self, body: &[u8]) -> Result<()> {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            format!(
                "{}: not JSON ({e}): {}",
                self.path(),
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        })?;
        match self {
            Route::Health => {
                if v.get("status").and_then(Value::as_str) != Some("ok") {
                    return Err(format!("/health answered {v}").into());
                }
            }
            Route::Alive => {
                let n = v.get("proxies").and_then(Value::as_array).map(Vec::len);
                let degraded = v.get("degraded").and_then(Value::as_bool);
                if n != Some(ALIVE_COUNT) || degraded != Some(false) {
                    return Err(format!(
                        "{} answered {n:?} proxies (degraded: {degraded:?}), expected \
                         {ALIVE_COUNT}",
                        self.path()
                    )
                    .into());
                }
            }
        }
        Ok(())
    }
}

/// Latencies (µs) of every answer of one or more phases on one endpoint, and their duration.
#[derive(Default)]
pub(crate) struct Samples {
    pub(crate) latencies_us: Vec<u32>,
    pub(crate) elapsed: Duration,
}

impl Samples {
    pub(crate) fn merge(&mut self, other: Samples) {
        self.latencies_us.extend(other.latencies_us);
        self.elapsed += other.elapsed;
    }

    /// Requests per second and latency percentiles.
    pub(crate) fn summary(mut self) -> LoadStats {
        self.latencies_us.sort_unstable();
        LoadStats {
            requests: self.latencies_us.len() as u64,
            rps: self.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9),
            p50_ms: percentile(&self.latencies_us, 0.50) as f64 / 1000.0,
            p99_ms: percentile(&self.latencies_us, 0.99) as f64 / 1000.0,
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct LoadStats {
    pub(crate) requests: u64,
    pub(crate) rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// One run of `serve`: both endpoints.
pub(crate) struct ServeRun {
    pub(crate) health: LoadStats,
    pub(crate) alive: LoadStats,
}

/// Fills a store, runs the service on it and measures `runs` times.
pub(crate) async fn serve(binary: &Path, runs: usize) -> Result<()> {
    let dir = TempDir::create("serve")?;
    let db_url = format!("sqlite://{}", dir.path().join("pool.db").display());
    let filled = Instant::now();
    let url = db_url.clone();
    let stored = tokio::task::spawn_blocking(move || fill_store(&url))
        .await
        .map_err(|e| format!("filling the store panicked: {e}"))??;
    let fill_secs = filled.elapsed().as_secs_f64();
    eprintln!("serve: store filled with {stored} proxies in {fill_secs:.1} s");

    let port = free_port(&HashSet::new())?;
    let config = dir.path().join("proxyvisor.toml");
    std::fs::write(&config, serve_config(port, &db_url))
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let mut service = Service::start(binary, &config, port, dir.path().join("service.log"))?;
    let ready_after = service.wait_healthy().await?;
    let stats = service.stats().await?;
    if stats.serving() != stored as u64 || stats.fresh != 0 {
        return Err(format!(
            "the service loaded {} serving proxies ({} fresh), expected {stored}",
            stats.serving(),
            stats.fresh
        )
        .into());
    }
    eprintln!(
        "serve: service answering after {:.2} s",
        ready_after.as_secs_f64()
    );

    load(port, Route::Alive, WARMUP).await?;
    let mut results = Vec::with_capacity(runs);
    let mut requests = 0;
    for i in 1..=runs {
        eprintln!("serve: run {i}/{runs}");
        let mut health = Samples::default();
        let mut alive = Samples::default();
        for endpoint in [Route::Health, Route::Alive, Route::Health, Route::Alive] {
            let samples = load(port, endpoint, PHASE).await?;
            match endpoint {
                Route::Health => health.merge(samples),
                Route::Alive => alive.merge(samples),
            }
        }
        let run = ServeRun {
            health: health.summary(),
            alive: alive.summary(),
        };
        requests += run.health.requests + run.alive.requests;
        results.push(run);
    }
    service.ensure_running()?;
    let after = service.stats().await?;
    let peak_rss_kib = service.peak_rss_kib();
    let cpu_secs = service.cpu_secs();
    let stopped = service.stop().await?;
    let log = LogSummary::read(service.log_path());

    println!("## Serving (`serve`)\n");
    let pool: Vec<String> = SERVE_POOL
        .iter()
        .map(|(t, n, (lo, hi))| format!("{} {} ({lo}-{hi} ms)", thousands(*n as u64), t.as_str()))
        .collect();
    println!(
        "Store: SQLite filled through `Store::write_batch` with {} serving proxies ({}), all \
         checked just before the start, so none is due for a re-check (`sources = []`, \
         `revalidate_interval_secs` one year), written in {fill_secs:.1} s. Service ready \
         (`/health` 200) {:.2} s after spawning, with {} primary, {} standby and {} emergency \
         proxies; {} checks ran during the measurement.\n",
        thousands(stored as u64),
        pool.join(", "),
        ready_after.as_secs_f64(),
        stats.primary,
        stats.standby,
        stats.emergency,
        after.checks_total
    );
    println!(
        "Load: {CONNECTIONS} keep-alive HTTP/1.1 connections (hyper) from the bench process, \
         each sending its next request as soon as the answer is read; {} s warm-up on alive, then \
         per run the phases health, alive, health, alive of {} s each. Per run, each endpoint's \
         two phases are pooled: req/s = answers / phase time, p50/p99 over every answer's \
         latency. `alive` is `GET /api/proxy/alive?count={ALIVE_COUNT}`.\n",
        WARMUP.as_secs(),
        PHASE.as_secs()
    );
    println!(
        "| run | /health req/s | /health p50 | /health p99 | alive req/s | alive p50 | alive p99 \
         | req/s alive/health | p99 alive/health |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, r) in results.iter().enumerate() {
        println!(
            "| {} | {} | {:.2} ms | {:.2} ms | {} | {:.2} ms | {:.2} ms | {:.2} | {:.2} |",
            i + 1,
            thousands(r.health.rps.round() as u64),
            r.health.p50_ms,
            r.health.p99_ms,
            thousands(r.alive.rps.round() as u64),
            r.alive.p50_ms,
            r.alive.p99_ms,
            r.alive.rps / r.health.rps,
            r.alive.p99_ms / r.health.p99_ms,
        );
    }
    let m = |f: fn(&ServeRun) -> f64| median(&results.iter().map(f).collect::<Vec<_>>());
    println!(
        "| **median** | **{}** | **{:.2} ms** | **{:.2} ms** | **{}** | **{:.2} ms** | **{:.2} \
         ms** | **{:.2}** | **{:.2}** |\n",
        thousands(m(|r| r.health.rps).round() as u64),
        m(|r| r.health.p50_ms),
        m(|r| r.health.p99_ms),
        thousands(m(|r| r.alive.rps).round() as u64),
        m(|r| r.alive.p50_ms),
        m(|r| r.alive.p99_ms),
        m(|r| r.alive.rps / r.health.rps),
        m(|r| r.alive.p99_ms / r.health.p99_ms),
    );
    println!(
        "All {} answers were 200; the first answer on each connection of each phase was parsed \
         and checked (`/health`: `status` ok; alive: {ALIVE_COUNT} proxies, not degraded).\n",
        thousands(requests)
    );
    println!(
        "Service: peak RSS (VmHWM) {}, CPU {}, stop after SIGTERM {}. Log (`RUST_LOG=warn`): {}\n",
        peak_rss_kib.map_or("?".into(), mib),
        cpu_secs.map_or("?".into(), |c| format!("{c:.1} s")),
        stopped.describe(),
        log.describe()
    );
    Ok(())
}

/// Writes the serving pool to a new store; returns how many proxies it holds.
pub(crate) fn fill_store(url: &str) -> Result<usize> {
    let store = Store::open(url)?;
    let now = now_ms();
    let mut rows = Vec::new();
    for &(tier, n, range) in &SERVE_POOL {
        for i in 0..n {
            let index = rows.len();
            rows.push(ProxyRow::from(&serving_record(
                index, tier, range, i, n, now,
            )));
        }
    }
    store.write_batch(&rows, &[])?;
    Ok(rows.len())
}

/// Proxy number `index` of the store: the `i`th of `n` in `tier`, with a latency spread over
/// `range`, last checked (and passed) at `now`. Its address is on loopback and never contacted.
pub(crate) fn serving_record(
    index: usize,
    tier: Tier,
    (lo, hi): (u32, u32),
    i: usize,
    n: usize,
    now: i64,
) -> ProxyRecord {
    let latency = lo + ((hi - lo) as u64 * i as u64 / (n as u64 - 1).max(1)) as u32;
    let anonymity = [
        proxy::Anonymity::Elite,
        proxy::Anonymity::Anonymous,
        proxy::Anonymity::Transparent,
    ][index % 3];
    let country = ["US", "DE", "FR", "BR", "JP", "SG"][index % 6];
    ProxyRecord {
        endpoint: Endpoint {
            protocol: Protocol::Http,
            host: "127.0.0.1".into(),
            port: 10_000 + index as u16,
            credentials: None,
        },
        source: "bench".into(),
        kind: "free".into(),
        cost_per_gb: 0.0,
        priority: 1000,
        anonymity: Some(anonymity),
        country: Some(country.into()),
        health: Health {
            tier,
            deaths: 0,
            consecutive_passes: 5,
            consecutive_failures: 0,
            checks_total: 20,
            checks_ok: 20 - (index % 3) as u64,
            latency_ms: Some(latency),
            last_checked_at: Some(now),
            last_ok_at: Some(now),
            ..Health::default()
        },
        first_seen_at: now - 86_400_000,
        managed: None,
        profiles: Vec::new(),
    }
}

/// The service's config for `serve`: no sources, nothing ever due for a re-check.
pub(crate) fn serve_config(port: u16, db_url: &str) -> String {
    format!(
        r#"sources = []

[server]
bind = "127.0.0.1:{port}"

[database]
url = {db}

[validation]
check_url = {check}
expect_status = 200
revalidate_interval_secs = 31536000
"#,
        db = toml_string(db_url),
        check = toml_string(UNUSED_CHECK_URL),
    )
}

/// Drives `endpoint` over `CONNECTIONS` keep-alive connections for `duration`.
pub(crate) async fn load(port: u16, endpoint: Route, duration: Duration) -> Result<Samples> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(connection_loop(port, endpoint, deadline)))
        .collect();
    let mut samples = Samples::default();
    for t in tasks {
        let latencies = t
            .await
            .map_err(|e| format!("a load connection panicked: {e}"))??;
        samples.latencies_us.extend(latencies);
    }
    samples.elapsed = started.elapsed();
    Ok(samples)
}

/// One connection: requests back to back until `deadline`; the latency of each, in µs.
pub(crate) async fn connection_loop(
    port: u16,
    endpoint: Route,
    deadline: Instant,
) -> Result<Vec<u32>> {
    let path = endpoint.path();
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut verified = false;
    while Instant::now() < deadline {
        sender.ready().await?;
        let request = get_request(port, &path)?;
        let sent = Instant::now();
        let response = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        })
        .await
        .map_err(|_| format!("GET {path}: no answer within {REQUEST_TIMEOUT:?}"))?;
        let (status, body) = response.map_err(|e| format!("GET {path}: {e}"))?;
        latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if status != StatusCode::OK {
            return Err(format!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
            .into());
        }
        if !verified {
            endpoint.verify(&body)?;
            verified = true;
        }
    }
    drop(sender);
    let _ = driver.await;
    Ok(latencies)
}

// ============================================================================================
// The service as a child process
// ============================================================================================

/// Counts of `/api/ultra/stats`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PoolStats {
    pub(crate) primary: u64,
    pub(crate) standby: u64,
    pub(crate) emergency: u64,
    pub(crate) fresh: u64,
    pub(crate) dead: u64,
    pub(crate) blacklisted: u64,
    pub(crate) total: u64,
    pub(crate) checks_total: u64,
    pub(crate) checks_passed: u64,
}

impl PoolStats {
    /// Reads the counts from a `/api/ultra/stats` body.
    pub(crate) fn parse(body: &[u8]) -> Result<PoolStats> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| format!("/api/ultra/stats is not JSON: {e}"))?;
        let n = |pointer: &str| -> Result<u64> {
            v.pointer(pointer)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("/api/ultra/stats has no number at {pointer}: {v}").into())
        };
        Ok(PoolStats {
            primary: n("/tiers/primary/count")?,
            standby: n("/tiers/standby/count")?,
            emergency: n("/tiers/emergency/count")?,
            fresh: n("/tiers/fresh")?,
            dead: n("/tiers/dead")?,
            blacklisted: n("/tiers/blacklisted")?,
            total: n("/tiers/total")?,
            checks_total: n("/checks_total")?,
            checks_passed: n("/checks_passed")?,
        })
    }

    pub(crate) fn serving(&self) -> u64 {
        self.primary + self.standby + self.emergency
    }
}
