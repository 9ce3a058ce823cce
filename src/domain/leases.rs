//! Leases: capacity per proxy. A lease holds one slot on each of its proxies until it expires or
//! is released; a proxy never holds more leases than its capacity.

use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    pub id: String,
    pub proxies: Vec<String>,
    pub session: Option<String>,
    pub expires_at: i64,
}

#[derive(Debug, Default)]
pub struct LeaseBook {
    leases: HashMap<String, Lease>,
    load: HashMap<String, u32>,
    sessions: HashMap<String, String>,
}

impl LeaseBook {
    /// Takes back leases (from the store), whatever the capacity now.
    pub fn restore(&mut self, lease: Lease) {
        for p in &lease.proxies {
            *self.load.entry(p.clone()).or_default() += 1;
        }
        if let Some(s) = &lease.session {
            self.sessions.insert(s.clone(), lease.id.clone());
        }
        self.leases.insert(lease.id.clone(), lease);
    }

    /// Slots in use on a proxy.
    pub fn load_of(&self, proxy: &str) -> u32 {
        self.load.get(proxy).copied().unwrap_or(0)
    }

    pub fn loads(&self) -> &HashMap<String, u32> {
        &self.load
    }

    pub fn get(&self, id: &str) -> Option<&Lease> {
        self.leases.get(id)
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// The live lease of a session key.
    pub fn by_session(&self, session: &str, now: i64) -> Option<&Lease> {
        let id = self.sessions.get(session)?;
        self.leases.get(id).filter(|l| l.expires_at > now)
    }

    /// Removes every lease expired at `now`; returns their ids.
    pub fn expire(&mut self, now: i64) -> Vec<String> {
        let ids: Vec<String> = self
            .leases
            .values()
            .filter(|l| l.expires_at <= now)
            .map(|l| l.id.clone())
            .collect();
        for id in &ids {
            self.release(id);
        }
        ids
    }

    /// Allocates up to `count` proxies from `candidates` (in preference order, each with its
    /// capacity): least loaded first, ties kept in preference order, never over capacity.
    pub fn allocate<'a>(
        &mut self,
        id: String,
        candidates: impl IntoIterator<Item = (&'a str, u32)>,
        count: usize,
        expires_at: i64,
        session: Option<String>,
    ) -> Lease {
        let mut free: Vec<(u32, usize, &str)> = candidates
            .into_iter()
            .enumerate()
            .filter_map(|(i, (p, cap))| {
                let load = self.load_of(p);
                (load < cap).then_some((load, i, p))
            })
            .collect();
        free.sort_unstable();
        let proxies: Vec<String> = free
            .into_iter()
            .take(count)
            .map(|(_, _, p)| p.to_string())
            .collect();
        let lease = Lease {
            id,
            proxies,
            session,
            expires_at,
        };
        self.restore(lease.clone());
        lease
    }

    pub fn renew(&mut self, id: &str, expires_at: i64) -> Option<&Lease> {
        let lease = self.leases.get_mut(id)?;
        lease.expires_at = expires_at;
        Some(lease)
    }

    pub fn release(&mut self, id: &str) -> Option<Lease> {
        let lease = self.leases.remove(id)?;
        for p in &lease.proxies {
            if let Some(n) = self.load.get_mut(p) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.load.remove(p);
                }
            }
        }
        if let Some(s) = &lease.session {
            if self.sessions.get(s) == Some(&lease.id) {
                self.sessions.remove(s);
            }
        }
        Some(lease)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_over_capacity_and_least_loaded_first() {
        let mut book = LeaseBook::default();
        let pool = [("a", 2), ("b", 2), ("c", 1)];
        let l1 = book.allocate("1".into(), pool, 2, 100, None);
        assert_eq!(l1.proxies, ["a", "b"]);
        let l2 = book.allocate("2".into(), pool, 2, 100, None);
        assert_eq!(l2.proxies, ["c", "a"], "the unloaded proxy first");
        let l3 = book.allocate("3".into(), pool, 5, 100, None);
        assert_eq!(l3.proxies, ["b"], "only what capacity allows");
        let l4 = book.allocate("4".into(), pool, 1, 100, None);
        assert!(l4.proxies.is_empty());
        assert_eq!(
            (book.load_of("a"), book.load_of("b"), book.load_of("c")),
            (2, 2, 1)
        );
    }

    #[test]
    fn expiry_and_release_free_slots_and_sessions() {
        let mut book = LeaseBook::default();
        let pool = [("a", 1)];
        book.allocate("1".into(), pool, 1, 100, Some("s".into()));
        assert_eq!(book.by_session("s", 50).unwrap().id, "1");
        assert!(book.by_session("s", 100).is_none());
        assert_eq!(book.expire(99), Vec::<String>::new());
        assert_eq!(book.expire(100), ["1"]);
        assert_eq!(book.load_of("a"), 0);
        book.allocate("2".into(), pool, 1, 100, None);
        book.renew("2", 500).unwrap();
        assert!(book.expire(200).is_empty());
        assert!(book.release("2").is_some());
        assert!(book.is_empty());
        assert_eq!(book.load_of("a"), 0);
    }
}

#[cfg(test)]
#[path = "props/leases.rs"]
mod props;
