//! Proxyvisor: keeps a ready pool of working proxies and keeps hosted services up.

pub mod config;
pub mod domain;
pub mod env;
pub mod store;
