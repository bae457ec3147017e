//! A bounded memory of recent transaction ids.
//!
//! An entry lives until its message expires (plus the allowed skew), after which the
//! expiry check refuses the message anyway. When the cache is full, the entry that
//! expires first is forgotten and its expiry becomes the *floor*: any message that would
//! expire at or before the floor is refused, because it might be a replay of a forgotten
//! one. The cache therefore never lets a replay through, whatever its size.

use std::collections::{BTreeSet, HashSet};

use crate::Did;

#[derive(Debug)]
pub(super) struct ReplayCache {
    capacity: usize,
    seen: HashSet<(Did, u64)>,
    by_expiry: BTreeSet<(u64, Did, u64)>,
    floor: u64,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> ReplayCache {
        ReplayCache { capacity: capacity.max(1), seen: HashSet::new(), by_expiry: BTreeSet::new(), floor: 0 }
    }

    /// Whether `(origin, tx)`, expiring at `expires_at`, may be new.
    pub fn is_fresh(&self, origin: Did, tx: u64, expires_at: u64) -> bool {
        expires_at > self.floor && !self.seen.contains(&(origin, tx))
    }

    pub fn contains(&self, origin: Did, tx: u64) -> bool {
        self.seen.contains(&(origin, tx))
    }

    pub fn insert(&mut self, origin: Did, tx: u64, expires_at: u64) {
        if self.seen.len() >= self.capacity {
            if let Some(first) = self.by_expiry.pop_first() {
                self.seen.remove(&(first.1, first.2));
                self.floor = self.floor.max(first.0);
            }
        }
        if self.seen.insert((origin, tx)) {
            self.by_expiry.insert((expires_at, origin, tx));
        }
    }

    /// Forgets entries that expired before `limit` (now minus skew).
    pub fn expire(&mut self, limit: u64) {
        while let Some(&first) = self.by_expiry.first() {
            if first.0 >= limit {
                break;
            }
            self.by_expiry.pop_first();
            self.seen.remove(&(first.1, first.2));
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_raises_its_floor_instead_of_forgetting_silently() {
        let o = Did::from_u64(1);
        let mut c = ReplayCache::new(2);
        c.insert(o, 1, 100);
        c.insert(o, 2, 200);
        assert!(!c.is_fresh(o, 1, 100));
        c.insert(o, 3, 300); // evicts tx 1, floor = 100
        assert_eq!(c.len(), 2);
        assert!(!c.is_fresh(o, 1, 100), "the evicted id is still refused through the floor");
        assert!(c.is_fresh(o, 4, 101));
        c.expire(250);
        assert_eq!(c.len(), 1);
        assert!(!c.is_fresh(o, 3, 300));
    }
}
