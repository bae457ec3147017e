//! Ring maintenance: join completion, stabilization with notify/rectify folded into one
//! request-reply, predecessor liveness, successor-list refresh, finger refresh over
//! distinct targets, and graceful leave.

use super::message::{Message, MAX_LISTED};
use super::node::{Event, Node, PendingStabilize, Phase, ReqKind, RequestId};
use crate::did::DID_BITS;
use crate::time::{Duration, Instant};
use crate::Did;

impl Node {
    pub(super) fn join_complete(&mut self, now: Instant, id: RequestId, successor: Did) {
        self.phase = Phase::Joined;
        self.table.set_successors([successor]);
        self.predecessor_seen = now;
        self.push_event(Event::Joined { id, successor });
        self.push_event(Event::SuccessorChanged { successor: Some(successor) });
        self.send_stabilize(now, successor, true);
    }

    /// One periodic round: predecessor liveness, stabilization, finger refresh.
    pub(super) fn round(&mut self, now: Instant) {
        let interval = self.cfg.stabilize_interval.as_millis();
        // ±10% jitter keeps nodes from synchronizing.
        let jitter = interval * (900 + self.rng.below(201)) / 1000;
        self.next_round = now + Duration(jitter.max(1));
        if self.phase != Phase::Joined {
            return;
        }
        if self.table.predecessor().is_some() && now - self.predecessor_seen >= self.cfg.predecessor_timeout {
            self.table.set_predecessor(None);
            self.push_event(Event::PredecessorChanged { predecessor: None });
        }
        self.stabilize_now(now);
        self.finger_budget = self.cfg.fingers_per_round;
        self.next_finger(now);
    }

    /// Starts a stabilization with the first successor unless one is in flight.
    pub(super) fn stabilize_now(&mut self, now: Instant) {
        if self.stabilizing.is_some() || self.phase != Phase::Joined {
            return;
        }
        if let Some(s) = self.table.successor() {
            self.send_stabilize(now, s, false);
        }
    }

    fn send_stabilize(&mut self, now: Instant, target: Did, want_fingers: bool) {
        let tag = self.alloc_id();
        self.stabilizing = Some(PendingStabilize { tag, target, deadline: now + self.cfg.hop_timeout });
        self.send(target, Message::Stabilize { tag, want_fingers });
    }

    /// With every successor gone, fall back on the nearest other known node;
    /// stabilization walks from there to the true successor.
    pub(super) fn refill_successor(&mut self, _now: Instant) {
        if self.table.successor().is_some() {
            return;
        }
        let known: Vec<Did> = self.table.finger_nodes().chain(self.table.predecessor()).collect();
        self.table.set_successors(known);
    }

    pub(super) fn on_stabilize(&mut self, now: Instant, from: Did, tag: u64, want_fingers: bool) {
        if self.phase != Phase::Joined {
            self.stats.not_joined += 1;
            return;
        }
        let me = self.did();
        // notify / rectify: a closer predecessor replaces ours. The reply names the
        // predecessor from before this notify: when it was replaced, that is the
        // newcomer's own predecessor.
        let told = self.table.predecessor();
        if told.is_none_or(|p| from.in_open_open(p, me)) {
            self.table.set_predecessor(Some(from));
            self.push_event(Event::PredecessorChanged { predecessor: Some(from) });
        }
        if self.table.predecessor() == Some(from) {
            self.predecessor_seen = now;
        }
        // a live node between us and our successor is a better successor
        if self.table.successor().is_none_or(|s| from.in_open_open(me, s)) && self.table.offer_successor(from) {
            self.push_event(Event::SuccessorChanged { successor: Some(from) });
        }
        let fingers = if want_fingers { self.table.finger_nodes().collect() } else { Vec::new() };
        let reply = Message::StabilizeReply { tag, predecessor: told, successors: self.table.successors().to_vec(), fingers };
        self.send(from, reply);
    }

    pub(super) fn on_stabilize_reply(
        &mut self,
        now: Instant,
        from: Did,
        tag: u64,
        predecessor: Option<Did>,
        successors: &[Did],
        fingers: &[Did],
    ) {
        match self.stabilizing {
            Some(s) if s.tag == tag && s.target == from => self.stabilizing = None,
            _ => {
                self.stats.unexpected += 1;
                return;
            }
        }
        if successors.len() > MAX_LISTED || fingers.len() > MAX_LISTED {
            self.stats.invalid += 1;
            return;
        }
        let me = self.did();
        let departed = &self.departed;
        let heard = successors.iter().copied().filter(|d| !departed.contains(d));
        let mut changed = self.table.set_successors(core::iter::once(from).chain(heard));
        let predecessor = predecessor.filter(|p| !self.departed.contains(p));
        if let Some(p) = predecessor.filter(|&p| p != me && p.in_open_open(me, from)) {
            // Our successor has a closer predecessor: adopt it and stabilize with it at once.
            changed |= self.table.offer_successor(p);
            self.send_stabilize(now, p, false);
        } else if let Some(p) = predecessor.filter(|&p| p != me && self.table.predecessor().is_none()) {
            // We just took `p`'s place as our successor's predecessor: `p` is ours.
            // Tentative; a closer notifier or the predecessor timeout corrects it.
            self.table.set_predecessor(Some(p));
            self.predecessor_seen = now;
            self.push_event(Event::PredecessorChanged { predecessor: Some(p) });
        }
        self.table.offer_fingers(fingers);
        if changed {
            self.push_event(Event::SuccessorChanged { successor: self.table.successor() });
        }
    }

    pub(super) fn on_leave(&mut self, now: Instant, from: Did, predecessor: Option<Did>, successors: &[Did]) {
        if successors.len() > MAX_LISTED {
            self.stats.invalid += 1;
            return;
        }
        if self.departed.len() >= 32 {
            self.departed.pop_front();
        }
        self.departed.push_back(from);
        let (_, was_succ, was_pred) = self.table.remove(from);
        if was_succ || self.table.successor().is_none() {
            let mine: Vec<Did> = self.table.successors().to_vec();
            self.table.set_successors(mine.into_iter().chain(successors.iter().copied()));
            self.push_event(Event::SuccessorChanged { successor: self.table.successor() });
            if self.stabilizing.is_some_and(|s| s.target == from) {
                self.stabilizing = None;
            }
            self.stabilize_now(now);
        }
        if was_pred {
            self.table.set_predecessor(predecessor);
            self.predecessor_seen = now;
            self.push_event(Event::PredecessorChanged { predecessor: self.table.predecessor() });
        }
    }

    /// Starts the next finger lookup if this round's budget allows. Targets are the
    /// distinct finger starts only: after finger i answers n, every start up to n is
    /// already answered by n, so the next target is the first start beyond n.
    pub(super) fn next_finger(&mut self, now: Instant) {
        if self.finger_budget == 0 || self.finger_req.is_some() || self.phase != Phase::Joined {
            return;
        }
        if self.table.successor().is_none() {
            return;
        }
        let first = self.table.first_uncovered_finger();
        self.table.prune_fingers_below(first);
        let mut index = self.finger_next.max(first);
        if index >= DID_BITS {
            index = first;
        }
        if index >= DID_BITS {
            return; // the successor list spans half the ring or more
        }
        self.finger_budget -= 1;
        let key = self.did().wrapping_add(Did::pow2(index).unwrap_or(Did::ZERO));
        let id = self.alloc_id();
        self.finger_req = Some(id);
        self.start_lookup(now, id, key, ReqKind::Finger(index as u8));
    }

    pub(super) fn finger_complete(&mut self, now: Instant, index: u8, owner: Did) {
        self.finger_req = None;
        self.table.set_finger(index, owner);
        let reach = self.did().distance_to(owner).bit_len();
        self.finger_next = if owner == self.did() { DID_BITS } else { reach.max(index as u32 + 1) };
        self.next_finger(now);
    }

    pub(super) fn finger_failed(&mut self, _now: Instant, index: u8) {
        self.finger_req = None;
        self.finger_next = index as u32 + 1;
    }
}
