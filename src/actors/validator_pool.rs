//! The ValidatorPool checks proxies through `validation.check_url` with bounded concurrency
//! (`validation.concurrency` checks at once) and a hard timeout per check, and sends each verdict
//! to the TierBalancer. Checks run as tasks: a slow proxy never holds up the actor.

use super::messages::{CheckBatch, CheckJob, Crash, Verdict};
use crate::checker::{Checker, Expectation, Target};
use crate::clock::now_ms;
use crate::state::Shared;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub const NAME: &str = "validator_pool";

pub struct ValidatorPool {
    shared: Arc<Shared>,
    work: Arc<CheckWork>,
    permits: Arc<Semaphore>,
}

/// What every check of this pool needs, shared by its tasks.
struct CheckWork {
    checker: Checker,
    target: Target,
    expect: Expectation,
    judge: Option<Target>,
}

impl ValidatorPool {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, |r| &r.validator, ValidatorPool::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        let v = &shared.config.validation;
        // Both URLs were validated with the config; a failure here would be a bug.
        let target = Target::parse(&v.check_url).expect("validated check_url");
        let judge = v.judge_url.as_deref().and_then(|u| Target::parse(u).ok());
        let work = CheckWork {
            checker: Checker::new(Duration::from_millis(v.timeout_ms)),
            target,
            expect: Expectation {
                status: v.expect_status,
                body: v.expect_body.clone(),
            },
            judge,
        };
        ValidatorPool {
            permits: Arc::new(Semaphore::new(v.concurrency)),
            work: Arc::new(work),
            shared,
        }
    }

    fn spawn_check(&self, job: CheckJob) {
        let work = self.work.clone();
        let permits = self.permits.clone();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let outcome = work
                .checker
                .check(&job.endpoint, &work.target, &work.expect)
                .await;
            let anonymity = match (&work.judge, outcome.ok && job.judge) {
                (Some(judge), true) => work.checker.anonymity(&job.endpoint, judge).await,
                _ => None,
            };
            if let Some(balancer) = shared.registry.balancer() {
                balancer.do_send(Verdict {
                    key: job.key,
                    outcome,
                    anonymity,
                    at: now_ms(),
                });
            }
        });
    }
}

impl Actor for ValidatorPool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
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

impl Handler<Crash> for ValidatorPool {
    type Result = ();
    fn handle(&mut self, _: Crash, _: &mut Self::Context) {
        super::crash(NAME);
    }
}
