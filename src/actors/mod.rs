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
use actix::{Actor, Addr, ArbiterHandle, AsyncContext, Context};
use arc_swap::ArcSwapOption;
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

/// The handler of `Crash`: panic inside the actor (fault injection for chaos tests).
pub fn crash(name: &str) -> ! {
    panic!("fault injection: {name} crashed on request");
}
