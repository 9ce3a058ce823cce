//! `proxyvisor [--config FILE]`: reads the config and runs the application until SIGINT/SIGTERM.

use clap::Parser;
use proxyvisor::config::Config;
use proxyvisor::startup::{Application, StartError};
use std::path::PathBuf;
use std::process::ExitCode;

/// Keeps a ready pool of working proxies and keeps hosted services up.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The TOML config file (every key optional; without one, the defaults).
    #[arg(short, long, env = "PROXYVISOR_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    // A usage error exits 2 with clap's message; --help and --version exit 0.
    let cli = Cli::parse();
    // env_logger on stderr as always (RUST_LOG, default info), and the last records in memory
    // for `GET /api/logs`.
    proxyvisor::logbuf::init_main();
    let config = match Config::load(cli.config.as_deref()).map_err(|e| e.to_string()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("proxyvisor: {e}");
            return ExitCode::from(2);
        }
    };
    let result = actix_rt::System::new().block_on(async move {
        let app = Application::build(config).await.map_err(|e| {
            let code = match e {
                StartError::Config(_) => 2,
                _ => 1,
            };
            (code, e.to_string())
        })?;
        app.run_until_stopped()
            .await
            .map_err(|e| (1, e.to_string()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            eprintln!("proxyvisor: {e}");
            ExitCode::from(code)
        }
    }
}
