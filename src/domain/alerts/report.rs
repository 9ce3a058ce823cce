//! The daily report: when, and what it says.

use super::*;

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
    /// The gateway's last 24 h, when it is on.
    pub gateway: Option<DayTraffic>,
}

/// The gateway's day for the daily report: all traffic, and the proxy that carried the most.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayTraffic {
    pub total: crate::domain::usage::Tally,
    /// (public URL, its tally), by bytes up + down.
    pub top: Option<(String, crate::domain::usage::Tally)>,
}

impl DayTraffic {
    /// From the day's tallies by proxy: the top one is the one with most bytes (the first of
    /// equals).
    pub fn of(by_proxy: Vec<(String, crate::domain::usage::Tally)>) -> DayTraffic {
        let mut total = crate::domain::usage::Tally::default();
        let mut top: Option<(String, crate::domain::usage::Tally)> = None;
        for (proxy, t) in by_proxy {
            total.add(&t);
            if top
                .as_ref()
                .is_none_or(|(_, best)| t.bytes() > best.bytes())
            {
                top = Some((proxy, t));
            }
        }
        DayTraffic { total, top }
    }
}

fn gateway_line(d: &DayTraffic) -> String {
    use crate::domain::usage::bytes_text;
    let t = &d.total;
    let mut line = format!(
        "\nGateway in the last 24 h: {} requests, {} failed attempts, {} up, {} down, cost {:.4}",
        t.requests,
        t.failures,
        bytes_text(t.bytes_up),
        bytes_text(t.bytes_down),
        t.cost
    );
    match &d.top {
        Some((proxy, top)) if top.bytes() > 0 => line.push_str(&format!(
            "; top proxy {proxy} ({}, cost {:.4}).",
            bytes_text(top.bytes()),
            top.cost
        )),
        _ => line.push('.'),
    }
    line
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
    if let Some(g) = &r.gateway {
        text.push_str(&gateway_line(g));
    }
    text.push_str(&format!("\nOpen alerts: {}.", r.open_alerts));
    text
}
