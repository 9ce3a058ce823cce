//! Tools from outside the Rust toolchain that some tests drive (Schemathesis, Chromium and
//! ChromeDriver). `.ci/run` installs them and sets `PROXYVISOR_REQUIRE_TOOLS=1`, so in CI a
//! missing tool fails its test; elsewhere the test is skipped with a printed notice.

use std::path::PathBuf;

/// The path of `name` on `PATH`, or `None` after printing why `test` is skipped (a panic when
/// `PROXYVISOR_REQUIRE_TOOLS` is set).
pub fn find(name: &str, test: &str, install: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let required = std::env::var_os("PROXYVISOR_REQUIRE_TOOLS").is_some_and(|v| v == "1");
        assert!(
            !required,
            "{test}: `{name}` is not installed ({install}), and PROXYVISOR_REQUIRE_TOOLS=1"
        );
        eprintln!("NOTICE: {test} skipped: `{name}` is not installed ({install})");
    }
    found
}
