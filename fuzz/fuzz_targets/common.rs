//! What every source-list target checks on top of "no panic".

use proxyvisor::domain::proxy::{Endpoint, Protocol};
use proxyvisor::domain::source_list::ParsedList;

/// Every proxy found is a real endpoint: its key parses back to the same endpoint; samples
/// stay few and short.
pub fn check(list: &ParsedList) {
    for d in &list.proxies {
        let key = d.endpoint.key();
        let again = Endpoint::parse(&key, Protocol::Http)
            .unwrap_or_else(|e| panic!("the key {key:?} of a parsed proxy does not parse: {e}"));
        assert_eq!(again.key(), key, "the key does not round-trip");
        if let Some(c) = &d.country {
            assert!(
                c.len() == 2 && c.chars().all(|ch| ch.is_ascii_uppercase()),
                "{c:?}"
            );
        }
    }
    assert!(list.samples.len() <= 3 && list.samples.len() <= list.skipped);
    for s in &list.samples {
        assert!(
            s.chars().count() < 400,
            "a sample repeats too much input: {s:?}"
        );
    }
}
