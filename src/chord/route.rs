//! Lookups: recursive routing with per-hop acknowledgement, owner confirmation and
//! fail-over around unresponsive hops.
//!
//! A request moves by closest preceding node over fingers and successors until a node's
//! successor list covers the key; it then goes to the believed owner, which confirms from
//! its own predecessor (or passes it back to a newer owner). Every hop is acknowledged;
//! a hop that stays silent for `hop_timeout` is dropped from the table and the request is
//! re-routed from the same node, so lookups survive crashes that stabilization has not
//! repaired yet.

use super::message::{FailReason, FindSuccessor, Message};
use super::node::{Event, Forward, LookupError, Node, Phase, ReqKind, Request, RequestId};
use crate::time::Instant;
use crate::Did;

/// Re-routes of one request at one relay before it is reported unreachable.
const MAX_ATTEMPTS: u8 = 4;
/// Fresh routes an origin tries before it reports a lookup failed.
const ORIGIN_RETRIES: u8 = 2;

impl Node {
    pub(super) fn start_lookup(&mut self, now: Instant, id: u64, key: Did, kind: ReqKind) {
        let retry_at = now + self.retry_interval();
        let deadline = now + self.cfg.request_timeout;
        self.requests.insert(id, Request { key, kind, deadline, retry_at, retries_left: ORIGIN_RETRIES });
        self.retries.insert((retry_at, id));
        self.route_from_origin(now, id, key);
    }

    fn retry_interval(&self) -> crate::time::Duration {
        crate::time::Duration(self.cfg.request_timeout.as_millis() / (ORIGIN_RETRIES as u64 + 2))
    }

    fn route_from_origin(&mut self, now: Instant, id: u64, key: Did) {
        let me = self.did();
        let find = FindSuccessor { tag: 0, req: id, origin: me, key, hops: 0, owner_check: false };
        self.route(now, find, None, 0);
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
        let key = r.key;
        self.retries.insert((r.retry_at, id));
        self.route_from_origin(now, id, key);
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
    fn route(&mut self, now: Instant, mut find: FindSuccessor, from: Option<Did>, attempts: u8) {
        let (me, key) = (self.did(), find.key);
        if self.table.owns(key) || (find.owner_check && self.table.predecessor().is_none()) {
            return self.answer(now, find);
        }
        if find.owner_check {
            // The sender thought we own `key`; a node that joined between us owns it.
            if let (Some(p), Some(f)) = (self.table.predecessor(), from) {
                if p.in_open_open(f, me) && key.in_open_closed(f, p) {
                    return self.forward_next(now, p, find, attempts);
                }
            }
        }
        find.owner_check = false;
        if let Some(owner) = self.table.owner_candidate(key) {
            find.owner_check = true;
            self.forward_next(now, owner, find, attempts)
        } else if let Some(next) = self.table.closest_preceding(key) {
            self.forward_next(now, next, find, attempts)
        } else {
            self.answer(now, find)
        }
    }

    fn forward_next(&mut self, now: Instant, next: Did, mut find: FindSuccessor, attempts: u8) {
        if find.hops >= self.cfg.hop_limit {
            self.stats.hop_limit_exceeded += 1;
            return self.fail(now, find, FailReason::HopLimitExceeded);
        }
        find.hops += 1;
        self.forward_to(now, next, find, attempts);
    }

    /// Sends `find` to `next` and waits for its acknowledgement.
    pub(super) fn forward_to(&mut self, now: Instant, next: Did, mut find: FindSuccessor, attempts: u8) {
        if self.forwards.len() >= self.cfg.max_forwards {
            self.stats.overloaded += 1;
            return self.fail(now, find, FailReason::Overloaded);
        }
        find.tag = self.alloc_id();
        let deadline = now + self.cfg.hop_timeout;
        self.forwards.insert(find.tag, Forward { next, deadline, find, attempts });
        self.stats.forwarded += 1;
        self.send(next, Message::FindSuccessor(find));
    }

    /// The hop that `f` went to did not acknowledge it: route it again from here.
    pub(super) fn retry_forward(&mut self, now: Instant, f: Forward) {
        let mut find = f.find;
        let joining = matches!(self.phase, Phase::Joining(_)) && find.origin == self.did();
        if joining || f.attempts + 1 >= MAX_ATTEMPTS {
            return self.fail(now, find, FailReason::Unreachable);
        }
        find.hops -= 1; // the failed hop does not count
        self.route(now, find, None, f.attempts + 1);
    }

    pub(super) fn expire_forwards(&mut self, now: Instant) {
        while let Some(entry) = self.forwards.first_entry() {
            if entry.get().deadline > now {
                break;
            }
            let f = entry.remove();
            self.peer_unreachable(now, f.next);
            self.retry_forward(now, f);
        }
    }

    pub(super) fn expire_requests(&mut self, now: Instant) {
        while let Some(entry) = self.requests.first_entry() {
            if entry.get().deadline > now {
                break;
            }
            let id = *entry.key();
            let r = entry.remove();
            self.retries.remove(&(r.retry_at, id));
            self.request_failed(now, id, r, LookupError::Timeout);
        }
    }

    fn answer(&mut self, now: Instant, find: FindSuccessor) {
        let me = self.did();
        if find.origin == me {
            return self.complete(now, find.req, find.key, me, find.hops);
        }
        self.send(find.origin, Message::Found { req: find.req, key: find.key, hops: find.hops });
    }

    fn fail(&mut self, now: Instant, find: FindSuccessor, reason: FailReason) {
        if find.origin == self.did() {
            return self.on_failed(now, find.req, find.key, reason.into());
        }
        self.send(find.origin, Message::Failed { req: find.req, key: find.key, reason });
    }

    fn take_request(&mut self, req: u64, key: Did) -> Option<Request> {
        match self.requests.get(&req) {
            Some(r) if r.key == key => {
                self.retries.remove(&(r.retry_at, req));
                self.requests.remove(&req)
            }
            _ => {
                self.stats.unexpected += 1;
                None
            }
        }
    }

    fn complete(&mut self, now: Instant, req: u64, key: Did, owner: Did, hops: u8) {
        let Some(r) = self.take_request(req, key) else {
            return;
        };
        let id = RequestId(req);
        match r.kind {
            ReqKind::User => self.push_event(Event::LookupDone { id, key, owner, hops }),
            ReqKind::Join => self.join_complete(now, id, owner),
            ReqKind::Finger(i) => self.finger_complete(now, i, owner),
        }
    }

    fn request_failed(&mut self, now: Instant, req: u64, r: Request, error: LookupError) {
        let id = RequestId(req);
        match r.kind {
            ReqKind::User => self.push_event(Event::LookupFailed { id, key: r.key, error }),
            ReqKind::Join => {
                self.phase = Phase::Joined; // back to being alone
                self.push_event(Event::JoinFailed { id, error });
            }
            ReqKind::Finger(i) => self.finger_failed(now, i),
        }
    }

    // ---- message handlers ----

    pub(super) fn on_find_successor(&mut self, now: Instant, from: Did, find: FindSuccessor) {
        self.send(from, Message::HopAck { tag: find.tag });
        if self.phase != Phase::Joined {
            self.stats.not_joined += 1;
            return self.fail(now, find, FailReason::Unreachable);
        }
        if find.hops > self.cfg.hop_limit {
            self.stats.hop_limit_exceeded += 1;
            return self.fail(now, find, FailReason::HopLimitExceeded);
        }
        self.route(now, find, Some(from), 0);
    }

    pub(super) fn on_hop_ack(&mut self, from: Did, tag: u64) {
        match self.forwards.get(&tag) {
            Some(f) if f.next == from => {
                self.forwards.remove(&tag);
            }
            _ => self.stats.unexpected += 1,
        }
    }

    pub(super) fn on_found(&mut self, now: Instant, from: Did, req: u64, key: Did, hops: u8) {
        self.complete(now, req, key, from, hops);
    }

    /// A request this node originated failed (here or at a relay): route it afresh if it
    /// has retries left and the failure is not final, else report it.
    pub(super) fn on_failed(&mut self, now: Instant, req: u64, key: Did, error: LookupError) {
        let retriable = error != LookupError::HopLimitExceeded;
        if retriable && self.requests.get(&req).is_some_and(|r| r.key == key) && self.retry_request(now, req) {
            return;
        }
        if let Some(r) = self.take_request(req, key) {
            self.request_failed(now, req, r, error);
        }
    }
}
