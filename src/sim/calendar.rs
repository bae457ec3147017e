//! The simulator's event queue.

use std::collections::VecDeque;

use crate::time::Instant;

/// A calendar queue over whole milliseconds: bucket `k` holds what happens at
/// `base + k`, in the order it was scheduled. O(1) push and pop; the horizon is the
/// longest timeout (seconds), so the deque stays a few thousand buckets long.
pub(super) struct Calendar<T> {
    base: u64,
    buckets: VecDeque<Vec<T>>,
    spare: Vec<Vec<T>>,
}

impl<T> Calendar<T> {
    pub(super) fn push(&mut self, at: Instant, what: T) {
        let k = at.as_millis().saturating_sub(self.base) as usize;
        while self.buckets.len() <= k {
            let v = self.spare.pop().unwrap_or_default();
            self.buckets.push_back(v);
        }
        self.buckets[k].push(what);
    }

    /// Takes everything due at the earliest non-empty instant not after `t`.
    pub(super) fn pop_due(&mut self, t: Instant) -> Option<(Instant, Vec<T>)> {
        while self.base <= t.as_millis() {
            let front = self.buckets.front_mut()?;
            if !front.is_empty() {
                return Some((Instant(self.base), core::mem::take(front)));
            }
            if self.base == t.as_millis() {
                return None; // keep `base` ≤ now: later pushes at `now` must land here
            }
            if let Some(v) = self.buckets.pop_front() {
                self.spare.push(v);
            }
            self.base += 1;
        }
        None
    }

    pub(super) fn recycle(&mut self, mut v: Vec<T>) {
        v.clear();
        if self.spare.len() < 64 {
            self.spare.push(v);
        }
    }
}

impl<T> Default for Calendar<T> {
    fn default() -> Calendar<T> {
        Calendar { base: 0, buckets: VecDeque::new(), spare: Vec::new() }
    }
}
