//! The last log records in memory, for `GET /api/logs`: a bounded ring fed by the logger.
//!
//! [`RingLogger`] wraps env_logger's `Logger` (built from `RUST_LOG` as before, same format on
//! stderr) and also pushes each record it lets through into the ring. The ring's lock is held
//! only to push one record or to copy records out, never during IO; the message is formatted
//! before the lock is taken and the stderr write happens after it is released.
//!
//! Nothing here redacts: the rule is that no log line is ever written with a secret in it.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Records kept by the global ring.
pub const CAPACITY: usize = 2000;
/// Longest message kept (longer ones are cut, with `…`).
pub const MAX_MESSAGE: usize = 4096;

/// One log record as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Unix ms.
    pub at: i64,
    pub level: Level,
    pub target: String,
    pub message: String,
}

/// A bounded ring of records, oldest first.
pub struct Ring {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: VecDeque<Entry>,
    /// Records pushed since the start (evicted ones included).
    total: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere never makes the ring unusable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn push(&self, entry: Entry) {
        let mut inner = self.lock();
        if inner.entries.len() == self.capacity {
            inner.entries.pop_front();
        }
        inner.entries.push_back(entry);
        inner.total += 1;
    }

    /// Records pushed since the start, evicted ones included.
    pub fn total(&self) -> u64 {
        self.lock().total
    }

    /// The newest `limit` records at `level` or more severe, oldest first (newest last).
    pub fn recent(&self, limit: usize, level: LevelFilter) -> Vec<Entry> {
        let inner = self.lock();
        let mut out: Vec<Entry> = inner
            .entries
            .iter()
            .rev()
            .filter(|e| e.level <= level)
            .take(limit)
            .cloned()
            .collect();
        drop(inner);
        out.reverse();
        out
    }

    /// Every record kept, oldest first.
    pub fn all(&self) -> Vec<Entry> {
        self.lock().entries.iter().cloned().collect()
    }
}

/// Records kept by the ring of an in-process install ([`install`]): a test reads everything
/// logged while it ran, even with other tests logging at `trace` meanwhile.
pub const IN_PROCESS_CAPACITY: usize = 100_000;

static RING: OnceLock<Ring> = OnceLock::new();

/// The ring `GET /api/logs` reads (empty until a [`RingLogger`] feeds it).
pub fn ring() -> &'static Ring {
    RING.get_or_init(|| Ring::new(CAPACITY))
}

/// A `log::Log` that forwards to env_logger and keeps a copy of each record in a ring: the
/// records env_logger lets through, plus any at `also` or more severe (so a test can keep
/// `trace` records in the ring while stderr stays quiet).
pub struct RingLogger {
    inner: env_logger::Logger,
    also: LevelFilter,
    ring: &'static Ring,
}

impl RingLogger {
    pub fn new(inner: env_logger::Logger, also: LevelFilter, ring: &'static Ring) -> RingLogger {
        RingLogger { inner, also, ring }
    }

    /// The most verbose level any record may need (for `log::set_max_level`).
    pub fn max_level(&self) -> LevelFilter {
        self.inner.filter().max(self.also)
    }
}

fn message(record: &Record<'_>) -> String {
    let mut text = record.args().to_string();
    if text.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

impl Log for RingLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.also || self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        let to_stderr = self.inner.matches(record);
        if to_stderr || record.level() <= self.also {
            self.ring.push(Entry {
                at: crate::clock::now_ms(),
                level: record.level(),
                target: record.target().to_string(),
                message: message(record),
            });
        }
        if to_stderr {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Installs the ring logger as the process's logger: stderr as env_logger's `from_env` with
/// `default_filter` when `RUST_LOG` is unset, the ring keeping the same records plus any at
/// `also` or more severe. Answers false (and changes nothing) when a logger is already set.
pub fn try_init(default_filter: &str, also: LevelFilter) -> bool {
    let inner =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter))
            .build();
    let logger = RingLogger::new(inner, also, ring());
    let max = logger.max_level();
    if log::set_boxed_logger(Box::new(logger)).is_err() {
        return false;
    }
    log::set_max_level(max);
    true
}

/// For the binary: stderr as before (`RUST_LOG`, default `info`); the ring keeps what stderr
/// shows.
pub fn init_main() {
    try_init("info", LevelFilter::Off);
}

/// For in-process use (the test suite runs the app in its own process): installs the ring
/// logger once, whoever calls first; later calls do nothing. The ring keeps every record down to
/// `trace` (the last [`IN_PROCESS_CAPACITY`] of them, when this is called before anything read
/// the ring); stderr shows only what `RUST_LOG` asks for (nothing by default).
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        RING.get_or_init(|| Ring::new(IN_PROCESS_CAPACITY));
        try_init("off", LevelFilter::Trace);
    });
}

/// Parses `error`, `warn` (or `warning`), `info`, `debug`, `trace` (any case).
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    match s.trim().to_ascii_lowercase().as_str() {
        "error" => Some(LevelFilter::Error),
        "warn" | "warning" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize, level: Level) -> Entry {
        Entry {
            at: i as i64,
            level,
            target: "t".into(),
            message: format!("m{i}"),
        }
    }

    fn messages(v: &[Entry]) -> Vec<String> {
        v.iter().map(|e| e.message.clone()).collect()
    }

    #[test]
    fn the_ring_keeps_the_newest_records_in_order() {
        let ring = Ring::new(3);
        for i in 0..5 {
            ring.push(entry(i, Level::Info));
        }
        assert_eq!(messages(&ring.all()), ["m2", "m3", "m4"]);
        assert_eq!(ring.total(), 5);
        assert_eq!(
            messages(&ring.recent(2, LevelFilter::Trace)),
            ["m3", "m4"],
            "the newest, newest last"
        );
        assert_eq!(ring.recent(10, LevelFilter::Trace).len(), 3);
    }

    #[test]
    fn level_filters_at_or_above() {
        let ring = Ring::new(10);
        let levels = [
            Level::Error,
            Level::Warn,
            Level::Info,
            Level::Debug,
            Level::Trace,
        ];
        for (i, l) in levels.into_iter().enumerate() {
            ring.push(entry(i, l));
        }
        assert_eq!(messages(&ring.recent(10, LevelFilter::Error)), ["m0"]);
        assert_eq!(messages(&ring.recent(10, LevelFilter::Warn)), ["m0", "m1"]);
        assert_eq!(ring.recent(10, LevelFilter::Debug).len(), 4);
        assert_eq!(ring.recent(10, LevelFilter::Trace).len(), 5);
        // The limit counts matching records only.
        assert_eq!(messages(&ring.recent(1, LevelFilter::Warn)), ["m1"]);
    }

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level("WARN"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("warning"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("trace"), Some(LevelFilter::Trace));
        assert_eq!(parse_level("loud"), None);
        assert_eq!(parse_level(""), None);
    }

    fn logger(filter: &str, also: LevelFilter) -> (RingLogger, &'static Ring) {
        let ring: &'static Ring = Box::leak(Box::new(Ring::new(100)));
        let inner = env_logger::Builder::new()
            .parse_filters(filter)
            .target(env_logger::Target::Pipe(Box::new(std::io::sink())))
            .build();
        (RingLogger::new(inner, also, ring), ring)
    }

    fn emit(l: &RingLogger, level: Level, target: &str, msg: &str) {
        l.log(
            &Record::builder()
                .level(level)
                .target(target)
                .args(format_args!("{msg}"))
                .build(),
        );
    }

    #[test]
    fn the_logger_keeps_what_it_lets_through() {
        let (l, ring) = logger("warn,proxyvisor=debug", LevelFilter::Off);
        emit(&l, Level::Info, "hyper", "not kept");
        emit(&l, Level::Warn, "hyper", "kept warn");
        emit(&l, Level::Debug, "proxyvisor::x", "kept debug");
        emit(&l, Level::Trace, "proxyvisor::x", "not kept trace");
        let kept = ring.all();
        assert_eq!(messages(&kept), ["kept warn", "kept debug"]);
        assert_eq!(kept[1].target, "proxyvisor::x");
        assert_eq!(kept[1].level, Level::Debug);
        assert!(kept[0].at > 0);
        assert_eq!(l.max_level(), LevelFilter::Debug);
        assert!(!l.enabled(&Metadata::builder().level(Level::Info).target("h").build()));
    }

    #[test]
    fn also_keeps_quieter_records_in_the_ring_only() {
        let (l, ring) = logger("off", LevelFilter::Trace);
        emit(&l, Level::Trace, "anything", "kept");
        assert_eq!(messages(&ring.all()), ["kept"]);
        assert_eq!(l.max_level(), LevelFilter::Trace);
        assert!(l.enabled(&Metadata::builder().level(Level::Trace).target("h").build()));
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let (l, ring) = logger("off", LevelFilter::Trace);
        emit(&l, Level::Error, "t", &"é".repeat(MAX_MESSAGE));
        let m = &ring.all()[0].message;
        assert!(m.len() <= MAX_MESSAGE + '…'.len_utf8(), "{}", m.len());
        assert!(m.ends_with('…'));
    }
}
