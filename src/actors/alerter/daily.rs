//! The daily report, sent at `alerts.daily_report_at` (UTC) by the leader.

use super::{flatten, Alerter, NAME};
use crate::clock::now_ms;
use crate::domain::alerts::{self, AlertEvent, Kind, Severity};
use actix::prelude::*;

impl Alerter {
    /// Sends the daily report when its time has come.
    pub(super) fn report_if_due(&mut self, ctx: &mut Context<Self>) {
        let now = now_ms();
        let (Some(due), Some(at)) = (self.next_report, self.daily) else {
            return;
        };
        if due > now {
            return;
        }
        self.next_report = Some(at.next_after(now));
        let store = self.shared.store.clone();
        let gateway_on = self.shared.config.defs.gateway.is_some();
        let day_ago = now - 86_400_000;
        let first_hour = crate::domain::usage::hour_of(now) - 23 * 3_600_000;
        let read = async move {
            let kinds = store.call(move |s| s.alert_kinds_since(day_ago)).await;
            let usage = match gateway_on {
                true => Some(store.call(move |s| s.load_usage(first_hour, now + 1)).await),
                false => None,
            };
            (kinds, usage)
        };
        ctx.spawn(read.into_actor(self).map(move |(r, usage), act, ctx| {
            let kinds = flatten(r).unwrap_or_else(|e| {
                log::warn!("{NAME}: daily report without the day's alerts: {e}");
                Vec::new()
            });
            let gateway = usage.and_then(|u| match flatten(u) {
                Ok(rows) => {
                    let kept: Vec<_> = rows.iter().map(|r| (r.slot(), r.tally())).collect();
                    let by = crate::domain::usage::Group::Proxy;
                    let (by_proxy, _) =
                        crate::domain::usage::grouped(kept.iter().map(|(s, t)| (s, t)), by);
                    Some(alerts::DayTraffic::of(by_proxy))
                }
                Err(e) => {
                    log::warn!("{NAME}: daily report without the gateway's day: {e}");
                    None
                }
            });
            let c = act.shared.snapshot().counts;
            let input = alerts::ReportInput {
                primary: c.primary,
                standby: c.standby,
                emergency: c.emergency,
                fresh: c.fresh,
                dead: c.dead,
                blacklisted: c.blacklisted,
                minimum_guaranteed: act.shared.config.tiers.minimum_guaranteed,
                alerts: kinds.iter().filter_map(|k| Kind::parse(k)).collect(),
                open_alerts: act.open.len(),
                gateway,
            };
            let e = AlertEvent::new(
                Kind::DailyReport,
                "daily_report",
                Severity::Info,
                alerts::daily_report(&input),
                now,
            );
            ctx.wait(act.raise(e).map(|_, _, _| ()));
        }));
    }
}
