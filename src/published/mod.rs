//! The immutable views the serving path reads (the API, health, metrics, the dashboard): each is
//! published by one actor into an `ArcSwap` of `state::Shared` and read without a lock, or (the
//! status board) behind a lock held only for a copy.

pub mod board;
pub mod cluster;
pub mod gateway;
pub mod loads;
pub mod monitors;
pub mod pool;
pub mod resurrection;
pub mod usage;
