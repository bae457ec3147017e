//! Ring maintenance, after Pamela Zave, "Reasoning about identifier spaces: how to make
//! Chord correct" (IEEE TSE 2017) and "Using lightweight modeling to understand Chord"
//! (ACM CCR 2012). The rules each piece keeps:
//!
//! - **Join** (`join_attempt`, `join_found`): the joiner looks up its own successor,
//!   stabilizes with it and copies its *whole* successor list before it counts as joined
//!   (Zave: a joiner's first reconcile precedes everything else it does). Attempts that get
//!   no answer are retried with backoff through every node the joiner knows.
//! - **Stabilize** (`on_stabilize_reply`): ask the successor for its predecessor `p` and
//!   list; if `p ∈ (me, successor)` it is the better successor — adopted only once `p`
//!   itself answers a stabilization (Zave: "if p is live"); a claim is never adopted as is.
//! - **Reconcile**: the list becomes `successor :: successor's list`, from the successor's
//!   own answer only; nothing is merged in from fingers, notifiers or departing nodes.
//! - **Update** (`successor_lost`): a successor is removed only when its failure is
//!   confirmed (strikes plus direct checks, `liveness`); the next entry takes its place and
//!   is stabilized with at once.
//! - **Notify / rectify** (`on_stabilize`): a notifier `n` becomes the predecessor iff there
//!   is none, `n ∈ (predecessor, me)`, or the old predecessor then fails its direct check
//!   (`predecessor_lost`). No predecessor is ever taken from a third party's word (no
//!   "tentative" predecessor from a successor's answer, none from `Leave`), and a node
//!   without one does not confirm ownership (`route`).
//! - **Rejoin** (`rejoin`): a node whose every successor failed is out of the ring (Zave: it
//!   cannot repair itself from its fingers, which would give wrap-around successors); it
//!   joins again through any live node it knows.
//! - **Merge** (`round`; beyond Zave, whose proofs assume one ring from the start): each
//!   round a live finger inside `(me, successor)` is offered as successor, and a notifier
//!   inside that gap is adopted, so two rings or a loop that formed by accident merge.

use super::message::{Check, FindSuccessor, MAX_LISTED};
use super::node::{Back, Node, Phase, ProbeKind, ReqKind, Request};
use super::output::{Event, RequestId};
use crate::time::{Duration, Instant};
use crate::Did;

/// Nodes remembered to join through.
const MAX_JOIN_CANDIDATES: usize = 8;

impl Node {
    // ---- join ----

    /// One join attempt: a lookup of this node's own id, handed to `via`.
    pub(super) fn join_attempt(&mut self, now: Instant, via: Did, attempt: u8) {
        if attempt > 0 {
            self.stats.join_retries += 1;
        }
        if self.join_candidates.is_empty() {
            self.join_candidates.push(via);
        }
        let id = self.alloc_id();
        let me = self.did();
        // An attempt whose answer was lost is given up early and made again.
        let deadline = now + Duration(self.cfg.request_timeout.as_millis() / 2);
        self.insert_request(id, Request { key: me, kind: ReqKind::Join { via, attempt }, deadline, retry_at: deadline, retries_left: 0 });
        self.send_join_lookup(now, via, id);
    }

    /// Hands join request `id` (a lookup of this node's own id) to `via`: a joiner knows
    /// nobody else.
    pub(super) fn send_join_lookup(&mut self, now: Instant, via: Did, id: u64) {
        let find = FindSuccessor { tag: 0, key: self.did(), hops: 1, check: Check::Route, join: true };
        self.forward_to(now, via, find, Back::Origin(id), 0);
    }

    /// The join lookup found `successor`: stabilize with it to copy its list.
    pub(super) fn join_found(&mut self, now: Instant, successor: Did, attempt: u8) {
        if !matches!(self.phase, Phase::Joining(_)) {
            return;
        }
        if successor == self.did() {
            return self.join_attempt_failed(now, attempt, super::LookupError::Unreachable);
        }
        self.join_step = Some(attempt);
        self.table.set_successors([successor]);
        self.probe(now, successor, ProbeKind::Successor);
    }

    /// The successor's first stabilization answer arrived: the node is in the ring.
    fn join_complete(&mut self, now: Instant) {
        let Phase::Joining(id) = self.phase else { return };
        let Some(successor) = self.table.successor() else { return };
        self.phase = Phase::Joined;
        self.join_step = None;
        self.predecessor_seen = now;
        self.fingers = super::fingers::Sweep::new(now);
        self.push_event(Event::Joined { id, successor });
        self.push_event(Event::SuccessorChanged { successor: Some(successor) });
    }

    /// The successor found did not answer its stabilizations.
    fn join_stabilize_failed(&mut self, now: Instant) {
        let attempt = self.join_step.take().unwrap_or(0);
        self.join_attempt_failed(now, attempt, super::LookupError::Unreachable);
    }

    /// Attempt `attempt` failed: try again after a backoff, through the next node known,
    /// or report the join failed once every attempt is spent.
    pub(super) fn join_attempt_failed(&mut self, now: Instant, attempt: u8, error: super::LookupError) {
        let Phase::Joining(id) = self.phase else { return };
        self.table.clear();
        self.probes.clear();
        self.join_step = None;
        let next = attempt + 1;
        let candidates: Vec<Did> =
            self.join_candidates.iter().copied().filter(|&c| !self.is_gone(c) || self.join_candidates.len() == 1).collect();
        if candidates.is_empty() {
            self.phase = Phase::Joined; // nobody to join through: alone
            self.push_event(Event::JoinFailed { id, error });
            return;
        }
        let (next, backoff) = if next >= self.cfg.join_attempts {
            // Every attempt failed: say so, and start over later (a node that wants to be
            // in a ring never settles for being alone while it knows someone).
            self.push_event(Event::JoinFailed { id, error });
            (0, Duration(self.cfg.join_backoff.as_millis() << 4))
        } else {
            (next, Duration(self.cfg.join_backoff.as_millis() << attempt.min(3)))
        };
        let via = candidates[next as usize % candidates.len()];
        self.join_wait = Some((now + backoff, via, next));
    }

    /// Every successor failed: join again through a node this node knows (fingers, the
    /// predecessor, the nodes it joined through, then `first`), or be alone if it knows none.
    fn rejoin(&mut self, now: Instant, first: &[Did]) {
        let me = self.did();
        let mut candidates: Vec<Did> = Vec::new();
        // Nodes this node found or checked itself come before a departing node's hints.
        let own: Vec<Did> = self.table.finger_nodes().chain(self.table.predecessor()).chain(self.join_candidates.iter().copied()).collect();
        for c in own.into_iter().chain(first.iter().copied()) {
            if c != me && !self.is_gone(c) && !candidates.contains(&c) && candidates.len() < MAX_JOIN_CANDIDATES {
                candidates.push(c);
            }
        }
        self.table.clear();
        self.probes.clear();
        let Some(&via) = candidates.first() else {
            return; // nobody else is known: a ring of one
        };
        self.stats.rejoins += 1;
        let id = RequestId(self.alloc_id());
        self.phase = Phase::Joining(id);
        self.join_candidates = candidates;
        self.push_event(Event::Rejoining { via });
        self.join_attempt(now, via, 0);
    }

    // ---- the periodic round ----

    /// One periodic round: predecessor check, stabilization, merge check, fingers.
    pub(super) fn round(&mut self, now: Instant) {
        let interval = self.cfg.stabilize_interval.as_millis();
        // ±10% jitter keeps nodes from synchronizing.
        let jitter = interval * (900 + self.rng.below(201)) / 1000;
        self.next_round = now + Duration(jitter.max(1));
        if self.phase != Phase::Joined {
            return;
        }
        if let Some(p) = self.table.predecessor() {
            if now - self.predecessor_seen >= self.cfg.predecessor_timeout {
                self.probe(now, p, ProbeKind::Predecessor);
            }
        }
        self.expire_gone(now);
        let table = &self.table;
        self.suspects.retain(|&(d, _)| table.knows(d));
        if self.refused_notifier.is_some_and(|(_, at)| now - at > Duration(2 * interval)) {
            self.refused_notifier = None;
        }
        self.stabilize_now(now);
        // Merge: a live node the list skips is a better successor.
        let gap = self.table.fingers_before_successor().find(|&f| !self.is_gone(f));
        if let Some(f) = gap {
            self.probe(now, f, ProbeKind::Candidate);
        }
        self.finger_round(now);
    }

    /// Starts a stabilization with the first successor unless one is in flight.
    pub(super) fn stabilize_now(&mut self, now: Instant) {
        if self.phase != Phase::Joined {
            return;
        }
        if let Some(s) = self.table.successor() {
            self.probe(now, s, ProbeKind::Successor);
        }
    }

    // ---- stabilize and notify ----

    pub(super) fn on_stabilize(&mut self, now: Instant, from: Did, tag: u64) {
        if self.phase != Phase::Joined {
            self.stats.not_joined += 1;
            return;
        }
        let me = self.did();
        // rectify
        match self.table.predecessor() {
            Some(p) if p == from => {}
            Some(p) if !from.in_open_open(p, me) => {
                // Refused while `p` seems alive: keep the closest such notifier, and check
                // `p` now (it may be the one that failed).
                if self.refused_notifier.is_none_or(|(n, _)| from.in_open_open(n, me)) {
                    self.refused_notifier = Some((from, now));
                }
                self.probe(now, p, ProbeKind::Predecessor);
            }
            _ => self.adopt_predecessor(now, from),
        }
        // merge: a live node between us and our successor, in touch itself, is a better successor
        if self.table.successor().is_none_or(|s| from.in_open_open(me, s)) && self.table.offer_successor(from) {
            self.push_event(Event::SuccessorChanged { successor: Some(from) });
            self.stabilize_now(now);
        }
        let reply =
            super::Message::StabilizeReply { tag, predecessor: self.table.predecessor(), successors: self.table.successors().to_vec() };
        self.send(from, reply);
    }

    fn adopt_predecessor(&mut self, now: Instant, p: Did) {
        if self.refused_notifier.is_some_and(|(n, _)| n == p || !n.in_open_open(p, self.did())) {
            self.refused_notifier = None;
        }
        let old = self.table.predecessor();
        if self.table.set_predecessor(Some(p)) {
            self.predecessor_seen = now;
            self.push_event(Event::PredecessorChanged { predecessor: Some(p) });
            // The old predecessor (alive, just not the closest) learns of the newcomer now
            // rather than at its next stabilization.
            if let Some(o) = old.filter(|&o| o != p && p.in_open_open(o, self.did()) && self.usable_peer(o)) {
                self.send(o, super::Message::Between { node: p });
            }
        }
    }

    /// Our successor says `node` joined between us: check it directly.
    pub(super) fn on_between(&mut self, now: Instant, from: Did, node: Did) {
        let me = self.did();
        if self.phase != Phase::Joined || self.table.successor() != Some(from) || node == me || !node.in_open_open(me, from) {
            self.stats.unexpected += 1;
            return;
        }
        self.probe(now, node, ProbeKind::Candidate);
    }

    pub(super) fn on_stabilize_reply(&mut self, now: Instant, from: Did, tag: u64, predecessor: Option<Did>, successors: &[Did]) {
        let Some(probe) = self.take_probe(now, from, tag).filter(|p| matches!(p.kind, ProbeKind::Successor | ProbeKind::Candidate)) else {
            self.stats.unexpected += 1;
            return;
        };
        if successors.len() > MAX_LISTED {
            self.stats.invalid += 1;
            return;
        }
        self.answered(from);
        let me = self.did();
        // Only what lies beyond `from` (up to us) can be on `from`'s list: a name before it
        // would be a successor nobody checked.
        let heard: Vec<Did> = successors.iter().copied().filter(|&d| d.in_open_open(from, me) && !self.is_gone(d)).collect();
        let before = self.table.successor();
        if before == Some(from) {
            // reconcile: the successor's own list, behind it
            self.table.set_successors(core::iter::once(from).chain(heard));
        } else if before.is_none_or(|s| from.in_open_open(me, s)) {
            // a claimed or found node between us and our successor answered itself
            self.table.set_successors(core::iter::once(from).chain(heard).chain(before));
        } else if probe.kind == ProbeKind::Candidate {
            self.table.offer_successor(from);
        }
        if matches!(self.phase, Phase::Joining(_)) && probe.kind == ProbeKind::Successor {
            if self.table.successor() == Some(from) {
                self.join_complete(now);
            } else {
                return self.join_stabilize_failed(now);
            }
        }
        // stabilize: the successor's predecessor may be a closer successor; it must answer for itself
        if let Some(p) = predecessor.filter(|&p| p != me && !self.is_gone(p) && p.in_open_open(me, from)) {
            if self.table.successor() == Some(from) && self.phase == Phase::Joined {
                self.probe(now, p, ProbeKind::Candidate);
            }
        }
        if self.table.successor() != before && self.phase == Phase::Joined {
            self.push_event(Event::SuccessorChanged { successor: self.table.successor() });
            if before.is_some() {
                self.stabilize_now(now);
            }
        }
    }

    // ---- failures and departures ----

    /// The predecessor failed its checks or left: a notifier refused lately takes its
    /// place (it spoke to us itself), or none until the next notify.
    pub(super) fn predecessor_lost(&mut self, now: Instant) {
        self.push_event(Event::PredecessorChanged { predecessor: None });
        if let Some((n, _)) = self.refused_notifier.take().filter(|&(n, _)| !self.is_gone(n)) {
            self.adopt_predecessor(now, n);
        }
    }

    /// The first successor failed or left.
    pub(super) fn successor_lost(&mut self, now: Instant) {
        self.successor_lost_hinted(now, &[]);
    }

    fn successor_lost_hinted(&mut self, now: Instant, hints: &[Did]) {
        if matches!(self.phase, Phase::Joining(_)) {
            return self.join_stabilize_failed(now);
        }
        self.push_event(Event::SuccessorChanged { successor: self.table.successor() });
        if self.table.successor().is_none() {
            self.rejoin(now, hints);
        } else {
            self.stabilize_now(now);
        }
    }

    pub(super) fn on_leave(&mut self, now: Instant, from: Did, _predecessor: Option<Did>, successors: &[Did]) {
        if successors.len() > MAX_LISTED {
            self.stats.invalid += 1;
            return;
        }
        self.mark_gone(now, from);
        self.suspects.retain(|&(s, _)| s != from);
        self.drop_probes_to(now, from);
        let (_, was_succ, was_pred) = self.table.remove(from);
        if was_pred {
            self.predecessor_lost(now);
        }
        if was_succ {
            // The leaver's list is a hint: a node named in it is only joined through.
            let me = self.did();
            let hints: Vec<Did> = successors.iter().copied().filter(|&d| d != me && !self.is_gone(d)).take(MAX_JOIN_CANDIDATES).collect();
            self.successor_lost_hinted(now, &hints);
        }
    }
}
