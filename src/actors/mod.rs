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

/// Starts a child on the actors' arbiter (built by `make`, whose `started` reloads its state),
/// puts its address in its registry `slot`, and returns the probe the Supervisor watches.
pub fn start_child<A>(
    shared: &Arc<Shared>,
    arbiter: &ArbiterHandle,
    slot: fn(&Registry) -> &ArcSwapOption<Addr<A>>,
    make: fn(Arc<Shared>) -> A,
) -> Box<dyn Fn() -> bool>
where
    A: Actor<Context = Context<A>>,
{
    let s = shared.clone();
    let addr = A::start_in_arbiter(arbiter, move |_| make(s));
    Registry::set(slot(&shared.registry), &addr);
    Box::new(move || addr.connected())
}

/// Every actor beats once a second on the status board, and once at start.
pub fn start_heartbeat<A>(ctx: &mut A::Context, shared: &Arc<Shared>, name: &'static str)
where
    A: actix::Actor<Context = actix::Context<A>>,
{
    shared.board.heartbeat(name);
    let shared = shared.clone();
    ctx.run_interval(HEARTBEAT, move |_, _| shared.board.heartbeat(name));
}

/// What an actor does on a `Control` message (see `controlled!`).
pub fn control<A>(msg: Control, name: &str, ctx: &mut Context<A>)
where
    A: Actor<Context = Context<A>>,
{
    match msg {
        Control::Crash => panic!("fault injection: {name} crashed on request"),
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

/// The `Control` handler every supervised actor has.
macro_rules! controlled {
    ($actor:ty, $name:expr) => {
        impl actix::Handler<$crate::actors::messages::Control> for $actor {
            type Result = ();
            fn handle(&mut self, msg: $crate::actors::messages::Control, ctx: &mut Self::Context) {
                $crate::actors::control(msg, $name, ctx)
            }
        }
    };
}
pub(crate) use controlled;
