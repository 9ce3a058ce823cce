//! The overall health verdict of `/api/health/comprehensive`: `critical` when an actor has
//! failed or no proxy serves although checks have run; `degraded` when something needs a look
//! (an actor restarting, the store retrying writes or away, a failing source or alert channel,
//! fewer serving proxies than `minimum_guaranteed`, a watched service down); `ok` otherwise.

/// An actor as the Supervisor last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorHealth {
    Running,
    Restarting,
    Failed,
}

/// What the verdict is made of.
#[derive(Clone, Debug, Default)]
pub struct Facts<'a> {
    pub actors: Vec<(&'a str, ActorHealth)>,
    pub serving: usize,
    pub checks_total: u64,
    pub minimum_guaranteed: usize,
    pub store_ok: bool,
    pub alerts_waiting: usize,
    pub pool_reload_pending: bool,
    pub failing_sources: Vec<&'a str>,
    pub failing_channels: Vec<&'a str>,
    /// Watched services that are down or recovering, with that status.
    pub troubled_services: Vec<(&'a str, &'a str)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Degraded,
    Critical,
}

/// The verdict, and what made it so (for people).
pub fn judge(f: &Facts) -> (Verdict, Vec<String>) {
    let mut problems: Vec<String> = Vec::new();
    let mut critical = false;
    for (name, state) in &f.actors {
        match state {
            ActorHealth::Failed => {
                critical = true;
                problems.push(format!("actor {name} failed"));
            }
            ActorHealth::Restarting => problems.push(format!("actor {name} restarting")),
            ActorHealth::Running => {}
        }
    }
    if f.serving == 0 && f.checks_total > 0 {
        critical = true;
        problems.push("no serving proxy".into());
    } else if f.serving < f.minimum_guaranteed {
        problems.push(format!(
            "{} serving proxies, below minimum_guaranteed {}",
            f.serving, f.minimum_guaranteed
        ));
    }
    if !f.store_ok {
        problems.push("store degraded".into());
    }
    if f.alerts_waiting > 0 {
        problems.push(format!("{} alerts waiting for the store", f.alerts_waiting));
    }
    if f.pool_reload_pending {
        problems
            .push("the pool is being reloaded from the store (serving the last snapshot)".into());
    }
    for s in &f.failing_sources {
        problems.push(format!("source {s} failing"));
    }
    for c in &f.failing_channels {
        problems.push(format!("alert channel {c} failing"));
    }
    for (name, status) in &f.troubled_services {
        problems.push(format!("service {name} {status}"));
    }
    let verdict = if critical {
        Verdict::Critical
    } else if problems.is_empty() {
        Verdict::Ok
    } else {
        Verdict::Degraded
    };
    (verdict, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Facts<'static> {
        Facts {
            actors: vec![("tier_balancer", ActorHealth::Running)],
            serving: 10,
            checks_total: 100,
            minimum_guaranteed: 5,
            store_ok: true,
            ..Facts::default()
        }
    }

    #[test]
    fn all_well_is_ok() {
        assert_eq!(judge(&healthy()), (Verdict::Ok, vec![]));
        // Before any check, an empty pool is no problem yet but the minimum is.
        let fresh = Facts {
            serving: 0,
            checks_total: 0,
            minimum_guaranteed: 0,
            ..healthy()
        };
        assert_eq!(judge(&fresh).0, Verdict::Ok);
    }

    #[test]
    fn a_failed_actor_or_no_serving_proxy_is_critical() {
        let mut f = healthy();
        f.actors.push(("alerter", ActorHealth::Failed));
        assert_eq!(
            judge(&f),
            (Verdict::Critical, vec!["actor alerter failed".into()])
        );
        let empty = Facts {
            serving: 0,
            ..healthy()
        };
        assert_eq!(judge(&empty).0, Verdict::Critical);
    }

    #[test]
    fn what_needs_a_look_is_degraded_and_named() {
        let f = Facts {
            actors: vec![("allocator", ActorHealth::Restarting)],
            serving: 3,
            store_ok: false,
            alerts_waiting: 2,
            failing_sources: vec!["farm"],
            failing_channels: vec!["email"],
            troubled_services: vec![("shop", "down")],
            ..healthy()
        };
        let (verdict, problems) = judge(&f);
        assert_eq!(verdict, Verdict::Degraded);
        assert_eq!(
            problems,
            [
                "actor allocator restarting",
                "3 serving proxies, below minimum_guaranteed 5",
                "store degraded",
                "2 alerts waiting for the store",
                "source farm failing",
                "alert channel email failing",
                "service shop down",
            ]
        );
    }
}
