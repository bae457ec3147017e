//! The simulator's checks against the oracle: ring pointers, fingers, memory, counters.

use super::{NodeIx, RingErrors, Sim, Slot};
use crate::wire::WireStats;
use crate::Did;

impl Sim {
    /// Members whose successor, or whose predecessor, differs from the oracle's.
    pub fn ring_errors(&self) -> RingErrors {
        self.ring_errors_where(|_| true)
    }

    /// Like [`Sim::ring_errors`], over the members that pass `count` (e.g. honest ones).
    pub fn ring_errors_where(&self, count: impl Fn(NodeIx) -> bool) -> RingErrors {
        let mut e = RingErrors::default();
        for (_, slot) in self.slots.iter().enumerate().filter(|(i, s)| s.is_member() && count(*i as NodeIx)) {
            let did = slot.node.did();
            let (succ, pred) = (self.oracle.successor_after(did), self.oracle.predecessor_before(did));
            if slot.node.ring().successor() != succ {
                e.successor += 1;
            }
            if slot.node.ring().predecessor() != pred {
                e.predecessor += 1;
            }
            if !slot.node.ring().is_joined() || (slot.node.ring().successor().is_none() && succ.is_some()) {
                e.outside += 1;
            }
        }
        e
    }

    /// Finger entries that are not the oracle's successor of their start, over all members.
    pub fn finger_errors(&self) -> u64 {
        let mut wrong = 0;
        for slot in self.slots.iter().filter(|s| s.is_member()) {
            let me = slot.node.did();
            for &(i, n) in slot.node.ring().table().fingers() {
                let start = me.wrapping_add(Did::pow2(i as u32).unwrap_or(Did::ZERO));
                if self.oracle.successor_of(start) != Some(n) {
                    wrong += 1;
                }
            }
        }
        wrong
    }

    /// Mean estimated core state per member, in bytes.
    pub fn mean_node_memory(&self) -> usize {
        let members: Vec<&Slot> = self.slots.iter().filter(|s| s.is_member()).collect();
        members.iter().map(|s| s.node.ring().memory_bytes()).sum::<usize>() / members.len().max(1)
    }

    /// Sums of every member's protocol counters.
    pub fn node_stats_total(&self) -> crate::chord::Stats {
        let mut t = crate::chord::Stats::default();
        for s in &self.slots {
            t.add(s.node.ring().stats());
        }
        t
    }

    /// Sums of every node's wire counters.
    pub fn wire_stats_total(&self) -> WireStats {
        let mut t = WireStats::default();
        for s in &self.slots {
            t.add(s.node.wire().stats());
        }
        t
    }
}
