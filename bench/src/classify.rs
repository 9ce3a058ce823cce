//! `classify`: a farm of 5,000 proxies of mixed behaviour, and how long until every one is classified.

use super::*;

// --- classify -------------------------------------------------------------------------------

/// One classification setup: a farm mix (a pattern of 20 proxies repeated `MIX_ROUNDS` times,
/// so behaviours are interleaved) and the service's check settings.
pub(crate) struct Case {
    /// The bench part that runs it, and the heading of its section.
    pub(crate) part: &'static str,
    pub(crate) title: &'static str,
    pub(crate) mix: &'static [(Behaviour, usize)],
    pub(crate) timeout_ms: u64,
    pub(crate) concurrency: usize,
    /// How long a `Slow` proxy waits before forwarding.
    pub(crate) slow_ms: u64,
    /// `RUST_LOG` of the service.
    pub(crate) rust_log: &'static str,
}

/// Mostly good proxies, timeouts a tenth of the list (`classify`).
pub(crate) const CLASSIFY: Case = Case {
    part: "classify",
    title: "Classification of 5,000 proxies (`classify`)",
    mix: &[
        (Behaviour::Good, 12),
        (Behaviour::Slow, 2),
        (Behaviour::Refuse, 2),
        (Behaviour::Blackhole, 2),
        (Behaviour::Garbage, 1),
        (Behaviour::Error, 1),
    ],
    timeout_ms: 2_000,
    concurrency: 1_000,
    slow_ms: 3_000,
    rust_log: "warn",
};

/// The list of issue 14, as it was run against proxy-scraper-checker (`round`): a fifth good,
/// half refused, 750 that can only time out; timeout 3 s, concurrency 500.
pub(crate) const ROUND: Case = Case {
    part: "round",
    title: "A validation round of a scraped list of 5,000 proxies (`round`)",
    mix: &[
        (Behaviour::Good, 4),
        (Behaviour::Flapping, 1),
        (Behaviour::Slow, 1),
        (Behaviour::Blackhole, 2),
        (Behaviour::Refuse, 10),
        (Behaviour::Garbage, 1),
        (Behaviour::Error, 1),
    ],
    timeout_ms: 3_000,
    concurrency: 500,
    slow_ms: 4_000,
    // The round's summary line is logged at info.
    rust_log: "warn,proxyvisor::actors::tier_balancer=info",
};

pub(crate) const MIX_ROUNDS: usize = 250;
pub(crate) const FARM_SIZE: usize = 20 * MIX_ROUNDS;
/// Good (and flapping) proxies wait between 0 and this many ms before forwarding, spread evenly.
pub(crate) const GOOD_MAX_LATENCY_MS: u64 = 200;
/// Classification taking longer than this is a failure.
pub(crate) const CLASSIFY_DEADLINE: Duration = Duration::from_secs(300);
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(50);
/// Shares of the checks whose completion time is reported.
pub(crate) const CHECKED_SHARES: [f64; 3] = [0.5, 0.9, 0.99];
/// The serving probe during a round: `/api/proxy/alive?count=100`, one keep-alive connection,
/// this pause between requests.
pub(crate) const PROBE_PAUSE: Duration = Duration::from_millis(10);

impl Case {
    /// How many proxies of the farm behave as `b`.
    pub(crate) fn count(&self, b: Behaviour) -> usize {
        (self.mix.iter())
            .filter(|(x, _)| *x == b)
            .map(|(_, n)| n * MIX_ROUNDS)
            .sum()
    }

    /// Checks that can only end at the timeout: silent proxies, and slow ones slower than it.
    pub(crate) fn timeouts(&self) -> usize {
        let slow = if self.slow_ms >= self.timeout_ms {
            self.count(Behaviour::Slow)
        } else {
            0
        };
        self.count(Behaviour::Blackhole) + slow
    }

    /// Every farm proxy as `(behaviour, anonymity, latency_ms)`, in list order: the mix
    /// repeated, Good and Flapping ones with latencies spread evenly over
    /// 0..=`GOOD_MAX_LATENCY_MS`.
    pub(crate) fn spec(&self) -> Vec<(Behaviour, Anonymity, u64)> {
        let pattern: Vec<Behaviour> = (self.mix.iter())
            .flat_map(|&(b, n)| std::iter::repeat_n(b, n))
            .collect();
        let forwarding = |b| matches!(b, Behaviour::Good | Behaviour::Flapping);
        let n = (self.count(Behaviour::Good) + self.count(Behaviour::Flapping)) as u64;
        let mut index = 0u64;
        (pattern.iter().cycle().take(FARM_SIZE))
            .map(|&b| {
                if !forwarding(b) {
                    return (b, Anonymity::Elite, 0);
                }
                let latency = index * GOOD_MAX_LATENCY_MS / (n - 1).max(1);
                let anonymity = [
                    Anonymity::Elite,
                    Anonymity::Anonymous,
                    Anonymity::Transparent,
                ][index as usize % 3];
                index += 1;
                (b, anonymity, latency)
            })
            .collect()
    }

    /// `ceil(timeouts / concurrency) × timeout`: the round when a check that waits holds its
    /// permit (the checks that can only time out go in waves).
    pub(crate) fn timeout_bound(&self) -> Duration {
        let waves = self.timeouts().div_ceil(self.concurrency) as u64;
        Duration::from_millis(waves * self.timeout_ms)
    }

    /// The work of the checks that answer before the timeout: each one's farm delay (Good and
    /// Flapping = their latency, Slow = its delay when under the timeout; refused, captive and
    /// error proxies answer at once).
    pub(crate) fn fast_work(&self, spec: &[(Behaviour, Anonymity, u64)]) -> Duration {
        let ms: u64 = (spec.iter())
            .map(|&(b, _, latency)| match b {
                Behaviour::Good | Behaviour::Flapping => latency,
                Behaviour::Slow if self.slow_ms < self.timeout_ms => self.slow_ms,
                _ => 0,
            })
            .sum();
        Duration::from_millis(ms)
    }

    /// `timeout + fast work / concurrency`: every silent check waits at once, the answered
    /// ones share the permits.
    pub(crate) fn fast_bound(&self, spec: &[(Behaviour, Anonymity, u64)]) -> Duration {
        Duration::from_millis(self.timeout_ms) + self.fast_work(spec) / self.concurrency as u32
    }
}

/// What one classification run measured.
pub(crate) struct ClassifyRun {
    /// From the child's start until the stats show the whole list.
    pub(crate) listed_after: Option<Duration>,
    /// From the child's start until no proxy is `fresh` any more.
    pub(crate) classified_after: Duration,
    /// When the service had answered half, 90 % and 99 % of the checks (from the child's start).
    pub(crate) checked: [Option<Duration>; 3],
    pub(crate) stats: PoolStats,
    pub(crate) cpu_secs: Option<f64>,
    pub(crate) peak_rss_kib: Option<u64>,
    pub(crate) peak_fds: usize,
    /// Rows the store holds after the shutdown: classified ones, and ones still `fresh`.
    pub(crate) stored: (usize, usize),
    /// Good proxies the service does not serve, and bad ones it does (flapping ones are
    /// neither).
    pub(crate) good_not_serving: usize,
    pub(crate) bad_serving: usize,
    /// `/api/proxy/alive?count=100` answers while the list was being checked (latencies in µs).
    pub(crate) probe: Samples,
    /// The service's own summary of the round (`validation round done: ...`), when logged.
    pub(crate) summary: Option<String>,
    pub(crate) stopped: Stopped,
    pub(crate) log: LogSummary,
}

impl ClassifyRun {
    /// From the list being loaded until every proxy was classified.
    pub(crate) fn round(&self) -> Duration {
        (self.classified_after).saturating_sub(self.listed_after.unwrap_or_default())
    }
}

/// Starts the farm and the list source, then runs the service `runs` times on a fresh store.
pub(crate) async fn classify(binary: &Path, runs: usize, case: &Case) -> Result<()> {
    let spec = case.spec();
    let started = Instant::now();
    let farm = start_farm(case, &spec).await?;
    eprintln!(
        "{}: farm of {} proxies started in {:.1} s",
        case.part,
        farm.proxies.len(),
        started.elapsed().as_secs_f64()
    );
    let source = SourceServer::start().await;
    source.set_body("/list", farm.plain_list());
    let good: HashSet<String> = farm.urls_with(Behaviour::Good).into_iter().collect();
    let neutral: HashSet<String> = farm.urls_with(Behaviour::Flapping).into_iter().collect();
    let farm_ports: HashSet<u16> = farm.proxies.iter().map(|p| p.addr.port()).collect();

    let mut results = Vec::with_capacity(runs);
    for i in 1..=runs {
        eprintln!("{}: run {i}/{runs}", case.part);
        let sets = (&good, &neutral);
        let r = classify_run(binary, case, &farm, &source.url("/list"), sets, &farm_ports).await?;
        eprintln!(
            "{}: run {i}: classified in {:.2} s (round {:.2} s)",
            case.part,
            r.classified_after.as_secs_f64(),
            r.round().as_secs_f64()
        );
        results.push(r);
    }
    farm.shutdown();
    source.shutdown();
    print_classify(case, &spec, &results);
    Ok(())
}

/// Starts the farm. Every proxy first starts listening (so no two get the same port: a refusing
/// proxy gives its port back), then the refusing ones close their listeners.
pub(crate) async fn start_farm(case: &Case, spec: &[(Behaviour, Anonymity, u64)]) -> Result<Farm> {
    let listening: Vec<_> = spec
        .iter()
        .map(|&(b, a, l)| match b {
            Behaviour::Refuse => (Behaviour::Error, a, l),
            _ => (b, a, l),
        })
        .collect();
    let farm = Farm::start(&listening).await;
    for (p, &(b, _, _)) in farm.proxies.iter().zip(spec) {
        if b == Behaviour::Slow {
            p.set_slow_ms(case.slow_ms);
        }
        if b == Behaviour::Refuse {
            p.set_behaviour_and_wait(Behaviour::Refuse).await;
        }
    }
    let unique: HashSet<_> = farm.proxies.iter().map(|p| p.addr).collect();
    if unique.len() != spec.len() {
        return Err(format!(
            "the farm has {} distinct addresses for {} proxies",
            unique.len(),
            spec.len()
        )
        .into());
    }
    Ok(farm)
}

/// The service's config for a case.
pub(crate) fn classify_config(
    case: &Case,
    port: u16,
    db: &Path,
    list_url: &str,
    check_url: &str,
) -> String {
    format!(
        r#"[server]
bind = "127.0.0.1:{port}"

[database]
url = {db}

[[sources]]
name = "farm"
kind = "plain"
url = {list}
interval_secs = 3600

[validation]
check_url = {check}
expect_status = 200
expect_body = {body}
timeout_ms = {timeout}
concurrency = {concurrency}
revalidate_interval_secs = 3600
"#,
        db = toml_string(&format!("sqlite://{}", db.display())),
        list = toml_string(list_url),
        check = toml_string(check_url),
        body = toml_string(ORIGIN_BODY),
        timeout = case.timeout_ms,
        concurrency = case.concurrency,
    )
}

/// One run: a fresh store and service, timed until every proxy of the farm is classified, with
/// a client asking for proxies all the while.
pub(crate) async fn classify_run(
    binary: &Path,
    case: &Case,
    farm: &Farm,
    list_url: &str,
    (good, neutral): (&HashSet<String>, &HashSet<String>),
    farm_ports: &HashSet<u16>,
) -> Result<ClassifyRun> {
    let dir = TempDir::create(case.part)?;
    let port = free_port(farm_ports)?;
    let config = dir.path().join("proxyvisor.toml");
    let db = dir.path().join("pool.db");
    let text = classify_config(case, port, &db, list_url, &farm.origin.url("/ok"));
    std::fs::write(&config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let log = dir.path().join("service.log");
    let mut service = Service::start_logging(binary, &config, port, log, case.rust_log)?;

    let mut listed_after = None;
    let mut checked = [None; 3];
    let mut peak_fds = 0;
    let mut answered = false;
    let mut last = None;
    let probing = Arc::new(AtomicBool::new(true));
    let mut probe = None;
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (classified_after, stats) = loop {
        tick.tick().await;
        service.ensure_running()?;
        peak_fds = peak_fds.max(service.open_fds());
        let elapsed = service.uptime();
        if elapsed > CLASSIFY_DEADLINE {
            return Err(format!(
                "not classified after {} s; last stats: {last:?}; log: {}",
                CLASSIFY_DEADLINE.as_secs(),
                service.log_tail()
            )
            .into());
        }
        let stats = match service.stats().await {
            Ok(s) => s,
            // Not listening yet.
            Err(_) if !answered => continue,
            Err(e) => return Err(format!("/api/ultra/stats: {e}").into()),
        };
        if !answered {
            answered = true;
            probe = Some(tokio::spawn(probe_serving(port, probing.clone())));
        }
        last = Some(stats);
        for (at, share) in checked.iter_mut().zip(CHECKED_SHARES) {
            if stats.checks_total as f64 >= share * FARM_SIZE as f64 {
                at.get_or_insert(elapsed);
            }
        }
        if stats.total == FARM_SIZE as u64 {
            listed_after.get_or_insert(elapsed);
            if stats.fresh == 0 {
                break (elapsed, stats);
            }
        }
    };
    probing.store(false, Ordering::Relaxed);
    let probe = match probe {
        Some(p) => p
            .await
            .map_err(|e| format!("the serving probe panicked: {e}"))??,
        None => Samples::default(),
    };
    let peak_rss_kib = service.peak_rss_kib();
    let cpu_secs = service.cpu_secs();
    let (good_not_serving, bad_serving) = compare_serving(&service, good, neutral).await?;
    let stopped = service.stop().await?;
    let url = format!("sqlite://{}", db.display());
    let stored = tokio::task::spawn_blocking(move || stored_tiers(&url))
        .await
        .map_err(|e| format!("reading the store panicked: {e}"))??;
    let summary = std::fs::read_to_string(service.log_path())
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.split_once("validation round done: ")
                .map(|(_, s)| s.to_string())
        });
    Ok(ClassifyRun {
        listed_after,
        checked,
        stored,
        classified_after,
        stats,
        cpu_secs,
        peak_rss_kib,
        peak_fds,
        good_not_serving,
        bad_serving,
        probe,
        summary,
        stopped,
        log: LogSummary::read(service.log_path()),
    })
}

/// Asks `/api/proxy/alive?count=100` on one keep-alive connection, `PROBE_PAUSE` apart, while
/// `on` holds; every answer must be a 200.
pub(crate) async fn probe_serving(port: u16, on: Arc<AtomicBool>) -> Result<Samples> {
    let path = format!("/api/proxy/alive?count={ALIVE_COUNT}");
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let started = Instant::now();
    let mut samples = Samples::default();
    while on.load(Ordering::Relaxed) {
        sender.ready().await?;
        let request = get_request(port, &path)?;
        let sent = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        })
        .await
        .map_err(|_| format!("GET {path}: no answer within {REQUEST_TIMEOUT:?}"))?;
        let status = answer.map_err(|e| format!("GET {path}: {e}"))?;
        (samples.latencies_us).push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if status != StatusCode::OK {
            return Err(format!("GET {path} answered {status} during the round").into());
        }
        tokio::time::sleep(PROBE_PAUSE).await;
    }
    samples.elapsed = started.elapsed();
    drop(sender);
    let _ = driver.await;
    Ok(samples)
}

/// Rows of the store at `url`: how many have been classified, how many are still `fresh`.
pub(crate) fn stored_tiers(url: &str) -> Result<(usize, usize)> {
    let rows = Store::open(url)?.load_proxies()?;
    let fresh = rows
        .iter()
        .filter(|r| r.tier == Tier::Fresh.as_str())
        .count();
    Ok((rows.len() - fresh, fresh))
}

/// How many good proxies `/list` leaves out, and how many bad ones (neither good nor
/// `neutral`) it names.
pub(crate) async fn compare_serving(
    service: &Service,
    good: &HashSet<String>,
    neutral: &HashSet<String>,
) -> Result<(usize, usize)> {
    let path = format!("/list?limit={FARM_SIZE}");
    let (status, body) = service.get(&path).await?;
    if status != StatusCode::OK {
        return Err(format!("GET {path} answered {status}").into());
    }
    let text = String::from_utf8_lossy(&body);
    let serving: HashSet<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let missing = good
        .iter()
        .filter(|u| !serving.contains(u.as_str()))
        .count();
    let extra = (serving.iter())
        .filter(|u| !good.contains(**u) && !neutral.contains(**u))
        .count();
    Ok((missing, extra))
}

/// Prints a case's section: setup, bounds, one row per run and the medians.
pub(crate) fn print_classify(
    case: &Case,
    spec: &[(Behaviour, Anonymity, u64)],
    runs: &[ClassifyRun],
) {
    let (timeout, conc) = (case.timeout_ms, case.concurrency);
    let slow_bound = case.timeout_bound();
    let fast_bound = case.fast_bound(spec);
    println!("## {}\n", case.title);
    let mix: Vec<String> = (case.mix.iter())
        .map(|&(b, n)| {
            let share = n as f64 * 100.0 / 20.0;
            format!("{} {b:?} ({share}%)", thousands((n * MIX_ROUNDS) as u64))
        })
        .collect();
    println!(
        "Farm (in the bench process, on 127.0.0.1): {}. Good and Flapping proxies wait \
         0-{GOOD_MAX_LATENCY_MS} ms (spread evenly) before forwarding; Flapping ones serve every \
         other connection and answer 502 to the rest; Slow ones wait {} ms; Refuse ports are \
         closed; Blackhole ones accept and never answer; Garbage answers 200 with a captive \
         portal; Error answers 502.\n",
        mix.join(", "),
        case.slow_ms
    );
    println!(
        "Service: the `proxyvisor` binary on a fresh SQLite store, one plain-list source with the \
         {} proxies, checks of the farm origin's `/ok` (expect 200 and its body), `timeout_ms = \
         {timeout}`, `concurrency = {conc}`, no judge, other settings default, `RUST_LOG={}`. \
         *All classified* runs from spawning the process until `/api/ultra/stats` (polled every \
         {} ms) shows `tiers.total == {}` and `tiers.fresh == 0`; the *round* is the part of it \
         after the list was loaded. A client asks `/api/proxy/alive?count={ALIVE_COUNT}` on one \
         keep-alive connection ({} ms apart) from the first answer until the end.\n",
        thousands(FARM_SIZE as u64),
        case.rust_log,
        POLL_EVERY.as_millis(),
        FARM_SIZE,
        PROBE_PAUSE.as_millis(),
    );
    println!(
        "Bounds: *waves* = ceil(timeouts / concurrency) × timeout = ceil({} / {conc}) × {timeout} \
         ms = {:.2} s (a waiting check holding its permit); *fast* = timeout + answered work / \
         concurrency = {timeout} ms + {:.1} s / {conc} = {:.2} s (every silent check waits at \
         once; the answered ones share the permits).\n",
        case.timeouts(),
        slow_bound.as_secs_f64(),
        case.fast_work(spec).as_secs_f64(),
        fast_bound.as_secs_f64(),
    );
    println!(
        "| run | list loaded | 50 % checked | 90 % | 99 % | all classified | round | round / \
         waves | round / fast | checks/s | service CPU | peak RSS (VmHWM) | peak open fds | \
         alive p50 / p99 during it |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let at = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    let rate = |r: &ClassifyRun| r.stats.checks_total as f64 / r.round().as_secs_f64().max(1e-3);
    let p = |r: &ClassifyRun, q: f64| {
        let mut l = r.probe.latencies_us.clone();
        l.sort_unstable();
        percentile(&l, q) as f64 / 1000.0
    };
    for (i, r) in runs.iter().enumerate() {
        let round = r.round().as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {} | {:.2} s | {round:.2} s | {:.2} | {:.2} | {:.0} | {} | {} | \
             {} | {:.2} / {:.2} ms ({} answers) |",
            i + 1,
            at(r.listed_after),
            at(r.checked[0]),
            at(r.checked[1]),
            at(r.checked[2]),
            r.classified_after.as_secs_f64(),
            round / slow_bound.as_secs_f64(),
            round / fast_bound.as_secs_f64(),
            rate(r),
            r.cpu_secs.map_or("?".into(), |c| format!("{c:.1} s")),
            r.peak_rss_kib.map_or("?".into(), mib),
            r.peak_fds,
            p(r, 0.50),
            p(r, 0.99),
            r.probe.latencies_us.len(),
        );
    }
    let med = |f: &dyn Fn(&ClassifyRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let round = med(&|r| r.round().as_secs_f64());
    println!(
        "| **median** | | | | | **{:.2} s** | **{round:.2} s** | **{:.2}** | **{:.2}** | **{:.0}** \
         | | **{}** | | **{:.2} / {:.2} ms** |\n",
        med(&|r| r.classified_after.as_secs_f64()),
        round / slow_bound.as_secs_f64(),
        round / fast_bound.as_secs_f64(),
        med(&rate),
        mib(med(&|r| r.peak_rss_kib.unwrap_or(0) as f64) as u64),
        med(&|r| p(r, 0.50)),
        med(&|r| p(r, 0.99)),
    );
    println!(
        "Tiers at the end (the farm has {} good proxies; flapping ones count as neither good nor \
         bad), and what the store held after SIGTERM:\n",
        thousands(case.count(Behaviour::Good) as u64)
    );
    println!(
        "| run | primary | standby | emergency | fresh | dead | blacklisted | total | checks | \
         passed | good not serving | bad serving (false positives) | stop after SIGTERM | \
         stored rows classified / fresh |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, r) in runs.iter().enumerate() {
        let s = &r.stats;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
            i + 1,
            s.primary,
            s.standby,
            s.emergency,
            s.fresh,
            s.dead,
            s.blacklisted,
            s.total,
            s.checks_total,
            s.checks_passed,
            r.good_not_serving,
            r.bad_serving,
            r.stopped.describe(),
            r.stored.0,
            r.stored.1,
        );
    }
    println!();
    for (i, r) in runs.iter().enumerate() {
        if let Some(s) = &r.summary {
            println!("The service's summary of run {}: `{s}`\n", i + 1);
        }
    }
    for (i, r) in runs.iter().enumerate() {
        println!(
            "Service log of run {} (`RUST_LOG={}`): {}",
            i + 1,
            case.rust_log,
            r.log.describe()
        );
    }
    println!();
}

// ============================================================================================
// serve
// ============================================================================================
