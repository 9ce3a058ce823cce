//! Lease loads, as the Allocator publishes them (for `/api/allocation` and `least_loaded`).

use std::collections::HashMap;

/// Slots in use per proxy URL, and the number of live leases.
#[derive(Debug, Default)]
pub struct Loads {
    pub per_proxy: HashMap<String, u32>,
    pub leases: usize,
}
