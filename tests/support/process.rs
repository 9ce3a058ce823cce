//! The real `proxyvisor` binary as a child process, on a port chosen here, with its config file
//! and log in a temporary folder: for what only a process can show (signals, `kill -9`, the log).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub struct ServiceProcess {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_proxyvisor"))
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", log_level)
            .env_remove("DATABASE_URL")
            .env_remove("PORT")
            .env_remove("PROXYVISOR_ADMIN_TOKEN")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut p = ServiceProcess { port, child, dir };
        let client = super::app::http_client();
        let health = p.url("/health");
        super::wait::until("the service to answer", Duration::from_secs(30), || {
            let exited = p.child.try_wait().unwrap();
            assert!(exited.is_none(), "the service exited: {}", p.log());
            let (client, health) = (client.clone(), health.clone());
            async move {
                client
                    .get(&health)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status() == 200)
            }
        })
        .await;
        p
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill {sig} failed");
    }

    /// SIGTERM, then waits for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM");
        self.wait_exit().await
    }

    /// SIGKILL: no chance to write anything.
    pub async fn kill9(&mut self) -> ExitStatus {
        self.signal("-KILL");
        self.wait_exit().await
    }

    pub async fn wait_exit(&mut self) -> ExitStatus {
        let child = &mut self.child;
        super::wait::until("the service to exit", Duration::from_secs(30), || {
            let exited = child.try_wait().unwrap();
            async move { exited }
        })
        .await
    }

    /// What the service logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
