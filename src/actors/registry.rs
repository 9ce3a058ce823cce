//! Where actors find each other. The Supervisor replaces an address when it restarts an actor,
//! so nobody holds a stale `Addr` to a dead one.

use super::alerter::Alerter;
use super::allocator::Allocator;
use super::messages::Crash;
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

    /// Makes the named actor panic. False when no such actor is running.
    pub fn crash(&self, name: &str) -> bool {
        match name {
            super::tier_balancer::NAME => self.balancer().map(|a| a.do_send(Crash)).is_some(),
            super::validator_pool::NAME => self.validator().map(|a| a.do_send(Crash)).is_some(),
            super::source_fetcher::NAME => self.fetcher().map(|a| a.do_send(Crash)).is_some(),
            super::allocator::NAME => self.allocator().map(|a| a.do_send(Crash)).is_some(),
            super::alerter::NAME => self.alerter().map(|a| a.do_send(Crash)).is_some(),
            super::service_monitor::NAME => self.monitor().map(|a| a.do_send(Crash)).is_some(),
            super::resurrection_manager::NAME => {
                self.resurrection().map(|a| a.do_send(Crash)).is_some()
            }
            _ => false,
        }
    }
}
