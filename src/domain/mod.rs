//! The rules of Proxyvisor as pure code: no IO, no clocks, no actors. Each module holds one set
//! of rules and its unit tests.

pub mod alerts;
pub mod anonymity;
pub mod check;
pub mod choice;
pub mod cluster;
pub mod gateway;
pub mod health;
pub mod leases;
pub mod lifecycle;
pub mod managed;
pub mod monitor;
pub mod profiles;
pub mod proxy;
pub mod record;
pub mod resurrection;
pub mod revalidation;
pub mod round;
pub mod selection;
pub mod service_health;
pub mod service_stats;
pub mod source_list;
pub mod supervision;
pub mod tiers;
pub mod usage;
