//! The `proxyvisor` binary as a child process, for what only a process can show (signals,
//! `kill -9`, the log, its memory and CPU): started with a config file, its output in a log
//! file, nothing of the environment overriding that config, killed on drop if still running.
//! Used by the integration tests and the bench.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Variables that would override a config written for a run.
const OVERRIDES: [&str; 7] = [
    "PORT",
    "DATABASE_URL",
    "PROXYVISOR_CONFIG",
    "PROXYVISOR_ADMIN_TOKEN",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_CHAT_ID",
    "SMTP_URL",
];

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

pub struct Process {
    child: Child,
    pub port: u16,
    log: PathBuf,
    started: Instant,
}

impl Process {
    /// Spawns `binary --config config` with `RUST_LOG=log_level`, its output going to `log`;
    /// it is to listen on `port`.
    pub fn start(
        binary: &Path,
        config: &Path,
        port: u16,
        log: PathBuf,
        log_level: &str,
    ) -> Result<Process, String> {
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        // In its config's folder: what it keeps beside itself (`data/`) stays there. Paths
        // are made absolute first, as they would otherwise be read from that folder.
        let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let (binary, config) = (absolute(binary), absolute(config));
        let mut command = Command::new(&binary);
        if let Some(dir) = config.parent() {
            command.current_dir(dir);
        }
        command
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", log_level)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for var in OVERRIDES {
            command.env_remove(var);
        }
        let started = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        Ok(Process {
            child,
            port,
            log,
            started,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time since it was spawned.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Polls `GET /health` until it answers 200 (within `deadline`); the time since the start.
    pub async fn wait_healthy(&mut self, deadline: Duration) -> Result<Duration, String> {
        loop {
            self.ensure_running()?;
            if health_ok(self.port).await {
                return Ok(self.started.elapsed());
            }
            if self.started.elapsed() > deadline {
                return Err(format!(
                    "/health not answering {} s after the start; log: {}",
                    deadline.as_secs(),
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An error (with the end of the log) when the process has exited.
    pub fn ensure_running(&mut self) -> Result<(), String> {
        match self.child.try_wait().map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(status) => Err(format!(
                "the service exited early ({status}); log: {}",
                self.log_tail()
            )),
        }
    }

    /// Its exit status, when it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends a signal (`-TERM`, `-KILL`, ...).
    pub fn signal(&self, sig: &str) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([sig, &pid])
            .status()
            .map_err(|e| e.to_string())?;
        if sent.success() {
            Ok(())
        } else {
            Err(format!("kill {sig} {pid} failed ({sent})"))
        }
    }

    /// Waits for the exit; after `deadline`, kills it and says so.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Result<ExitStatus, String> {
        let asked = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            if asked.elapsed() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!(
                    "did not exit within {} s, killed",
                    deadline.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn proc_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{name}", self.child.id()))
    }

    /// VmHWM: the peak resident set so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// VmRSS: the resident set now, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, key: &str) -> Option<u64> {
        let status = std::fs::read_to_string(self.proc_path("status")).ok()?;
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// File descriptors the process has open now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(self.proc_path("fd")).map_or(0, |d| d.count())
    }

    /// User + system CPU time used so far.
    pub fn cpu_secs(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(self.proc_path("stat")).ok()?;
        // Fields after the `(comm)`, which may itself hold spaces; utime and stime are the
        // 14th and 15th fields of the line.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        let hz: f64 = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0);
        Some(ticks / hz)
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        if tail.is_empty() {
            "(empty)".into()
        } else {
            format!("\n{tail}")
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One `GET /health` on a fresh connection: answered 200?
async fn health_ok(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
