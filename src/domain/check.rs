//! What a check of a proxy expects of the answer, and what it found: plain data that the
//! checker fills and the lifecycle rules read.

/// What a check expects of the answer.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub status: u16,
    pub body: Option<String>,
}

/// The result of one check.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    pub latency_ms: u32,
    /// The status the target answered through the proxy, when it answered.
    pub status: Option<u16>,
    /// Why the check failed, short, for logs (never with credentials).
    pub failure: Option<String>,
}
