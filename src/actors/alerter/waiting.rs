//! What waits for the store while it is away: alerts it did not take, and outcomes of
//! deliveries it did not record. Both are kept in memory, oldest first, offered to the store
//! again every second, and kept in the journal (`store::journal`, a file under the data
//! directory) at each change, so a stop before the store is back loses none of them: the
//! journal is read back when the Alerter starts.

use super::{flatten, Alerter, NAME, UNSTORED_MAX};
use crate::domain::alerts::{AlertEvent, Kind, Severity};
use crate::store::alerts::DeliveryRow;
use crate::store::journal::{JournaledAlert, Waiting};
use actix::prelude::*;
use std::time::Duration;

impl Alerter {
    /// Takes in what the journal kept from before (at start, and after a restart of the actor).
    pub(super) fn replay_journal(&mut self) {
        let w = self.journal.load();
        if w.is_empty() {
            return;
        }
        let (n, m) = (w.alerts.len(), w.deliveries.len());
        for a in w.alerts {
            match (Kind::parse(&a.kind), Severity::parse(&a.severity)) {
                (Some(kind), Some(severity)) => self.unstored.push_back(AlertEvent {
                    kind,
                    key: a.key,
                    severity,
                    message: a.message,
                    at: a.at,
                }),
                _ => log::warn!(
                    "{NAME}: journal: an alert of unknown kind `{}` or severity `{}` skipped",
                    a.kind,
                    a.severity
                ),
            }
        }
        self.unwritten.extend(w.deliveries);
        log::info!(
            "{NAME}: journal {}: {n} alerts and {m} delivery outcomes were waiting for the \
             store; they are stored when it answers",
            self.journal.path().display()
        );
        self.show_unstored();
    }

    /// Writes what waits now to the journal.
    fn save_journal(&mut self) {
        let w = Waiting {
            alerts: (self.unstored.iter())
                .map(|e| JournaledAlert {
                    kind: e.kind.as_str().into(),
                    key: e.key.clone(),
                    severity: e.severity.as_str().into(),
                    message: e.message.clone(),
                    at: e.at,
                })
                .collect(),
            deliveries: self.unwritten.iter().cloned().collect(),
        };
        match self.journal.save(&w) {
            Ok(()) => self.journal_failing = false,
            Err(e) if !self.journal_failing => {
                self.journal_failing = true;
                log::error!(
                    "{NAME}: cannot write the journal ({e}): what waits for the store is only \
                     in memory"
                );
            }
            Err(_) => {}
        }
    }

    /// Keeps an alert the store did not take, to store it when the store is back.
    pub(super) fn keep_unstored(&mut self, e: AlertEvent) {
        if self.unstored.len() >= UNSTORED_MAX {
            self.unstored.pop_front();
            self.unstored_dropped += 1;
            log::error!(
                "{NAME}: {} alerts waiting for the store; the oldest dropped ({} so far)",
                UNSTORED_MAX,
                self.unstored_dropped
            );
        }
        self.unstored.push_back(e);
        self.save_journal();
        self.show_unstored();
    }

    /// Keeps the outcome of a delivery the store did not record, to record it when it is back.
    pub(super) fn keep_unwritten(&mut self, row: DeliveryRow) {
        (self.unwritten).retain(|r| (r.alert_id, &r.channel) != (row.alert_id, &row.channel));
        self.unwritten.push_back(row);
        self.save_journal();
    }

    pub(super) fn show_unstored(&self) {
        let (waiting, dropped) = (self.unstored.len(), self.unstored_dropped);
        self.shared.board.store(|s| {
            s.alerts_waiting = waiting;
            s.alerts_dropped = dropped;
        });
    }

    /// Offers what waits to the store: the oldest kept alert (on success the next one follows
    /// at once) and every unrecorded outcome.
    pub(super) fn store_waiting(&mut self, ctx: &mut Context<Self>) {
        self.write_unwritten(ctx);
        if self.storing_unstored {
            return;
        }
        let Some(e) = self.unstored.front().cloned() else {
            return;
        };
        self.storing_unstored = true;
        // Spawned, not waited for: while the store is away each try takes its connect timeout,
        // and the actor must go on beating (new alerts queue behind `unstored` meanwhile). It
        // stays in `unstored` (and the journal) until it is stored.
        ctx.spawn(self.raise(e.clone()).map(move |r, act, ctx| {
            act.storing_unstored = false;
            if r.is_ok() {
                if act.unstored.front() == Some(&e) {
                    act.unstored.pop_front();
                }
                act.save_journal();
                if act.unstored.is_empty() {
                    log::info!("{NAME}: the store is back; every kept alert is stored");
                } else {
                    ctx.run_later(Duration::ZERO, |act, ctx| act.store_waiting(ctx));
                }
            }
            act.show_unstored();
        }));
    }

    /// Records the kept delivery outcomes, in the background, one batch at a time.
    fn write_unwritten(&mut self, ctx: &mut Context<Self>) {
        if self.writing_unwritten || self.unwritten.is_empty() {
            return;
        }
        self.writing_unwritten = true;
        let rows: Vec<DeliveryRow> = self.unwritten.iter().cloned().collect();
        let store = self.shared.store.clone();
        let write = async move {
            store
                .call(move |s| {
                    for row in &rows {
                        s.update_delivery(row)?;
                    }
                    Ok(rows)
                })
                .await
        };
        ctx.spawn(write.into_actor(self).map(|r, act, _| {
            act.writing_unwritten = false;
            match flatten(r) {
                Ok(rows) => {
                    (act.unwritten).retain(|u| !rows.contains(u));
                    log::info!(
                        "{NAME}: the store is back; {} kept delivery outcomes recorded",
                        rows.len()
                    );
                    act.save_journal();
                }
                Err(e) => log::debug!("{NAME}: kept delivery outcomes not recorded yet: {e}"),
            }
        }));
    }
}
