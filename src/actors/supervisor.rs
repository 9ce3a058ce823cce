//! The Supervisor: starts every actor and restarts one that died (one_for_one), with its state
//! reloaded by the actor's own start-up. actix's own `Supervisor` does not restart an actor whose
//! handler panicked (the task is dropped and `restarting()` never runs), so this one watches each
//! child's mailbox: a panic drops it, `Addr::connected()` turns false, and the child is started
//! anew on the actors' arbiter and put back into the registry. Restart intensity (OTP's
//! max_restarts within a period) decides between an immediate restart and a backoff, and marks
//! the child `failed` in health while it is exceeded.

use crate::clock::{now_ms, rfc3339};
use crate::domain::alerts::{AlertEvent, Kind, Severity};
use crate::domain::supervision::RestartIntensity;
use crate::state::{ActorState, Shared};
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

const WATCH_EVERY: Duration = Duration::from_millis(100);

/// Starts a child on the arbiter and answers a probe that says whether it still runs.
pub type StartFn = fn(&Arc<Shared>, &ArbiterHandle) -> Box<dyn Fn() -> bool>;

pub struct ChildSpec {
    pub name: &'static str,
    pub start: StartFn,
}

struct Child {
    spec: ChildSpec,
    alive: Box<dyn Fn() -> bool>,
    intensity: RestartIntensity,
    /// Set while the child is down: when to start it again.
    restart_at: Option<i64>,
}

pub struct Supervisor {
    shared: Arc<Shared>,
    arbiter: ArbiterHandle,
    children: Vec<Child>,
    /// Alerts waiting for the Alerter (it may be the one restarting).
    alerts: Vec<AlertEvent>,
}

impl Supervisor {
    /// Starts every child now, in order, and returns the supervisor that watches them.
    pub fn new(shared: Arc<Shared>, arbiter: ArbiterHandle, specs: Vec<ChildSpec>) -> Self {
        let max = shared.config.supervision.max_restarts;
        let within = (shared.config.supervision.within_secs * 1000.0) as i64;
        let children = specs
            .into_iter()
            .map(|spec| {
                shared
                    .board
                    .actor(spec.name, |a| a.status = ActorState::Running);
                let alive = (spec.start)(&shared, &arbiter);
                Child {
                    spec,
                    alive,
                    intensity: RestartIntensity::new(max, within),
                    restart_at: None,
                }
            })
            .collect();
        Supervisor {
            shared,
            arbiter,
            children,
            alerts: Vec::new(),
        }
    }

    fn watch(&mut self) {
        let now = now_ms();
        for child in &mut self.children {
            let name = child.spec.name;
            match child.restart_at {
                None if !(child.alive)() => {
                    let d = child.intensity.on_crash(now);
                    if d.newly_failed {
                        self.alerts.push(AlertEvent::new(
                            Kind::ActorFailed,
                            format!("actor:{name}"),
                            Severity::Critical,
                            format!(
                                "actor {name} crashed more than {} times within {} s; it is \
                                 restarted with a backoff",
                                child.intensity.max_restarts,
                                child.intensity.within_ms / 1000
                            ),
                            now,
                        ));
                    }
                    child.restart_at = Some(now + d.delay_ms);
                    let status = if d.failed {
                        log::error!(
                            "supervisor: {name} crashed more than {} times within {} s; \
                             marked failed, restarting in {} ms",
                            child.intensity.max_restarts,
                            child.intensity.within_ms / 1000,
                            d.delay_ms
                        );
                        ActorState::Failed
                    } else {
                        log::warn!("supervisor: {name} stopped unexpectedly; restarting it");
                        ActorState::Restarting
                    };
                    self.shared.board.actor(name, |a| a.status = status);
                }
                Some(at) if at <= now => {
                    child.alive = (child.spec.start)(&self.shared, &self.arbiter);
                    child.restart_at = None;
                    let failed = child.intensity.is_failed(now);
                    self.shared.board.actor(name, |a| {
                        a.restarts += 1;
                        a.last_restart_at = Some(rfc3339(now));
                        a.status = if failed {
                            ActorState::Failed
                        } else {
                            ActorState::Running
                        };
                    });
                    log::info!("supervisor: {name} restarted");
                }
                None => {
                    if child.intensity.is_failed(now) {
                        continue;
                    }
                    self.shared.board.actor(name, |a| {
                        if a.status == ActorState::Failed {
                            a.status = ActorState::Running;
                        }
                    });
                }
                Some(_) => {}
            }
        }
        if let Some(alerter) = (!self.alerts.is_empty())
            .then(|| self.shared.registry.alerter())
            .flatten()
        {
            for e in self.alerts.drain(..) {
                alerter.do_send(super::messages::Alert(e));
            }
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(WATCH_EVERY, |s, _| s.watch());
    }
}
