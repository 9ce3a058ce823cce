#![allow(dead_code)]
//! Loopback test servers shared by the integration tests: an HTTP origin and a
//! farm of (mis)behaving HTTP proxies (`farm`), a mutable proxy-list source
//! (`source`), SOCKS4/SOCKS5 proxies (`socks`), stand-ins for watched services and hosting
//! APIs (`hosting`), Telegram's bot API (`telegram`) and an SMTP relay (`smtp`). Everything
//! binds 127.0.0.1.

pub mod app;
pub mod farm;
pub mod hosting;
pub mod process;
pub mod relay;
pub mod smtp;
pub mod socks;
pub mod source;
pub mod telegram;
pub mod tools;
pub mod wait;
