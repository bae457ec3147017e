//! The oracle: the true, sorted set of live ring members, to check nodes against.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound::{Excluded, Unbounded};

use crate::Did;

#[derive(Default, Clone, Debug)]
pub struct Oracle {
    sorted: BTreeSet<Did>,
    /// The same members in arbitrary order, for O(1) uniform sampling.
    members: Vec<Did>,
    position: HashMap<Did, usize>,
}

impl Oracle {
    pub fn insert(&mut self, d: Did) {
        if self.sorted.insert(d) {
            self.position.insert(d, self.members.len());
            self.members.push(d);
        }
    }

    pub fn remove(&mut self, d: Did) {
        if self.sorted.remove(&d) {
            if let Some(pos) = self.position.remove(&d) {
                self.members.swap_remove(pos);
                if let Some(&moved) = self.members.get(pos) {
                    self.position.insert(moved, pos);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn contains(&self, d: Did) -> bool {
        self.sorted.contains(&d)
    }

    /// The k-th member in arbitrary (but deterministic) order.
    pub fn nth(&self, k: usize) -> Option<Did> {
        self.members.get(k).copied()
    }

    /// The owner of `key`: the first member at or clockwise after it.
    pub fn successor_of(&self, key: Did) -> Option<Did> {
        self.sorted.range(key..).next().or_else(|| self.sorted.first()).copied()
    }

    /// The first member strictly after `d` (`None` if `d` is the only member).
    pub fn successor_after(&self, d: Did) -> Option<Did> {
        let s = self.sorted.range((Excluded(d), Unbounded)).next().or_else(|| self.sorted.first()).copied();
        s.filter(|&s| s != d)
    }

    /// The last member strictly before `d` (`None` if `d` is the only member).
    pub fn predecessor_before(&self, d: Did) -> Option<Did> {
        let p = self.sorted.range(..d).next_back().or_else(|| self.sorted.last()).copied();
        p.filter(|&p| p != d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_samples() {
        let d = Did::from_u64;
        let mut o = Oracle::default();
        for v in [10, 20, 30] {
            o.insert(d(v));
        }
        assert_eq!(o.successor_of(d(15)), Some(d(20)));
        assert_eq!(o.successor_of(d(20)), Some(d(20)));
        assert_eq!(o.successor_of(d(31)), Some(d(10)));
        assert_eq!(o.successor_after(d(30)), Some(d(10)));
        assert_eq!(o.predecessor_before(d(10)), Some(d(30)));
        o.remove(d(10));
        assert_eq!(o.len(), 2);
        assert!((0..2).all(|k| o.nth(k).is_some_and(|x| o.contains(x))));
        o.remove(d(20));
        assert_eq!(o.successor_after(d(30)), None);
        assert_eq!(o.predecessor_before(d(30)), None);
    }
}
