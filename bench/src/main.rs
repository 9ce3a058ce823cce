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
//! (`cargo build --release -p proxyvisor -p proxyvisor-bench`). Nothing leaves 127.0.0.1.

mod classify;
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
