//! A bounded memory of recent transaction ids, with a share per origin.
//!
//! Entries and floors are message expiries (issue time + ttl). An entry is forgotten a
//! skew after its message expires, when the expiry check refuses the message anyway; message lifetimes are bounded at every hop
//! (`WireConfig::ttl`), so no entry outlives `ttl + 2·skew`. Only authenticated messages
//! are entered, so every origin here is an account that proved itself.
//!
//! Nothing one origin sends moves what another is judged by:
//! - each origin holds at most `share` entries; past that its own oldest is forgotten
//!   and its expiry becomes that origin's *floor*: a message of that origin expiring at
//!   or before its floor is refused (it might replay a forgotten one). Its later
//!   messages expire later, so an honest origin sending fast loses nothing;
//! - when the whole cache is full, the origin holding the most entries gives up its
//!   oldest (its floor rises), so an origin is touched only once every heavier one has
//!   come down to its size. If every origin holds a single entry (as many distinct
//!   accounts as the capacity, within one message lifetime), a new message is refused.
//!
//! The cache therefore never lets a replay through, whatever its size, and there is no
//! global floor that a flood could raise.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};

use crate::Did;

#[derive(Debug)]
struct Origin {
    floor: u64,
    /// `(expiry, tx)` of its entries, the oldest on top. Every entry leaves as its
    /// origin's oldest (by `forget_oldest`, or by `expire` taking the oldest of all), so a
    /// heap serves where an ordered index would cost the wasm build another B-tree.
    entries: BinaryHeap<Reverse<(u64, u64)>>,
}

#[derive(Debug)]
pub(super) struct ReplayCache {
    capacity: usize,
    share: usize,
    seen: HashSet<(Did, u64)>,
    by_expiry: BTreeSet<(u64, Did, u64)>,
    origins: HashMap<Did, Origin>,
    /// `(count, origin, 0)`: the heaviest origin last (the shape of `by_expiry`, so the
    /// wasm build carries one B-tree for both).
    by_count: BTreeSet<(u64, Did, u64)>,
}

impl ReplayCache {
    /// `capacity` entries in all, `capacity / 16` (at least 1) per origin.
    pub fn new(capacity: usize) -> ReplayCache {
        let capacity = capacity.max(1);
        ReplayCache {
            capacity,
            share: (capacity / 16).max(1),
            seen: HashSet::new(),
            by_expiry: BTreeSet::new(),
            origins: HashMap::new(),
            by_count: BTreeSet::new(),
        }
    }

    /// Whether `(origin, tx)`, expiring at `expires_at`, may be new.
    pub fn is_fresh(&self, origin: Did, tx: u64, expires_at: u64) -> bool {
        expires_at > self.origins.get(&origin).map_or(0, |o| o.floor) && !self.seen.contains(&(origin, tx))
    }

    pub fn contains(&self, origin: Did, tx: u64) -> bool {
        self.seen.contains(&(origin, tx))
    }

    /// Enters an authenticated message. `false`: the cache is full of single entries of
    /// distinct origins, so it cannot be remembered and must be refused.
    pub fn insert(&mut self, origin: Did, tx: u64, expires_at: u64) -> bool {
        if self.seen.contains(&(origin, tx)) {
            return true;
        }
        let count = self.origins.get(&origin).map_or(0, |o| o.entries.len());
        if count >= self.share {
            self.forget_oldest(origin);
        } else if self.seen.len() >= self.capacity {
            match self.by_count.last().copied() {
                Some((heaviest, h, _)) if heaviest >= 2 => self.forget_oldest(h),
                _ if count >= 1 => self.forget_oldest(origin),
                _ => return false,
            }
        }
        // Kept at least until the origin's floor passes, so the floor is never forgotten
        // while it still matters.
        let floor = self.origins.get(&origin).map_or(0, |o| o.floor);
        let expires_at = expires_at.max(floor);
        self.seen.insert((origin, tx));
        self.by_expiry.insert((expires_at, origin, tx));
        let o = self.origins.entry(origin).or_insert(Origin { floor: 0, entries: BinaryHeap::new() });
        self.by_count.remove(&(o.entries.len() as u64, origin, 0));
        o.entries.push(Reverse((expires_at, tx)));
        self.by_count.insert((o.entries.len() as u64, origin, 0));
        true
    }

    /// Forgets `origin`'s oldest entry and raises its floor to that entry's expiry.
    fn forget_oldest(&mut self, origin: Did) {
        let Some(&Reverse((exp, tx))) = self.origins.get(&origin).and_then(|o| o.entries.peek()) else { return };
        self.remove(origin, exp, tx);
        if let Some(o) = self.origins.get_mut(&origin) {
            o.floor = o.floor.max(exp);
        }
    }

    /// Removes `origin`'s oldest entry, `(exp, tx)`; its record goes with its last entry
    /// in `expire` (its floor is then below every live message's expiry, which the expiry
    /// check enforces).
    fn remove(&mut self, origin: Did, exp: u64, tx: u64) {
        self.seen.remove(&(origin, tx));
        self.by_expiry.remove(&(exp, origin, tx));
        if let Some(o) = self.origins.get_mut(&origin) {
            self.by_count.remove(&(o.entries.len() as u64, origin, 0));
            // Always its oldest (see `Origin::entries`); were it ever not, the entry still
            // goes, so that the indexes never drift apart.
            if o.entries.peek() == Some(&Reverse((exp, tx))) {
                o.entries.pop();
            } else {
                debug_assert!(false, "an entry leaves as its origin's oldest");
                o.entries.retain(|e| *e != Reverse((exp, tx)));
            }
            if !o.entries.is_empty() {
                self.by_count.insert((o.entries.len() as u64, origin, 0));
            }
        }
    }

    /// Forgets entries that expired before `limit` (now minus skew).
    pub fn expire(&mut self, limit: u64) {
        while let Some(&(exp, origin, tx)) = self.by_expiry.first() {
            if exp >= limit {
                break;
            }
            self.remove(origin, exp, tx);
            if self.origins.get(&origin).is_some_and(|o| o.entries.is_empty()) {
                self.origins.remove(&origin);
            }
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
    fn an_origin_over_its_share_raises_only_its_own_floor() {
        let (o, p) = (Did::from_u64(1), Did::from_u64(2));
        let mut c = ReplayCache::new(32); // share 2
        assert!(c.insert(o, 1, 100));
        assert!(c.insert(o, 2, 200));
        assert!(!c.is_fresh(o, 1, 100));
        assert!(c.insert(o, 3, 300)); // evicts tx 1: o's floor = 100
        assert_eq!(c.len(), 2);
        assert!(!c.is_fresh(o, 1, 100), "the evicted id is still refused through the floor");
        assert!(c.is_fresh(o, 4, 101));
        assert!(c.is_fresh(p, 9, 50), "another origin is not judged by o's floor");
        c.expire(250);
        assert_eq!(c.len(), 1);
        assert!(!c.is_fresh(o, 3, 300));
        c.expire(1_000);
        assert_eq!(c.len(), 0);
        assert!(c.origins.is_empty() && c.by_count.is_empty() && c.by_expiry.is_empty());
    }

    #[test]
    fn an_origin_sending_past_its_share_over_time_loses_nothing_and_keeps_its_floor() {
        let o = Did::from_u64(1);
        let mut c = ReplayCache::new(64); // share 4
                                          // 40 messages, one per 100 ms, each living 60 s: past the share ten times.
        for i in 0..40u64 {
            let exp = 1_000 + i * 100 + 60_000;
            assert!(c.is_fresh(o, i, exp), "message {i} is new");
            assert!(c.insert(o, i, exp));
        }
        assert!((0..40u64).all(|i| !c.is_fresh(o, i, 1_000 + i * 100 + 60_000)), "none can be replayed");
        // Its only entry forgotten for a newcomer's sake, an earlier-expiring message
        // does not take the floor with it when it expires.
        let mut c = ReplayCache::new(2); // share 1
        assert!(c.insert(o, 1, 500));
        assert!(c.insert(o, 2, 900)); // o over its share: tx 1 forgotten, floor 500
        assert!(c.insert(o, 3, 600)); // tx 2 forgotten, floor 900; tx 3 kept until 900
        c.expire(700);
        assert!(!c.is_fresh(o, 2, 900), "the floor outlived the entry that expired first");
    }

    #[test]
    fn a_flood_from_many_origins_takes_from_the_heaviest_and_never_lets_a_replay_in() {
        let mut c = ReplayCache::new(64); // share 4
        let honest = Did::from_u64(7);
        assert!(c.insert(honest, 1, 10_000));
        // 100 Sybils, each sending up to its share with long lifetimes.
        for s in 0..100u64 {
            for tx in 0..4 {
                let _ = c.insert(Did::from_u64(1_000 + s), tx, 50_000 + tx);
            }
        }
        assert!(c.len() <= 64);
        assert!(!c.is_fresh(honest, 1, 10_000), "the honest entry was never the heaviest's");
        assert!(c.is_fresh(honest, 2, 10_001), "and the honest origin is judged by nothing the flood did");
        assert!(c.insert(honest, 2, 10_001));
        // Every Sybil id that was entered and forgotten is refused through its own floor.
        let mut c = ReplayCache::new(64);
        let mut entered = Vec::new();
        for s in 0..100u64 {
            for tx in 0..4 {
                let o = Did::from_u64(1_000 + s);
                if c.insert(o, tx, 50_000 + s * 4 + tx) {
                    entered.push((o, tx, 50_000 + s * 4 + tx));
                }
            }
        }
        assert!(entered.len() > 64, "some were forgotten: {}", entered.len());
        assert!(entered.iter().all(|&(o, tx, exp)| !c.is_fresh(o, tx, exp)));
        // As many single-entry origins as the capacity: a newcomer is refused, not let in.
        let mut c = ReplayCache::new(16);
        for s in 0..16u64 {
            assert!(c.insert(Did::from_u64(s), 0, 1_000));
        }
        assert!(!c.insert(Did::from_u64(99), 0, 1_000));
        assert!(!c.contains(Did::from_u64(99), 0));
    }

    #[test]
    fn random_traffic_keeps_the_indexes_in_step_and_never_lets_a_replay_in() {
        for seed in 0..40u64 {
            let mut rng = crate::rng::SeededRng::new(seed);
            let mut c = ReplayCache::new(64);
            let mut now = 0u64;
            let mut entered = Vec::new();
            for _ in 0..2_000 {
                now += rng.below(50);
                let o = Did::from_u64(rng.below(12));
                let tx = rng.below(400);
                let exp = now + 1 + rng.below(3_000);
                if c.is_fresh(o, tx, exp) && c.insert(o, tx, exp) {
                    entered.push((o, tx, exp));
                }
                if rng.below(20) == 0 {
                    c.expire(now);
                }
                let held: usize = c.origins.values().map(|x| x.entries.len()).sum();
                assert_eq!((c.seen.len(), c.by_expiry.len()), (held, held), "seed {seed}");
                assert!(c.len() <= 64 && c.origins.values().all(|x| x.entries.len() <= 4), "seed {seed}");
            }
            // Every message entered and not yet expired is refused again.
            assert!(entered.iter().filter(|e| e.2 > now).all(|&(o, tx, exp)| !c.is_fresh(o, tx, exp)), "seed {seed}");
        }
    }
}
