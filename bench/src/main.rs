//! `proxyvisor-bench <classify|round|serve|monitors|gateway|cluster|all> [--runs N]`: measures the `proxyvisor` service binary on
//! loopback and prints the results as Markdown, for the README.
//!
//! * `classify` starts a farm of 5,000 HTTP proxies of mixed behaviour in this process (the test
//!   farm of `tests/support`), serves their list from a loopback source, runs the service on it
//!   and times how long it takes until every proxy has been classified.
//! * `round` does the same with the list of issue 14 (a fifth good, half refused, 750 that can
//!   only time out; timeout 3 s, concurrency 500), measuring its round against both bounds and
//!   the serving latency while it runs.
//! * `serve` fills a SQLite store with 10,000 serving proxies, runs the service on it and drives
//!   `/health` and `/api/proxy/alive?count=100` over keep-alive HTTP/1.1 connections, in
//!   alternating phases.
//! * `monitors` watches 2,000 services at a 1 s interval (see `bench/monitors.rs`): CPU, memory
//!   and the detection latency from a crash to the state change.
//! * `gateway` puts the forward-proxy gateway in front of tinyproxy and compares it with
//!   tinyproxy reached directly (see `bench/gateway.rs`): added latency, tunnel throughput,
//!   memory per idle tunnel, requests/s.
//! * `cluster` runs three instances on one PostgreSQL database (`BENCH_DATABASE_URL` or
//!   `TEST_DATABASE_URL` names the server; not part of `all`) and kills the leader again and
//!   again: the handover time.
//!
//! The service runs as a child process: the `proxyvisor` binary beside this one, so build both
//! (`cargo build --release -p proxyvisor -p proxyvisor-bench`). Nothing leaves 127.0.0.1.

mod classify;
mod cluster;
mod gateway;
mod machine;
mod monitors;
mod report;
mod serve;
mod service;

use classify::*;
use machine::*;
use report::*;
use serve::*;
use service::*;

use bytes::Bytes;
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
use proxyvisor_testkit::farm::{Anonymity, Behaviour, Farm, ORIGIN_BODY};
use proxyvisor_testkit::source::SourceServer;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = Error> = std::result::Result<T, E>;

const DEFAULT_RUNS: u64 = 3;

/// Any single request to the service must answer within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the service gets to start listening.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long the service gets to exit after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    // A usage error exits 2 with clap's message.
    let args = <Args as clap::Parser>::parse();
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

/// What to measure.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Classify,
    Round,
    Cluster,
    Serve,
    Monitors,
    Gateway,
    All,
}

/// Measures the `proxyvisor` service binary on loopback and prints the results as Markdown.
#[derive(clap::Parser)]
struct Args {
    /// What to measure.
    #[arg(value_enum)]
    part: Part,
    /// Runs of each measurement (the results give the median).
    #[arg(long, default_value_t = DEFAULT_RUNS, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
}

/// Prints the machine facts, then runs the parts asked for.
async fn run(args: Args) -> Result<()> {
    let binary = service_binary()?;
    let runs = args.runs as usize;
    print_machine_facts(&binary, runs);
    if matches!(args.part, Part::Classify | Part::All) {
        classify(&binary, runs, &CLASSIFY).await?;
    }
    if matches!(args.part, Part::Round | Part::All) {
        classify(&binary, runs, &ROUND).await?;
    }
    if matches!(args.part, Part::Serve | Part::All) {
        serve(&binary, runs).await?;
    }
    if matches!(args.part, Part::Monitors | Part::All) {
        monitors::bench(&binary, runs).await?;
    }
    if matches!(args.part, Part::Gateway | Part::All) {
        gateway::bench(&binary, runs).await?;
    }
    // Needs a PostgreSQL server: not part of `all`.
    if args.part == Part::Cluster {
        cluster::bench(&binary, runs.max(cluster::KILLS)).await?;
    }
    Ok(())
}
