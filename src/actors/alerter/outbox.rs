//! The Alerter's outbox as the store holds it: loaded at start, and in a cluster reloaded by
//! the leader now and then, so that it delivers what other instances stored.

use super::{flatten, Alerter, Pending, NAME, OPEN_LOADED, RETRY_STORE};
use crate::clock::now_ms;
use crate::domain::alerts::{Kind, OpenAlert};
use crate::store::alerts::{AlertRow, DeliveryRow, FAILED};
use actix::prelude::*;
use std::time::Duration;

/// In a cluster, how often the leader takes in deliveries that other instances stored.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

impl Alerter {
    /// In a cluster the leader alone delivers (and sends the daily report), and every instance
    /// stores what it raises in the shared store, where an alert another instance stored first
    /// folds (`Stored`). Every `RELOAD_EVERY`, and at once when this instance starts leading,
    /// the open alerts and pending deliveries are reloaded from the store: so that this one
    /// folds and closes what the others opened, and, leading, delivers what they stored and
    /// what the leader before it had not delivered.
    pub(super) fn lead(&mut self, ctx: &mut Context<Self>) -> bool {
        let lead = &self.shared.leadership;
        if lead.is_single() {
            return true;
        }
        let leads = lead.leads();
        let started = leads && !self.leading;
        // Alone on the database there is nobody else's alert to take in.
        let failover_ms = (self.shared.config.cluster.failover_secs * 1000.0) as u64;
        let due = self.last_reload.elapsed() >= RELOAD_EVERY
            && self.shared.cluster.load().others_alive(failover_ms);
        if started || due {
            if started {
                log::info!("{NAME}: this instance leads: it delivers the cluster's alerts");
            }
            self.last_reload = std::time::Instant::now();
            self.reload_outbox(ctx, true);
        }
        self.leading = leads;
        leads
    }

    /// Loads the outbox; while the store is away, tries again every second.
    pub(super) fn load_outbox(&mut self, ctx: &mut Context<Self>) {
        self.reload_outbox(ctx, false);
    }

    /// `periodic`: the leader's look for deliveries others stored: quiet, and not retried
    /// (the next look comes soon).
    pub(super) fn reload_outbox(&mut self, ctx: &mut Context<Self>, periodic: bool) {
        let store = self.shared.store.clone();
        let load = async move {
            store
                .call(|s| {
                    Ok((
                        s.load_open_alerts(OPEN_LOADED)?,
                        s.load_pending_deliveries()?,
                    ))
                })
                .await
        };
        if !periodic {
            ctx.wait(load.into_actor(self).map(|r, act, ctx| match flatten(r) {
                Ok((open, pending)) => act.load(open, pending, None),
                Err(e) => {
                    log::error!("{NAME}: cannot load the outbox, retrying in 1 s: {e}");
                    ctx.run_later(RETRY_STORE, |act, ctx| act.load_outbox(ctx));
                }
            }));
            return;
        }
        // Beside the other work, never waited for (a store that is away must not hold the
        // actor), one at a time, and not while alerts or outcomes wait for the store.
        if self.reloading || !self.unstored.is_empty() || !self.unwritten.is_empty() {
            return;
        }
        self.reloading = true;
        let since = now_ms();
        ctx.spawn(load.into_actor(self).map(move |r, act, _| {
            act.reloading = false;
            match flatten(r) {
                Ok((open, pending)) => act.load(open, pending, Some(since)),
                Err(e) => log::debug!("{NAME}: cannot look for stored deliveries: {e}"),
            }
        }));
    }

    /// Reloads the open alerts and the pending deliveries (those already in the outbox stay as
    /// they are: one may be on its way). `since`: a look while this instance runs, read from
    /// that time on: quiet, and the open alerts raised here since are kept.
    fn load(&mut self, open: Vec<AlertRow>, pending: Vec<(DeliveryRow, i64)>, since: Option<i64>) {
        let quiet = since.is_some();
        let recent: Vec<OpenAlert> = match since {
            Some(t) => (self.open.iter())
                .filter(|a| a.created_at >= t && !open.iter().any(|r| r.id == a.id))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        self.open = open
            .into_iter()
            .filter_map(|r| {
                Some(OpenAlert {
                    id: r.id,
                    kind: Kind::parse(&r.kind)?,
                    key: r.key,
                    created_at: r.created_at,
                    repeats: r.repeats.max(1) as u32,
                })
            })
            .collect();
        self.open.extend(recent);
        let mut orphans = Vec::new();
        (self.finished).retain(|_, at| at.elapsed() < Duration::from_secs(60));
        for (row, created_at) in pending {
            match self.channel(&row.channel).map(|c| c.name()) {
                // Finished here, its outcome maybe not recorded yet.
                Some(name)
                    if self.finished.contains_key(&(row.alert_id, name))
                        || (self.unwritten.iter())
                            .any(|u| u.alert_id == row.alert_id && u.channel == name) => {}
                Some(name) => {
                    self.outbox.entry((row.alert_id, name)).or_insert(Pending {
                        attempts: row.attempts.max(0) as u32,
                        next_at: row.next_attempt_at.unwrap_or(0),
                        created_at,
                        in_flight: false,
                        held: false,
                    });
                }
                None => orphans.push(DeliveryRow {
                    state: FAILED.into(),
                    last_error: Some("the channel is no longer configured".into()),
                    next_attempt_at: None,
                    ..row
                }),
            }
        }
        if !orphans.is_empty() {
            log::warn!(
                "{NAME}: {} pending deliveries are for channels no longer configured: marked failed",
                orphans.len()
            );
            let store = self.shared.store.clone();
            tokio::spawn(async move {
                let marked = store.call(move |s| {
                    for row in &orphans {
                        if let Err(e) = s.update_delivery(row) {
                            log::warn!("{NAME}: cannot mark a delivery failed: {e}");
                        }
                    }
                    Ok(())
                });
                let _ = marked.await;
            });
        }
        if quiet {
            return;
        }
        log::info!(
            "{NAME}: channels: {}; {} open alerts, {} pending deliveries",
            match self.channels.iter().map(|c| c.name()).collect::<Vec<_>>() {
                names if names.is_empty() => "none (alerts are only logged and stored)".into(),
                names => names.join(", "),
            },
            self.open.len(),
            self.outbox.len()
        );
    }
}
