//! `proxyvisor [--config FILE]`: reads the config and runs the application until SIGINT/SIGTERM.

use proxyvisor::config::Config;
use proxyvisor::startup::{Application, StartError};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: proxyvisor [--config FILE]   (or PROXYVISOR_CONFIG=FILE)";

fn config_path() -> Result<Option<PathBuf>, String> {
    let mut args = std::env::args().skip(1);
    let mut path = proxyvisor::env::string("PROXYVISOR_CONFIG").map(PathBuf::from);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => match args.next() {
                Some(p) => path = Some(PathBuf::from(p)),
                None => return Err("--config needs a file".into()),
            },
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => match other.strip_prefix("--config=") {
                Some(p) => path = Some(PathBuf::from(p)),
                None => return Err(format!("unknown argument `{other}`\n{USAGE}")),
            },
        }
    }
    Ok(path)
}

fn main() -> ExitCode {
    // env_logger on stderr as always (RUST_LOG, default info), and the last records in memory
    // for `GET /api/logs`.
    proxyvisor::logbuf::init_main();
    let config =
        match config_path().and_then(|p| Config::load(p.as_deref()).map_err(|e| e.to_string())) {
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
