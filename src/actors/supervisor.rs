//! The Supervisor: starts every actor, each on its own arbiter (thread), and restarts one that
//! died (one_for_one), with its state reloaded by the actor's own start-up. actix's own
//! `Supervisor` does not restart an actor whose handler panicked (the task is dropped and
//! `restarting()` never runs), so this one watches each child's mailbox: a panic drops it,
//! `Addr::connected()` turns false, and the child is started anew and put back into the
//! registry. A child that stops beating (`supervision.hang_after_secs`) is hung: its arbiter is
//! told to stop (it does once its thread is free again) and a fresh instance starts on a new
//! one. Restart intensity (OTP's max_restarts within a period) decides between an immediate
//! restart and a backoff, and marks the child `failed` in health while it is exceeded. A restart
//! an admin asks for is not a crash and does not count against the intensity.
//!
//! Messages sent to a child while it restarts: `registry` answers `None` for it, so the API
//! answers 503 ("restarting; try again") to requests that need it; `do_send`s from other actors
//! are dropped, which each sender tolerates (see `messages.rs`).

use crate::bus::messages::Control;
use crate::bus::messages::{RestartChild, StopChildren};
use crate::clock::{now_ms, rfc3339};
use crate::domain::alerts::{AlertEvent, Kind, Severity};
use crate::domain::supervision::{is_hung, RestartIntensity};
use crate::published::board::ActorState;
use crate::state::Shared;
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

/// Why a child is down.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Down {
    Crashed,
    Hung,
    Requested,
}

struct Child {
    spec: ChildSpec,
    arbiter: Arbiter,
    alive: Box<dyn Fn() -> bool>,
    intensity: RestartIntensity,
    started_at: i64,
    /// An admin asked for a restart: the next stop is not a crash.
    requested: bool,
    /// Set while the child is down: why, and when to start it again.
    down: Option<(Down, i64)>,
}

pub struct Supervisor {
    shared: Arc<Shared>,
    children: Vec<Child>,
    /// Alerts waiting for the Alerter (it may be the one restarting).
    alerts: Vec<AlertEvent>,
    hang_after_ms: i64,
}

impl Supervisor {
    /// Starts every child now, in order, and returns the supervisor that watches them.
    pub fn new(shared: Arc<Shared>, specs: Vec<ChildSpec>) -> Self {
        let s = &shared.config.supervision;
        let (max, within) = (s.max_restarts, (s.within_secs * 1000.0) as i64);
        let hang_after_ms = (s.hang_after_secs * 1000.0) as i64;
        let now = now_ms();
        let children = specs
            .into_iter()
            .map(|spec| {
                shared
                    .board
                    .actor(spec.name, |a| a.status = ActorState::Running);
                let arbiter = Arbiter::new();
                let alive = (spec.start)(&shared, &arbiter.handle());
                Child {
                    spec,
                    arbiter,
                    alive,
                    intensity: RestartIntensity::new(max, within),
                    started_at: now,
                    requested: false,
                    down: None,
                }
            })
            .collect();
        Supervisor {
            shared,
            children,
            alerts: Vec::new(),
            hang_after_ms,
        }
    }

    fn watch(&mut self) {
        let now = now_ms();
        for i in 0..self.children.len() {
            match self.children[i].down {
                None => self.check(i, now),
                Some((why, at)) if at <= now => self.restart(i, why, now),
                Some(_) => {}
            }
        }
        if let Some(alerter) = (!self.alerts.is_empty())
            .then(|| self.shared.registry.alert.get())
            .flatten()
        {
            for e in self.alerts.drain(..) {
                alerter.do_send(crate::bus::messages::Alert(e));
            }
        }
    }

    /// A running child: still alive and beating?
    fn check(&mut self, i: usize, now: i64) {
        let child = &mut self.children[i];
        let name = child.spec.name;
        let alive = (child.alive)();
        let last_beat = if alive {
            let mut beat = None;
            self.shared.board.actor(name, |a| beat = a.last_beat_ms);
            beat
        } else {
            None
        };
        let why = if !alive && child.requested {
            Down::Requested
        } else if !alive {
            Down::Crashed
        } else if is_hung(last_beat, child.started_at, now, self.hang_after_ms) {
            Down::Hung
        } else {
            if !child.intensity.is_failed(now) {
                self.shared.board.actor(name, |a| {
                    if a.status == ActorState::Failed {
                        a.status = ActorState::Running;
                    }
                });
            }
            return;
        };
        if why == Down::Requested {
            child.requested = false;
            child.down = Some((why, now));
            self.shared
                .board
                .actor(name, |a| a.status = ActorState::Restarting);
            return;
        }
        let d = child.intensity.on_crash(now);
        if d.newly_failed {
            self.alerts.push(AlertEvent::new(
                Kind::ActorFailed,
                format!("actor:{name}"),
                Severity::Critical,
                format!(
                    "actor {name} crashed more than {} times within {} s; it is restarted \
                     with a backoff",
                    child.intensity.max_restarts,
                    child.intensity.within_ms / 1000
                ),
                now,
            ));
        }
        child.down = Some((why, now + d.delay_ms));
        if why == Down::Hung {
            log::error!(
                "supervisor: {name} has not beaten for over {} ms: hung, treated as crashed",
                self.hang_after_ms
            );
        }
        let status = if d.failed {
            log::error!(
                "supervisor: {name} crashed more than {} times within {} s; marked failed, \
                 restarting in {} ms",
                child.intensity.max_restarts,
                child.intensity.within_ms / 1000,
                d.delay_ms
            );
            ActorState::Failed
        } else {
            if why == Down::Crashed {
                log::warn!("supervisor: {name} stopped unexpectedly; restarting it");
            }
            ActorState::Restarting
        };
        self.shared.board.actor(name, |a| a.status = status);
    }

    fn restart(&mut self, i: usize, why: Down, now: i64) {
        let child = &mut self.children[i];
        let name = child.spec.name;
        if why == Down::Hung {
            // Its thread is stuck: leave it to stop once free, and start on a new one.
            let fresh = Arbiter::new();
            let old = std::mem::replace(&mut child.arbiter, fresh);
            old.stop();
        }
        child.alive = (child.spec.start)(&self.shared, &child.arbiter.handle());
        child.down = None;
        child.started_at = now;
        let failed = child.intensity.is_failed(now);
        self.shared.board.actor(name, |a| {
            a.restarts += 1;
            if why == Down::Hung {
                a.hangs += 1;
            }
            a.last_restart_at = Some(rfc3339(now));
            a.status = if failed {
                ActorState::Failed
            } else {
                ActorState::Running
            };
        });
        log::info!("supervisor: {name} restarted");
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(WATCH_EVERY, |s, _| s.watch());
    }
}

impl Handler<RestartChild> for Supervisor {
    type Result = bool;
    fn handle(&mut self, msg: RestartChild, _: &mut Self::Context) -> bool {
        let Some(child) = self.children.iter_mut().find(|c| c.spec.name == msg.0) else {
            return false;
        };
        if child.down.is_some() || child.requested {
            // Already on its way back. (A second request in the moment between the stop and
            // the watch noticing it would find the actor gone and undo `requested`: the stop
            // would then be taken for a crash and counted against the restart intensity.)
            return true;
        }
        child.requested = true;
        if !self.shared.registry.control(child.spec.name, Control::Stop) {
            child.requested = false;
        }
        true
    }
}

impl Handler<StopChildren> for Supervisor {
    type Result = ();
    fn handle(&mut self, _: StopChildren, _: &mut Self::Context) {
        for c in &self.children {
            c.arbiter.stop();
        }
    }
}
