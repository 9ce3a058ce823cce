//! The real `proxyvisor` binary as a child process (the testkit's `Process`), on a port chosen
//! here, with its config file and log in a temporary folder: for what only a process can show
//! (signals, `kill -9`, the log).

pub use proxyvisor_testkit::process::free_port;
use proxyvisor_testkit::process::Process;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

pub struct ServiceProcess {
    pub port: u16,
    process: Process,
    dir: tempfile::TempDir,
}

impl ServiceProcess {
    /// Starts the binary with `config` (TOML without a `[server]` table: one is added with the
    /// port and `extra_server` lines) and `RUST_LOG=log_level`; waits until `/health` answers.
    pub async fn start(config: &str, extra_server: &str, log_level: &str) -> ServiceProcess {
        Self::start_on(free_port(), config, extra_server, log_level).await
    }

    /// `start` on a given port (to start again where a killed one ran).
    pub async fn start_on(
        port: u16,
        config: &str,
        extra_server: &str,
        log_level: &str,
    ) -> ServiceProcess {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxyvisor.toml");
        std::fs::write(
            &path,
            format!("{config}\n[server]\nbind = \"127.0.0.1:{port}\"\n{extra_server}\n"),
        )
        .unwrap();
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_proxyvisor"));
        let log = dir.path().join("stderr.log");
        let mut process = Process::start(&binary, &path, port, log, log_level).unwrap();
        if let Err(e) = process.wait_healthy(Duration::from_secs(30)).await {
            panic!("the service did not come up: {e}");
        }
        ServiceProcess { port, process, dir }
    }

    pub fn url(&self, path: &str) -> String {
        self.process.url(path)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// SIGTERM, then waits for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.process.signal("-TERM").unwrap();
        self.wait_exit().await
    }

    /// SIGKILL: no chance to write anything.
    pub async fn kill9(&mut self) -> ExitStatus {
        self.process.signal("-KILL").unwrap();
        self.wait_exit().await
    }

    pub async fn wait_exit(&mut self) -> ExitStatus {
        self.process
            .wait_exit(Duration::from_secs(30))
            .await
            .expect("the service exits")
    }

    /// What the service logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn log_path(&self) -> PathBuf {
        self.process.log_path().to_path_buf()
    }
}
