//! Delivering through a channel: what a failure means and when the next attempt is.

/// First retry after 1 s, doubling, at most 5 min apart.
pub const RETRY_BASE_MS: i64 = 1_000;
pub const RETRY_CAP_MS: i64 = 300_000;
/// A channel's own `retry_after` is honoured up to an hour.
pub const RETRY_AFTER_CAP_MS: i64 = 3_600_000;
/// A delivery still not made a day after its alert is given up (state `failed`).
pub const GIVE_UP_AFTER_MS: i64 = 86_400_000;

/// Why one attempt to deliver did not deliver.
#[derive(Clone, Debug, PartialEq)]
pub enum SendError {
    /// Worth another try (network, timeout, 5xx, rate limit), after `retry_after` when the
    /// channel said so.
    Retry {
        reason: String,
        retry_after_ms: Option<i64>,
    },
    /// Will not work without a change of config (bad token, unknown chat, refused address).
    Permanent(String),
}

impl SendError {
    pub fn reason(&self) -> &str {
        match self {
            SendError::Retry { reason, .. } | SendError::Permanent(reason) => reason,
        }
    }
}

/// What becomes of a delivery after an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    Sent,
    /// Try again at this time (unix ms).
    RetryAt(i64),
    Failed,
}

/// The wait before attempt `attempts + 1`, after `attempts` (>= 1) failed ones.
pub fn retry_delay_ms(attempts: u32, retry_after_ms: Option<i64>) -> i64 {
    if let Some(after) = retry_after_ms {
        return after.clamp(0, RETRY_AFTER_CAP_MS);
    }
    let doublings = attempts.saturating_sub(1).min(30);
    (RETRY_BASE_MS << doublings).min(RETRY_CAP_MS)
}

/// The delivery rule: after attempt number `attempts` (counting this one) of an alert created
/// at `created_at` ended in `result` at `now`.
pub fn after_attempt(
    result: &Result<(), SendError>,
    attempts: u32,
    created_at: i64,
    now: i64,
) -> Next {
    match result {
        Ok(()) => Next::Sent,
        Err(SendError::Permanent(_)) => Next::Failed,
        Err(SendError::Retry { retry_after_ms, .. }) => {
            let at = now.saturating_add(retry_delay_ms(attempts, *retry_after_ms));
            if at.saturating_sub(created_at) > GIVE_UP_AFTER_MS {
                Next::Failed
            } else {
                Next::RetryAt(at)
            }
        }
    }
}
