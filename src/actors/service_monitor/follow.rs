//! The ServiceMonitor in a cluster: monitors added or removed through another instance's admin
//! API reach this one. When the version of `Topic::Monitors` that the Coordinator heard grows
//! past the one loaded here, the stored monitors are loaded again and this instance's set is
//! made to match (those of the config file stay as they are).

use super::{stored_def, ServiceMonitor, NAME};
use crate::domain::cluster::Topic;
use crate::domain::monitor::MonitorDef;
use crate::published::monitors::Origin;
use crate::store::monitors::MonitorRow;
use actix::prelude::*;
use std::collections::HashSet;

impl ServiceMonitor {
    /// Loads the stored monitors again when another instance changed them (in the background;
    /// a change made here meanwhile makes it look once more).
    pub(super) fn follow(&mut self, ctx: &mut Context<Self>) {
        let version = self.shared.changes.version(Topic::Monitors);
        if self.following || version <= self.monitors_version || !self.loaded {
            return;
        }
        self.following = true;
        let made_here = self.changes_made;
        let store = self.shared.store.clone();
        let load = async move { store.call(|s| s.load_monitors()).await };
        ctx.spawn(load.into_actor(self).map(move |r, act, _| {
            act.following = false;
            match r {
                Ok(_) if act.changes_made != made_here => {}
                Ok(rows) => {
                    act.monitors_version = version;
                    act.take_stored(rows);
                }
                Err(e) => log::debug!("{NAME}: cannot load the stored monitors: {e}"),
            }
        }));
    }

    /// Makes the monitors of the admin API those stored.
    fn take_stored(&mut self, rows: Vec<MonitorRow>) {
        let mut stored: Vec<MonitorDef> = Vec::new();
        for row in rows {
            match stored_def(&row) {
                Ok(d) if self.config_names.contains(&d.name) => {}
                Ok(d) => stored.push(d),
                Err(e) => log::warn!("{NAME}: skipping stored monitor {}: {e}", row.name),
            }
        }
        let names: HashSet<&str> = stored.iter().map(|d| d.name.as_str()).collect();
        let gone: Vec<String> = (self.watched.iter())
            .filter(|(n, w)| w.origin == Origin::Api && !names.contains(n.as_str()))
            .map(|(n, _)| n.clone())
            .collect();
        for name in &gone {
            self.watched.remove(name);
            self.unsaved.remove(name);
            log::info!("{NAME}: monitor {name} removed (through another instance)");
        }
        let new: Vec<(MonitorDef, Origin)> = (stored.into_iter())
            .filter(|d| !self.watched.contains_key(&d.name))
            .map(|d| (d, Origin::Api))
            .collect();
        for (d, _) in &new {
            log::info!(
                "{NAME}: monitor {} added (through another instance; {})",
                d.name,
                d.recovery.action()
            );
        }
        let changed = !gone.is_empty() || !new.is_empty();
        self.add_all(new);
        if changed {
            self.publish();
        }
    }
}
