//! The supervised actors' names: how health, metrics, logs and the admin API call them.

pub const SOURCE_FETCHER: &str = "source_fetcher";
pub const VALIDATOR_POOL: &str = "validator_pool";
pub const TIER_BALANCER: &str = "tier_balancer";
pub const RESURRECTION_MANAGER: &str = "resurrection_manager";
pub const SERVICE_MONITOR: &str = "service_monitor";
pub const ALERTER: &str = "alerter";
pub const ALLOCATOR: &str = "allocator";
pub const ACCOUNTANT: &str = "accountant";
pub const COORDINATOR: &str = "coordinator";
