//! Messages between actors. Each says what happens to it while its receiver restarts: the
//! registry has no address for a restarting actor, so a request that needs one answers 503, and
//! a message between actors is dropped and made good as described.

use crate::domain::check::Outcome;
pub use crate::domain::profiles::ProfileOutcome;
use crate::domain::proxy::{Anonymity, Endpoint};
use crate::domain::source_list::Discovered;
use actix::Message;

/// A source's complete current list (SourceFetcher → TierBalancer).
/// While the receiver restarts: not taken; the SourceFetcher forgets the source's validators so the
/// next fetch brings the whole list again.
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
/// While the receiver restarts: dropped; the TierBalancer gives the checks up as lost after their
/// deadline and sends them again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckBatch(pub Vec<CheckJob>);

/// The result of one check (ValidatorPool → TierBalancer).
/// While the receiver restarts: dropped; the restarted TierBalancer reloads the pool and checks
/// again what is due.
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

/// What a passing rolling check learned after its verdict was sent (ValidatorPool →
/// TierBalancer): the judge's anonymity grade and the check profiles' results. The verdict is
/// published first so that a proxy is served as soon as it passed; `at` is that verdict's, and
/// the extras are dropped when a newer check of the proxy came in between.
/// While the receiver restarts: dropped (the next passing check brings them again).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct CheckExtras {
    pub key: String,
    pub anonymity: Option<Anonymity>,
    pub profiles: Vec<ProfileOutcome>,
    pub at: i64,
}

/// Write everything pending to the store now (used at shutdown). Answers the rows written.
/// While the receiver restarts: answered with a mailbox error; shutdown logs that the final
/// write did not finish (what was written behind before stays).
#[derive(Message)]
#[rtype(result = "Result<usize, String>")]
pub struct FlushNow;

/// Fetch one source now (admin).
/// While the receiver restarts: the API answers 503 ("restarting; try again").
#[derive(Message)]
#[rtype(result = "bool")]
pub struct FetchNow(pub String);

/// What the Supervisor and fault injection ask of an actor. Every supervised actor handles it
/// (see `actors::controlled!`).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub enum Control {
    /// Panic in the handler (fault injection: `POST /api/admin/actors/{name}/crash`).
    Crash,
    /// Block the actor's thread this long (fault injection: a hung actor).
    Hang(std::time::Duration),
    /// Panic in a timer of the actor rather than in a handler (fault injection).
    CrashInTimer,
    /// The ValidatorPool's next check panics (fault injection: a bug in a check).
    PanicInCheck,
    /// Stop: the Supervisor starts it anew (`POST /api/admin/actors/{name}/restart`).
    Stop,
}

/// Changes of the dead set (TierBalancer → ResurrectionManager).
/// While the receiver restarts: dropped; the restarted ResurrectionManager reads the dead proxies
/// from the store at start and once more two flush intervals later.
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
/// proxy is known; `None` while the pool is being reloaded.
/// While the receiver restarts: the API answers 503; the client may report again.
#[derive(Message, Debug)]
#[rtype(result = "Option<bool>")]
pub struct Report {
    pub key: String,
    pub ok: bool,
    /// The status the target answered through it, when that is why it failed (a 403 or 429
    /// marks a managed proxy `blocked`).
    pub status: Option<u16>,
}

/// Traffic through the gateway by one upstream (gateway → Accountant): added to its tally of
/// the hour. Sent when a request or tunnel ends, and every few seconds while a tunnel is open.
/// While the receiver restarts: it is lost (logged); the bytes still passed.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Traffic {
    pub slot: crate::domain::usage::Slot,
    pub tally: crate::domain::usage::Tally,
}

/// Take a lease (API → Allocator). The lease is stored before the answer.
/// While the receiver restarts: the API answers 503; nothing was allocated.
#[derive(Message, Debug)]
#[rtype(result = "Result<crate::domain::leases::Lease, String>")]
pub struct Allocate {
    pub count: usize,
    pub ttl_ms: i64,
    pub strategy: crate::domain::selection::Strategy,
    pub session: Option<String>,
}

/// Extend a lease; `Ok(None)` when there is no such live lease.
/// While the receiver restarts: the API answers 503; the lease is unchanged.
#[derive(Message, Debug)]
#[rtype(result = "Result<Option<crate::domain::leases::Lease>, String>")]
pub struct Renew {
    pub id: String,
    pub ttl_ms: i64,
}

/// Give a lease back; `Ok(false)` when there is no such live lease.
/// While the receiver restarts: the API answers 503; the lease still holds its slots.
#[derive(Message, Debug)]
#[rtype(result = "Result<bool, String>")]
pub struct Release {
    pub id: String,
}

/// A change to the managed proxies (admin API → TierBalancer). It is stored before it is
/// applied to the pool and answered; answers the proxy as it is after the change (before it,
/// for a deletion).
/// While the receiver restarts: the API answers 503; nothing was stored.
#[derive(Message, Debug)]
#[rtype(result = "Result<crate::domain::record::ManagedView, ChangeError>")]
pub enum ManagedChange {
    Create(crate::domain::managed::ManagedProxy),
    Patch {
        name: String,
        patch: crate::domain::managed::Patch,
    },
    Delete {
        name: String,
    },
}

/// Why a change (a managed proxy, a monitor) was refused.
#[derive(Debug, PartialEq)]
pub enum ChangeError {
    Invalid(String),
    NotFound(String),
    /// The name or URL is taken, or the proxy is defined in the config file.
    Conflict(String),
    /// The store did not take the change; nothing changed.
    Store(String),
}

/// Check every managed proxy now (admin API → TierBalancer); answers each result, by name.
/// While the receiver restarts: the API answers 503.
#[derive(Message, Debug)]
#[rtype(result = "Vec<ManagedCheck>")]
pub struct CheckManaged;

/// One managed proxy's check, as `POST /api/v1/proxy/health-check` reports it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ManagedCheck {
    pub name: String,
    pub url: String,
    pub ok: bool,
    pub latency_ms: Option<u32>,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub status: &'static str,
    pub tier: &'static str,
}

/// Check these proxies now and answer every outcome (TierBalancer → ValidatorPool), unlike
/// `CheckBatch`, whose verdicts arrive one by one.
/// While the receiver restarts: answered with no results; the health check lists none.
#[derive(Message)]
#[rtype(result = "Vec<Verdict>")]
pub struct CheckNow(pub Vec<CheckJob>);

/// Something an admin should hear of (any actor → Alerter).
/// While the receiver restarts: logged and dropped (`Registry::alert`), except the Supervisor's,
/// which wait for the Alerter.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Alert(pub crate::domain::alerts::AlertEvent);

/// Watch one more service (admin API → ServiceMonitor): stored (its `definition`, the
/// `[[monitors]]` table as JSON) before it is answered; its view is published before the
/// answer, which is its name.
/// While the receiver restarts: the API answers 503; nothing was stored.
#[derive(Message)]
#[rtype(result = "Result<String, ChangeError>")]
pub struct AddMonitor {
    pub def: crate::domain::monitor::MonitorDef,
    pub definition: String,
    pub created_at: i64,
}

/// Stop watching a service added through the admin API; answers its name.
/// While the receiver restarts: the API answers 503; nothing changed.
#[derive(Message)]
#[rtype(result = "Result<String, ChangeError>")]
pub struct RemoveMonitor {
    pub name: String,
}

/// Repair a service now, whatever its state (admin API → ServiceMonitor).
/// While the receiver restarts: the API answers 503; no repair was started.
#[derive(Message)]
#[rtype(result = "Result<crate::domain::service_health::RepairKind, ChangeError>")]
pub struct RestartMonitor {
    pub name: String,
}

/// Drop the checks waiting for a permit (TierBalancer → ValidatorPool, for `POST
/// /api/force/accept`); answers how many.
/// While the receiver restarts: answered with a mailbox error; nothing is queued in a new pool.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CancelQueued;

/// Stop the current validation round and publish what it has (admin API → TierBalancer).
/// While the receiver restarts: the API answers 503.
#[derive(Message)]
#[rtype(result = "ForceAccepted")]
pub struct ForceAccept;

#[derive(Debug, serde::Serialize)]
pub struct ForceAccepted {
    /// Checks that were waiting and were dropped.
    pub cancelled: usize,
    /// Fresh proxies left unchecked until the next list from their source (or a revalidation
    /// period).
    pub deferred: usize,
    pub serving: usize,
}

/// Raise an alert and answer what became of it (the admin API's test alert).
/// While the receiver restarts: the API answers 503.
#[derive(Message)]
#[rtype(result = "Result<Raised, String>")]
pub struct Raise(pub crate::domain::alerts::AlertEvent);

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Raised {
    /// The stored alert (the open one it was folded into, for a repeat); `None` when dropped.
    pub id: Option<i64>,
    pub folded: bool,
}

/// Restart this child now (admin API → Supervisor); answers whether there is such a child.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct RestartChild(pub String);

/// Stop every child's arbiter (at shutdown, after the final writes).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopChildren;
