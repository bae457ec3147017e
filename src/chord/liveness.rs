//! Failure detection: strikes, direct checks and confirmed failures.
//!
//! Zave's protocol assumes that a node learns *reliably* that a neighbour has failed;
//! treating one lost message as a failure breaks her invariants (a live successor is
//! dropped, the list shrinks, and loops can form). Here:
//! - an unanswered request (hop acknowledgement, stabilization, ping) is a *strike*
//!   against its peer, and every strike short of `Config::strikes` is followed by a direct
//!   check (a ping or, for the successor, a new stabilization);
//! - an answer that matches a request this node sent to the peer (a hop acknowledgement,
//!   a stabilization answer, a pong) clears its strikes; an unsolicited message does not,
//!   so a peer that swallows requests cannot keep itself listed by chattering;
//! - only `strikes` misses in a row, or the transport closing the link, confirm a
//!   failure: then the peer leaves the table, its second-hand mentions are ignored for a
//!   while, and the neighbours are repaired (`maintain`).
//!
//! While a peer has strikes, lookups route around it (`route`), so a crash costs a
//! lookup one hop timeout, not its answer.

use super::message::Message;
use super::node::{Node, Probe, ProbeKind, MAX_CANDIDATE_PROBES, MAX_PROBES, MAX_SUSPECTS};
use super::output::Event;
use crate::time::Instant;
use crate::Did;

impl Node {
    /// `peer` spoke to us itself: it is not gone, and a predecessor is not silent.
    pub(super) fn heard_from(&mut self, now: Instant, peer: Did) {
        if self.table.predecessor() == Some(peer) {
            self.predecessor_seen = now;
        }
        if let Some(i) = self.gone.iter().position(|g| g.0 == peer) {
            self.gone.remove(i);
        }
    }

    /// `peer` answered a request this node sent it: its strikes are cleared.
    pub(super) fn answered(&mut self, peer: Did) {
        self.suspects.retain(|&(s, _)| s != peer);
    }

    /// Drops every check in flight to `peer` (it failed or left); a finger check among
    /// them ends its sweep step.
    pub(super) fn drop_probes_to(&mut self, now: Instant, peer: Did) {
        let mut finger = None;
        self.probes.retain(|p| {
            if p.target != peer {
                return true;
            }
            if let ProbeKind::Finger(i) | ProbeKind::FingerFound(i) = p.kind {
                finger = Some(i);
            }
            false
        });
        if let Some(i) = finger {
            self.finger_check_failed(now, i);
        }
    }

    /// Sends a direct check to `target` unless one is in flight or too many are.
    /// Returns whether one is (now) in flight.
    pub(super) fn probe(&mut self, now: Instant, target: Did, kind: ProbeKind) -> bool {
        if self.probes.iter().any(|p| p.target == target && p.kind == kind) {
            return true;
        }
        // Any check answers "is it alive?"; a finger step needs its own answer (the caller
        // ends the step when none can be sent).
        if self.probes.iter().any(|p| p.target == target) {
            match kind {
                ProbeKind::Successor => {}
                ProbeKind::Finger(_) | ProbeKind::FingerFound(_) => return false,
                _ => return true,
            }
        }
        // Checks of claimed nodes are few, so that claims can never crowd out the checks
        // of the node's own neighbours.
        let limit = if kind == ProbeKind::Candidate { MAX_CANDIDATE_PROBES } else { MAX_PROBES };
        let count = if kind == ProbeKind::Candidate { self.probes.iter().filter(|p| p.kind == kind).count() } else { self.probes.len() };
        if count >= limit {
            return false;
        }
        let tag = self.alloc_id();
        let deadline = now + self.answer_timeout(target);
        self.probes.push(Probe { tag, target, sent: now, deadline, kind });
        self.stats.checks += 1;
        let msg = match kind {
            ProbeKind::Successor | ProbeKind::Candidate => Message::Stabilize { tag },
            ProbeKind::Finger(_) | ProbeKind::FingerFound(_) | ProbeKind::Predecessor | ProbeKind::Suspect => Message::Ping { tag },
        };
        self.send(target, msg);
        true
    }

    /// Takes the probe answered by `from` under `tag`, if there is one.
    pub(super) fn take_probe(&mut self, now: Instant, from: Did, tag: u64) -> Option<Probe> {
        let i = self.probes.iter().position(|p| p.tag == tag && p.target == from)?;
        let p = self.probes.swap_remove(i);
        self.rtt_sample(from, p.sent, now);
        Some(p)
    }

    pub(super) fn expire_probes(&mut self, now: Instant) {
        while let Some(i) = self.probes.iter().position(|p| p.deadline <= now) {
            let p = self.probes.swap_remove(i);
            match p.kind {
                // A claimed neighbour that does not answer is simply not adopted.
                ProbeKind::Candidate => {}
                ProbeKind::Finger(i) | ProbeKind::FingerFound(i) => {
                    self.strike(now, p.target);
                    self.finger_check_failed(now, i);
                }
                ProbeKind::Successor | ProbeKind::Predecessor | ProbeKind::Suspect => {
                    self.strike(now, p.target);
                }
            }
        }
    }

    /// Counts a miss against `peer`; returns whether that confirmed its failure. Short of
    /// that, the peer gets a direct check (unless one is already on its way).
    pub(super) fn strike(&mut self, now: Instant, peer: Did) -> bool {
        let known = self.table.knows(peer);
        if !known {
            return false; // nothing to repair; the request routes around it anyway
        }
        self.stats.strikes += 1;
        let limit = self.cfg.strikes;
        let count = match self.suspects.iter_mut().find(|(s, _)| *s == peer) {
            Some((_, c)) => {
                *c = c.saturating_add(1);
                *c
            }
            None => {
                if self.suspects.len() >= MAX_SUSPECTS {
                    self.suspects.remove(0);
                }
                self.suspects.push((peer, 1));
                1
            }
        };
        if count >= limit {
            self.peer_failed(now, peer);
            return true;
        }
        // The direct check of a successor is a stabilization; of anyone else, a ping.
        let kind = if self.table.successor() == Some(peer) { ProbeKind::Successor } else { ProbeKind::Suspect };
        self.probe(now, peer, kind);
        false
    }

    /// No unanswered strike against `peer`.
    pub(super) fn usable_peer(&self, peer: Did) -> bool {
        !self.suspects.iter().any(|&(s, _)| s == peer)
    }

    /// `peer` is confirmed failed: out of the table, ignored second-hand, neighbours
    /// repaired.
    pub(super) fn peer_failed(&mut self, now: Instant, peer: Did) {
        self.suspects.retain(|&(s, _)| s != peer);
        self.drop_probes_to(now, peer);
        let (present, was_succ, was_pred) = self.table.remove(peer);
        if !present {
            return;
        }
        self.mark_gone(now, peer);
        self.stats.peers_unreachable += 1;
        self.push_event(Event::PeerUnreachable { peer });
        if was_pred {
            self.predecessor_lost(now);
        }
        if was_succ {
            self.successor_lost(now);
        }
    }

    pub(super) fn on_pong(&mut self, now: Instant, from: Did, tag: u64, predecessor: Option<Did>) {
        let Some(p) = self.take_probe(now, from, tag) else {
            self.stats.unexpected += 1;
            return;
        };
        self.answered(from);
        match p.kind {
            ProbeKind::Finger(i) => self.finger_checked(now, i, from, predecessor),
            ProbeKind::FingerFound(i) => self.finger_confirmed(now, i, from, predecessor),
            _ => {}
        }
    }
}
