//! Alerts the store did not take (it is away): kept, oldest first, and offered to the store
//! again every second.

use super::{Alerter, NAME, UNSTORED_MAX};
use crate::domain::alerts::AlertEvent;
use actix::prelude::*;
use std::time::Duration;

impl Alerter {
    /// Keeps an alert the store did not take, to store it when the store is back.
    pub(super) fn keep_unstored(&mut self, e: AlertEvent, front: bool) {
        if self.unstored.len() >= UNSTORED_MAX {
            self.unstored.pop_front();
            self.unstored_dropped += 1;
            log::error!(
                "{NAME}: {} alerts waiting for the store; the oldest dropped ({} so far)",
                UNSTORED_MAX,
                self.unstored_dropped
            );
        }
        if front {
            self.unstored.push_front(e);
        } else {
            self.unstored.push_back(e);
        }
        self.show_unstored();
    }

    pub(super) fn show_unstored(&self) {
        let (waiting, dropped) = (self.unstored.len(), self.unstored_dropped);
        self.shared.board.store(|s| {
            s.alerts_waiting = waiting;
            s.alerts_dropped = dropped;
        });
    }

    /// Offers the oldest kept alert to the store; on success the next one follows at once.
    pub(super) fn store_unstored(&mut self, ctx: &mut Context<Self>) {
        if self.storing_unstored {
            return;
        }
        let Some(e) = self.unstored.pop_front() else {
            return;
        };
        self.storing_unstored = true;
        // Spawned, not waited for: while the store is away each try takes its connect timeout,
        // and the actor must go on beating (new alerts queue behind `unstored` meanwhile).
        ctx.spawn(self.raise(e.clone()).map(move |r, act, ctx| {
            act.storing_unstored = false;
            act.show_unstored();
            match r {
                Ok(_) => {
                    if act.unstored.is_empty() {
                        log::info!("{NAME}: the store is back; every kept alert is stored");
                    } else {
                        ctx.run_later(Duration::ZERO, |act, ctx| act.store_unstored(ctx));
                    }
                }
                Err(_) => act.keep_unstored(e, true),
            }
        }));
    }
}
