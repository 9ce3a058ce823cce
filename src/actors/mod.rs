//! The actor shell: each actor holds state and does IO, and calls `domain` for every rule.
//! One file per actor, named after it.

pub mod allocator;
pub mod messages;
pub mod registry;
pub mod resurrection_manager;
pub mod source_fetcher;
pub mod supervisor;
pub mod tier_balancer;
pub mod validator_pool;

use crate::state::Shared;
use actix::AsyncContext;
use std::sync::Arc;
use std::time::Duration;

pub const HEARTBEAT: Duration = Duration::from_secs(1);

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
