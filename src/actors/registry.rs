//! Where actors find each other. The Supervisor replaces an address when it restarts an actor,
//! so nobody holds a stale `Addr` to a dead one.

use super::alerter::Alerter;
use super::allocator::Allocator;
use super::messages::Control;
use super::resurrection_manager::ResurrectionManager;
use super::service_monitor::ServiceMonitor;
use super::source_fetcher::SourceFetcher;
use super::tier_balancer::TierBalancer;
use super::validator_pool::ValidatorPool;
use actix::Addr;
use arc_swap::ArcSwapOption;
use std::sync::Arc;

#[derive(Default)]
pub struct Registry {
    pub balancer: ArcSwapOption<Addr<TierBalancer>>,
    pub validator: ArcSwapOption<Addr<ValidatorPool>>,
    pub fetcher: ArcSwapOption<Addr<SourceFetcher>>,
    pub resurrection: ArcSwapOption<Addr<ResurrectionManager>>,
    pub allocator: ArcSwapOption<Addr<Allocator>>,
    pub alerter: ArcSwapOption<Addr<Alerter>>,
    pub monitor: ArcSwapOption<Addr<ServiceMonitor>>,
    pub supervisor: ArcSwapOption<Addr<super::supervisor::Supervisor>>,
}

fn get<A: actix::Actor>(slot: &ArcSwapOption<Addr<A>>) -> Option<Addr<A>> {
    slot.load_full()
        .map(|a| (*a).clone())
        .filter(|a| a.connected())
}

impl Registry {
    pub fn balancer(&self) -> Option<Addr<TierBalancer>> {
        get(&self.balancer)
    }
    pub fn validator(&self) -> Option<Addr<ValidatorPool>> {
        get(&self.validator)
    }
    pub fn fetcher(&self) -> Option<Addr<SourceFetcher>> {
        get(&self.fetcher)
    }
    pub fn resurrection(&self) -> Option<Addr<ResurrectionManager>> {
        get(&self.resurrection)
    }
    pub fn allocator(&self) -> Option<Addr<Allocator>> {
        get(&self.allocator)
    }
    pub fn alerter(&self) -> Option<Addr<Alerter>> {
        get(&self.alerter)
    }
    pub fn monitor(&self) -> Option<Addr<ServiceMonitor>> {
        get(&self.monitor)
    }
    pub fn supervisor(&self) -> Option<Addr<super::supervisor::Supervisor>> {
        get(&self.supervisor)
    }

    /// Sends an alert to the Alerter; while it restarts the alert is logged and dropped.
    pub fn alert(&self, event: crate::domain::alerts::AlertEvent) {
        match self.alerter() {
            Some(a) => a.do_send(super::messages::Alert(event)),
            None => log::warn!(
                "alerter restarting; alert not queued: {} {}: {}",
                event.kind.as_str(),
                event.key,
                event.message
            ),
        }
    }

    pub fn set<A: actix::Actor>(slot: &ArcSwapOption<Addr<A>>, addr: &Addr<A>) {
        slot.store(Some(Arc::new(addr.clone())));
    }

    /// Sends a control message to the named actor. False when no such actor is running.
    pub fn control(&self, name: &str, msg: Control) -> bool {
        fn send<A>(a: Option<Addr<A>>, msg: Control) -> bool
        where
            A: actix::Actor<Context = actix::Context<A>> + actix::Handler<Control>,
        {
            a.map(|a| a.do_send(msg)).is_some()
        }
        match name {
            super::tier_balancer::NAME => send(self.balancer(), msg),
            super::validator_pool::NAME => send(self.validator(), msg),
            super::source_fetcher::NAME => send(self.fetcher(), msg),
            super::allocator::NAME => send(self.allocator(), msg),
            super::alerter::NAME => send(self.alerter(), msg),
            super::service_monitor::NAME => send(self.monitor(), msg),
            super::resurrection_manager::NAME => send(self.resurrection(), msg),
            _ => false,
        }
    }
}
