//! Proxyvisor: keeps a ready pool of working proxies and keeps hosted services up.

pub mod actors;
pub mod api;
pub mod bus;
pub mod channels;
pub mod checker;
pub mod clock;
pub mod config;
pub mod domain;
pub mod env;
pub mod gateway;
pub mod geoip;
pub mod logbuf;
pub mod net;
pub mod published;
pub mod redact;
pub mod repair;
pub mod startup;
pub mod state;
pub mod store;
