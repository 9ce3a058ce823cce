//! Where actors and the API find each other: one port per message, holding the `Recipient` of
//! the actor that handles it now. An actor fills its ports when it starts (`actors::start_child`);
//! the Supervisor starting a new instance replaces them, so nobody holds a stale address. A port
//! is empty (`get` answers `None`) while its actor restarts: the API answers 503.

use super::messages::*;
use actix::{Message, Recipient};
use arc_swap::{ArcSwap, ArcSwapOption};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The current receiver of `M`.
pub struct Port<M>
where
    M: Message + Send,
    M::Result: Send,
{
    slot: ArcSwapOption<Recipient<M>>,
}

impl<M> Default for Port<M>
where
    M: Message + Send,
    M::Result: Send,
{
    fn default() -> Self {
        Port {
            slot: ArcSwapOption::empty(),
        }
    }
}

impl<M> Port<M>
where
    M: Message + Send,
    M::Result: Send,
{
    pub fn set(&self, r: Recipient<M>) {
        self.slot.store(Some(Arc::new(r)));
    }

    /// The receiver, when it is running.
    pub fn get(&self) -> Option<Recipient<M>> {
        self.slot
            .load_full()
            .map(|r| (*r).clone())
            .filter(|r| r.connected())
    }

    /// Sends without waiting; false when nobody receives (the message is dropped).
    pub fn send(&self, msg: M) -> bool {
        self.get().map(|r| r.do_send(msg)).is_some()
    }
}

#[derive(Default)]
pub struct Registry {
    // What the TierBalancer takes.
    pub source_list: Port<SourceList>,
    pub verdict: Port<Verdict>,
    pub check_extras: Port<CheckExtras>,
    pub report: Port<Report>,
    pub force_accept: Port<ForceAccept>,
    pub flush_pool: Port<FlushNow>,
    pub managed_change: Port<ManagedChange>,
    pub check_managed: Port<CheckManaged>,
    // The ValidatorPool.
    pub check_batch: Port<CheckBatch>,
    pub check_now: Port<CheckNow>,
    pub cancel_queued: Port<CancelQueued>,
    // The SourceFetcher.
    pub fetch_now: Port<FetchNow>,
    // The ResurrectionManager.
    pub dead_event: Port<DeadEvent>,
    // The Allocator.
    pub allocate: Port<Allocate>,
    pub renew: Port<Renew>,
    pub release: Port<Release>,
    // The Alerter.
    pub alert: Port<Alert>,
    pub raise: Port<Raise>,
    // The Accountant.
    pub traffic: Port<Traffic>,
    pub flush_usage: Port<FlushNow>,
    // The ServiceMonitor.
    pub add_monitor: Port<AddMonitor>,
    pub remove_monitor: Port<RemoveMonitor>,
    pub restart_monitor: Port<RestartMonitor>,
    pub flush_monitors: Port<FlushNow>,
    // The Supervisor.
    pub restart_child: Port<RestartChild>,
    pub stop_children: Port<StopChildren>,
    /// Every supervised actor's `Control`, by name.
    controls: ArcSwap<BTreeMap<&'static str, Recipient<Control>>>,
}

impl Registry {
    /// Sends an alert to the Alerter; while it restarts the alert is logged and dropped.
    pub fn alert(&self, event: crate::domain::alerts::AlertEvent) {
        if let Some(a) = self.alert.get() {
            a.do_send(Alert(event));
        } else {
            log::warn!(
                "alerter restarting; alert not queued: {} {}: {}",
                event.kind.as_str(),
                event.key,
                event.message
            );
        }
    }

    /// The actor `name` is now `control`'s.
    pub fn set_control(&self, name: &'static str, control: Recipient<Control>) {
        self.controls.rcu(|m| {
            let mut m = BTreeMap::clone(m);
            m.insert(name, control.clone());
            m
        });
    }

    /// Sends a control message to the named actor. False when no such actor is running.
    pub fn control(&self, name: &str, msg: Control) -> bool {
        self.controls
            .load()
            .get(name)
            .filter(|r| r.connected())
            .map(|r| r.do_send(msg))
            .is_some()
    }

    /// Whether `me` is the instance of `name` the registry holds (a replaced one is not).
    pub fn is_current(&self, name: &str, me: &Recipient<Control>) -> bool {
        self.controls.load().get(name) == Some(me)
    }
}
