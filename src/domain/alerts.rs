//! Alerts: what happened (`Kind`), how bad (`Severity`), and the event every actor sends the
//! Alerter. The Alerter's rules (folding repeats within `alerts.cooldown_secs`, closing an alert
//! once on recovery, retry backoff of the outbox) live here too.

use serde::Serialize;

/// The structured kind of an alert, as `/api/alerts`, the email subject and the first Telegram
/// line show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ServiceDown,
    ServiceDegraded,
    RepairStarted,
    RepairFailed,
    ServiceRecovered,
    PredictiveRestart,
    PoolBelowMinimum,
    PoolEmpty,
    ManagedProxyStatus,
    ActorFailed,
    DailyReport,
    Test,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ServiceDown => "service_down",
            Kind::ServiceDegraded => "service_degraded",
            Kind::RepairStarted => "repair_started",
            Kind::RepairFailed => "repair_failed",
            Kind::ServiceRecovered => "service_recovered",
            Kind::PredictiveRestart => "predictive_restart",
            Kind::PoolBelowMinimum => "pool_below_minimum",
            Kind::PoolEmpty => "pool_empty",
            Kind::ManagedProxyStatus => "managed_proxy_status",
            Kind::ActorFailed => "actor_failed",
            Kind::DailyReport => "daily_report",
            Kind::Test => "test",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Sent without a notification sound (Telegram `disable_notification`).
    Info,
    Warning,
    Critical,
}

/// Something an admin should hear of. `key` names the thing it is about (e.g.
/// `service:backend`), so repeats fold and a recovery closes the alerts of the same key.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertEvent {
    pub kind: Kind,
    pub key: String,
    pub severity: Severity,
    /// Plain text, no secrets.
    pub message: String,
    /// Unix ms.
    pub at: i64,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::ServiceDown,
        Kind::ServiceDegraded,
        Kind::RepairStarted,
        Kind::RepairFailed,
        Kind::ServiceRecovered,
        Kind::PredictiveRestart,
        Kind::PoolBelowMinimum,
        Kind::PoolEmpty,
        Kind::ManagedProxyStatus,
        Kind::ActorFailed,
        Kind::DailyReport,
        Kind::Test,
    ];

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// Telegram's `disable_notification`: info arrives without a sound.
    pub fn silent(self) -> bool {
        self == Severity::Info
    }
}

impl AlertEvent {
    pub fn new(
        kind: Kind,
        key: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
        at: i64,
    ) -> Self {
        AlertEvent {
            kind,
            key: key.into(),
            severity,
            message: message.into(),
            at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Folding and closing
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Delivery: retries
// ---------------------------------------------------------------------------------------------

/// First retry after 1 s, doubling, at most 5 min apart.
pub const RETRY_BASE_MS: i64 = 1_000;
pub const RETRY_CAP_MS: i64 = 300_000;
/// A channel's own `retry_after` is honoured up to an hour.
pub const RETRY_AFTER_CAP_MS: i64 = 3_600_000;
/// A delivery still not made a day after its alert is given up (state `failed`).
pub const GIVE_UP_AFTER_MS: i64 = 86_400_000;

/// Why one attempt to deliver did not deliver.
#[derive(Clone, Debug, PartialEq)]
pub enum SendError {
    /// Worth another try (network, timeout, 5xx, rate limit), after `retry_after` when the
    /// channel said so.
    Retry {
        reason: String,
        retry_after_ms: Option<i64>,
    },
    /// Will not work without a change of config (bad token, unknown chat, refused address).
    Permanent(String),
}

impl SendError {
    pub fn reason(&self) -> &str {
        match self {
            SendError::Retry { reason, .. } | SendError::Permanent(reason) => reason,
        }
    }
}

/// What becomes of a delivery after an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    Sent,
    /// Try again at this time (unix ms).
    RetryAt(i64),
    Failed,
}

/// The wait before attempt `attempts + 1`, after `attempts` (>= 1) failed ones.
pub fn retry_delay_ms(attempts: u32, retry_after_ms: Option<i64>) -> i64 {
    if let Some(after) = retry_after_ms {
        return after.clamp(0, RETRY_AFTER_CAP_MS);
    }
    let doublings = attempts.saturating_sub(1).min(30);
    (RETRY_BASE_MS << doublings).min(RETRY_CAP_MS)
}

/// The delivery rule: after attempt number `attempts` (counting this one) of an alert created
/// at `created_at` ended in `result` at `now`.
pub fn after_attempt(
    result: &Result<(), SendError>,
    attempts: u32,
    created_at: i64,
    now: i64,
) -> Next {
    match result {
        Ok(()) => Next::Sent,
        Err(SendError::Permanent(_)) => Next::Failed,
        Err(SendError::Retry { retry_after_ms, .. }) => {
            let at = now.saturating_add(retry_delay_ms(attempts, *retry_after_ms));
            if at.saturating_sub(created_at) > GIVE_UP_AFTER_MS {
                Next::Failed
            } else {
                Next::RetryAt(at)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Message text
// ---------------------------------------------------------------------------------------------

/// What a channel sends: one alert as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub id: i64,
    pub kind: Kind,
    pub key: String,
    pub severity: Severity,
    pub message: String,
    pub repeats: u32,
    pub created_at: i64,
}

/// The first line of every message: `[CRITICAL] service_down`.
pub fn headline(kind: Kind, severity: Severity) -> String {
    format!("[{}] {}", severity.as_str().to_uppercase(), kind.as_str())
}

/// The plain text: the headline, then the message, then how often it happened when more than
/// once.
pub fn plain_text(a: &Outgoing) -> String {
    let mut text = format!("{}\n{}", headline(a.kind, a.severity), a.message);
    if a.repeats > 1 {
        text.push_str(&format!("\n(repeated {} times)", a.repeats));
    }
    text
}

/// Longest Telegram message, in characters.
pub const TELEGRAM_MAX_CHARS: usize = 4096;

/// Escapes `&`, `<`, `>` and `"` for Telegram's `parse_mode=HTML`.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The Telegram text: the plain text HTML-escaped, cut (by characters, never inside an entity)
/// so that even the escaped form fits in 4096 characters, with `…` where it was cut.
pub fn telegram_text(a: &Outgoing) -> String {
    let plain = plain_text(a);
    let escaped = html_escape(&plain);
    if escaped.chars().count() <= TELEGRAM_MAX_CHARS {
        return escaped;
    }
    let mut out = String::new();
    let mut len = 0;
    for c in plain.chars() {
        let piece = html_escape(c.encode_utf8(&mut [0; 4]));
        let n = piece.chars().count();
        if len + n > TELEGRAM_MAX_CHARS - 1 {
            break;
        }
        out.push_str(&piece);
        len += n;
    }
    out.push('…');
    out
}

/// The email subject: the headline and the key, on one line.
pub fn email_subject(a: &Outgoing) -> String {
    let key: String = a
        .key
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    format!("Proxyvisor {} ({key})", headline(a.kind, a.severity))
}

// ---------------------------------------------------------------------------------------------
// Daily report
// ---------------------------------------------------------------------------------------------

const DAY_MS: i64 = 86_400_000;

/// `alerts.daily_report_at`: a time of day in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DailyAt {
    pub hour: u32,
    pub minute: u32,
}

impl DailyAt {
    /// `"HH:MM"` (UTC, 24 h); `Ok(None)` for an empty string (no report).
    pub fn parse(s: &str) -> Result<Option<DailyAt>, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let bad = || {
            format!(
                "must be a UTC time HH:MM (00:00 to 23:59) or \"\", got `{}`",
                s.chars().take(16).collect::<String>()
            )
        };
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        let num = |p: &str| {
            (!p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u32>().ok())
                .flatten()
        };
        match (num(h), num(m)) {
            (Some(hour), Some(minute)) if hour < 24 && minute < 60 && m.len() == 2 => {
                Ok(Some(DailyAt { hour, minute }))
            }
            _ => Err(bad()),
        }
    }

    /// The first such time strictly after `now` (unix ms).
    pub fn next_after(self, now: i64) -> i64 {
        let offset = (self.hour as i64 * 60 + self.minute as i64) * 60_000;
        let today = now.div_euclid(DAY_MS) * DAY_MS + offset;
        if today > now {
            today
        } else {
            today + DAY_MS
        }
    }
}

/// What the daily report says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportInput {
    pub primary: usize,
    pub standby: usize,
    pub emergency: usize,
    pub fresh: usize,
    pub dead: usize,
    pub blacklisted: usize,
    pub minimum_guaranteed: usize,
    /// Kinds of the alerts of the last 24 h (reports excluded), one entry per alert.
    pub alerts: Vec<Kind>,
    pub open_alerts: usize,
}

pub fn daily_report(r: &ReportInput) -> String {
    let serving = r.primary + r.standby + r.emergency;
    let mut text = format!(
        "Pool: {serving} serving ({} primary, {} standby, {} emergency), {} fresh, {} dead, \
         {} blacklisted; minimum {} {}.",
        r.primary,
        r.standby,
        r.emergency,
        r.fresh,
        r.dead,
        r.blacklisted,
        r.minimum_guaranteed,
        if serving >= r.minimum_guaranteed {
            "met"
        } else {
            "NOT met"
        },
    );
    let alerts: Vec<Kind> = r
        .alerts
        .iter()
        .copied()
        .filter(|k| *k != Kind::DailyReport)
        .collect();
    if alerts.is_empty() {
        text.push_str("\nAlerts in the last 24 h: none.");
    } else {
        let counts: Vec<String> = Kind::ALL
            .iter()
            .filter_map(|k| {
                let n = alerts.iter().filter(|a| *a == k).count();
                (n > 0).then(|| format!("{} {n}", k.as_str()))
            })
            .collect();
        text.push_str(&format!(
            "\nAlerts in the last 24 h: {} ({}).",
            alerts.len(),
            counts.join(", ")
        ));
    }
    text.push_str(&format!("\nOpen alerts: {}.", r.open_alerts));
    text
}

// ---------------------------------------------------------------------------------------------
// When the pool and managed proxies raise alerts
// ---------------------------------------------------------------------------------------------

/// The key of the pool's alerts.
pub const POOL_KEY: &str = "pool";

/// What the pool's serving count has done, as the TierBalancer tells it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolWatch {
    /// Some proxy has served.
    served: bool,
    /// `minimum_guaranteed` has been met (since the last alert).
    met: bool,
    /// An alert is out (below minimum or empty) and no recovery yet.
    alerted: bool,
    empty: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolAlert {
    /// Fell below `minimum_guaranteed` (once per crossing).
    BelowMinimum { serving: usize, minimum: usize },
    /// Nothing serves any more, after something did.
    Empty,
    /// Back at `minimum_guaranteed` after an alert.
    Recovered { serving: usize, minimum: usize },
}

impl PoolWatch {
    /// Called at each publication with the serving count; `checked` says whether any check has
    /// run in this process (before that, the counts are the stored pool's, not news).
    pub fn observe(&mut self, serving: usize, minimum: usize, checked: bool) -> Option<PoolAlert> {
        if serving > 0 {
            self.served = true;
            self.empty = false;
        }
        if !checked {
            return None;
        }
        if serving == 0 {
            if !self.served || self.empty {
                return None;
            }
            self.empty = true;
            self.alerted = true;
            self.met = false;
            return Some(PoolAlert::Empty);
        }
        if serving >= minimum {
            self.met = true;
            if self.alerted {
                self.alerted = false;
                return Some(PoolAlert::Recovered { serving, minimum });
            }
            return None;
        }
        if self.met {
            self.met = false;
            self.alerted = true;
            return Some(PoolAlert::BelowMinimum { serving, minimum });
        }
        None
    }
}

impl PoolAlert {
    pub fn event(self, at: i64) -> AlertEvent {
        match self {
            PoolAlert::BelowMinimum { serving, minimum } => AlertEvent::new(
                Kind::PoolBelowMinimum,
                POOL_KEY,
                Severity::Warning,
                format!("{serving} serving proxies, below tiers.minimum_guaranteed = {minimum}"),
                at,
            ),
            PoolAlert::Empty => AlertEvent::new(
                Kind::PoolEmpty,
                POOL_KEY,
                Severity::Critical,
                "no proxy serves any more: every checked proxy failed",
                at,
            ),
            PoolAlert::Recovered { serving, minimum } => AlertEvent::new(
                Kind::ServiceRecovered,
                POOL_KEY,
                Severity::Info,
                format!("the pool is back: {serving} serving proxies (minimum {minimum})"),
                at,
            ),
        }
    }
}

/// A managed proxy's status change worth an alert: between `healthy`, `degraded`, `down` and
/// `blocked` (not from or to `unknown`, not the first sighting).
pub fn managed_status_alert(
    name: &str,
    before: Option<crate::domain::managed::Status>,
    now: crate::domain::managed::Status,
    at: i64,
) -> Option<AlertEvent> {
    use crate::domain::managed::Status;
    let before = before.filter(|b| *b != Status::Unknown)?;
    if now == Status::Unknown || now == before {
        return None;
    }
    let severity = match now {
        Status::Healthy => Severity::Info,
        Status::Degraded => Severity::Warning,
        _ => Severity::Critical,
    };
    Some(AlertEvent::new(
        Kind::ManagedProxyStatus,
        format!("managed:{name}:{}", now.as_str()),
        severity,
        format!(
            "managed proxy `{name}` is {} (was {})",
            now.as_str(),
            before.as_str()
        ),
        at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::managed::Status;

    fn ev(kind: Kind, key: &str, at: i64) -> AlertEvent {
        AlertEvent::new(kind, key, Severity::Critical, "m", at)
    }

    fn open(id: i64, kind: Kind, key: &str, created_at: i64) -> OpenAlert {
        OpenAlert {
            id,
            kind,
            key: key.into(),
            created_at,
            repeats: 1,
        }
    }

    #[test]
    fn repeats_within_the_cooldown_fold_into_the_open_alert() {
        let book = vec![open(1, Kind::ServiceDown, "service:api", 1_000)];
        let e = ev(Kind::ServiceDown, "service:api", 1_000 + 299_999);
        assert_eq!(fold(&book, &e, 300_000), Fold::Repeat { id: 1, repeats: 2 });
        // After the cooldown, a new message.
        let late = ev(Kind::ServiceDown, "service:api", 1_000 + 300_000);
        assert_eq!(fold(&book, &late, 300_000), Fold::New);
        // Another kind or key is news.
        assert_eq!(
            fold(
                &book,
                &ev(Kind::ServiceDegraded, "service:api", 2_000),
                300_000
            ),
            Fold::New
        );
        assert_eq!(
            fold(&book, &ev(Kind::ServiceDown, "service:web", 2_000), 300_000),
            Fold::New
        );
        // Cooldown 0 folds nothing.
        assert_eq!(
            fold(&book, &ev(Kind::ServiceDown, "service:api", 1_000), 0),
            Fold::New
        );
        // The newest open alert of the key and kind takes the repeat.
        let two = vec![
            open(1, Kind::ServiceDown, "k", 0),
            OpenAlert {
                repeats: 4,
                ..open(7, Kind::ServiceDown, "k", 500)
            },
        ];
        assert_eq!(
            fold(&two, &ev(Kind::ServiceDown, "k", 600), 1_000),
            Fold::Repeat { id: 7, repeats: 5 }
        );
        // Daily reports never fold.
        let reports = vec![open(3, Kind::DailyReport, "daily_report", 0)];
        assert_eq!(
            fold(&reports, &ev(Kind::DailyReport, "daily_report", 1), 1_000),
            Fold::New
        );
    }

    #[test]
    fn a_recovery_closes_the_open_alerts_of_its_key_once() {
        let book = vec![
            open(1, Kind::ServiceDown, "service:api", 0),
            open(2, Kind::RepairFailed, "service:api", 10),
            open(3, Kind::ServiceDown, "service:web", 0),
        ];
        let r = ev(Kind::ServiceRecovered, "service:api", 50);
        assert_eq!(
            fold(&book, &r, 300_000),
            Fold::Recover { close: vec![1, 2] }
        );
        let after: Vec<OpenAlert> = book
            .into_iter()
            .filter(|a| a.key != "service:api")
            .collect();
        assert_eq!(
            fold(&after, &r, 300_000),
            Fold::Drop,
            "a second recovery is dropped"
        );
        assert!(
            !opens(Kind::ServiceRecovered) && !opens(Kind::DailyReport) && opens(Kind::PoolEmpty)
        );
    }

    #[test]
    fn retries_back_off_doubling_capped_and_honour_retry_after() {
        assert_eq!(retry_delay_ms(1, None), 1_000);
        assert_eq!(retry_delay_ms(2, None), 2_000);
        assert_eq!(retry_delay_ms(4, None), 8_000);
        assert_eq!(retry_delay_ms(9, None), 256_000);
        assert_eq!(retry_delay_ms(10, None), RETRY_CAP_MS);
        assert_eq!(retry_delay_ms(u32::MAX, None), RETRY_CAP_MS);
        assert_eq!(
            retry_delay_ms(5, Some(1_000)),
            1_000,
            "the channel's word wins"
        );
        assert_eq!(retry_delay_ms(1, Some(-5)), 0);
        assert_eq!(retry_delay_ms(1, Some(i64::MAX)), RETRY_AFTER_CAP_MS);

        let retry = Err(SendError::Retry {
            reason: "down".into(),
            retry_after_ms: None,
        });
        assert_eq!(after_attempt(&Ok(()), 1, 0, 10), Next::Sent);
        assert_eq!(after_attempt(&retry, 1, 0, 10), Next::RetryAt(1_010));
        assert_eq!(after_attempt(&retry, 3, 0, 10), Next::RetryAt(4_010));
        assert_eq!(
            after_attempt(&Err(SendError::Permanent("401".into())), 1, 0, 10),
            Next::Failed
        );
        assert_eq!(
            after_attempt(&retry, 50, 0, GIVE_UP_AFTER_MS),
            Next::Failed,
            "given up after a day"
        );
    }

    fn out(message: &str, severity: Severity, repeats: u32) -> Outgoing {
        Outgoing {
            id: 1,
            kind: Kind::ServiceDown,
            key: "service:api".into(),
            severity,
            message: message.into(),
            repeats,
            created_at: 0,
        }
    }

    #[test]
    fn the_first_line_is_the_kind() {
        let a = out("api answers 502", Severity::Critical, 1);
        assert_eq!(plain_text(&a), "[CRITICAL] service_down\napi answers 502");
        assert_eq!(
            email_subject(&a),
            "Proxyvisor [CRITICAL] service_down (service:api)"
        );
        let a = out("x", Severity::Info, 3);
        assert_eq!(plain_text(&a), "[INFO] service_down\nx\n(repeated 3 times)");
        assert!(
            Severity::Info.silent() && !Severity::Warning.silent() && !Severity::Critical.silent()
        );
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Severity::parse("warning"), Some(Severity::Warning));
        assert_eq!(Severity::parse("loud"), None);
    }

    #[test]
    fn telegram_text_is_escaped_and_cut_by_chars() {
        let a = out("<b>5 & 6</b> \"q\"", Severity::Warning, 1);
        assert_eq!(
            telegram_text(&a),
            "[WARNING] service_down\n&lt;b&gt;5 &amp; 6&lt;/b&gt; &quot;q&quot;"
        );
        // Multi-byte characters count once each.
        let a = out(&"я".repeat(5000), Severity::Warning, 1);
        let t = telegram_text(&a);
        assert_eq!(t.chars().count(), TELEGRAM_MAX_CHARS);
        assert!(t.ends_with('…') && t.starts_with("[WARNING] service_down\nя"));
        // Never cut inside an entity.
        let a = out(&"&".repeat(5000), Severity::Warning, 1);
        let t = telegram_text(&a);
        assert!(t.chars().count() <= TELEGRAM_MAX_CHARS);
        assert!(
            t.trim_end_matches('…').ends_with("&amp;"),
            "{}",
            &t[t.len() - 10..]
        );
        // Exactly at the limit: untouched.
        let head = "[WARNING] service_down\n".chars().count();
        let a = out(&"x".repeat(TELEGRAM_MAX_CHARS - head), Severity::Warning, 1);
        assert!(!telegram_text(&a).ends_with('…'));
    }

    #[test]
    fn the_daily_report_is_due_at_its_utc_time() {
        let at = DailyAt::parse("09:00").unwrap().unwrap();
        let day = 86_400_000;
        let nine = 9 * 3_600_000;
        assert_eq!(at.next_after(20 * day), 20 * day + nine);
        assert_eq!(at.next_after(20 * day + nine - 1), 20 * day + nine);
        assert_eq!(
            at.next_after(20 * day + nine),
            21 * day + nine,
            "strictly after"
        );
        assert_eq!(at.next_after(20 * day + 23 * 3_600_000), 21 * day + nine);
        let late = DailyAt::parse("23:59").unwrap().unwrap();
        assert_eq!(late.next_after(0), (23 * 60 + 59) * 60_000);
        assert_eq!(
            DailyAt::parse("7:05").unwrap(),
            Some(DailyAt { hour: 7, minute: 5 })
        );
        assert_eq!(DailyAt::parse(" ").unwrap(), None);
        for bad in [
            "24:00", "12:60", "9", "09:0", "09:000", "a:b", "-1:00", "09:00Z",
        ] {
            assert!(DailyAt::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_daily_report_sums_the_pool_and_the_day() {
        let r = ReportInput {
            primary: 3,
            standby: 2,
            emergency: 1,
            fresh: 4,
            dead: 5,
            blacklisted: 6,
            minimum_guaranteed: 10,
            alerts: vec![
                Kind::PoolEmpty,
                Kind::Test,
                Kind::PoolEmpty,
                Kind::DailyReport,
            ],
            open_alerts: 2,
        };
        let t = daily_report(&r);
        assert!(t.starts_with("Pool: 6 serving (3 primary, 2 standby, 1 emergency), 4 fresh, 5 dead, 6 blacklisted; minimum 10 NOT met."), "{t}");
        assert!(
            t.contains("Alerts in the last 24 h: 3 (pool_empty 2, test 1)."),
            "{t}"
        );
        assert!(t.ends_with("Open alerts: 2."));
        assert!(daily_report(&ReportInput::default()).contains("none"));
    }

    #[test]
    fn the_pool_alerts_once_per_crossing_and_only_after_checks() {
        let mut w = PoolWatch::default();
        assert_eq!(w.observe(0, 5, false), None, "nothing checked yet");
        assert_eq!(w.observe(0, 5, true), None, "never served: not news");
        assert_eq!(w.observe(3, 5, true), None, "below, but never met");
        assert_eq!(w.observe(6, 5, true), None);
        assert_eq!(
            w.observe(4, 5, true),
            Some(PoolAlert::BelowMinimum {
                serving: 4,
                minimum: 5
            })
        );
        assert_eq!(w.observe(3, 5, true), None, "once per crossing");
        assert_eq!(w.observe(0, 5, true), Some(PoolAlert::Empty));
        assert_eq!(w.observe(0, 5, true), None);
        assert_eq!(w.observe(2, 5, true), None);
        assert_eq!(w.observe(0, 5, true), Some(PoolAlert::Empty), "empty again");
        assert_eq!(
            w.observe(5, 5, true),
            Some(PoolAlert::Recovered {
                serving: 5,
                minimum: 5
            })
        );
        assert_eq!(w.observe(7, 5, true), None);
        // A stored pool that served before any check still counts as having served.
        let mut w = PoolWatch::default();
        assert_eq!(w.observe(2, 0, false), None);
        assert_eq!(
            w.observe(0, 0, true),
            Some(PoolAlert::Empty),
            "minimum 0 still alerts empty"
        );
        assert_eq!(PoolAlert::Empty.event(5).severity, Severity::Critical);
        assert_eq!(PoolAlert::Empty.event(5).kind, Kind::PoolEmpty);
    }

    #[test]
    fn managed_status_changes_alert_except_from_or_to_unknown() {
        use Status::*;
        assert!(managed_status_alert("dc", None, Healthy, 0).is_none());
        assert!(managed_status_alert("dc", Some(Unknown), Down, 0).is_none());
        assert!(managed_status_alert("dc", Some(Healthy), Unknown, 0).is_none());
        assert!(managed_status_alert("dc", Some(Healthy), Healthy, 0).is_none());
        let e = managed_status_alert("dc", Some(Healthy), Down, 7).unwrap();
        assert_eq!(
            (e.kind, e.severity, e.at),
            (Kind::ManagedProxyStatus, Severity::Critical, 7)
        );
        assert_eq!(e.message, "managed proxy `dc` is down (was healthy)");
        let back = managed_status_alert("dc", Some(Down), Healthy, 8).unwrap();
        assert_eq!(back.severity, Severity::Info);
        assert_ne!(
            back.key, e.key,
            "a flap is not folded into the alert it ends"
        );
        assert_eq!(
            managed_status_alert("dc", Some(Healthy), Degraded, 0)
                .unwrap()
                .severity,
            Severity::Warning
        );
        assert!(managed_status_alert("dc", Some(Degraded), Blocked, 0).is_some());
    }
}

#[cfg(test)]
#[path = "props/alerts.rs"]
mod props;
