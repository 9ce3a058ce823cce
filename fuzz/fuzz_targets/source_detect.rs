//! Any body of a proxifly-style source (JSON when it starts with `[`, plain otherwise): no
//! panic, only real endpoints, and the same answer as the format it was detected as.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyvisor::domain::proxy::Protocol;
use proxyvisor::domain::source_list::{parse, Format};

#[path = "common.rs"]
mod common;

fuzz_target!(|body: &[u8]| {
    let list = parse(body, Format::Detect, Protocol::Socks5);
    common::check(&list);
    let json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let format = if json { Format::Json } else { Format::Plain };
    assert_eq!(list, parse(body, format, Protocol::Socks5));
});
