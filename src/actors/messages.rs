//! Messages between actors.

use crate::checker::Outcome;
pub use crate::domain::profiles::ProfileOutcome;
use crate::domain::proxy::{Anonymity, Endpoint};
use crate::domain::source_list::Discovered;
use actix::Message;

/// A source's complete current list (SourceFetcher → TierBalancer).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SourceList {
    pub source: String,
    pub priority: i32,
    pub proxies: Vec<Discovered>,
}

/// One proxy to check.
#[derive(Clone, Debug)]
pub struct CheckJob {
    pub key: String,
    pub endpoint: Endpoint,
    /// Also ask the judge page for the anonymity level.
    pub judge: bool,
}

/// Proxies to check (TierBalancer → ValidatorPool).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckBatch(pub Vec<CheckJob>);

/// The result of one check (ValidatorPool → TierBalancer).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Verdict {
    pub key: String,
    pub outcome: Outcome,
    pub anonymity: Option<Anonymity>,
    /// Check-profile results, run only after a passing main check (empty otherwise).
    pub profiles: Vec<ProfileOutcome>,
    pub at: i64,
}

/// Write everything pending to the store now (used at shutdown). Answers the rows written.
#[derive(Message)]
#[rtype(result = "Result<usize, String>")]
pub struct FlushNow;

/// Fetch one source now (admin).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct FetchNow(pub String);

/// Fault injection: the receiving actor panics in its handler.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Crash;

/// Changes of the dead set (TierBalancer → ResurrectionManager).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum DeadEvent {
    /// The proxy died (again): schedule its re-check.
    Died {
        key: String,
        endpoint: Endpoint,
        deaths: u32,
        at: i64,
    },
    /// A re-check passed.
    Resurrected { key: String },
    /// Blacklisted or dropped: never re-check.
    Gone { key: String },
}

/// A client's feedback on a proxy, counted as a check (API → TierBalancer). Answers whether the
/// proxy is known.
#[derive(Message, Debug)]
#[rtype(result = "bool")]
pub struct Report {
    pub key: String,
    pub ok: bool,
}

/// Take a lease (API → Allocator). The lease is stored before the answer.
#[derive(Message, Debug)]
#[rtype(result = "Result<crate::domain::leases::Lease, String>")]
pub struct Allocate {
    pub count: usize,
    pub ttl_ms: i64,
    pub strategy: crate::domain::selection::Strategy,
    pub session: Option<String>,
}

/// Extend a lease; `Ok(None)` when there is no such live lease.
#[derive(Message, Debug)]
#[rtype(result = "Result<Option<crate::domain::leases::Lease>, String>")]
pub struct Renew {
    pub id: String,
    pub ttl_ms: i64,
}

/// Give a lease back; `Ok(false)` when there is no such live lease.
#[derive(Message, Debug)]
#[rtype(result = "Result<bool, String>")]
pub struct Release {
    pub id: String,
}
