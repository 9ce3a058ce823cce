//! The binary's start-up: a bad config stops it with one clear line and exit code 2.

use std::process::Command;

fn run_with_config(text: Option<&str>) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxyvisor.toml");
    if let Some(text) = text {
        std::fs::write(&path, text).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_proxyvisor"))
        .arg("--config")
        .arg(&path)
        .env_remove("DATABASE_URL")
        .env_remove("PORT")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_keys_bad_values_and_missing_files_exit_2_naming_the_culprit() {
    let cases = [
        (Some("[tiers]\nprimary_targett = 5\n"), "primary_targett"),
        (
            Some("[validation]\nconcurrency = \"lots\"\n"),
            "concurrency",
        ),
        (
            Some("[validation]\nconcurrency = 0\n"),
            "validation.concurrency",
        ),
        (Some("[database]\nurl = \"mysql://x\"\n"), "database.url"),
        (Some("[server]\nbind = \"not an address\"\n"), "server.bind"),
        (Some("[[sources]]\nname = \"a\"\nkind = \"plain\"\n"), "url"),
        (Some("this is not toml ]]]"), "proxyvisor.toml"),
        (None, "proxyvisor.toml"),
    ];
    for (text, culprit) in cases {
        let (code, stderr) = run_with_config(text);
        assert_eq!(code, Some(2), "{text:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{text:?}: one line expected, got {stderr}");
        assert!(lines[0].contains(culprit), "{text:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_bad_port_variable_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_proxyvisor"))
        .env("PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PORT"));
}

/// With no admin token configured, one is generated at first start into `admin_token` beside
/// the SQLite file (mode 0600), used by every admin endpoint, never logged, and kept across
/// restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_admin_token_is_stored_0600_and_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "sources = []\n[database]\nurl = \"sqlite://{}/pv.db\"\n",
        dir.path().display()
    );
    let mut svc = crate::support::process::ServiceProcess::start(&config, "", "info").await;
    let path = dir.path().join("admin_token");
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(token.len() >= 32, "{token}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let client = crate::support::app::http_client();
    let alert = svc.url("/api/admin/alerts/test");
    let without = client.post(&alert).send().await.unwrap();
    assert_eq!(without.status(), 401);
    let with = client
        .post(&alert)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), 202);
    assert_eq!(svc.terminate().await.code(), Some(0));
    let log = svc.log();
    assert!(log.contains("admin_token"), "its location is logged: {log}");
    assert!(!log.contains(&token), "the token itself is not");
    // A second start reads the same token.
    let svc = crate::support::process::ServiceProcess::start(&config, "", "info").await;
    let again = client
        .post(svc.url("/api/admin/alerts/test"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
}

/// SQLite serves one instance: a second process on the same file stops at once with one line
/// naming the file (exit 1), and the first goes on serving; once the first has stopped, the
/// file can be opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pv.db");
    let config = format!(
        "sources = []\n[database]\nurl = \"sqlite://{}\"\n",
        db.display()
    );
    let mut first = crate::support::process::ServiceProcess::start(&config, "", "info").await;
    let second = format!(
        "{config}[server]\nbind = \"127.0.0.1:{}\"\n",
        crate::support::process::free_port()
    );
    let path = dir.path().join("second.toml");
    std::fs::write(&path, second).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_proxyvisor"))
        .arg("--config")
        .arg(&path)
        .env_remove("DATABASE_URL")
        .env_remove("PORT")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It must stop by itself; one that started serving is killed and the test fails.
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut stderr).ok();
    }
    let code = status.map(|s| s.code());
    assert_eq!(
        code,
        Some(Some(1)),
        "the second process did not refuse: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let refusal: Vec<&&str> = (lines.iter())
        .filter(|l| l.contains("in use by another proxyvisor process"))
        .collect();
    assert_eq!(refusal.len(), 1, "{stderr}");
    assert!(refusal[0].contains(&db.display().to_string()), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let client = crate::support::app::http_client();
    let health = client.get(first.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(first.terminate().await.success());
    let mut again = crate::support::process::ServiceProcess::start(&config, "", "info").await;
    assert!(again.terminate().await.success());
}
