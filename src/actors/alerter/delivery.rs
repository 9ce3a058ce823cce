//! Deliveries: every due one is started in a spawned future (a few per channel at once), and
//! its outcome decides the next attempt (`domain::alerts::after_attempt`) and is stored (or
//! kept until the store answers, `waiting`). In a cluster each attempt is first claimed in the
//! store under the leader's term (`Store::claim_delivery`): one held elsewhere waits, one
//! settled elsewhere is dropped.

use super::{flatten, Alerter, NAME};
use crate::channels::{self, Channel};
use crate::clock::{now_ms, rfc3339};
use crate::domain::alerts::{after_attempt, Kind, Next, Outgoing, SendError, Severity};
use crate::published::board::ChannelState;
use crate::store::alerts::{AlertRow, DeliveryRow, FAILED, PENDING, SENT};
use crate::store::cluster::DeliveryClaim;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Deliveries on their way to one channel at once.
const IN_FLIGHT_PER_CHANNEL: usize = 4;
/// How long a claimed delivery is held from other instances (database time): as long as an
/// attempt can take, and a little more for its outcome to be written.
const CLAIM_HOLD_MS: i64 = channels::SEND_TIMEOUT.as_millis() as i64 + 5_000;

impl Alerter {
    /// Starts every delivery that is due (oldest first, a few per channel at once).
    pub(super) fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let now = now_ms();
        let mut busy: HashMap<&'static str, usize> = HashMap::new();
        for ((_, ch), p) in &self.outbox {
            if p.in_flight {
                *busy.entry(ch).or_default() += 1;
            }
        }
        let mut due = Vec::new();
        for (&(id, ch), p) in &self.outbox {
            if p.in_flight || p.next_at > now || self.paused.get(ch).is_some_and(|&t| t > now) {
                continue;
            }
            let n = busy.entry(ch).or_default();
            if *n >= IN_FLIGHT_PER_CHANNEL {
                continue;
            }
            *n += 1;
            due.push((id, ch));
        }
        for (id, ch) in due {
            let Some(channel) = self.channel(ch).cloned() else {
                self.outbox.remove(&(id, ch));
                continue;
            };
            if let Some(p) = self.outbox.get_mut(&(id, ch)) {
                p.in_flight = true;
            }
            self.attempt(id, channel, ctx);
        }
    }

    /// One attempt to deliver alert `id` to `channel`, in a spawned future.
    fn attempt(&mut self, id: i64, channel: Arc<dyn Channel>, ctx: &mut Context<Self>) {
        let store = self.shared.store.clone();
        let name = channel.name();
        let me = self.shared.cluster.load().instance_id.clone();
        let term = self.shared.leadership.term();
        let unclaimed = self.shared.leadership.unclaimed();
        let work = async move {
            // In a cluster, claimed first under this leader's term: no other instance starts
            // it while the claim holds, and a deposed leader starts none.
            if !unclaimed {
                let claim = store
                    .call(move |s| s.claim_delivery(id, name, &me, term, CLAIM_HOLD_MS))
                    .await;
                match flatten(claim) {
                    Ok(DeliveryClaim::Claimed) => {}
                    Ok(DeliveryClaim::Held) => return Err(Attempt::Held),
                    Ok(DeliveryClaim::Settled) => return Err(Attempt::Settled),
                    Err(e) => return Err(Attempt::Store(e)),
                }
            }
            let row = store.call(move |s| s.load_alert(id)).await;
            let alert = match flatten(row) {
                Ok(Some(row)) => outgoing(row).map_err(Attempt::Unsendable)?,
                Ok(None) => {
                    return Err(Attempt::Unsendable(
                        "the alert is gone from the store".into(),
                    ))
                }
                Err(e) => return Err(Attempt::Store(e)),
            };
            channels::send_with_timeout(&*channel, &alert)
                .await
                .map_err(Attempt::Send)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(move |r, act, ctx| act.attempted(id, name, r, ctx)),
        );
    }

    fn attempted(
        &mut self,
        id: i64,
        channel: &'static str,
        r: Result<(), Attempt>,
        ctx: &mut Context<Self>,
    ) {
        let now = now_ms();
        let Some(p) = self.outbox.get_mut(&(id, channel)) else {
            return;
        };
        p.in_flight = false;
        let channel_fault = matches!(r, Err(Attempt::Send(_)));
        let result = match r {
            Ok(()) => Ok(()),
            Err(Attempt::Send(e)) => Err(e),
            Err(Attempt::Unsendable(reason)) => Err(SendError::Permanent(reason)),
            Err(Attempt::Store(e)) => {
                // Not the channel's fault: try again soon, no attempt counted.
                log::warn!("{NAME}: alert #{id} → {channel}: cannot read it from the store: {e}");
                p.next_at = now + 1000;
                return;
            }
            Err(Attempt::Held) => {
                if !p.held {
                    p.held = true;
                    log::info!(
                        "{NAME}: alert #{id} → {channel}: claimed by another instance (its \
                         attempt may be on its way), or this one no longer leads: tried again \
                         when the claim runs out"
                    );
                }
                p.next_at = now + 1000;
                return;
            }
            Err(Attempt::Settled) => {
                log::info!("{NAME}: alert #{id} → {channel}: settled by another instance");
                self.outbox.remove(&(id, channel));
                (self.finished).insert((id, channel), std::time::Instant::now());
                return;
            }
        };
        p.attempts = p.attempts.saturating_add(1);
        let attempts = p.attempts;
        let next = after_attempt(&result, attempts, p.created_at, now);
        let error = result.as_ref().err().map(|e| e.reason().to_string());
        let mut row = DeliveryRow {
            alert_id: id,
            channel: channel.into(),
            state: PENDING.into(),
            attempts: attempts.min(i32::MAX as u32) as i32,
            last_error: error.clone(),
            next_attempt_at: None,
            sent_at: None,
        };
        match &next {
            Next::Sent => {
                log::info!("{NAME}: alert #{id} → {channel}: sent (attempt {attempts})");
                self.outbox.remove(&(id, channel));
                self.finished
                    .insert((id, channel), std::time::Instant::now());
                row.state = SENT.into();
                row.sent_at = Some(now);
            }
            Next::RetryAt(at) => {
                log::warn!(
                    "{NAME}: alert #{id} → {channel}: attempt {attempts} failed, next in {:.1} s: {}",
                    (at - now) as f64 / 1000.0,
                    error.as_deref().unwrap_or_default()
                );
                p.next_at = *at;
                row.next_attempt_at = Some(*at);
                if let Err(SendError::Retry {
                    retry_after_ms: Some(_),
                    ..
                }) = &result
                {
                    self.paused.insert(channel, *at);
                }
            }
            Next::Failed => {
                log::error!(
                    "{NAME}: alert #{id} → {channel}: given up after attempt {attempts}: {}",
                    error.as_deref().unwrap_or_default()
                );
                self.outbox.remove(&(id, channel));
                self.finished
                    .insert((id, channel), std::time::Instant::now());
                row.state = FAILED.into();
            }
        }
        let stamp = rfc3339(now);
        self.shared.board.channel(channel, |s| match &error {
            None => {
                s.state = ChannelState::Ok;
                s.last_sent_at = Some(stamp);
                s.sent_total += 1;
            }
            Some(e) if channel_fault => {
                s.state = ChannelState::Failing;
                s.last_error = Some(e.clone());
                s.last_error_at = Some(stamp);
                s.failed_total += 1;
            }
            Some(_) => s.failed_total += 1,
        });
        let store = self.shared.store.clone();
        let row_kept = row.clone();
        let write = async move { store.call(move |s| s.update_delivery(&row)).await };
        ctx.spawn(write.into_actor(self).map(move |r, act, _| {
            if let Err(e) = flatten(r) {
                log::warn!(
                    "{NAME}: alert #{id} → {channel}: cannot record the outcome yet ({e}): kept \
                     until the store answers"
                );
                act.keep_unwritten(row_kept);
            }
        }));
    }
}

/// Why an attempt did not deliver.
enum Attempt {
    Send(SendError),
    /// The stored alert cannot be sent (gone, or not understood).
    Unsendable(String),
    /// The store did not answer.
    Store(String),
    /// Claimed by another instance, or this one no longer leads (cluster).
    Held,
    /// Sent or given up by another instance (cluster).
    Settled,
}

fn outgoing(r: AlertRow) -> Result<Outgoing, String> {
    Ok(Outgoing {
        id: r.id,
        kind: Kind::parse(&r.kind).ok_or_else(|| format!("unknown kind `{}`", r.kind))?,
        severity: Severity::parse(&r.severity)
            .ok_or_else(|| format!("unknown severity `{}`", r.severity))?,
        key: r.key,
        message: r.message,
        repeats: r.repeats.max(1) as u32,
        created_at: r.created_at,
    })
}
