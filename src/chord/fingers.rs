//! Finger upkeep: sweeps over the distinct finger targets, checked cheaply, paused while
//! they find nothing new.
//!
//! A sweep walks the finger starts `me + 2^i` beyond the successor list, distinct targets
//! only (after finger `i` answers `n`, every start up to `n` is answered by `n`). A known
//! finger `f` is checked with one ping: its answer names `f`'s predecessor `p`, and `f`
//! is still the successor of the start unless `p` lies in `[start, f)` — then (or when
//! `f` does not know its predecessor, or there is no finger yet) the start is looked up.
//! A sweep in which nothing changed is followed by a pause that doubles, up to about the
//! length of a sweep, so an idle ring spends ~1 message per node per round on fingers
//! and a change is still picked up within about 1.5 sweeps (≤ 2·log2 N rounds).

use super::node::{Node, Phase, ProbeKind, ReqKind};
use crate::did::DID_BITS;
use crate::time::{Duration, Instant};
use crate::Did;

/// Where a node's finger sweep stands.
#[derive(Clone, Debug)]
pub(super) struct Sweep {
    /// Next target index of this sweep.
    next: u32,
    /// A check or lookup is in flight.
    busy: bool,
    /// Checks left this round.
    budget: u8,
    /// Nothing changed so far in this sweep.
    clean: bool,
    /// Targets visited in this sweep.
    targets: u32,
    /// Rounds of the last pause.
    pause: u32,
    resume_at: Instant,
}

impl Sweep {
    pub(super) fn new(now: Instant) -> Sweep {
        Sweep { next: 0, busy: false, budget: 0, clean: true, targets: 0, pause: 0, resume_at: now }
    }
}

impl Node {
    /// The round's share of finger work.
    pub(super) fn finger_round(&mut self, now: Instant) {
        if now >= self.fingers.resume_at {
            self.fingers.budget = self.cfg.fingers_per_round;
            self.next_finger(now);
        }
    }

    fn start_of(&self, index: u32) -> Did {
        self.did().wrapping_add(Did::pow2(index).unwrap_or(Did::ZERO))
    }

    /// Starts the next check of this sweep if the round's budget allows.
    pub(super) fn next_finger(&mut self, now: Instant) {
        let s = &self.fingers;
        if s.budget == 0 || s.busy || self.phase != Phase::Joined || self.table.successor().is_none() {
            return;
        }
        self.table.prune_covered_fingers();
        let first = self.table.first_uncovered_finger();
        let index = self.fingers.next.max(first);
        if index >= DID_BITS {
            return self.sweep_done(now);
        }
        self.fingers.budget -= 1;
        self.fingers.targets += 1;
        self.fingers.busy = true;
        let idle = |f: Did| !self.probes.iter().any(|p| p.target == f) && self.usable_peer(f);
        match self.table.finger_at(index as u8) {
            Some(f) if idle(f) => {
                if !self.probe(now, f, ProbeKind::Finger(index as u8)) {
                    self.fingers.busy = false; // too many checks in flight: next round
                }
            }
            _ => self.finger_lookup(now, index),
        }
    }

    fn finger_lookup(&mut self, now: Instant, index: u32) {
        let key = self.start_of(index);
        let id = self.alloc_id();
        self.fingers.busy = true;
        self.start_lookup(now, id, key, ReqKind::Finger(index as u8));
    }

    fn sweep_done(&mut self, now: Instant) {
        let s = &mut self.fingers;
        if s.clean {
            let cap = s.targets + 2;
            s.pause = (s.pause * 2).clamp(s.targets.div_ceil(2).max(1), cap.max(1));
        } else {
            s.pause = 0;
        }
        s.resume_at = now + Duration(self.cfg.stabilize_interval.as_millis() * s.pause as u64);
        s.next = 0;
        s.targets = 0;
        s.clean = true;
        s.busy = false;
        if s.pause > 0 {
            s.budget = 0;
        }
    }

    /// Moves the sweep past the targets that `owner` answers for index `index`.
    fn advance_past(&mut self, index: u8, owner: Did) {
        let reach = self.did().distance_to(owner).bit_len();
        self.fingers.next = if owner == self.did() { DID_BITS } else { reach.max(index as u32 + 1) };
    }

    /// Finger `index` = `f` answered a ping naming its predecessor.
    pub(super) fn finger_checked(&mut self, now: Instant, index: u8, f: Did, predecessor: Option<Did>) {
        self.fingers.busy = false;
        if self.table.finger_at(index) != Some(f) {
            return self.next_finger(now);
        }
        let start = self.start_of(index as u32);
        let stale = match predecessor {
            // `f` is the successor of `start` iff `start ∈ (p, f]`, i.e. p ∉ [start, f)
            Some(p) => start.distance_to(p) < start.distance_to(f),
            None => true, // cannot tell: look it up
        };
        if stale {
            self.fingers.budget = self.fingers.budget.max(1);
            return self.finger_lookup(now, index as u32);
        }
        self.advance_past(index, f);
        self.next_finger(now);
    }

    /// A finger lookup for `index` answered `owner` (on the word of the path): ask the
    /// owner itself before it enters the table. The finger's own node needs no check.
    pub(super) fn finger_found(&mut self, now: Instant, index: u8, owner: Did) {
        if owner == self.did() || self.table.finger_at(index) == Some(owner) {
            return self.finger_set(now, index, owner);
        }
        if !self.probe(now, owner, ProbeKind::FingerFound(index)) {
            self.finger_check_failed(now, index);
        }
    }

    /// The node found for finger `index` answered a ping naming its predecessor.
    pub(super) fn finger_confirmed(&mut self, now: Instant, index: u8, owner: Did, predecessor: Option<Did>) {
        let start = self.start_of(index as u32);
        match predecessor {
            Some(p) if start.distance_to(p) >= start.distance_to(owner) => self.finger_set(now, index, owner),
            // its predecessor lies in [start, owner) (or it knows none): not the finger
            _ => self.finger_check_failed(now, index),
        }
    }

    fn finger_set(&mut self, now: Instant, index: u8, owner: Did) {
        self.fingers.busy = false;
        let changed = if owner == self.did() {
            self.table.fingers().iter().any(|&(i, _)| i >= index) // the ring wraps back: later fingers go
        } else {
            self.table.finger_at(index) != Some(owner)
        };
        if changed {
            self.fingers.clean = false;
        }
        self.table.set_finger(index, owner);
        self.advance_past(index, owner);
        self.next_finger(now);
    }

    /// A finger check or lookup for `index` failed: the sweep moves on past it.
    pub(super) fn finger_check_failed(&mut self, _now: Instant, index: u8) {
        if !self.fingers.busy {
            return; // a stale check (the sweep moved on)
        }
        self.fingers.busy = false;
        self.fingers.clean = false;
        self.fingers.next = index as u32 + 1;
    }
}
