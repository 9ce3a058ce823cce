//! Typed access to environment variables: unset and empty are the same, and a value that does
//! not parse is an error naming the variable.

use std::str::FromStr;

/// The variable's value, `None` when unset or empty.
pub fn string(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The variable parsed as `T`; `Ok(None)` when unset.
pub fn parsed<T: FromStr>(name: &str) -> Result<Option<T>, String> {
    match string(name) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            format!(
                "has a bad value `{}`",
                v.chars().take(32).collect::<String>()
            )
        }),
    }
}
