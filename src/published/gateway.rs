//! What the gateway counts as it works, read by health, `/metrics` and the dashboard:
//! counters only (atomics), and the addresses it listens on.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// How a client request through the gateway ended (`proxyvisor_gateway_requests_total{result}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An upstream served it.
    Ok,
    /// Every attempt failed (502).
    Failed,
    /// No upstream to try (503), or over the connection limits.
    Unavailable,
    /// Refused: no or a wrong password (407), malformed (400), a forbidden target (403).
    Refused,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::Failed,
        Outcome::Unavailable,
        Outcome::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Unavailable => "unavailable",
            Outcome::Refused => "refused",
        }
    }
}

/// The proxy kinds bytes are counted by (`proxyvisor_gateway_bytes_total{kind}`).
pub const KINDS: [&str; 4] = crate::domain::managed::KINDS;

#[derive(Debug, Default)]
pub struct GatewayStats {
    /// `http://…` and `socks5://…` addresses, once listening.
    pub listening: Mutex<Vec<String>>,
    pub open_connections: AtomicUsize,
    requests: [AtomicU64; 4],
    pub failovers: AtomicU64,
    /// `[up, down]` per kind, in `KINDS` order.
    bytes: [[AtomicU64; 2]; 4],
}

impl GatewayStats {
    pub fn count(&self, o: Outcome) {
        let i = Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0);
        self.requests[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests(&self, o: Outcome) -> u64 {
        let i = Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0);
        self.requests[i].load(Ordering::Relaxed)
    }

    pub fn add_bytes(&self, kind: &str, up: u64, down: u64) {
        let i = KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        self.bytes[i][0].fetch_add(up, Ordering::Relaxed);
        self.bytes[i][1].fetch_add(down, Ordering::Relaxed);
    }

    /// `(up, down)` for `kind`.
    pub fn bytes(&self, kind: &str) -> (u64, u64) {
        let i = KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        (
            self.bytes[i][0].load(Ordering::Relaxed),
            self.bytes[i][1].load(Ordering::Relaxed),
        )
    }

    pub fn listening(&self) -> Vec<String> {
        self.listening
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
