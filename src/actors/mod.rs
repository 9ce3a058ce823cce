//! The actor shell: each actor holds state and does IO, and calls `domain` for every rule.
//! One file per actor, named after it.

pub mod accountant;
pub mod alerter;
pub mod allocator;
pub mod coordinator;
pub mod resurrection_manager;
pub mod service_monitor;
pub mod source_fetcher;
pub mod supervisor;
pub mod tier_balancer;
pub mod validator_pool;

use crate::bus::messages::Control;
use crate::bus::registry::Registry;
use crate::state::Shared;
use actix::{Actor, ActorContext, Addr, ArbiterHandle, AsyncContext, Context, Handler};
use std::sync::Arc;
use std::time::Duration;

pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// A supervised actor: its name, the state it shares, and the ports it fills in the registry.
pub trait Supervised: Actor<Context = Context<Self>> + Handler<Control> {
    const NAME: &'static str;
    /// Puts this instance's receivers in their registry ports.
    fn register(addr: &Addr<Self>, r: &Registry);
    fn shared(&self) -> &Arc<Shared>;
}

/// Starts a child on its arbiter (built by `make`, whose `started` reloads its state), fills its
/// registry ports, and returns the probe the Supervisor watches.
pub fn start_child<A: Supervised>(
    shared: &Arc<Shared>,
    arbiter: &ArbiterHandle,
    make: fn(Arc<Shared>) -> A,
) -> Box<dyn Fn() -> bool> {
    let s = shared.clone();
    let addr = A::start_in_arbiter(arbiter, move |_| make(s));
    A::register(&addr, &shared.registry);
    shared
        .registry
        .set_control(A::NAME, addr.clone().recipient());
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
        let me = ctx.address().recipient::<Control>();
        if !act.shared().registry.is_current(A::NAME, &me) {
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

/// What every supervised actor has: the `Supervised` trait (its name and the registry ports it
/// fills: `controlled!(Actor, NAME, [port, ...])`) and the `Control` handler.
macro_rules! controlled {
    ($actor:ty, $name:expr, [$($port:ident),* $(,)?]) => {
        impl $crate::actors::Supervised for $actor {
            const NAME: &'static str = $name;
            #[allow(unused_variables)] // an actor without ports
            fn register(addr: &actix::Addr<Self>, r: &$crate::bus::registry::Registry) {
                $(r.$port.set(addr.clone().recipient());)*
            }
            fn shared(&self) -> &std::sync::Arc<$crate::state::Shared> {
                &self.shared
            }
        }

        impl actix::Handler<$crate::bus::messages::Control> for $actor {
            type Result = ();
            fn handle(&mut self, msg: $crate::bus::messages::Control, ctx: &mut Self::Context) {
                $crate::actors::control(msg, $name, ctx)
            }
        }
    };
}
pub(crate) use controlled;
