#![allow(dead_code)]
//! Loopback test servers shared by the integration tests, all on the testkit's `loopback`
//! plumbing: from the testkit (shared with the bench) an HTTP origin and a farm of
//! (mis)behaving HTTP proxies (`farm`) and a mutable proxy-list source (`source`); here
//! SOCKS4/SOCKS5 proxies (`socks`), stand-ins for watched services and hosting APIs
//! (`hosting`), Telegram's bot API (`telegram`), an SMTP relay (`smtp`) and a TCP relay that
//! can cut a connection (`relay`). Everything binds 127.0.0.1.

pub mod app;
pub use proxyvisor_testkit::{farm, source, wait};
pub mod hosting;
pub mod origin;
pub mod process;
pub mod relay;
pub mod smtp;
pub mod socks;
pub mod telegram;
pub mod tools;
