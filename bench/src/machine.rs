//! What the machine and the build are: printed with every result.

use super::*;

/// The `proxyvisor` binary built beside this one.
pub(crate) fn service_binary() -> Result<PathBuf> {
    let binary = std::env::current_exe()?.with_file_name("proxyvisor");
    if !binary.is_file() {
        return Err(format!(
            "{} is missing; build it first: cargo build --release -p proxyvisor -p \
             proxyvisor-bench",
            binary.display()
        )
        .into());
    }
    Ok(binary)
}

/// When the service binary was built, and whether a source of the service (anything of the
/// crate but this bench) has changed since: the numbers would then be of older code.
pub(crate) fn binary_freshness(binary: &Path) -> String {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return "build time unknown".into();
    };
    // The service's crate: the workspace root, one above this crate.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let mut newer = Vec::new();
    let mut pending = vec![root.join("src"), root.join("migrations")];
    let mut files = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for f in files {
        if std::fs::metadata(&f)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t > built)
        {
            newer.push(f.strip_prefix(root).unwrap_or(&f).display().to_string());
        }
    }
    let when = rfc3339(
        built
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    );
    if newer.is_empty() {
        format!("built {when}, no service source changed since")
    } else {
        newer.sort();
        eprintln!(
            "warning: {} changed after {} was built; rebuild with cargo build --release -p \
             proxyvisor",
            newer.join(", "),
            binary.display()
        );
        format!("built {when}; **changed since**: {}", newer.join(", "))
    }
}

// ============================================================================================
// Machine facts
// ============================================================================================

/// The header of the report: when, what, on which machine.
pub(crate) fn print_machine_facts(binary: &Path, runs: usize) {
    let argv: Vec<String> = std::env::args().collect();
    let program = argv
        .first()
        .map(|p| {
            Path::new(p)
                .file_name()
                .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "proxyvisor-bench".into());
    let command = std::iter::once(program)
        .chain(argv.iter().skip(1).cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let cpus = command_output("nproc", &[]).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    });
    let cpu_model = proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "?".into());
    let memory = proc_field("/proc/meminfo", "MemTotal").unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let open_files = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .map(|l| l.split_whitespace().nth(3).unwrap_or("?").to_string())
        })
        .unwrap_or_else(|| "?".into());
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into());
    println!("# proxyvisor benchmarks\n");
    println!("| | |\n|---|---|");
    println!("| date (UTC) | {} |", rfc3339(now_ms()));
    println!("| command | `{command}` (runs = {runs}) |");
    println!("| git commit | {} |", git_commit());
    println!("| nproc | {cpus} ({cpu_model}) |");
    println!("| memory | {memory} |");
    println!("| kernel | {kernel} |");
    println!("| open files limit (soft) | {open_files} |");
    println!("| load average at start | {loadavg} |");
    println!(
        "| service binary | `{}` ({}) |",
        binary.display(),
        binary_freshness(binary)
    );
    println!();
    println!(
        "Load generator, farm and service share the same machine: every number below includes \
         that contention.\n"
    );
}

/// `d1f1c74`, marked when the working tree differs from it.
pub(crate) fn git_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let Some(commit) = command_output("git", &["-C", dir, "rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git checkout)".into();
    };
    match command_output(
        "git",
        &["-C", dir, "status", "--porcelain", "--untracked-files=no"],
    ) {
        None => format!("{commit} (working tree clean)"),
        Some(_) => format!("{commit} (working tree has uncommitted changes)"),
    }
}

/// Trimmed standard output of a successful command, `None` when it fails or prints nothing.
pub(crate) fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The value of the first `key: value` line of a `/proc` file.
pub(crate) fn proc_field(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

// ============================================================================================
// classify
// ============================================================================================
