//! The actor shell: each actor holds state and does IO, and calls `domain` for every rule.
//! One file per actor, named after it.

pub mod alerter;
pub mod allocator;
pub mod messages;
pub mod registry;
pub mod resurrection_manager;
pub mod service_monitor;
pub mod source_fetcher;
pub mod supervisor;
pub mod tier_balancer;
pub mod validator_pool;

use crate::state::Shared;
use actix::{Actor, ActorContext, Addr, ArbiterHandle, AsyncContext, Context};
use arc_swap::ArcSwapOption;
use messages::Control;
use registry::Registry;
use std::sync::Arc;
use std::time::Duration;

pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// A supervised actor: where the registry keeps its address, and the state it shares.
pub trait Supervised: Actor<Context = Context<Self>> {
    fn slot(r: &Registry) -> &ArcSwapOption<Addr<Self>>;
    fn shared(&self) -> &Arc<Shared>;
}

/// Starts a child on its arbiter (built by `make`, whose `started` reloads its state), puts its
/// address in its registry slot, and returns the probe the Supervisor watches.
pub fn start_child<A: Supervised>(
    shared: &Arc<Shared>,
    arbiter: &ArbiterHandle,
    make: fn(Arc<Shared>) -> A,
) -> Box<dyn Fn() -> bool> {
    let s = shared.clone();
    let addr = A::start_in_arbiter(arbiter, move |_| make(s));
    Registry::set(A::slot(&shared.registry), &addr);
    Box::new(move || addr.connected())
}

/// Like `run_interval`, but an instance the Supervisor has replaced (it hung, and its thread
/// came free again) stops instead of running `f`: a stale instance never publishes or writes.
pub fn every<A: Supervised>(
    ctx: &mut Context<A>,
    period: Duration,
    mut f: impl FnMut(&mut A, &mut Context<A>) + 'static,
) {
    ctx.run_interval(period, move |act, ctx| {
        let me = ctx.address();
        let current = A::slot(&act.shared().registry)
            .load()
            .as_deref()
            .is_some_and(|a| *a == me);
        if !current {
            log::warn!("a replaced actor instance woke up; it stops");
            ctx.stop();
            return;
        }
        f(act, ctx)
    });
}

/// Every actor beats once a second on the status board, and once at start.
pub fn start_heartbeat<A: Supervised>(
    ctx: &mut A::Context,
    shared: &Arc<Shared>,
    name: &'static str,
) {
    shared.board.heartbeat(name);
    let shared = shared.clone();
    every(ctx, HEARTBEAT, move |_, _| shared.board.heartbeat(name));
}

/// What an actor does on a `Control` message (see `controlled!`).
pub fn control<A>(msg: Control, name: &str, ctx: &mut Context<A>)
where
    A: Actor<Context = Context<A>>,
{
    match msg {
        Control::Crash => panic!("fault injection: {name} crashed on request"),
        Control::CrashInTimer => {
            let name = name.to_string();
            ctx.run_later(Duration::ZERO, move |_, _| {
                panic!("fault injection: {name} crashed in a timer on request")
            });
        }
        Control::PanicInCheck => {
            validator_pool::PANIC_NEXT_CHECK.store(true, std::sync::atomic::Ordering::Relaxed)
        }
        Control::Hang(d) => {
            log::warn!("fault injection: {name} hangs for {} ms", d.as_millis());
            // Blocks the actor's own thread, as a handler stuck in a blocking call would.
            std::thread::sleep(d);
        }
        Control::Stop => {
            log::info!("{name}: stopping on request");
            ctx.stop();
        }
    }
}

/// What every supervised actor has: the `Supervised` trait (its registry `slot`) and the
/// `Control` handler.
macro_rules! controlled {
    ($actor:ty, $name:expr, $slot:ident) => {
        impl $crate::actors::Supervised for $actor {
            fn slot(
                r: &$crate::actors::registry::Registry,
            ) -> &arc_swap::ArcSwapOption<actix::Addr<Self>> {
                &r.$slot
            }
            fn shared(&self) -> &std::sync::Arc<$crate::state::Shared> {
                &self.shared
            }
        }

        impl actix::Handler<$crate::actors::messages::Control> for $actor {
            type Result = ();
            fn handle(&mut self, msg: $crate::actors::messages::Control, ctx: &mut Self::Context) {
                $crate::actors::control(msg, $name, ctx)
            }
        }
    };
}
pub(crate) use controlled;
