//! Gateway traffic and what it costs: the tally kept per proxy per hour (per session), how
//! `/api/usage` groups it, and when a day's cost crosses a limit (the `cost` alert) or a cap
//! (the gateway stops using the proxy until the next UTC day).

use std::collections::BTreeMap;

/// Traffic through the gateway.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// Client requests (a tunnel is one) an upstream served.
    pub requests: u64,
    /// Attempts through an upstream that failed (the next one was tried).
    pub failures: u64,
    /// Client → target.
    pub bytes_up: u64,
    /// Target → client.
    pub bytes_down: u64,
    /// Money: (up + down) / 10^9 × the proxy's `cost_per_gb` when the bytes passed.
    pub cost: f64,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.requests = self.requests.saturating_add(o.requests);
        self.failures = self.failures.saturating_add(o.failures);
        self.bytes_up = self.bytes_up.saturating_add(o.bytes_up);
        self.bytes_down = self.bytes_down.saturating_add(o.bytes_down);
        self.cost += o.cost;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes_up.saturating_add(self.bytes_down)
    }

    pub fn is_empty(&self) -> bool {
        *self == Tally::default()
    }
}

/// Money for `bytes` at `cost_per_gb` (10^9 bytes a GB).
pub fn cost(bytes: u64, cost_per_gb: f64) -> f64 {
    bytes as f64 / 1e9 * cost_per_gb
}

/// Where a tally is kept: the UTC hour (unix ms of its start), the upstream (public URL), the
/// sticky session (`""` for none).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    pub hour: i64,
    pub proxy: String,
    pub session: String,
}

/// How `/api/usage` groups its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Proxy,
    Day,
    Hour,
    Session,
}

impl Group {
    pub fn parse(s: &str) -> Option<Group> {
        Some(match s {
            "proxy" => Group::Proxy,
            "day" => Group::Day,
            "hour" => Group::Hour,
            "session" => Group::Session,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Proxy => "proxy",
            Group::Day => "day",
            Group::Hour => "hour",
            Group::Session => "session",
        }
    }
}

/// The start of the UTC hour holding `ms`.
pub fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(3_600_000)
}

/// The start of the UTC day holding `ms`.
pub fn day_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

/// The start of the UTC month holding `ms`.
pub fn month_of(ms: i64) -> i64 {
    let day = day_of(ms).div_euclid(86_400_000);
    let (y, m, _) = civil_from_days(day);
    days_from_civil(y, m, 1) * 86_400_000
}

/// `(year, month, day)` of a day number since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-12-02`.
pub fn day_label(ms: i64) -> String {
    let (y, m, d) = civil_from_days(day_of(ms).div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2026-12-02T13:00:00Z`.
pub fn hour_label(ms: i64) -> String {
    let h = hour_of(ms).rem_euclid(86_400_000) / 3_600_000;
    format!("{}T{h:02}:00:00Z", day_label(ms))
}

/// Sums `rows` by `group`; the rows come back ordered by their key, and the total of all.
pub fn grouped<'a>(
    rows: impl IntoIterator<Item = (&'a Slot, &'a Tally)>,
    group: Group,
) -> (Vec<(String, Tally)>, Tally) {
    let mut by: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    for (slot, t) in rows {
        let key = match group {
            Group::Proxy => slot.proxy.clone(),
            Group::Day => day_label(slot.hour),
            Group::Hour => hour_label(slot.hour),
            Group::Session => slot.session.clone(),
        };
        by.entry(key).or_default().add(t);
        total.add(t);
    }
    (by.into_iter().collect(), total)
}

/// Bytes as people read them: `1.23 MB` (powers of 1000, as `cost_per_gb` counts).
pub fn bytes_text(b: u64) -> String {
    match b {
        b if b >= 1_000_000_000 => format!("{:.2} GB", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{:.2} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

/// What a day's cost has crossed, told once each: the limit that alerts, the cap that stops
/// the gateway using a proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Crossed {
    pub limit: bool,
    pub cap: bool,
}

/// What `before` → `after` (a cost today) crossed of `limit` and `cap`: a limit is crossed
/// when the cost goes past it (a limit of 0 by the first traffic).
pub fn crossed(before: f64, after: f64, limit: Option<f64>, cap: Option<f64>) -> Crossed {
    let past = |l: Option<f64>| l.is_some_and(|l| before <= l && after > l);
    Crossed {
        limit: past(limit),
        cap: past(cap),
    }
}

/// Whether a cost today is past `cap` (the gateway skips the proxy).
pub fn is_capped(cost_today: f64, cap: Option<f64>) -> bool {
    cap.is_some_and(|c| cost_today > c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_time_slots() {
        assert!((cost(2_000_000_000, 1.5) - 3.0).abs() < 1e-9);
        assert_eq!(hour_of(3_600_000 * 5 + 17), 3_600_000 * 5);
        assert_eq!(day_of(86_400_000 * 3 + 5), 86_400_000 * 3);
        // 2026-12-02T13:25:00Z
        let t = 1_796_217_900_000;
        assert_eq!(day_label(t), "2026-12-02");
        assert_eq!(hour_label(t), "2026-12-02T13:00:00Z");
        assert_eq!(day_label(month_of(t)), "2026-12-01");
        assert_eq!(day_label(month_of(0)), "1970-01-01");
        // 2024-02-29 (a leap day) belongs to February.
        assert_eq!(day_label(month_of(1_709_164_800_000)), "2024-02-01");
        assert_eq!(day_label(1_709_164_800_000), "2024-02-29");
    }

    #[test]
    fn rows_are_summed_by_group_and_in_total() {
        let t = |r: u64, up: u64, cost: f64| Tally {
            requests: r,
            failures: 0,
            bytes_up: up,
            bytes_down: 2 * up,
            cost,
        };
        let h = 1_796_217_900_000 - 1_796_217_900_000 % 3_600_000;
        let slot = |hour: i64, p: &str, s: &str| Slot {
            hour,
            proxy: p.into(),
            session: s.into(),
        };
        let rows = [
            (slot(h, "http://a:1", ""), t(1, 10, 0.5)),
            (slot(h, "http://b:1", "s1"), t(2, 20, 1.0)),
            (slot(h + 3_600_000, "http://a:1", "s1"), t(3, 30, 2.0)),
        ];
        let (by_proxy, total) = grouped(rows.iter().map(|(s, t)| (s, t)), Group::Proxy);
        assert_eq!(by_proxy.len(), 2);
        assert_eq!(by_proxy[0].0, "http://a:1");
        assert_eq!((by_proxy[0].1.requests, by_proxy[0].1.bytes_up), (4, 40));
        assert_eq!(
            (total.requests, total.bytes_down, total.cost),
            (6, 120, 3.5)
        );
        let (by_hour, _) = grouped(rows.iter().map(|(s, t)| (s, t)), Group::Hour);
        assert_eq!(by_hour[0].0, "2026-12-02T13:00:00Z");
        assert_eq!(by_hour[1].0, "2026-12-02T14:00:00Z");
        let (by_session, _) = grouped(rows.iter().map(|(s, t)| (s, t)), Group::Session);
        assert_eq!(by_session[0], ("".to_string(), t(1, 10, 0.5)));
        assert_eq!(by_session[1].1.requests, 5);
        let (by_day, _) = grouped(rows.iter().map(|(s, t)| (s, t)), Group::Day);
        assert_eq!(by_day.len(), 1);
    }

    #[test]
    fn limits_are_crossed_once() {
        assert_eq!(crossed(0.0, 1.0, Some(2.0), None), Crossed::default());
        let c = crossed(1.5, 2.5, Some(2.0), Some(2.2));
        assert!(c.limit && c.cap);
        assert_eq!(
            crossed(2.5, 3.0, Some(2.0), Some(2.2)),
            Crossed::default(),
            "already past"
        );
        assert!(crossed(0.0, 0.001, Some(0.0), None).limit, "a limit of 0");
        assert!(is_capped(2.5, Some(2.2)) && !is_capped(2.0, Some(2.2)) && !is_capped(9.0, None));
    }
}
