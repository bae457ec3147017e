//! The routing table: predecessor, successor list and fingers of one node.
//! Pure data with ring geometry; the protocol that fills it lives in `node`.

use crate::did::DID_BITS;
use crate::Did;

/// Where [`RoutingTable::toward_node`] sends a message for a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeHop {
    Local,
    Next(Did),
    NoRoute,
}

/// Neighbours and fingers of the node `me`.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    me: Did,
    predecessor: Option<Did>,
    /// Distinct live-believed successors, ordered by clockwise distance from `me`.
    successors: Vec<Did>,
    /// `(i, n)`: `n` is believed to be the successor of `me + 2^i`. Sorted by `i`; only
    /// distinct nodes are kept (about log2 N entries), never 160 slots.
    fingers: Vec<(u8, Did)>,
    capacity: usize,
}

impl RoutingTable {
    pub fn new(me: Did, capacity: usize) -> RoutingTable {
        RoutingTable { me, predecessor: None, successors: Vec::new(), fingers: Vec::new(), capacity }
    }

    pub fn me(&self) -> Did {
        self.me
    }

    pub fn predecessor(&self) -> Option<Did> {
        self.predecessor
    }

    pub fn successor(&self) -> Option<Did> {
        self.successors.first().copied()
    }

    pub fn successors(&self) -> &[Did] {
        &self.successors
    }

    /// Finger nodes, nearest first.
    pub fn finger_nodes(&self) -> impl Iterator<Item = Did> + '_ {
        self.fingers.iter().map(|&(_, n)| n)
    }

    /// `(index, node)` finger entries.
    pub fn fingers(&self) -> &[(u8, Did)] {
        &self.fingers
    }

    /// Sets the predecessor; returns whether it changed.
    pub fn set_predecessor(&mut self, p: Option<Did>) -> bool {
        let p = p.filter(|&p| p != self.me);
        let changed = self.predecessor != p;
        self.predecessor = p;
        changed
    }

    /// Replaces the successor list with `candidates`, ordered by distance from `me`,
    /// deduplicated, without `me`, truncated to capacity. Returns whether the first
    /// successor changed.
    pub fn set_successors(&mut self, candidates: impl IntoIterator<Item = Did>) -> bool {
        let before = self.successor();
        let me = self.me;
        let mut list: Vec<Did> = candidates.into_iter().filter(|&d| d != me).collect();
        list.sort_unstable_by(|a, b| Did::cmp_from(me, *a, *b));
        list.dedup();
        list.truncate(self.capacity);
        self.successors = list;
        before != self.successor()
    }

    /// Adds one live-believed node to the successor list if it belongs there.
    pub fn offer_successor(&mut self, x: Did) -> bool {
        let old = core::mem::take(&mut self.successors);
        self.set_successors(old.into_iter().chain(core::iter::once(x)))
    }

    /// Whether `x` is the predecessor, a successor or a finger.
    pub fn knows(&self, x: Did) -> bool {
        self.predecessor == Some(x) || self.successors.contains(&x) || self.fingers.iter().any(|&(_, n)| n == x)
    }

    /// Forgets `x` everywhere. Returns (was it known at all, was it the successor, was it
    /// the predecessor).
    pub fn remove(&mut self, x: Did) -> (bool, bool, bool) {
        let was_succ = self.successor() == Some(x);
        let was_pred = self.predecessor == Some(x);
        let present = self.knows(x);
        self.successors.retain(|&s| s != x);
        self.fingers.retain(|&(_, n)| n != x);
        if was_pred {
            self.predecessor = None;
        }
        (present, was_succ, was_pred)
    }

    pub fn clear(&mut self) {
        self.predecessor = None;
        self.successors.clear();
        self.fingers.clear();
    }

    /// Whether this node is the owner (successor) of `key` by its own knowledge: the key
    /// lies in (predecessor, me], or the node knows no other node at all.
    pub fn owns(&self, key: Did) -> bool {
        match self.predecessor {
            Some(p) => key.in_open_closed(p, self.me),
            None => self.successors.is_empty(),
        }
    }

    /// The successor-list entry that owns `key`, if `key` falls inside the span the list covers.
    pub fn owner_candidate(&self, key: Did) -> Option<Did> {
        self.owner_candidate_where(key, |_| true)
    }

    /// Like [`RoutingTable::owner_candidate`], taking entries that fail `usable` (suspected
    /// of having failed) as absent: the key then falls to the next usable entry.
    pub fn owner_candidate_where(&self, key: Did, usable: impl Fn(Did) -> bool) -> Option<Did> {
        let mut prev = self.me;
        for &s in &self.successors {
            if !usable(s) {
                continue;
            }
            if key.in_open_closed(prev, s) {
                return Some(s);
            }
            prev = s;
        }
        None
    }

    /// The known node closest before `key` (strictly between `me` and `key`), over
    /// successors and fingers.
    pub fn closest_preceding(&self, key: Did) -> Option<Did> {
        self.closest_preceding_where(key, |_| true)
    }

    /// Like [`RoutingTable::closest_preceding`], over the nodes that pass `usable`.
    pub fn closest_preceding_where(&self, key: Did, usable: impl Fn(Did) -> bool) -> Option<Did> {
        let me = self.me;
        let span = me.distance_to(key);
        let mut best: Option<(Did, Did)> = None; // (distance, node)
        for n in self.successors.iter().copied().chain(self.finger_nodes()) {
            let d = me.distance_to(n);
            if d != Did::ZERO && d < span && best.is_none_or(|(bd, _)| d > bd) && usable(n) {
                best = Some((d, n));
            }
        }
        best.map(|(_, n)| n)
    }

    /// The next hop toward the node `dest` (not a key's owner): `dest` itself if this
    /// table knows it, else the successor whose range holds it, else the closest node
    /// before it. The wire routes messages by it (chord's lookups route to owners).
    pub fn toward_node(&self, dest: Did) -> NodeHop {
        if dest == self.me {
            return NodeHop::Local;
        }
        if self.knows(dest) {
            return NodeHop::Next(dest);
        }
        if self.predecessor.is_some() && self.owns(dest) || self.successors.is_empty() {
            return NodeHop::NoRoute; // this node would be dest's successor: dest is not in the ring
        }
        match self.owner_candidate(dest).or_else(|| self.closest_preceding(dest)) {
            Some(n) => NodeHop::Next(n),
            None => NodeHop::NoRoute,
        }
    }

    /// Fingers strictly between `me` and the successor: each one is a live node the
    /// successor list skips (two loops, or a list that lies), to offer as successor.
    pub fn fingers_before_successor(&self) -> impl Iterator<Item = Did> + '_ {
        let (me, succ) = (self.me, self.successor());
        self.finger_nodes().filter(move |f| succ.is_some_and(|s| f.in_open_open(me, s)))
    }

    /// Drops fingers that the successor list covers (from the successor to its last
    /// entry): they add nothing. Fingers before the successor are kept (merge check).
    pub fn prune_covered_fingers(&mut self) {
        let (me, Some(first), Some(&last)) = (self.me, self.successor(), self.successors.last()) else {
            return;
        };
        let (lo, hi) = (me.distance_to(first), me.distance_to(last));
        self.fingers.retain(|&(_, n)| {
            let d = me.distance_to(n);
            d < lo || d > hi
        });
    }

    /// The smallest finger index whose start is not covered by the successor list.
    pub fn first_uncovered_finger(&self) -> u32 {
        match self.successors.last() {
            Some(&last) => self.me.distance_to(last).bit_len(),
            None => 0,
        }
    }

    /// Records that `node` is the successor of `me + 2^index`, dropping entries that this
    /// contradicts. Returns false (and changes nothing) for an impossible answer.
    pub fn set_finger(&mut self, index: u8, node: Did) -> bool {
        if index as u32 >= DID_BITS {
            return false;
        }
        let me = self.me;
        if node == me {
            // No other node from the start onwards: the ring wraps back to us.
            self.fingers.retain(|&(i, _)| i < index);
            return true;
        }
        let d = me.distance_to(node);
        let span_end = d.bit_len(); // indices index..span_end all map to `node`
        if span_end <= index as u32 {
            return false; // node lies before the finger's start: not its successor
        }
        self.fingers.retain(|&(i, n)| {
            let dn = me.distance_to(n);
            if (i as u32) < index as u32 {
                dn < d // fingers are monotone: an earlier finger beyond `node` is stale
            } else {
                (i as u32) >= span_end && dn > d && n != node
            }
        });
        let pos = self.fingers.partition_point(|&(i, _)| i < index);
        self.fingers.insert(pos, (index, node));
        true
    }

    /// The finger entry at exactly `index`, if any.
    pub fn finger_at(&self, index: u8) -> Option<Did> {
        self.fingers.binary_search_by_key(&index, |&(i, _)| i).ok().map(|k| self.fingers[k].1)
    }

    /// Bytes of heap this table holds.
    pub fn heap_bytes(&self) -> usize {
        self.successors.capacity() * core::mem::size_of::<Did>() + self.fingers.capacity() * core::mem::size_of::<(u8, Did)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(v: u64) -> Did {
        Did::from_u64(v)
    }

    #[test]
    fn successor_list_is_ordered_from_me_and_wraps() {
        let mut t = RoutingTable::new(d(100), 3);
        assert!(t.set_successors([d(50), d(150), d(100), d(120), d(150), d(10)]));
        assert_eq!(t.successors(), &[d(120), d(150), d(10)]);
        assert_eq!(t.owner_candidate(d(121)), Some(d(150)));
        assert_eq!(t.owner_candidate(d(5)), Some(d(10)));
        assert_eq!(t.owner_candidate(d(40)), None);
        assert!(t.offer_successor(d(110)));
        assert_eq!(t.successors(), &[d(110), d(120), d(150)]);
        assert_eq!(t.remove(d(110)), (true, true, false));
        assert_eq!(t.remove(d(110)), (false, false, false));
        assert_eq!(t.successor(), Some(d(120)));
    }

    #[test]
    fn ownership_and_closest_preceding() {
        let mut t = RoutingTable::new(d(100), 4);
        assert!(t.owns(d(5)), "a lone node owns everything");
        t.set_successors([d(110)]);
        assert!(!t.owns(d(5)), "without a predecessor ownership is unknown");
        t.set_predecessor(Some(d(90)));
        assert!(t.owns(d(95)) && t.owns(d(100)) && !t.owns(d(90)) && !t.owns(d(101)));
        t.set_finger(4, d(120));
        t.set_finger(8, d(400));
        assert_eq!(t.closest_preceding(d(1000)), Some(d(400)));
        assert_eq!(t.closest_preceding(d(400)), Some(d(120)));
        assert_eq!(t.closest_preceding(d(101)), None);
    }

    #[test]
    fn fingers_keep_distinct_consistent_entries() {
        let mut t = RoutingTable::new(d(0), 4);
        assert!(t.set_finger(3, d(20))); // covers indices 3 and 4 (20 < 32)
        assert!(t.set_finger(5, d(40)));
        assert!(t.set_finger(6, d(100)));
        assert_eq!(t.fingers(), &[(3, d(20)), (5, d(40)), (6, d(100))]);
        // a node joined at 10: finger 3 becomes 10; nothing else changes
        assert!(t.set_finger(3, d(10)));
        assert_eq!(t.fingers(), &[(3, d(10)), (5, d(40)), (6, d(100))]);
        // finger 5 now answered by 70, which also covers index 6 (start 64 ≤ 70)
        assert!(t.set_finger(5, d(70)));
        assert_eq!(t.fingers(), &[(3, d(10)), (5, d(70))]);
        // impossible: node before the start
        assert!(!t.set_finger(7, d(100)));
        // wrap back to me drops later fingers
        assert!(t.set_finger(6, d(0)));
        assert_eq!(t.fingers(), &[(3, d(10)), (5, d(70))]);
        assert_eq!((t.finger_at(5), t.finger_at(4)), (Some(d(70)), None));
    }

    #[test]
    fn suspects_are_routed_around_and_fingers_inside_the_list_are_pruned() {
        let mut t = RoutingTable::new(d(0), 4);
        t.set_successors([d(10), d(20), d(30)]);
        assert_eq!(t.owner_candidate_where(d(15), |n| n != d(20)), Some(d(30)));
        assert_eq!(t.closest_preceding_where(d(35), |n| n != d(30)), Some(d(20)));
        t.set_finger(2, d(5)); // a live node the list skips
        t.set_finger(4, d(20));
        t.set_finger(5, d(40));
        assert_eq!(t.fingers_before_successor().collect::<Vec<_>>(), vec![d(5)]);
        t.prune_covered_fingers();
        assert_eq!(t.fingers(), &[(2, d(5)), (5, d(40))]);
    }
}
