//! `proxyvisor-bench <classify|serve|monitors|all> [--runs N]`: measures the `proxyvisor` service binary on
//! loopback and prints the results as Markdown, for the README.
//!
//! * `classify` starts a farm of 5,000 HTTP proxies of mixed behaviour in this process (the test
//!   farm of `tests/support`), serves their list from a loopback source, runs the service on it
//!   and times how long it takes until every proxy has been classified.
//! * `serve` fills a SQLite store with 10,000 serving proxies, runs the service on it and drives
//!   `/health` and `/api/proxy/alive?count=100` over keep-alive HTTP/1.1 connections, in
//!   alternating phases.
//! * `monitors` watches 2,000 services at a 1 s interval (see `bench/monitors.rs`): CPU, memory
//!   and the detection latency from a crash to the state change.
//!
//! The service runs as a child process: the `proxyvisor` binary beside this one, so build both
//! (`cargo build --release --bin proxyvisor --bin proxyvisor-bench`). Nothing leaves 127.0.0.1.

// The loopback servers of the integration tests, reused as they are. They sit at the crate root
// because `source` names `super::farm` (an inline `mod support {}` would need `src/bin/support/`
// to exist for the relative paths to resolve).
#[path = "../../tests/support/farm.rs"]
mod farm;
#[path = "bench/monitors.rs"]
mod monitors;
#[path = "../../tests/support/source.rs"]
mod source;

use bytes::Bytes;
use farm::{Anonymity, Behaviour, Farm, ORIGIN_BODY};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use proxyvisor::clock::{now_ms, rfc3339};
use proxyvisor::domain::lifecycle::{Health, Tier};
use proxyvisor::domain::proxy::{self, Endpoint, Protocol};
use proxyvisor::domain::record::ProxyRecord;
use proxyvisor::store::models::ProxyRow;
use proxyvisor::store::Store;
use serde_json::Value;
use source::SourceServer;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = Error> = std::result::Result<T, E>;

const USAGE: &str = "usage: proxyvisor-bench <classify|serve|monitors|all> [--runs N]";
const DEFAULT_RUNS: usize = 3;

/// Any single request to the service must answer within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the service gets to start listening.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long the service gets to exit after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

// --- classify -------------------------------------------------------------------------------

/// The farm is this pattern of 20 proxies repeated 250 times (so behaviours are interleaved).
const MIX_PER_20: [(Behaviour, usize); 6] = [
    (Behaviour::Good, 12),
    (Behaviour::Slow, 2),
    (Behaviour::Refuse, 2),
    (Behaviour::Blackhole, 2),
    (Behaviour::Garbage, 1),
    (Behaviour::Error, 1),
];
const MIX_ROUNDS: usize = 250;
const FARM_SIZE: usize = 20 * MIX_ROUNDS;
/// Good proxies wait between 0 and this many ms before forwarding, spread evenly.
const GOOD_MAX_LATENCY_MS: u64 = 200;
/// The farm's default delay of a `Slow` proxy (longer than the check timeout).
const SLOW_MS: u64 = 3_000;
const CHECK_TIMEOUT_MS: u64 = 2_000;
const CHECK_CONCURRENCY: usize = 1_000;
/// Classification taking longer than this is a failure.
const CLASSIFY_DEADLINE: Duration = Duration::from_secs(300);
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Shares of the checks whose completion time is reported.
const CHECKED_SHARES: [f64; 3] = [0.5, 0.9, 0.99];
/// Random orders the schedule estimate takes the median of.
const SCHEDULE_SHUFFLES: u64 = 21;

// --- serve ----------------------------------------------------------------------------------

/// The stored pool: tier, how many, and their latency range in ms.
const SERVE_POOL: [(Tier, usize, (u32, u32)); 3] = [
    (Tier::Primary, 1_000, (20, 300)),
    (Tier::Standby, 7_000, (301, 1_800)),
    (Tier::Emergency, 2_000, (2_100, 4_500)),
];
const CONNECTIONS: usize = 32;
const WARMUP: Duration = Duration::from_secs(1);
const PHASE: Duration = Duration::from_secs(5);
const ALIVE_COUNT: usize = 100;
/// Checks are never due in `serve`; should one run anyway, it goes to this closed loopback port.
const UNUSED_CHECK_URL: &str = "http://127.0.0.1:9/never-checked";

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("proxyvisor-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("proxyvisor-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxyvisor-bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Classify,
    Serve,
    Monitors,
    All,
}

/// The command line.
struct Args {
    part: Part,
    runs: usize,
}

impl Args {
    /// Parses the arguments after the program name.
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut part = None;
        let mut runs = DEFAULT_RUNS;
        let parse_runs = |v: Option<String>| -> Result<usize, String> {
            let v = v.ok_or("--runs needs a number")?;
            match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("--runs must be a positive number, got `{v}`")),
            }
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "classify" => part = Some(Part::Classify),
                "serve" => part = Some(Part::Serve),
                "monitors" => part = Some(Part::Monitors),
                "all" => part = Some(Part::All),
                "--runs" => runs = parse_runs(args.next())?,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => match other.strip_prefix("--runs=") {
                    Some(v) => runs = parse_runs(Some(v.to_string()))?,
                    None => return Err(format!("unknown argument `{other}`")),
                },
            }
        }
        let part = part.ok_or("say what to measure: classify, serve, monitors or all")?;
        Ok(Args { part, runs })
    }
}

/// Prints the machine facts, then runs the parts asked for.
async fn run(args: Args) -> Result<()> {
    let binary = service_binary()?;
    print_machine_facts(&binary, args.runs);
    if matches!(args.part, Part::Classify | Part::All) {
        classify(&binary, args.runs).await?;
    }
    if matches!(args.part, Part::Serve | Part::All) {
        serve(&binary, args.runs).await?;
    }
    if matches!(args.part, Part::Monitors | Part::All) {
        monitors::bench(&binary, args.runs).await?;
    }
    Ok(())
}

/// The `proxyvisor` binary built beside this one.
fn service_binary() -> Result<PathBuf> {
    let binary = std::env::current_exe()?.with_file_name("proxyvisor");
    if !binary.is_file() {
        return Err(format!(
            "{} is missing; build it first: cargo build --release --bin proxyvisor --bin \
             proxyvisor-bench",
            binary.display()
        )
        .into());
    }
    Ok(binary)
}

/// When the service binary was built, and whether a source of the service (anything of the
/// crate but this bench) has changed since: the numbers would then be of older code.
fn binary_freshness(binary: &Path) -> String {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return "build time unknown".into();
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bench = root.join("src/bin/bench.rs");
    let mut newer = Vec::new();
    let mut pending = vec![root.join("src"), root.join("migrations")];
    let mut files = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path != bench {
                files.push(path);
            }
        }
    }
    for f in files {
        if std::fs::metadata(&f)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t > built)
        {
            newer.push(f.strip_prefix(root).unwrap_or(&f).display().to_string());
        }
    }
    let when = rfc3339(
        built
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    );
    if newer.is_empty() {
        format!("built {when}, no service source changed since")
    } else {
        newer.sort();
        eprintln!(
            "warning: {} changed after {} was built; rebuild with cargo build --release --bin \
             proxyvisor",
            newer.join(", "),
            binary.display()
        );
        format!("built {when}; **changed since**: {}", newer.join(", "))
    }
}

// ============================================================================================
// Machine facts
// ============================================================================================

/// The header of the report: when, what, on which machine.
fn print_machine_facts(binary: &Path, runs: usize) {
    let argv: Vec<String> = std::env::args().collect();
    let program = argv
        .first()
        .map(|p| {
            Path::new(p)
                .file_name()
                .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "proxyvisor-bench".into());
    let command = std::iter::once(program)
        .chain(argv.iter().skip(1).cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let cpus = command_output("nproc", &[]).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    });
    let cpu_model = proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "?".into());
    let memory = proc_field("/proc/meminfo", "MemTotal").unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let open_files = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .map(|l| l.split_whitespace().nth(3).unwrap_or("?").to_string())
        })
        .unwrap_or_else(|| "?".into());
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into());
    println!("# proxyvisor benchmarks\n");
    println!("| | |\n|---|---|");
    println!("| date (UTC) | {} |", rfc3339(now_ms()));
    println!("| command | `{command}` (runs = {runs}) |");
    println!("| git commit | {} |", git_commit());
    println!("| nproc | {cpus} ({cpu_model}) |");
    println!("| memory | {memory} |");
    println!("| kernel | {kernel} |");
    println!("| open files limit (soft) | {open_files} |");
    println!("| load average at start | {loadavg} |");
    println!(
        "| service binary | `{}` ({}) |",
        binary.display(),
        binary_freshness(binary)
    );
    println!();
    println!(
        "Load generator, farm and service share the same machine: every number below includes \
         that contention.\n"
    );
}

/// `d1f1c74`, marked when the working tree differs from it.
fn git_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let Some(commit) = command_output("git", &["-C", dir, "rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git checkout)".into();
    };
    match command_output(
        "git",
        &["-C", dir, "status", "--porcelain", "--untracked-files=no"],
    ) {
        None => format!("{commit} (working tree clean)"),
        Some(_) => format!("{commit} (working tree has uncommitted changes)"),
    }
}

/// Trimmed standard output of a successful command, `None` when it fails or prints nothing.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The value of the first `key: value` line of a `/proc` file.
fn proc_field(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

// ============================================================================================
// classify
// ============================================================================================

/// What one classification run measured.
struct ClassifyRun {
    /// From the child's start until the stats show the whole list.
    listed_after: Option<Duration>,
    /// From the child's start until no proxy is `fresh` any more.
    classified_after: Duration,
    /// When the service had answered half, 90 % and 99 % of the checks (from the child's start).
    checked: [Option<Duration>; 3],
    stats: PoolStats,
    cpu_secs: Option<f64>,
    peak_rss_kib: Option<u64>,
    peak_fds: usize,
    /// Rows the store holds after the shutdown: classified ones, and ones still `fresh`.
    stored: (usize, usize),
    /// Good proxies the service does not serve, and bad ones it does.
    good_not_serving: usize,
    bad_serving: usize,
    stopped: Stopped,
    log: LogSummary,
}

/// Starts the farm and the list source, then runs the service `runs` times on a fresh store.
async fn classify(binary: &Path, runs: usize) -> Result<()> {
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
fn farm_spec() -> Vec<(Behaviour, Anonymity, u64)> {
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
fn mix_count(b: Behaviour) -> usize {
    MIX_PER_20
        .iter()
        .filter(|(x, _)| *x == b)
        .map(|(_, n)| n * MIX_ROUNDS)
        .sum()
}

/// Starts the farm. Every proxy first starts listening (so no two get the same port: a refusing
/// proxy gives its port back), then the refusing ones close their listeners.
async fn start_farm(spec: &[(Behaviour, Anonymity, u64)]) -> Result<Farm> {
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
fn classify_config(port: u16, db: &Path, list_url: &str, check_url: &str) -> String {
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
async fn classify_run(
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
        let elapsed = service.started.elapsed();
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
        log: LogSummary::read(&service.log),
    })
}

/// Rows of the store at `url`: how many have been classified, how many are still `fresh`.
fn stored_tiers(url: &str) -> Result<(usize, usize)> {
    let rows = Store::open(url)?.load_proxies()?;
    let fresh = rows
        .iter()
        .filter(|r| r.tier == Tier::Fresh.as_str())
        .count();
    Ok((rows.len() - fresh, fresh))
}

/// How many good proxies `/list` leaves out, and how many bad ones it names.
async fn compare_serving(service: &Service, good: &HashSet<String>) -> Result<(usize, usize)> {
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
fn scheduled_estimate(spec: &[(Behaviour, Anonymity, u64)]) -> Duration {
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
fn classify_lower_bound() -> Duration {
    let stuck = mix_count(Behaviour::Slow) + mix_count(Behaviour::Blackhole);
    let waves = stuck.div_ceil(CHECK_CONCURRENCY) as u64;
    Duration::from_millis(waves * CHECK_TIMEOUT_MS)
}

/// Prints the `classify` section: setup, bounds, one row per run and the medians.
fn print_classify(runs: &[ClassifyRun], schedule: Duration) {
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

/// Which endpoint a load phase drives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    Health,
    Alive,
}

impl Route {
    /// The request target.
    fn path(self) -> String {
        match self {
            Route::Health => "/health".into(),
            Route::Alive => format!("/api/proxy/alive?count={ALIVE_COUNT}"),
        }
    }

    /// Checks an answer's body (once per connection and phase: parsing every answer would load
    /// the shared CPUs).
    fn verify(self, body: &[u8]) -> Result<()> {
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
struct Samples {
    latencies_us: Vec<u32>,
    elapsed: Duration,
}

impl Samples {
    fn merge(&mut self, other: Samples) {
        self.latencies_us.extend(other.latencies_us);
        self.elapsed += other.elapsed;
    }

    /// Requests per second and latency percentiles.
    fn summary(mut self) -> LoadStats {
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
struct LoadStats {
    requests: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// One run of `serve`: both endpoints.
struct ServeRun {
    health: LoadStats,
    alive: LoadStats,
}

/// Fills a store, runs the service on it and measures `runs` times.
async fn serve(binary: &Path, runs: usize) -> Result<()> {
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
    let log = LogSummary::read(&service.log);

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
fn fill_store(url: &str) -> Result<usize> {
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
fn serving_record(
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
fn serve_config(port: u16, db_url: &str) -> String {
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
async fn load(port: u16, endpoint: Route, duration: Duration) -> Result<Samples> {
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
async fn connection_loop(port: u16, endpoint: Route, deadline: Instant) -> Result<Vec<u32>> {
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
struct PoolStats {
    primary: u64,
    standby: u64,
    emergency: u64,
    fresh: u64,
    dead: u64,
    blacklisted: u64,
    total: u64,
    checks_total: u64,
    checks_passed: u64,
}

impl PoolStats {
    /// Reads the counts from a `/api/ultra/stats` body.
    fn parse(body: &[u8]) -> Result<PoolStats> {
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

    fn serving(&self) -> u64 {
        self.primary + self.standby + self.emergency
    }
}

/// How the service ended after SIGTERM.
struct Stopped {
    after: Duration,
    status: String,
}

impl Stopped {
    fn describe(&self) -> String {
        format!("{:.2} s, {}", self.after.as_secs_f64(), self.status)
    }
}

/// The `proxyvisor` binary running as a child, its output going to a log file. Killed on drop
/// if still running.
struct Service {
    child: Child,
    port: u16,
    log: PathBuf,
    started: Instant,
}

impl Service {
    /// Spawns `binary --config config` with `RUST_LOG=warn`, its output going to `log`.
    fn start(binary: &Path, config: &Path, port: u16, log: PathBuf) -> Result<Service> {
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Nothing from the environment may override the config written for the run.
        for var in [
            "PORT",
            "DATABASE_URL",
            "PROXYVISOR_CONFIG",
            "PROXYVISOR_ADMIN_TOKEN",
            "TELEGRAM_BOT_TOKEN",
            "TELEGRAM_CHAT_ID",
            "SMTP_URL",
        ] {
            command.env_remove(var);
        }
        let started = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        Ok(Service {
            child,
            port,
            log,
            started,
        })
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, Bytes)> {
        http_get(self.port, path).await
    }

    /// The counts of `/api/ultra/stats`.
    async fn stats(&self) -> Result<PoolStats> {
        let (status, body) = self.get("/api/ultra/stats").await?;
        if status != StatusCode::OK {
            return Err(format!("/api/ultra/stats answered {status}").into());
        }
        PoolStats::parse(&body)
    }

    /// Polls `/health` until it answers 200; the time since the start.
    async fn wait_healthy(&mut self) -> Result<Duration> {
        loop {
            self.ensure_running()?;
            if let Ok((StatusCode::OK, _)) = self.get("/health").await {
                return Ok(self.started.elapsed());
            }
            if self.started.elapsed() > START_DEADLINE {
                return Err(format!(
                    "/health not answering {} s after the start; log: {}",
                    START_DEADLINE.as_secs(),
                    self.log_tail()
                )
                .into());
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// An error (with the end of the log) when the process has exited.
    fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(format!(
                "the service exited early ({status}); log: {}",
                self.log_tail()
            )
            .into()),
        }
    }

    fn proc_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{name}", self.child.id()))
    }

    /// VmHWM: the peak resident set so far, in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// VmRSS: the resident set now, in KiB.
    fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, key: &str) -> Option<u64> {
        let status = std::fs::read_to_string(self.proc_path("status")).ok()?;
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// File descriptors the process has open now.
    fn open_fds(&self) -> usize {
        std::fs::read_dir(self.proc_path("fd")).map_or(0, |d| d.count())
    }

    /// User + system CPU time used so far.
    fn cpu_secs(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(self.proc_path("stat")).ok()?;
        // Fields after the `(comm)`, which may itself hold spaces; utime and stime are the
        // 14th and 15th fields of the line.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        let hz: f64 = command_output("getconf", &["CLK_TCK"])
            .and_then(|s| s.parse().ok())
            .unwrap_or(100.0);
        Some(ticks / hz)
    }

    /// Sends SIGTERM and waits for the exit (SIGKILL after `STOP_DEADLINE`).
    async fn stop(&mut self) -> Result<Stopped> {
        let pid = self.child.id().to_string();
        let asked = Instant::now();
        let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
        if !sent.success() {
            return Err(format!("kill -TERM {pid} failed ({sent})").into());
        }
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Stopped {
                    after: asked.elapsed(),
                    status: status.to_string(),
                });
            }
            if asked.elapsed() > STOP_DEADLINE {
                self.child.kill()?;
                self.child.wait()?;
                return Ok(Stopped {
                    after: asked.elapsed(),
                    status: format!(
                        "did not exit within {} s of SIGTERM, killed",
                        STOP_DEADLINE.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines of the log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        if tail.is_empty() {
            "(empty)".into()
        } else {
            format!("\n{tail}")
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What the service logged: counts per level and the most frequent messages.
struct LogSummary {
    lines: usize,
    by_level: BTreeMap<String, usize>,
    /// `(count, message with digits replaced by #)`, most frequent first.
    top: Vec<(usize, String)>,
}

impl LogSummary {
    /// Summarises the log file at `path` (empty when it cannot be read).
    fn read(path: &Path) -> LogSummary {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut by_level = BTreeMap::new();
        let mut messages: BTreeMap<String, usize> = BTreeMap::new();
        for line in text.lines() {
            // env_logger: `[2026-01-01T00:00:00Z WARN  target] message`.
            let level = line
                .strip_prefix('[')
                .and_then(|l| l.split_whitespace().nth(1))
                .filter(|l| ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(l))
                .unwrap_or("other");
            *by_level.entry(level.to_string()).or_insert(0) += 1;
            let message = line.split_once("Z ").map_or(line, |(_, m)| m);
            let normalized: String = message
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .take(200)
                .collect();
            *messages.entry(normalized).or_insert(0) += 1;
        }
        let mut top: Vec<(usize, String)> = messages.into_iter().map(|(m, n)| (n, m)).collect();
        top.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        top.truncate(5);
        LogSummary {
            lines: text.lines().count(),
            by_level,
            top,
        }
    }

    fn describe(&self) -> String {
        if self.lines == 0 {
            return "empty.".into();
        }
        let levels: Vec<String> = self
            .by_level
            .iter()
            .map(|(l, n)| format!("{n} {l}"))
            .collect();
        let noun = if self.lines == 1 { "line" } else { "lines" };
        let mut out = format!(
            "{} {noun} ({}); most frequent:",
            self.lines,
            levels.join(", ")
        );
        for (n, m) in &self.top {
            out.push_str(&format!("\n  - {n}× `{}`", m.replace('`', "'")));
        }
        out
    }
}

// ============================================================================================
// Helpers
// ============================================================================================

/// One GET on a new connection to the service.
async fn http_get(port: u16, path: &str) -> Result<(StatusCode, Bytes)> {
    let exchange = async {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let response = sender.send_request(get_request(port, path)?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, Error>((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("GET {path}: no answer within {REQUEST_TIMEOUT:?}"))?
}

/// `GET path` for the service on `port`.
fn get_request(port: u16, path: &str) -> Result<Request<Empty<Bytes>>> {
    Ok(Request::get(path)
        .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
        .body(Empty::new())?)
}

/// A free port on 127.0.0.1 that is none of `avoid` (the farm's, whose refusing proxies have
/// given theirs back).
fn free_port(avoid: &HashSet<u16>) -> Result<u16> {
    for _ in 0..100 {
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        if !avoid.contains(&port) {
            return Ok(port);
        }
    }
    Err("no free port on 127.0.0.1".into())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn create(label: &str) -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!(
            "proxyvisor-bench-{label}-{}-{}",
            std::process::id(),
            now_ms()
        ));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median (NaN when empty).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// KiB as `123.4 MiB`.
fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
