//! `classify`: a farm of 5,000 proxies of mixed behaviour, and how long until every one is classified.

use super::*;

// --- classify -------------------------------------------------------------------------------

/// The farm is this pattern of 20 proxies repeated 250 times (so behaviours are interleaved).
pub(crate) const MIX_PER_20: [(Behaviour, usize); 6] = [
    (Behaviour::Good, 12),
    (Behaviour::Slow, 2),
    (Behaviour::Refuse, 2),
    (Behaviour::Blackhole, 2),
    (Behaviour::Garbage, 1),
    (Behaviour::Error, 1),
];
pub(crate) const MIX_ROUNDS: usize = 250;
pub(crate) const FARM_SIZE: usize = 20 * MIX_ROUNDS;
/// Good proxies wait between 0 and this many ms before forwarding, spread evenly.
pub(crate) const GOOD_MAX_LATENCY_MS: u64 = 200;
/// The farm's default delay of a `Slow` proxy (longer than the check timeout).
pub(crate) const SLOW_MS: u64 = 3_000;
pub(crate) const CHECK_TIMEOUT_MS: u64 = 2_000;
pub(crate) const CHECK_CONCURRENCY: usize = 1_000;
/// Classification taking longer than this is a failure.
pub(crate) const CLASSIFY_DEADLINE: Duration = Duration::from_secs(300);
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(50);
/// Shares of the checks whose completion time is reported.
pub(crate) const CHECKED_SHARES: [f64; 3] = [0.5, 0.9, 0.99];
/// Random orders the schedule estimate takes the median of.
pub(crate) const SCHEDULE_SHUFFLES: u64 = 21;

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
    /// Good proxies the service does not serve, and bad ones it does.
    pub(crate) good_not_serving: usize,
    pub(crate) bad_serving: usize,
    pub(crate) stopped: Stopped,
    pub(crate) log: LogSummary,
}

/// Starts the farm and the list source, then runs the service `runs` times on a fresh store.
pub(crate) async fn classify(binary: &Path, runs: usize) -> Result<()> {
    let spec = farm_spec();
    let started = Instant::now();
    let farm = start_farm(&spec).await?;
    eprintln!(
        "classify: farm of {} proxies started in {:.1} s",
        farm.proxies.len(),
        started.elapsed().as_secs_f64()
    );
    let source = SourceServer::start().await;
    source.set_body("/list", farm.plain_list());
    let good: HashSet<String> = farm.urls_with(Behaviour::Good).into_iter().collect();
    let farm_ports: HashSet<u16> = farm.proxies.iter().map(|p| p.addr.port()).collect();

    let mut results = Vec::with_capacity(runs);
    for i in 1..=runs {
        eprintln!("classify: run {i}/{runs}");
        let r = classify_run(binary, &farm, &source.url("/list"), &good, &farm_ports).await?;
        eprintln!(
            "classify: run {i}: classified in {:.2} s",
            r.classified_after.as_secs_f64()
        );
        results.push(r);
    }
    farm.shutdown();
    source.shutdown();
    print_classify(&results, scheduled_estimate(&spec));
    Ok(())
}

/// Every farm proxy as `(behaviour, anonymity, latency_ms)`, in list order: `MIX_PER_20`
/// repeated, Good ones with latencies spread evenly over 0..=`GOOD_MAX_LATENCY_MS`.
pub(crate) fn farm_spec() -> Vec<(Behaviour, Anonymity, u64)> {
    let pattern: Vec<Behaviour> = MIX_PER_20
        .iter()
        .flat_map(|&(b, n)| std::iter::repeat_n(b, n))
        .collect();
    let goods = mix_count(Behaviour::Good) as u64;
    let mut good_index = 0u64;
    pattern
        .iter()
        .cycle()
        .take(FARM_SIZE)
        .map(|&b| {
            if b != Behaviour::Good {
                return (b, Anonymity::Elite, 0);
            }
            let latency = good_index * GOOD_MAX_LATENCY_MS / (goods - 1).max(1);
            let anonymity = [
                Anonymity::Elite,
                Anonymity::Anonymous,
                Anonymity::Transparent,
            ][good_index as usize % 3];
            good_index += 1;
            (b, anonymity, latency)
        })
        .collect()
}

/// How many proxies of the farm behave as `b`.
pub(crate) fn mix_count(b: Behaviour) -> usize {
    MIX_PER_20
        .iter()
        .filter(|(x, _)| *x == b)
        .map(|(_, n)| n * MIX_ROUNDS)
        .sum()
}

/// Starts the farm. Every proxy first starts listening (so no two get the same port: a refusing
/// proxy gives its port back), then the refusing ones close their listeners.
pub(crate) async fn start_farm(spec: &[(Behaviour, Anonymity, u64)]) -> Result<Farm> {
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
            p.set_slow_ms(SLOW_MS);
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

/// The service's config for `classify`.
pub(crate) fn classify_config(port: u16, db: &Path, list_url: &str, check_url: &str) -> String {
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
timeout_ms = {CHECK_TIMEOUT_MS}
concurrency = {CHECK_CONCURRENCY}
revalidate_interval_secs = 3600
"#,
        db = toml_string(&format!("sqlite://{}", db.display())),
        list = toml_string(list_url),
        check = toml_string(check_url),
        body = toml_string(ORIGIN_BODY),
    )
}

/// One run: a fresh store and service, timed until every proxy of the farm is classified.
pub(crate) async fn classify_run(
    binary: &Path,
    farm: &Farm,
    list_url: &str,
    good: &HashSet<String>,
    farm_ports: &HashSet<u16>,
) -> Result<ClassifyRun> {
    let dir = TempDir::create("classify")?;
    let port = free_port(farm_ports)?;
    let config = dir.path().join("proxyvisor.toml");
    let text = classify_config(
        port,
        &dir.path().join("pool.db"),
        list_url,
        &farm.origin.url("/ok"),
    );
    std::fs::write(&config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let mut service = Service::start(binary, &config, port, dir.path().join("service.log"))?;

    let mut listed_after = None;
    let mut checked = [None; 3];
    let mut peak_fds = 0;
    let mut answered = false;
    let mut last = None;
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
        answered = true;
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
    let peak_rss_kib = service.peak_rss_kib();
    let cpu_secs = service.cpu_secs();
    let (good_not_serving, bad_serving) = compare_serving(&service, good).await?;
    let stopped = service.stop().await?;
    let url = format!("sqlite://{}", dir.path().join("pool.db").display());
    let stored = tokio::task::spawn_blocking(move || stored_tiers(&url))
        .await
        .map_err(|e| format!("reading the store panicked: {e}"))??;
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
        stopped,
        log: LogSummary::read(service.log_path()),
    })
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

/// How many good proxies `/list` leaves out, and how many bad ones it names.
pub(crate) async fn compare_serving(
    service: &Service,
    good: &HashSet<String>,
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
    let extra = serving.iter().filter(|u| !good.contains(**u)).count();
    Ok((missing, extra))
}

/// How long the checks take on an ideal service: each proxy's check lasts exactly what the farm
/// makes it last (its latency when Good, the timeout when Slow or Blackhole, nothing otherwise),
/// taken in a random order (the service's pool is a hash map) by `concurrency` permits, with no
/// overhead at all. The median over `SCHEDULE_SHUFFLES` orders.
pub(crate) fn scheduled_estimate(spec: &[(Behaviour, Anonymity, u64)]) -> Duration {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut durations: Vec<u64> = spec
        .iter()
        .map(|&(b, _, latency)| match b {
            Behaviour::Good => latency,
            Behaviour::Slow | Behaviour::Blackhole => CHECK_TIMEOUT_MS,
            _ => 0,
        })
        .collect();
    let mut ends = Vec::new();
    for seed in 0..SCHEDULE_SHUFFLES {
        durations.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        let mut free_at: BinaryHeap<Reverse<u64>> =
            std::iter::repeat_n(Reverse(0), CHECK_CONCURRENCY).collect();
        let mut end = 0;
        for d in &durations {
            let Some(Reverse(start)) = free_at.pop() else {
                break;
            };
            end = end.max(start + d);
            free_at.push(Reverse(start + d));
        }
        ends.push(end as f64);
    }
    Duration::from_millis(median(&ends) as u64)
}

/// The lower bound of a classification: slow and black-holed proxies can only fail by timing
/// out, and at most `concurrency` checks run at once.
pub(crate) fn classify_lower_bound() -> Duration {
    let stuck = mix_count(Behaviour::Slow) + mix_count(Behaviour::Blackhole);
    let waves = stuck.div_ceil(CHECK_CONCURRENCY) as u64;
    Duration::from_millis(waves * CHECK_TIMEOUT_MS)
}

/// Prints the `classify` section: setup, bounds, one row per run and the medians.
pub(crate) fn print_classify(runs: &[ClassifyRun], schedule: Duration) {
    let slow = mix_count(Behaviour::Slow);
    let blackhole = mix_count(Behaviour::Blackhole);
    let bound = classify_lower_bound();
    println!(
        "## Classification of {} proxies (`classify`)\n",
        thousands(FARM_SIZE as u64)
    );
    let mix: Vec<String> = MIX_PER_20
        .iter()
        .map(|&(b, n)| {
            format!(
                "{} {:?} ({}%)",
                thousands((n * MIX_ROUNDS) as u64),
                b,
                n * 100 / 20
            )
        })
        .collect();
    println!(
        "Farm (in the bench process, on 127.0.0.1): {}. Good proxies wait 0-{GOOD_MAX_LATENCY_MS} \
         ms (spread evenly) before forwarding; Slow ones wait {SLOW_MS} ms; Refuse ports are \
         closed; Blackhole ones accept and never answer; Garbage answers 200 with a captive \
         portal; Error answers 502.\n",
        mix.join(", ")
    );
    println!(
        "Service: the `proxyvisor` binary on a fresh SQLite store, one plain-list source with the \
         {} proxies, checks of the farm origin's `/ok` (expect 200 and its body), `timeout_ms = \
         {CHECK_TIMEOUT_MS}`, `concurrency = {CHECK_CONCURRENCY}`, no judge, other settings \
         default, `RUST_LOG=warn`. Time runs from spawning the process until \
         `/api/ultra/stats` (polled every {} ms) shows `tiers.total == {}` and `tiers.fresh \
         == 0`.\n",
        thousands(FARM_SIZE as u64),
        POLL_EVERY.as_millis(),
        FARM_SIZE
    );
    println!(
        "Lower bound = ceil((slow + blackhole) / concurrency) × timeout_ms = ceil(({slow} + \
         {blackhole}) / {CHECK_CONCURRENCY}) × {CHECK_TIMEOUT_MS} ms = {:.1} s (those proxies \
         can only fail by timing out).\n",
        bound.as_secs_f64()
    );
    println!(
        "That bound ignores the order of the checks. Schedule = {:.2} s: the same checks on an \
         ideal service (each lasting exactly its farm delay: Good = its latency, Slow and \
         Blackhole = the timeout, others 0; no overhead) taken in random order by \
         {CHECK_CONCURRENCY} permits, median of {SCHEDULE_SHUFFLES} shuffles; it is compared with \
         the checking time (all classified - list loaded).\n",
        schedule.as_secs_f64()
    );
    println!(
        "| run | list loaded | 50 % checked | 90 % | 99 % | all classified | time / bound | \
         checking / schedule | checks/s | service CPU | peak RSS (VmHWM) | peak open fds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let at = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    let checking = |r: &ClassifyRun| {
        let listed = r.listed_after.unwrap_or_default();
        r.classified_after.saturating_sub(listed).as_secs_f64() / schedule.as_secs_f64()
    };
    for (i, r) in runs.iter().enumerate() {
        let secs = r.classified_after.as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {} | {:.2} s | {:.2} | {:.2} | {:.0} | {} | {} | {} |",
            i + 1,
            at(r.listed_after),
            at(r.checked[0]),
            at(r.checked[1]),
            at(r.checked[2]),
            secs,
            secs / bound.as_secs_f64(),
            checking(r),
            r.stats.checks_total as f64 / secs,
            r.cpu_secs.map_or("?".into(), |c| format!("{c:.1} s")),
            r.peak_rss_kib.map_or("?".into(), mib),
            r.peak_fds,
        );
    }
    let secs: Vec<f64> = runs
        .iter()
        .map(|r| r.classified_after.as_secs_f64())
        .collect();
    let rates: Vec<f64> = runs
        .iter()
        .map(|r| r.stats.checks_total as f64 / r.classified_after.as_secs_f64())
        .collect();
    let med = median(&secs);
    let ratios: Vec<f64> = runs.iter().map(checking).collect();
    println!(
        "| **median** | | | | | **{med:.2} s** | **{:.2}** | **{:.2}** | **{:.0}** | | | |\n",
        med / bound.as_secs_f64(),
        median(&ratios),
        median(&rates)
    );
    println!(
        "Tiers at the end (the farm has {} good proxies), and what the store held after \
         SIGTERM:\n",
        thousands(mix_count(Behaviour::Good) as u64)
    );
    println!(
        "| run | primary | standby | emergency | fresh | dead | blacklisted | total | checks | \
         passed | good not serving | bad serving | stop after SIGTERM | stored rows classified \
         / fresh |"
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
        println!(
            "Service log of run {} (`RUST_LOG=warn`): {}",
            i + 1,
            r.log.describe()
        );
    }
    println!();
}

// ============================================================================================
// serve
// ============================================================================================
