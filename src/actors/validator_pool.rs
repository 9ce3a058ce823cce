//! The ValidatorPool checks proxies through `validation.check_url` with bounded concurrency
//! (`validation.concurrency` checks at once) and a hard timeout per check, and sends each verdict
//! to the TierBalancer. Checks run as tasks: a slow proxy never holds up the actor. After a
//! passing check, the judge (anonymity, for fresh proxies) and the check profiles
//! (`[[validation.profiles]]`) run through the same proxy, concurrently, under the same permit;
//! the verdict does not wait for them: it is sent first, and what they learn follows.
//!
//! A permit bounds the checks that are connecting and exchanging. A check still unanswered
//! after `validation.park_after_ms` is *parked*: it gives its permit back and goes on waiting on
//! its own timer, its socket kept, until `timeout_ms` (so its verdict is the same as if it had
//! kept the permit). Parked checks are bounded by the open-files limit ([`Parking`]); when that
//! bound is reached a check keeps its permit, and the log says so once. A round of proxies that
//! can only time out thus takes about one timeout, not `timeouts / concurrency` of them.

use crate::bus::messages::{
    CancelQueued, CheckBatch, CheckExtras, CheckJob, CheckNow, ProfileOutcome, Verdict,
};
use crate::checker::{Checker, Expectation, Target};
use crate::clock::now_ms;
use crate::state::Shared;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub const NAME: &str = crate::bus::names::VALIDATOR_POOL;

/// Fault injection: the next check panics (`crash?mode=check`).
pub static PANIC_NEXT_CHECK: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub struct ValidatorPool {
    shared: Arc<Shared>,
    work: Arc<CheckWork>,
    permits: Arc<Semaphore>,
    queue: Arc<Queue>,
}

/// The checks waiting for a permit: the current validation round. `CancelQueued` moves to a
/// new round; waiting checks of an older one give up when their turn comes.
#[derive(Default)]
struct Queue {
    round: std::sync::atomic::AtomicU64,
    waiting: std::sync::atomic::AtomicUsize,
}

/// How a check's results leave it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Rolling checks: the verdict goes to the TierBalancer as soon as the main check has
    /// answered; the judge's grade and the profiles follow as `CheckExtras`.
    Early,
    /// Checks on demand: one answer with everything.
    Joined,
}

/// What every check of this pool needs, shared by its tasks.
struct CheckWork {
    checker: Checker,
    target: Target,
    expect: Expectation,
    judge: Option<Target>,
    /// Our own addresses as the judge sees them, learned on the first judged check and again
    /// every [`OWN_ADDRESS_TTL`].
    own: OwnAddresses,
    /// One target and expectation per check profile, in config order.
    profiles: Vec<(Target, Expectation)>,
    parking: Parking,
    /// For `checks_parked`.
    shared: Arc<Shared>,
}

/// Where slow checks wait without a permit.
struct Parking {
    /// `None`: never park.
    after: Option<Duration>,
    /// One per parked check.
    slots: Arc<Semaphore>,
    /// How many there are (for the log line).
    capacity: usize,
    /// The "parking is full" line was logged.
    full_told: std::sync::atomic::AtomicBool,
}

/// Sockets kept for everything else (API, gateway, store, sources, alerts).
const RESERVED_FILES: u64 = 512;

impl Parking {
    /// As many parked checks as the open-files limit leaves room for after the running checks
    /// (two sockets each) and the rest of the service.
    fn new(after_ms: u64, concurrency: usize) -> Parking {
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        let capacity = limit
            .saturating_sub(2 * concurrency as u64 + RESERVED_FILES)
            .min(Semaphore::MAX_PERMITS as u64) as usize;
        log::debug!("{NAME}: up to {capacity} parked checks (open files limit {limit})");
        Parking {
            after: (after_ms > 0).then(|| Duration::from_millis(after_ms)),
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            full_told: Default::default(),
        }
    }
}

impl ValidatorPool {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, ValidatorPool::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        let v = &shared.config.validation;
        // Both URLs were validated with the config; a failure here would be a bug.
        let target = Target::parse(&v.check_url).expect("validated check_url");
        let judge = v.judge_url.as_deref().and_then(|u| Target::parse(u).ok());
        let profiles = v
            .profiles
            .iter()
            .map(|p| {
                let target = Target::parse(&p.check_url).expect("validated profile check_url");
                let expect = Expectation {
                    status: p.expect_status,
                    body: p.expect_body.clone(),
                };
                (target, expect)
            })
            .collect();
        let work = CheckWork {
            checker: Checker::new(Duration::from_millis(v.timeout_ms)),
            target,
            expect: Expectation {
                status: v.expect_status,
                body: v.expect_body.clone(),
            },
            judge,
            own: OwnAddresses::default(),
            profiles,
            parking: Parking::new(v.park_after_ms, v.concurrency),
            shared: shared.clone(),
        };
        ValidatorPool {
            permits: Arc::new(Semaphore::new(v.concurrency)),
            work: Arc::new(work),
            shared,
            queue: Arc::default(),
        }
    }

    fn spawn_check(&self, job: CheckJob) {
        use std::sync::atomic::Ordering;
        let work = self.work.clone();
        let permits = self.permits.clone();
        let shared = self.shared.clone();
        let queue = self.queue.clone();
        let round = queue.round.load(Ordering::Relaxed);
        queue.waiting.fetch_add(1, Ordering::Relaxed);
        shared
            .checks_queued
            .store(queue.waiting.load(Ordering::Relaxed), Ordering::Relaxed);
        tokio::spawn(async move {
            let Ok(permit) = permits.acquire().await else {
                return;
            };
            if queue.round.load(Ordering::Relaxed) != round {
                return; // cancelled: counted out by `CancelQueued`
            }
            let _ = (queue.waiting).fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                Some(w.saturating_sub(1))
            });
            shared
                .checks_queued
                .store(queue.waiting.load(Ordering::Relaxed), Ordering::Relaxed);
            shared.checks_running.fetch_add(1, Ordering::Relaxed);
            let verdict = work.run_with(permit, job, Delivery::Early).await;
            // Handed over before it stops counting as running.
            if let Some(verdict) = verdict {
                shared.registry.verdict.send(verdict);
            }
            shared.checks_running.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

impl CheckWork {
    /// Checks one proxy under a permit, answering with everything it learned at once; `None`
    /// when the pool is closing.
    async fn run(&self, permits: &Semaphore, job: CheckJob) -> Option<Verdict> {
        let permit = permits.acquire().await.ok()?;
        self.run_with(permit, job, Delivery::Joined).await
    }

    /// Checks one proxy holding `permit`, parking it (the permit given back) when it is still
    /// unanswered after `park_after_ms`. A check that panics (a bug meeting a hostile answer) is
    /// a failed check, not a lost one that would be retried into the same panic forever.
    /// `None`: the verdict was already sent (`Delivery::Early`).
    async fn run_with(
        &self,
        permit: tokio::sync::SemaphorePermit<'_>,
        job: CheckJob,
        delivery: Delivery,
    ) -> Option<Verdict> {
        use std::sync::atomic::Ordering;
        let (key, endpoint) = (job.key.clone(), job.endpoint.clone());
        let sent = std::sync::atomic::AtomicBool::new(false);
        // Boxed: the tasks waiting for a permit stay small (a check's state is kilobytes).
        let mut checked = Box::pin(futures_util::FutureExt::catch_unwind(
            std::panic::AssertUnwindSafe(self.check(job, delivery, &sent)),
        ));
        let parking = &self.parking;
        let mut held = Some(permit);
        let mut slot = None;
        let result = match parking.after {
            None => checked.await,
            Some(after) => {
                tokio::select! {
                    r = &mut checked => r,
                    _ = tokio::time::sleep(after) => {
                        match parking.slots.clone().try_acquire_owned() {
                            Ok(s) => {
                                slot = Some(s);
                                held = None; // the permit goes back: the next check starts
                                self.shared.checks_parked.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                if !parking.full_told.swap(true, Ordering::Relaxed) {
                                    log::warn!(
                                        "{NAME}: {} checks are parked, as many as the open files \
                                         limit allows; slow checks now keep their permits (raise \
                                         the limit, ulimit -n, for faster rounds)",
                                        parking.capacity
                                    );
                                }
                            }
                        }
                        checked.await
                    }
                }
            }
        };
        if slot.take().is_some() {
            self.shared.checks_parked.fetch_sub(1, Ordering::Relaxed);
        }
        drop(held);
        result.unwrap_or_else(|_| {
            if sent.load(Ordering::Relaxed) {
                log::error!(
                    "{NAME}: the judge or a profile check of {} panicked; its verdict stands",
                    endpoint.key()
                );
                return None;
            }
            log::error!(
                "{NAME}: the check of {} panicked; counted as a failed check",
                endpoint.key()
            );
            Some(Verdict {
                key,
                outcome: crate::checker::Outcome {
                    ok: false,
                    latency_ms: 0,
                    status: None,
                    failure: Some("the check panicked".into()),
                },
                anonymity: None,
                profiles: Vec::new(),
                at: now_ms(),
            })
        })
    }

    /// The main check, then (when it passed) the judge and the profiles. With
    /// `Delivery::Early` a passing verdict is sent before the judge and the profiles run (so the
    /// proxy is served at once), and what they learn follows as `CheckExtras`; `sent` tells
    /// that the verdict has left.
    async fn check(
        &self,
        job: CheckJob,
        delivery: Delivery,
        sent: &std::sync::atomic::AtomicBool,
    ) -> Option<Verdict> {
        if PANIC_NEXT_CHECK.swap(false, std::sync::atomic::Ordering::Relaxed) {
            panic!("fault injection: a check panicked");
        }
        let outcome = self
            .checker
            .check(&job.endpoint, &self.target, &self.expect)
            .await;
        let extras_due =
            outcome.ok && (job.judge && self.judge.is_some() || !self.profiles.is_empty());
        let mut verdict = Verdict {
            key: job.key.clone(),
            outcome,
            anonymity: None,
            profiles: Vec::new(),
            at: now_ms(),
        };
        if !extras_due {
            return Some(verdict);
        }
        if delivery == Delivery::Early {
            let at = verdict.at;
            self.shared.registry.verdict.send(verdict);
            sent.store(true, std::sync::atomic::Ordering::Relaxed);
            let (anonymity, profiles) = tokio::join!(self.anonymity(&job), self.profiles(&job));
            self.shared.registry.check_extras.send(CheckExtras {
                key: job.key,
                anonymity,
                profiles,
                at,
            });
            return None;
        }
        (verdict.anonymity, verdict.profiles) =
            tokio::join!(self.anonymity(&job), self.profiles(&job));
        Some(verdict)
    }

    /// The anonymity level from the judge page, when the job asks for it and our own address
    /// is known (without it, transparent cannot be told from anonymous: no grade).
    async fn anonymity(&self, job: &CheckJob) -> Option<crate::domain::proxy::Anonymity> {
        let judge = self.judge.as_ref().filter(|_| job.judge)?;
        let own = self.own.get(&self.checker, judge).await;
        if own.is_empty() {
            return None;
        }
        self.checker.anonymity(&job.endpoint, judge, &own).await
    }

    /// Every profile's check, concurrently.
    async fn profiles(&self, job: &CheckJob) -> Vec<ProfileOutcome> {
        let checks = self
            .profiles
            .iter()
            .enumerate()
            .map(|(index, (target, expect))| async move {
                let o = self.checker.check(&job.endpoint, target, expect).await;
                ProfileOutcome {
                    index,
                    ok: o.ok,
                    latency_ms: o.latency_ms,
                }
            });
        futures_util::future::join_all(checks).await
    }
}

/// How long a learned own address is trusted before the judge is asked again (a host's public
/// address can change); after a failed attempt, [`OWN_ADDRESS_RETRY`].
const OWN_ADDRESS_TTL: Duration = Duration::from_secs(600);
const OWN_ADDRESS_RETRY: Duration = Duration::from_secs(30);

/// Our own addresses as the judge sees them. Checks read the last learned value without
/// waiting; only when it is missing or stale does one of them ask the judge directly while the
/// others that need it wait for that answer (`learning`), so a round of thousands of checks
/// makes one direct request.
#[derive(Default)]
struct OwnAddresses {
    known: arc_swap::ArcSwapOption<(std::time::Instant, Vec<std::net::IpAddr>)>,
    learning: tokio::sync::Mutex<()>,
}

impl OwnAddresses {
    async fn get(&self, checker: &Checker, judge: &Target) -> Arc<Vec<std::net::IpAddr>> {
        let fresh = |k: &Option<Arc<(std::time::Instant, Vec<std::net::IpAddr>)>>| {
            k.as_ref().and_then(|k| {
                let ttl = if k.1.is_empty() {
                    OWN_ADDRESS_RETRY
                } else {
                    OWN_ADDRESS_TTL
                };
                (k.0.elapsed() < ttl).then(|| Arc::new(k.1.clone()))
            })
        };
        if let Some(own) = fresh(&self.known.load_full()) {
            return own;
        }
        let _learner = self.learning.lock().await;
        if let Some(own) = fresh(&self.known.load_full()) {
            return own;
        }
        let own = match checker.own_addresses(judge).await {
            Ok(own) => {
                log::info!(
                    "{NAME}: our own address as the judge sees it: {}",
                    own.iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                own
            }
            Err(e) => {
                log::warn!(
                    "{NAME}: cannot ask the judge directly for our own address ({e}); \
                     anonymity is not graded until it answers"
                );
                Vec::new()
            }
        };
        self.known
            .store(Some(Arc::new((std::time::Instant::now(), own.clone()))));
        Arc::new(own)
    }
}

impl Actor for ValidatorPool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
        (self.shared.checks_queued).store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Handler<CheckBatch> for ValidatorPool {
    type Result = ();
    fn handle(&mut self, batch: CheckBatch, _: &mut Self::Context) {
        for job in batch.0 {
            self.spawn_check(job);
        }
    }
}

/// Checks on demand run beside the rolling ones, under the same permits.
impl Handler<CheckNow> for ValidatorPool {
    type Result = ResponseFuture<Vec<Verdict>>;
    fn handle(&mut self, msg: CheckNow, _: &mut Self::Context) -> Self::Result {
        let work = self.work.clone();
        let permits = self.permits.clone();
        Box::pin(async move {
            let checks = msg.0.into_iter().map(|job| work.run(&permits, job));
            futures_util::future::join_all(checks)
                .await
                .into_iter()
                .flatten()
                .collect()
        })
    }
}

/// Ends the current validation round: checks still waiting for a permit are dropped (those
/// running finish). Answers how many were dropped.
impl Handler<CancelQueued> for ValidatorPool {
    type Result = usize;
    fn handle(&mut self, _: CancelQueued, _: &mut Self::Context) -> usize {
        use std::sync::atomic::Ordering;
        self.queue.round.fetch_add(1, Ordering::Relaxed);
        self.shared.checks_queued.store(0, Ordering::Relaxed);
        self.queue.waiting.swap(0, Ordering::Relaxed)
    }
}

super::controlled!(ValidatorPool, NAME, [check_batch, check_now, cancel_queued]);
