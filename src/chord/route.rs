//! Lookups: recursive routing with per-hop acknowledgement, owner confirmation, answers
//! carried back along the request's own path, and fail-over around silent hops.
//!
//! A request moves by closest preceding node over fingers and successors until it reaches
//! the node just before the key, whose first successor is then asked to confirm that it
//! owns the key from its own predecessor (or to pass it back to the nodes that joined in
//! between, one predecessor at a time). The rest of a successor list is second-hand, so it only ever serves as hops. Every
//! hop is acknowledged; a hop that stays silent for `hop_timeout` earns its peer a strike
//! (followed by a direct check, see `liveness`) and the request is re-routed around it
//! from the same node, so lookups survive crashes that stabilization has not repaired.
//!
//! Answers never go to a node named in a message: each relay remembers which peer handed
//! it the request and under which tag, and sends `Found` / `Failed` back to that peer
//! only when it comes from the peer it forwarded to. No answer opens a link, and a forged
//! answer from anyone but the next hop is counted and dropped.

use super::message::{Check, FailReason, FindSuccessor, Message};
use super::node::{Back, Hop, Node, Phase, ReqKind, Request};
use super::output::{Event, LookupAnswer, LookupError, RequestId};
use crate::time::{Duration, Instant};
use crate::Did;

/// Re-routes of one request at one node before it is reported unreachable.
const MAX_ATTEMPTS: u8 = 4;
/// Fresh routes an origin tries before it reports a lookup failed.
const ORIGIN_RETRIES: u8 = 3;

impl Node {
    pub(super) fn start_lookup(&mut self, now: Instant, id: u64, key: Did, kind: ReqKind) {
        let retry_at = now + self.retry_interval();
        let deadline = now + self.cfg.request_timeout;
        self.insert_request(id, Request { key, kind, deadline, retry_at, retries_left: ORIGIN_RETRIES });
        self.route_from_origin(now, id, key);
    }

    pub(super) fn insert_request(&mut self, id: u64, r: Request) {
        self.deadlines.insert((r.deadline, id));
        if r.retries_left > 0 {
            self.retries.insert((r.retry_at, id));
        }
        self.requests.insert(id, r);
    }

    fn retry_interval(&self) -> Duration {
        Duration(self.cfg.request_timeout.as_millis() / (ORIGIN_RETRIES as u64 + 2))
    }

    fn route_from_origin(&mut self, now: Instant, id: u64, key: Did) {
        let find = FindSuccessor { tag: 0, key, hops: 0, check: Check::Route, join: false };
        self.route(now, find, Back::Origin(id), None, 0);
    }

    /// Routes request `id` afresh if it has a retry left; returns whether it did.
    fn retry_request(&mut self, now: Instant, id: u64) -> bool {
        let interval = self.retry_interval();
        let Some(r) = self.requests.get_mut(&id) else {
            return false;
        };
        if r.retries_left == 0 {
            return false;
        }
        r.retries_left -= 1;
        self.retries.remove(&(r.retry_at, id));
        r.retry_at = now + interval;
        let (key, at, left, kind) = (r.key, r.retry_at, r.retries_left, r.kind);
        if left > 0 {
            self.retries.insert((at, id));
        }
        match kind {
            // A joiner knows nobody but the node it joins through.
            ReqKind::Join { via, .. } => self.send_join_lookup(now, via, id),
            _ => self.route_from_origin(now, id, key),
        }
        true
    }

    pub(super) fn expire_retries(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.retries.first() {
            if at > now {
                break;
            }
            self.retries.remove(&(at, id));
            self.retry_request(now, id);
        }
    }

    /// Moves `find` one step on from this node. `from` is the peer it came from.
    fn route(&mut self, now: Instant, mut find: FindSuccessor, back: Back, from: Option<Did>, attempts: u8) {
        let (me, key) = (self.did(), find.key);
        // A node that is (re)joining has an empty table: it would claim every key.
        if self.phase != Phase::Joined {
            return self.fail(now, find, back, FailReason::NotReady);
        }
        // For a joiner, a node that still lists it is skipped: as our predecessor, we are
        // the successor it asks for.
        let joiner = find.join.then_some(key);
        if self.table.owns(key) || (joiner.is_some() && self.table.predecessor() == joiner) {
            return self.answer(now, find, back, me);
        }
        if find.check != Check::Route {
            match (self.table.predecessor(), from) {
                // No predecessor: ownership cannot be confirmed; ask again soon.
                (None, _) => return self.fail(now, find, back, FailReason::NotReady),
                // Our predecessor is being checked: it may own `key`, or we may; ask again soon.
                (Some(p), _) if !self.usable_peer(p) && !key.in_open_closed(p, me) => {
                    return self.fail(now, find, back, FailReason::NotReady)
                }
                // The sender thought we own `key`; a node that joined between us owns it:
                // walk back over the newcomers (the hop limit bounds a walk a liar starts).
                (Some(p), Some(f)) if p.in_open_open(f, me) && key.in_open_closed(f, p) && Some(p) != joiner => {
                    find.check = Check::PassedBack;
                    return self.forward(now, p, find, back, attempts);
                }
                _ => {}
            }
            find.check = Check::Route;
        }
        let usable = |n: Did| self.usable_peer(n) && Some(n) != joiner;
        // Only the first live successor is asked to confirm ownership: it is checked by
        // stabilization every round. The rest of the list is the successor's word and
        // serves as routing hops (a lying or stale list costs a hop, not an answer).
        let first = self.table.successors().iter().copied().find(|&s| usable(s));
        if let Some(owner) = first.filter(|&s| key.in_open_closed(me, s)) {
            find.check = Check::Owner;
            self.forward(now, owner, find, back, attempts)
        } else if let Some(next) = self.table.closest_preceding_where(key, usable) {
            self.forward(now, next, find, back, attempts)
        } else if joiner.is_some() && self.table.successors().iter().copied().chain(self.table.finger_nodes()).all(|n| Some(n) == joiner) {
            self.answer(now, find, back, me) // but for the joiner itself, this node is alone
        } else {
            self.fail(now, find, back, FailReason::Unreachable)
        }
    }

    fn forward(&mut self, now: Instant, next: Did, mut find: FindSuccessor, back: Back, attempts: u8) {
        if find.hops >= self.cfg.hop_limit {
            self.stats.hop_limit_exceeded += 1;
            return self.fail(now, find, back, FailReason::HopLimitExceeded);
        }
        find.hops += 1;
        self.forward_to(now, next, find, back, attempts);
    }

    /// Sends `find` to `next` under a fresh tag and keeps it until its answer comes back.
    pub(super) fn forward_to(&mut self, now: Instant, next: Did, mut find: FindSuccessor, back: Back, attempts: u8) {
        // A global bound, and a share per peer that hands requests over, so one peer
        // cannot fill the table that this node's own lookups need.
        let share = (self.cfg.max_forwards / super::node::PER_PEER_FORWARDS).max(1) as u32;
        let held = match back {
            Back::Relay { prev, .. } => self.relayed.get(&prev).copied().unwrap_or(0),
            Back::Origin(_) => 0,
        };
        // Relayed requests may fill three quarters of the table: the rest is kept for this
        // node's own lookups, finger lookups and joins.
        let limit = match back {
            Back::Relay { .. } => self.cfg.max_forwards - self.cfg.max_forwards / 4,
            Back::Origin(_) => self.cfg.max_forwards,
        };
        if self.hops.len() >= limit || held >= share {
            self.stats.overloaded += 1;
            return self.fail(now, find, back, FailReason::Overloaded);
        }
        if let Back::Relay { prev, .. } = back {
            *self.relayed.entry(prev).or_insert(0) += 1;
        }
        find.tag = self.alloc_id();
        let ack_by = now + self.answer_timeout(next);
        let deadline = now + self.cfg.request_timeout;
        self.ack_timers.insert((ack_by, find.tag));
        self.hop_timers.insert((deadline, find.tag));
        self.hops.insert(find.tag, Hop { next, find, back, attempts, ack_by: Some(ack_by), deadline });
        self.stats.forwarded += 1;
        self.send(next, Message::FindSuccessor(find));
    }

    pub(super) fn take_hop(&mut self, tag: u64) -> Option<Hop> {
        let h = self.hops.remove(&tag)?;
        if let Back::Relay { prev, .. } = h.back {
            if let Some(n) = self.relayed.get_mut(&prev) {
                *n -= 1;
                if *n == 0 {
                    self.relayed.remove(&prev);
                }
            }
        }
        if let Some(at) = h.ack_by {
            self.ack_timers.remove(&(at, tag));
        }
        self.hop_timers.remove(&(h.deadline, tag));
        Some(h)
    }

    /// The hop `h` went to did not acknowledge it: a strike, then route it again from
    /// here around the suspect.
    pub(super) fn hop_unacknowledged(&mut self, now: Instant, h: Hop) {
        let mut find = h.find;
        let joining = matches!(self.phase, Phase::Joining(_)) && matches!(h.back, Back::Origin(_));
        if joining || h.attempts + 1 >= MAX_ATTEMPTS {
            return self.fail(now, find, h.back, FailReason::Unreachable);
        }
        find.hops -= 1; // the failed hop does not count
        find.check = Check::Route; // the check was meant for the silent peer
        self.route(now, find, h.back, None, h.attempts + 1);
    }

    pub(super) fn expire_hops(&mut self, now: Instant) {
        while let Some(&(at, tag)) = self.ack_timers.first() {
            if at > now {
                break;
            }
            self.ack_timers.remove(&(at, tag));
            if let Some(h) = self.take_hop(tag) {
                self.strike(now, h.next);
                self.hop_unacknowledged(now, h);
            }
        }
        // Acknowledged hops whose answer never came: forget them (the origin retries).
        while let Some(&(at, tag)) = self.hop_timers.first() {
            if at > now {
                break;
            }
            self.take_hop(tag);
        }
    }

    pub(super) fn expire_requests(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            if let Some(r) = self.take_request(id) {
                self.request_failed(now, id, r, LookupError::Timeout);
            }
        }
    }

    fn answer(&mut self, now: Instant, find: FindSuccessor, back: Back, owner: Did) {
        match back {
            Back::Origin(id) => self.complete(now, id, find.key, owner, find.hops),
            Back::Relay { prev, tag } => self.send(prev, Message::Found { tag, key: find.key, owner, hops: find.hops }),
        }
    }

    fn fail(&mut self, now: Instant, find: FindSuccessor, back: Back, reason: FailReason) {
        match back {
            Back::Origin(id) => self.origin_failed(now, id, find.key, reason),
            Back::Relay { prev, tag } => self.send(prev, Message::Failed { tag, key: find.key, reason }),
        }
    }

    pub(super) fn take_request(&mut self, id: u64) -> Option<Request> {
        let r = self.requests.remove(&id)?;
        self.deadlines.remove(&(r.deadline, id));
        self.retries.remove(&(r.retry_at, id));
        Some(r)
    }

    fn complete(&mut self, now: Instant, req: u64, key: Did, owner: Did, hops: u8) {
        let Some(r) = self.requests.get(&req).filter(|r| r.key == key) else {
            self.stats.unexpected += 1;
            return;
        };
        let kind = r.kind;
        self.take_request(req);
        let id = RequestId(req);
        match kind {
            ReqKind::User => self.push_event(Event::LookupDone { id, key, owner, hops }),
            ReqKind::Join { attempt, .. } => self.join_found(now, owner, attempt),
            ReqKind::Finger(i) => self.finger_found(now, i, owner),
            ReqKind::Tagged(tag) => self.answers.push_back(LookupAnswer { tag, key, result: Ok((owner, hops)) }),
        }
    }

    fn request_failed(&mut self, now: Instant, req: u64, r: Request, error: LookupError) {
        match r.kind {
            ReqKind::User => self.push_event(Event::LookupFailed { id: RequestId(req), key: r.key, error }),
            ReqKind::Join { attempt, .. } => self.join_attempt_failed(now, attempt, error),
            ReqKind::Finger(i) => self.finger_check_failed(now, i),
            ReqKind::Tagged(tag) => self.answers.push_back(LookupAnswer { tag, key: r.key, result: Err(error) }),
        }
    }

    /// A request this node originated failed (here or at a relay): route it afresh if it
    /// has retries left and the failure is not final, else report it. A node that is
    /// not ready yet is asked again at the next retry instant, not at once.
    fn origin_failed(&mut self, now: Instant, req: u64, key: Did, reason: FailReason) {
        if self.requests.get(&req).is_none_or(|r| r.key != key) {
            self.stats.unexpected += 1;
            return;
        }
        let retriable = reason != FailReason::HopLimitExceeded;
        if reason == FailReason::NotReady {
            // The owner is between predecessors (a join or a failure next to it is being
            // settled, usually within a round): ask again shortly, as often as the
            // deadline allows.
            let soon = now + Duration(self.cfg.stabilize_interval.as_millis() / 4).min(self.cfg.hop_timeout);
            if let Some(r) = self.requests.get_mut(&req).filter(|r| soon < r.deadline) {
                self.retries.remove(&(r.retry_at, req));
                r.retry_at = r.retry_at.min(soon);
                r.retries_left = r.retries_left.max(1);
                self.retries.insert((r.retry_at, req));
                return;
            }
        }
        if retriable && self.retry_request(now, req) {
            return;
        }
        if let Some(r) = self.take_request(req) {
            self.request_failed(now, req, r, reason.into());
        }
    }

    // ---- message handlers ----

    pub(super) fn on_find_successor(&mut self, now: Instant, from: Did, find: FindSuccessor) {
        self.send(from, Message::HopAck { tag: find.tag });
        let back = Back::Relay { prev: from, tag: find.tag };
        if self.phase != Phase::Joined {
            self.stats.not_joined += 1;
            return self.fail(now, find, back, FailReason::NotReady);
        }
        if find.hops > self.cfg.hop_limit {
            self.stats.hop_limit_exceeded += 1;
            return self.fail(now, find, back, FailReason::HopLimitExceeded);
        }
        self.route(now, find, back, Some(from), 0);
    }

    pub(super) fn on_hop_ack(&mut self, now: Instant, from: Did, tag: u64) {
        match self.hops.get_mut(&tag) {
            Some(h) if h.next == from && h.ack_by.is_some() => {
                let sent = Instant(h.deadline.as_millis().saturating_sub(self.cfg.request_timeout.as_millis()));
                if let Some(at) = h.ack_by.take() {
                    self.ack_timers.remove(&(at, tag));
                }
                self.answered(from);
                self.rtt_sample(from, sent, now);
            }
            _ => self.stats.unexpected += 1,
        }
    }

    /// The hop `tag` for `key` that went to `from`, taken out; `None` (counted) for an
    /// answer from anyone else.
    fn answered_hop(&mut self, from: Did, tag: u64, key: Did) -> Option<Hop> {
        match self.hops.get(&tag) {
            Some(h) if h.next == from && h.find.key == key => {
                self.answered(from);
                self.take_hop(tag)
            }
            _ => {
                self.stats.unexpected += 1;
                None
            }
        }
    }

    pub(super) fn on_found(&mut self, now: Instant, from: Did, tag: u64, key: Did, owner: Did, hops: u8) {
        let Some(h) = self.answered_hop(from, tag, key) else { return };
        let mut find = h.find;
        find.hops = hops; // as counted at the owner
        self.answer(now, find, h.back, owner);
    }

    pub(super) fn on_failed(&mut self, now: Instant, from: Did, tag: u64, key: Did, reason: FailReason) {
        let Some(h) = self.answered_hop(from, tag, key) else { return };
        self.fail(now, h.find, h.back, reason);
    }
}
