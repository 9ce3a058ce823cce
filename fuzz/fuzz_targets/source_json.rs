//! Any body parsed as a json proxy list: no panic, and only real endpoints come out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyvisor::domain::proxy::Protocol;
use proxyvisor::domain::source_list::{parse, Format};

#[path = "common.rs"]
mod common;

fuzz_target!(|body: &[u8]| {
    let list = parse(body, Format::Json, Protocol::Http);
    common::check(&list);
});
