//! The text of an alert on each channel.

use super::*;

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
