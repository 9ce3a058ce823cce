//! The service as the bench runs it: the testkit's child process, its HTTP answers and its log.

use super::*;
use proxyvisor_testkit::process::Process;

/// How the service ended after SIGTERM.
pub(crate) struct Stopped {
    pub(crate) after: Duration,
    pub(crate) status: String,
}

impl Stopped {
    pub(crate) fn describe(&self) -> String {
        format!("{:.2} s, {}", self.after.as_secs_f64(), self.status)
    }
}

/// The `proxyvisor` binary as the testkit runs it (a child, its output in a log file, killed on
/// drop if still running), with what the bench asks of it.
pub(crate) struct Service {
    process: Process,
    pub(crate) port: u16,
}

impl Service {
    /// Spawns `binary --config config` with `RUST_LOG=warn`, its output going to `log`.
    pub(crate) fn start(binary: &Path, config: &Path, port: u16, log: PathBuf) -> Result<Service> {
        Self::start_logging(binary, config, port, log, "warn")
    }

    /// `start` with this `RUST_LOG`.
    pub(crate) fn start_logging(
        binary: &Path,
        config: &Path,
        port: u16,
        log: PathBuf,
        rust_log: &str,
    ) -> Result<Service> {
        let process = Process::start(binary, config, port, log, rust_log)?;
        Ok(Service { process, port })
    }

    pub(crate) async fn get(&self, path: &str) -> Result<(StatusCode, Bytes)> {
        http_get(self.port, path).await
    }

    /// The counts of `/api/ultra/stats`.
    pub(crate) async fn stats(&self) -> Result<PoolStats> {
        let (status, body) = self.get("/api/ultra/stats").await?;
        if status != StatusCode::OK {
            return Err(format!("/api/ultra/stats answered {status}").into());
        }
        PoolStats::parse(&body)
    }

    /// Polls `/health` until it answers 200; the time since the start.
    pub(crate) async fn wait_healthy(&mut self) -> Result<Duration> {
        Ok(self.process.wait_healthy(START_DEADLINE).await?)
    }

    /// An error (with the end of the log) when the process has exited.
    pub(crate) fn ensure_running(&mut self) -> Result<()> {
        Ok(self.process.ensure_running()?)
    }

    pub(crate) fn peak_rss_kib(&self) -> Option<u64> {
        self.process.peak_rss_kib()
    }

    pub(crate) fn rss_kib(&self) -> Option<u64> {
        self.process.rss_kib()
    }

    pub(crate) fn open_fds(&self) -> usize {
        self.process.open_fds()
    }

    pub(crate) fn cpu_secs(&self) -> Option<f64> {
        self.process.cpu_secs()
    }

    /// SIGKILL: no chance to say anything.
    pub(crate) fn kill(&mut self) -> Result<()> {
        Ok(self.process.signal("-KILL")?)
    }

    /// Sends SIGTERM and waits for the exit (SIGKILL after `STOP_DEADLINE`).
    pub(crate) async fn stop(&mut self) -> Result<Stopped> {
        let asked = Instant::now();
        self.process.signal("-TERM")?;
        let status = match self.process.wait_exit(STOP_DEADLINE).await {
            Ok(status) => status.to_string(),
            Err(e) => e,
        };
        Ok(Stopped {
            after: asked.elapsed(),
            status,
        })
    }

    /// Time since the start.
    pub(crate) fn uptime(&self) -> Duration {
        self.process.uptime()
    }

    pub(crate) fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The last lines of the log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

/// What the service logged: counts per level and the most frequent messages.
pub(crate) struct LogSummary {
    pub(crate) lines: usize,
    pub(crate) by_level: BTreeMap<String, usize>,
    /// `(count, message with digits replaced by #)`, most frequent first.
    pub(crate) top: Vec<(usize, String)>,
}

impl LogSummary {
    /// Summarises the log file at `path` (empty when it cannot be read).
    pub(crate) fn read(path: &Path) -> LogSummary {
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

    pub(crate) fn describe(&self) -> String {
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
pub(crate) async fn http_get(port: u16, path: &str) -> Result<(StatusCode, Bytes)> {
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
pub(crate) fn get_request(port: u16, path: &str) -> Result<Request<Empty<Bytes>>> {
    Ok(Request::get(path)
        .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
        .body(Empty::new())?)
}

/// A free port on 127.0.0.1 that is none of `avoid` (the farm's, whose refusing proxies have
/// given theirs back).
pub(crate) fn free_port(avoid: &HashSet<u16>) -> Result<u16> {
    // The ports tried stay bound until one is found, so the kernel offers a new one each time
    // (the refusing proxies of a farm gave back a block of ports it would offer again).
    let mut tried = Vec::new();
    for _ in 0..=avoid.len() + 100 {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        if !avoid.contains(&port) {
            return Ok(port);
        }
        tried.push(listener);
    }
    Err("no free port on 127.0.0.1".into())
}

/// A TOML basic string.
pub(crate) fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A directory under the system's temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn create(label: &str) -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!(
            "proxyvisor-bench-{label}-{}-{}",
            std::process::id(),
            now_ms()
        ));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TempDir(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
