//! The simulator's view of the DHT store: operations on a node, and the copies held.

use std::collections::HashMap;

use super::{NodeIx, Sim};
use crate::Did;

impl Sim {
    /// Node `ix` stores a record signed elsewhere (a client's).
    pub fn put_record(&mut self, ix: NodeIx, record: crate::store::Record) -> crate::store::OpId {
        let now = self.clock_of(ix);
        let op = self.slots[ix as usize].node.put_record(now, record);
        self.after_input(ix);
        op
    }

    /// Node `ix` writes `value` at `key` as its own account (see [`crate::Node::put`]).
    pub fn put(
        &mut self,
        ix: NodeIx,
        key: Did,
        kind: crate::store::RecordKind,
        value: Vec<u8>,
        ttl: crate::Duration,
    ) -> Result<crate::store::OpId, crate::store::StoreError> {
        let now = self.clock_of(ix);
        let op = self.slots[ix as usize].node.put(now, key, kind, value, ttl);
        self.after_input(ix);
        op
    }

    /// Node `ix` reads the records at `key`.
    pub fn get(&mut self, ix: NodeIx, key: Did) -> crate::store::OpId {
        let now = self.clock_of(ix);
        let op = self.slots[ix as usize].node.get(now, key);
        self.after_input(ix);
        op
    }

    /// How a store operation ended, if it has (taken out).
    pub fn take_store_event(&mut self, ix: NodeIx, op: crate::store::OpId) -> Option<crate::store::StoreEvent> {
        self.store_events.remove(&(ix, op))
    }

    /// Live nodes holding a live copy of a record at `key`.
    pub fn holders(&self, key: Did) -> usize {
        let now = self.now;
        self.slots.iter().filter(|s| s.alive && !s.node.store().records_at(key, now).is_empty()).count()
    }

    /// Live copies per key over all live nodes (a record counts once per node).
    pub fn replica_counts(&self) -> HashMap<Did, usize> {
        let now = self.now.as_millis();
        let mut counts = HashMap::new();
        for s in self.slots.iter().filter(|s| s.alive) {
            let mut last = None;
            for r in s.node.store().iter().filter(|r| r.expires_at >= now) {
                if last != Some(r.key) {
                    *counts.entry(r.key).or_insert(0) += 1;
                    last = Some(r.key);
                }
            }
        }
        counts
    }

    /// Live nodes holding a live copy of a record at `key` (slow: scans every node).
    pub fn holders_of(&self, key: Did) -> Vec<Did> {
        let now = self.now;
        self.slots.iter().filter(|s| s.alive && !s.node.store().records_at(key, now).is_empty()).map(|s| s.node.did()).collect()
    }

    /// Records held by each live node.
    pub fn records_per_node(&self) -> Vec<usize> {
        self.slots.iter().filter(|s| s.alive).map(|s| s.node.store().len()).collect()
    }
}
