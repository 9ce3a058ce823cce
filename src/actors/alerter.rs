//! The Alerter: every other actor sends it `Alert`s; it folds repeats, keeps a stored outbox and
//! delivers each alert to every configured channel (Telegram, email), retrying until delivered.
//!
//! (Skeleton: for now it logs each alert.)

use super::messages::{Alert, Crash};
use crate::state::Shared;
use actix::prelude::*;
use std::sync::Arc;

pub const NAME: &str = "alerter";

pub struct Alerter {
    shared: Arc<Shared>,
}

impl Alerter {
    pub fn start(shared: &Arc<Shared>, arbiter: &ArbiterHandle) -> Box<dyn Fn() -> bool> {
        super::start_child(shared, arbiter, |r| &r.alerter, Alerter::new)
    }

    fn new(shared: Arc<Shared>) -> Self {
        Alerter { shared }
    }
}

impl Actor for Alerter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        super::start_heartbeat::<Self>(ctx, &self.shared, NAME);
    }
}

impl Handler<Alert> for Alerter {
    type Result = ();
    fn handle(&mut self, Alert(e): Alert, _: &mut Self::Context) {
        log::warn!(
            "alert {} [{:?}] {}: {}",
            e.kind.as_str(),
            e.severity,
            e.key,
            e.message
        );
    }
}

impl Handler<Crash> for Alerter {
    type Result = ();
    fn handle(&mut self, _: Crash, _: &mut Self::Context) {
        super::crash(NAME);
    }
}
