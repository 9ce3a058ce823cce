//! The pool written behind to the store: what changed since the last write (`dirty`,
//! `deleted`) goes in one batch every `database.flush_interval_ms` (and at once for a serving
//! proxy that died, `write_soon`), one batch at a time; a failed batch is put back, newer
//! changes winning, and the store shows degraded until a write (or a ping) goes through.

use super::{TierBalancer, NAME};
use crate::bus::messages::FlushNow;
use crate::clock::{now_ms, rfc3339};
use crate::published::board::StoreState;
use crate::store::models::ProxyRow;
use actix::prelude::*;
use std::future::Future;
use std::time::Duration;

impl TierBalancer {
    /// Takes everything pending for the store, as rows and deletions.
    pub(super) fn take_pending(&mut self) -> (Vec<ProxyRow>, Vec<String>) {
        let rows = self
            .dirty
            .drain()
            .filter_map(|k| self.pool.get(&k).map(ProxyRow::from))
            .collect();
        let deletes = self.deleted.drain().collect();
        (rows, deletes)
    }

    /// Puts back what a failed write did not store (unless newer changes replaced it).
    pub(super) fn restore_pending(&mut self, rows: Vec<ProxyRow>, deletes: Vec<String>) {
        for row in rows {
            if self.pool.contains_key(&row.url) {
                self.dirty.insert(row.url);
            }
        }
        for k in deletes {
            if !self.pool.contains_key(&k) {
                self.deleted.insert(k);
            }
        }
    }

    pub(super) fn write(
        &mut self,
    ) -> Option<impl ActorFuture<Self, Output = Result<usize, String>> + 'static> {
        let idle = self.dirty.is_empty() && self.deleted.is_empty();
        // With nothing to write, a degraded store is still tried (a ping), so health and the
        // writes refused meanwhile recover as soon as it is back.
        if self.flushing || (idle && !self.shared.board.store_degraded()) {
            return None;
        }
        self.flushing = true;
        let (rows, deletes) = self.take_pending();
        let store = self.shared.store.clone();
        let write = async move {
            // The rows come back with the write's result, to be restored if it failed.
            let written = store.call(move |s| {
                let r = if rows.is_empty() && deletes.is_empty() {
                    s.ping()
                } else {
                    s.write_batch(&rows, &deletes)
                };
                Ok((rows, deletes, r))
            });
            written.await.map_err(|e| e.to_string())
        };
        Some(write.into_actor(self).map(|r, act, _| {
            act.flushing = false;
            let now = rfc3339(now_ms());
            let (result, pending) = match r {
                Ok((rows, _, Ok(()))) => (Ok(rows.len()), act.dirty.len() + act.deleted.len()),
                Ok((rows, deletes, Err(e))) => {
                    log::warn!(
                        "{NAME}: store write of {} rows failed, will retry: {e}",
                        rows.len()
                    );
                    act.restore_pending(rows, deletes);
                    (Err(e.to_string()), act.dirty.len() + act.deleted.len())
                }
                Err(e) => (Err(e), act.dirty.len() + act.deleted.len()),
            };
            act.shared.board.store(|s| {
                s.pending_writes = pending;
                match &result {
                    Ok(n) => {
                        s.status = StoreState::Ok;
                        s.last_flush_at = Some(now);
                        s.rows_written += *n as u64;
                    }
                    Err(e) => {
                        s.status = StoreState::Degraded;
                        s.last_error = Some(e.clone());
                    }
                }
            });
            result
        }))
    }
}

impl Handler<FlushNow> for TierBalancer {
    type Result = ResponseActFuture<Self, Result<usize, String>>;
    fn handle(&mut self, _: FlushNow, _: &mut Self::Context) -> Self::Result {
        if self.stale {
            self.publish();
        }
        // A write already running finishes first (an older batch must not land after a newer
        // one); then whatever is left goes in this one.
        Box::pin(
            UntilIdle::default().then(|_, act: &mut Self, _| match act.write() {
                Some(write) => write.boxed_local(),
                None => actix::fut::ready(Ok(0)).boxed_local(),
            }),
        )
    }
}

/// Resolves once no store write is running.
#[derive(Default)]
struct UntilIdle(Option<std::pin::Pin<Box<tokio::time::Sleep>>>);

impl ActorFuture<TierBalancer> for UntilIdle {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        act: &mut TierBalancer,
        _: &mut Context<TierBalancer>,
        task: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        loop {
            if !act.flushing {
                return std::task::Poll::Ready(());
            }
            let sleep = self
                .0
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(20))));
            if sleep.as_mut().poll(task).is_pending() {
                return std::task::Poll::Pending;
            }
            self.0 = None;
        }
    }
}
