//! Folding repeats of an open alert, and closing it once on recovery.

use super::*;

/// An alert not closed yet, as the Alerter remembers it.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenAlert {
    pub id: i64,
    pub kind: Kind,
    pub key: String,
    /// Unix ms of its message (the first occurrence).
    pub created_at: i64,
    pub repeats: u32,
}

/// What the Alerter does with an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Fold {
    /// Store a new alert and send it to every channel.
    New,
    /// The same key and kind within the cooldown: count it on the open alert `id` (which now has
    /// `repeats` occurrences); no new message.
    Repeat { id: i64, repeats: u32 },
    /// A recovery: store it (already closed), close these open alerts of its key, send it once.
    Recover { close: Vec<i64> },
    /// A recovery with nothing open for its key: nothing to say.
    Drop,
}

/// The folding rule. A `service_recovered` event closes every open alert of its key and is
/// sent once; with nothing open it is dropped. A `daily_report` is always new. Any other event
/// with the key and kind of an open alert whose message went out less than `cooldown_ms` ago
/// is folded into it ("repeated N times"); otherwise it is a new alert.
pub fn fold(open: &[OpenAlert], e: &AlertEvent, cooldown_ms: i64) -> Fold {
    match e.kind {
        Kind::ServiceRecovered => {
            let close: Vec<i64> = open
                .iter()
                .filter(|a| a.key == e.key && a.kind != Kind::ServiceRecovered)
                .map(|a| a.id)
                .collect();
            if close.is_empty() {
                Fold::Drop
            } else {
                Fold::Recover { close }
            }
        }
        Kind::DailyReport => Fold::New,
        kind => open
            .iter()
            .filter(|a| a.key == e.key && a.kind == kind)
            .filter(|a| e.at.saturating_sub(a.created_at) < cooldown_ms)
            .max_by_key(|a| (a.created_at, a.id))
            .map_or(Fold::New, |a| Fold::Repeat {
                id: a.id,
                repeats: a.repeats.saturating_add(1),
            }),
    }
}

/// Whether an alert of this kind stays open once stored (recoveries and reports are closed at
/// once: nothing can recover them).
pub fn opens(kind: Kind) -> bool {
    !matches!(kind, Kind::ServiceRecovered | Kind::DailyReport)
}
