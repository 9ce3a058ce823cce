//! What the integration tests (`tests/support`) and the bench share, so neither includes the
//! other's files: `loopback` (the plumbing of every loopback server), `farm` (an origin and
//! proxies of switchable behaviour, their connections counted by a `gauge`), `source` (a proxy-list server), `wait` (a condition with a
//! deadline) and `process` (the service binary as a child).

pub mod farm;
pub mod gauge;
pub mod loopback;
pub mod origin;
pub mod process;
pub mod source;
pub mod wait;
