//! The TierBalancer's part in managed proxies: admin changes, stored first and then applied to
//! the pool, one at a time; and checks on demand for `POST /api/v1/proxy/health-check`.

use super::{TierBalancer, NAME};
use crate::bus::messages::{
    ChangeError, CheckJob, CheckManaged, CheckNow, DeadEvent, ManagedChange, ManagedCheck,
};
use crate::clock::now_ms;
use crate::domain::lifecycle::Health;
use crate::domain::managed::{self, ManagedProxy};
use crate::domain::record::ProxyRecord;
use crate::published::pool::ManagedView;
use crate::store::models::ManagedRow;
use crate::store::{Store, StoreError};
use actix::prelude::*;
use std::time::{Duration, Instant};

/// What a change writes to the store.
enum Write {
    Insert(ManagedRow),
    Update(ManagedRow),
    Delete { name: String, url: String },
}

impl Write {
    fn run(&self, store: &Store) -> Result<bool, StoreError> {
        match self {
            Write::Insert(row) => store.insert_managed(row).map(|()| true),
            Write::Update(row) => store.update_managed(row),
            Write::Delete { name, url } => store.delete_managed(name, url),
        }
    }
}

/// What the pool does once the store took the change.
pub(super) enum Apply {
    /// Put this definition in the pool, replacing the record at `old_key` if it moved.
    Put {
        def: ManagedProxy,
        old_key: Option<String>,
    },
    Remove {
        key: String,
        view: Box<ManagedView>,
    },
}

impl TierBalancer {
    pub(super) fn managed_key(&self, name: &str) -> Option<&String> {
        self.pool
            .iter()
            .find(|(_, r)| r.managed.as_ref().is_some_and(|m| m.name == name))
            .map(|(k, _)| k)
    }

    /// The stored definition of a proxy an admin may change (not one from the config file).
    fn changeable(&self, name: &str) -> Result<(String, ManagedProxy), ChangeError> {
        let key = self
            .managed_key(name)
            .ok_or_else(|| ChangeError::NotFound(format!("no managed proxy named `{name}`")))?
            .clone();
        if self.config_managed.contains(name) {
            return Err(ChangeError::Conflict(format!(
                "`{name}` is defined in the config file; change it there"
            )));
        }
        let def = self.pool[&key].managed_def().expect("a managed record");
        Ok((key, def))
    }

    /// Refuses a URL another managed proxy already has.
    pub(super) fn url_free(&self, def: &ManagedProxy) -> Result<(), ChangeError> {
        match self
            .pool
            .get(&def.endpoint.key())
            .and_then(|r| r.managed.as_ref())
        {
            Some(m) if m.name != def.name => Err(ChangeError::Conflict(format!(
                "managed proxy `{}` has this URL",
                m.name
            ))),
            _ => Ok(()),
        }
    }

    fn plan(&self, change: ManagedChange, now: i64) -> Result<(Write, Apply), ChangeError> {
        if !self.loaded {
            return Err(ChangeError::Store(
                "the pool is being reloaded from the store; try again".into(),
            ));
        }
        if self.shared.board.store_degraded() {
            return Err(ChangeError::Store(
                "the store is not taking writes right now; try again".into(),
            ));
        }
        match change {
            ManagedChange::Create(def) => {
                if self.managed_key(&def.name).is_some() {
                    return Err(ChangeError::Conflict(format!(
                        "a managed proxy named `{}` exists",
                        def.name
                    )));
                }
                self.url_free(&def)?;
                let row = ManagedRow::new(&def, "api", now);
                let apply = Apply::Put { def, old_key: None };
                Ok((Write::Insert(row), apply))
            }
            ManagedChange::Patch { name, patch } => {
                let (key, old) = self.changeable(&name)?;
                let def = old.patched(&patch).map_err(ChangeError::Invalid)?;
                self.url_free(&def)?;
                let row = ManagedRow::new(&def, "api", now);
                let apply = Apply::Put {
                    def,
                    old_key: Some(key),
                };
                Ok((Write::Update(row), apply))
            }
            ManagedChange::Delete { name } => {
                let (key, _) = self.changeable(&name)?;
                let view = Box::new(ManagedView::of(&self.pool[&key]).expect("managed"));
                let write = Write::Delete {
                    name,
                    url: key.clone(),
                };
                Ok((write, Apply::Remove { key, view }))
            }
        }
    }

    /// Forgets a record: it is deleted from the store and never re-checked.
    pub(super) fn drop_record(&mut self, key: &str) {
        self.pool.remove(key);
        self.dirty.remove(key);
        self.in_flight.remove(key);
        self.deleted.insert(key.to_string());
        if let Some(m) = self.shared.registry.dead_event.get() {
            m.do_send(DeadEvent::Gone {
                key: key.to_string(),
            });
        }
        self.stale = true;
    }

    pub(super) fn apply(&mut self, apply: Apply) -> ManagedView {
        match apply {
            Apply::Remove { key, view } => {
                self.drop_record(&key);
                log::info!("{NAME}: managed proxy {} removed", view.name);
                self.publish();
                *view
            }
            Apply::Put { def, old_key } => {
                let key = def.endpoint.key();
                if let Some(old) = old_key.as_deref().filter(|o| *o != key) {
                    self.drop_record(old);
                }
                let now = now_ms();
                let rec = self
                    .pool
                    .entry(key.clone())
                    .or_insert_with(|| ProxyRecord::new_managed(&def, now));
                if rec.endpoint != def.endpoint {
                    // New credentials (or a proxy that was listed by a source): what its
                    // checks said no longer holds; check it again at once.
                    rec.health = Health::default();
                    if let Some(m) = self.shared.registry.dead_event.get() {
                        m.do_send(DeadEvent::Gone { key: key.clone() });
                    }
                    self.in_flight.remove(&key);
                }
                rec.apply_managed(&def);
                let view = ManagedView::of(rec).expect("managed");
                self.deleted.remove(&key);
                self.dirty.insert(key);
                log::info!(
                    "{NAME}: managed proxy {} {} ({}, priority {}, {}/GB)",
                    def.name,
                    if old_key.is_some() {
                        "changed"
                    } else {
                        "added"
                    },
                    def.kind,
                    def.priority,
                    def.cost_per_gb
                );
                self.publish();
                view
            }
        }
    }
}

/// Changes are atomic: the actor takes no other message while one is stored, so two changes
/// never interleave (and verdicts wait a few milliseconds).
impl Handler<ManagedChange> for TierBalancer {
    type Result = AtomicResponse<Self, Result<ManagedView, ChangeError>>;

    fn handle(&mut self, msg: ManagedChange, _: &mut Self::Context) -> Self::Result {
        let (write, apply) = match self.plan(msg, now_ms()) {
            Ok(p) => p,
            Err(e) => return AtomicResponse::new(Box::pin(actix::fut::ready(Err(e)))),
        };
        let store = self.shared.store.clone();
        let stored = async move { store.call(move |s| write.run(s)).await };
        AtomicResponse::new(Box::pin(stored.into_actor(self).map(
            move |r, act, _| match r {
                Ok(true) => {
                    act.follow.changes_made += 1;
                    Ok(act.apply(apply))
                }
                Ok(false) => Err(ChangeError::NotFound(
                    "the managed proxy is no longer stored".into(),
                )),
                Err(e) if e.is_conflict() => Err(ChangeError::Conflict(
                    "another managed proxy has this name or URL".into(),
                )),
                Err(e) => {
                    log::warn!("{NAME}: store refused a managed proxy change: {e}");
                    act.shared.board.store_failed(&e.to_string());
                    Err(ChangeError::Store(format!(
                        "the store did not take it: {e}"
                    )))
                }
            },
        )))
    }
}

impl Handler<CheckManaged> for TierBalancer {
    type Result = ResponseActFuture<Self, Vec<ManagedCheck>>;

    fn handle(&mut self, _: CheckManaged, _: &mut Self::Context) -> Self::Result {
        if !self.loaded {
            return Box::pin(actix::fut::ready(Vec::new()));
        }
        let jobs: Vec<CheckJob> = self
            .pool
            .iter()
            .filter(|(_, r)| r.managed.is_some())
            .map(|(k, r)| CheckJob {
                key: k.clone(),
                endpoint: r.endpoint.clone(),
                judge: false,
            })
            .collect();
        let Some(validator) = self.shared.registry.check_now.get() else {
            return Box::pin(actix::fut::ready(Vec::new()));
        };
        let v = &self.shared.config.validation;
        let until = Instant::now() + Duration::from_millis(v.timeout_ms) * 4;
        for j in &jobs {
            self.in_flight.insert(j.key.clone(), until);
        }
        Box::pin(
            validator
                .send(CheckNow(jobs))
                .into_actor(self)
                .map(|r, act, _| {
                    let verdicts = r.unwrap_or_default();
                    let rules = act.rules.clone();
                    let mut out = Vec::with_capacity(verdicts.len());
                    for v in verdicts {
                        let key = v.key.clone();
                        let (ok, latency, http_status, error) = (
                            v.outcome.ok,
                            v.outcome.latency_ms,
                            v.outcome.status,
                            v.outcome.failure.clone(),
                        );
                        act.on_verdict(v);
                        let Some(view) = act.pool.get(&key).and_then(ManagedView::of) else {
                            continue;
                        };
                        out.push(ManagedCheck {
                            name: view.name,
                            url: view.url,
                            ok,
                            latency_ms: ok.then_some(latency),
                            http_status,
                            error,
                            status: managed::status(&view.health, &rules).as_str(),
                            tier: view.health.tier.as_str(),
                        });
                    }
                    act.publish();
                    out.sort_by(|a, b| a.name.cmp(&b.name));
                    out
                }),
        )
    }
}
