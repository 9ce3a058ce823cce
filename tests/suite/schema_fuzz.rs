//! The contract, checked by a tool nobody on this team wrote: Schemathesis (pinned in
//! `.ci/run`) reads `/api/openapi.json` from the real binary, running on loopback with a small
//! world (a farm of proxies behind a source, a paid proxy, a watched service, Telegram), and
//! tries every operation, the admin ones with the token, with all its default checks: no 5xx,
//! status codes, content types, headers and bodies as the document says, schema-valid data
//! accepted and schema-violating data refused, auth that is not ignored. The hooks in
//! `tests/schemathesis/hooks.py` keep every URL it makes up on loopback.

use crate::support::process::ServiceProcess;
use crate::support::tools;
use crate::support::wait;
use std::time::Duration;

const ADMIN: &str = "schemathesis-admin-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_wrong_with_any_operation() {
    let Some(st) = tools::find(
        "st",
        "schemathesis_finds_nothing_wrong_with_any_operation",
        "pip install schemathesis==4.32.5",
    ) else {
        return;
    };
    let world = crate::World::start().await;
    let (farm, source) = (&world.farm, &world.source);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("proxyvisor.db");
    let config = format!(
        r#"
[database]
url = "sqlite://{db}"
flush_interval_ms = 200

[[sources]]
name = "farm"
kind = "plain"
url = "{list}"
interval_secs = 3600

[validation]
check_url = "{check}"
expect_status = 200
judge_url = "{judge}"
timeout_ms = 1000
revalidate_interval_secs = 2

[[validation.profiles]]
name = "shop"
check_url = "{check}"
expect_status = 200

[tiers]
primary_target = 2
minimum_guaranteed = 1

[resurrection]
delays_secs = [1, 2, 3600]
{tables}
"#,
        db = db.display(),
        list = source.url("/list.txt"),
        check = farm.origin.url("/ok"),
        judge = farm.origin.url("/judge.json"),
        tables = world.tables(2),
    );
    let mut app =
        ServiceProcess::start(&config, &format!("admin_token = \"{ADMIN}\""), "info").await;
    let client = crate::support::app::http_client();
    wait::until("the farm to serve", Duration::from_secs(20), || async {
        let list = client
            .get(app.url("/list"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (list.lines().count() >= 3).then_some(())
    })
    .await;

    // Two runs: every operation but the actor restart, then the actor restart alone. A restart
    // makes requests to that actor answer 503 for a moment, by design; in one run the other
    // operations' `not_a_server_error` check would report those.
    for only in [None, Some("restart_actor")] {
        schemathesis(&st, &app, only).await;
    }
    // The service lived through it, and no actor panicked.
    let health = client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let log = app.log();
    assert!(!log.contains("panicked"), "a panic in the log:\n{log}");
    let status = app.terminate().await;
    assert!(status.success(), "{status:?}");
}

/// One Schemathesis run over every operation (but `restart_actor`), or over `only`.
async fn schemathesis(st: &std::path::Path, app: &ServiceProcess, only: Option<&str>) {
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis");
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let work = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(st);
    command
        .current_dir(work.path())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", hooks)
        .args(["run", &app.url("/api/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {ADMIN}")])
        .args(["--max-examples", "30", "--seed", &seed])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "10"])
        // One worker: the machine has two cores and other tests run beside this one.
        .args(["--workers", "1"]);
    match only {
        None => command.args(["--exclude-operation-id", "restart_actor"]),
        // Alone, it has no link to follow: no stateful phase.
        Some(id) => command
            .args(["--include-operation-id", id])
            .args(["--phases", "examples,coverage,fuzzing"]),
    };
    let output = command.output().await.expect("st runs");
    let report = String::from_utf8_lossy(&output.stdout);
    eprintln!("{report}");
    assert!(
        output.status.success(),
        "Schemathesis found something ({}, seed {seed}); its report is above. stderr: {}",
        only.unwrap_or("every other operation"),
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: serde_json::Value = crate::support::app::http_client()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().keys())
        .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
        .count();
    // Schemathesis leaves out the operation that serves the document it reads.
    let operations = operations - 1;
    let selected = if only.is_some() { 1 } else { operations - 1 };
    assert!(
        report.contains(&format!("Selected: {selected}/{operations}")),
        "not every operation was tried ({selected} of {operations} expected): {report}"
    );
}
