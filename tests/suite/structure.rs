//! The house's floors, checked on every run: dependencies point one way, from `startup` down to
//! `domain`, and nothing imports in a circle. Read from the `crate::` and `super::` paths of
//! every file in `src/` (a `use` line or a path in the code), so an import that points up a
//! floor, or a circle, fails here with the files that make it.
//!
//! The floors, lowest first (a file may use its own floor's other modules and any lower floor):
//! `domain` (imports nothing of the crate), and beside it the tools that import nothing either
//! (`clock`, `env`, `redact`); `bus`; the shell's parts (`store`, `published`, `config`,
//! `channels`, `checker`, `net`, `geoip`, `logbuf`, `repair`); `state`; `actors`; `api` and
//! `gateway` (the serving paths, apart);
//! `startup` (imported by nobody).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const FLOORS: &[(&str, &[&str])] = &[
    ("domain", &["domain"]),
    ("tools", &["clock", "env", "redact"]),
    ("bus", &["bus"]),
    (
        "shell parts",
        &[
            "store",
            "published",
            "config",
            "channels",
            "checker",
            "net",
            "geoip",
            "logbuf",
            "repair",
        ],
    ),
    ("state", &["state"]),
    ("actors", &["actors"]),
    ("api", &["api", "gateway"]),
    ("startup", &["startup"]),
];

fn floor_of(module: &str) -> Option<usize> {
    let n = FLOORS.iter().position(|(_, ms)| ms.contains(&module))?;
    // domain and the tools are one floor: neither imports the other (checked below).
    Some(if n == 0 { 0 } else { n - 1 })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/domain/alerts/fold.rs` → `["domain", "alerts", "fold"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The code without comments and string literals (a path in a doc line is no import).
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut in_str = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Every module path a file names: `crate::a::b` and `super::x` (resolved against the file's
/// own module), as module paths from the crate root.
fn imports(module: &[String], is_mod_rs: bool, code: &str) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.contains("::"))
        .collect();
    for w in words {
        let segs: Vec<&str> = w.split("::").filter(|s| !s.is_empty()).collect();
        let (base, rest): (Vec<String>, &[&str]) = match segs.first() {
            Some(&"crate") => (Vec::new(), &segs[1..]),
            Some(&"super") => {
                // In `a/b.rs` (module a::b) `super` is `a`; in `a/b/mod.rs` too `super` is `a`.
                let mut base = module.to_vec();
                let _ = is_mod_rs;
                base.pop();
                let mut rest = &segs[1..];
                while rest.first() == Some(&"super") {
                    base.pop();
                    rest = &rest[1..];
                }
                (base, rest)
            }
            _ => continue,
        };
        let mut path = base;
        // Only lower-case segments name modules (`crate::domain::proxy::Endpoint` → module
        // `domain::proxy`).
        for s in rest {
            if s.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                path.push(s.to_string());
            } else {
                break;
            }
        }
        if !path.is_empty() {
            found.insert(path);
        }
    }
    found
}

#[test]
fn dependencies_point_down_the_floors_and_nothing_imports_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.retain(|f| !f.starts_with(src.join("bin")) && f.file_name().unwrap() != "main.rs");
    files.sort();
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .filter(|f| f.file_name().unwrap() != "lib.rs")
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    // The file a path lands in: the longest module prefix that is a file.
    let file_of = |path: &[String]| -> Option<Vec<String>> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| modules.contains_key(p))
    };
    let mut wrong = Vec::new();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let is_mod_rs = file.file_name().unwrap() == "mod.rs";
        let top = &module[0];
        let Some(my_floor) = floor_of(top) else {
            wrong.push(format!("{}: module `{top}` is on no floor", file.display()));
            continue;
        };
        for target in imports(module, is_mod_rs, &code_of(&text)) {
            let their = &target[0];
            if their == top {
                if let Some(f) = file_of(&target).filter(|f| f != module) {
                    edges.entry(module.clone()).or_default().insert(f);
                }
                continue;
            }
            let Some(their_floor) = floor_of(their) else {
                continue; // not a module of the crate (a local `crate` variable, say)
            };
            let pure = ["domain", "clock", "env", "redact"];
            if pure.contains(&top.as_str()) {
                wrong.push(format!(
                    "{}: `{top}` imports nothing of the crate, but names `{}`",
                    file.display(),
                    target.join("::")
                ));
            } else if their_floor > my_floor || their == "startup" {
                wrong.push(format!(
                    "{}: imports `{}`, a floor up ({} → {})",
                    file.display(),
                    target.join("::"),
                    FLOORS[my_floor + 1].0,
                    FLOORS[their_floor + 1].0,
                ));
            }
            // Peers on one floor: the module graph below must have no circle.
            if let Some(f) = file_of(&target) {
                edges.entry(module.clone()).or_default().insert(f);
            }
        }
    }
    // Circles, file by file (Tarjan would do; a DFS with colours is enough here).
    fn visit(
        n: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
        circles: &mut Vec<String>,
    ) {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                0 => visit(m, edges, state, stack, circles),
                1 => {
                    let at = stack.iter().position(|x| x == m).unwrap();
                    let circle: Vec<String> = stack[at..]
                        .iter()
                        .chain(std::iter::once(m))
                        .map(|x| x.join("::"))
                        .collect();
                    circles.push(circle.join(" → "));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
    }
    let mut state = BTreeMap::new();
    let mut circles = Vec::new();
    for n in modules.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            visit(n, &edges, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    for c in circles {
        wrong.push(format!("a circle: {c}"));
    }
    assert!(
        wrong.is_empty(),
        "the house has {} wrong turns:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(modules.len() > 60, "only {} files read", modules.len());
}

#[test]
fn no_source_file_is_over_800_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 800).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split by meaning: {long:?}");
}
