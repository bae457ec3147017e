//! One Chord node as a sans-IO state machine.
//!
//! Run-loop contract (the same for the simulator and the browser driver):
//! 1. feed inputs: [`Node::handle_message`] / [`Node::handle_frame`] when a peer's frame
//!    arrives, [`Node::handle_timeout`] when the instant from [`Node::poll_timeout`] is
//!    reached, [`Node::handle_peer_down`] when the transport loses a peer, and the
//!    application calls [`Node::join`], [`Node::lookup`], [`Node::leave`];
//! 2. after every input, drain [`Node::poll_transmit`] (send each frame to its peer) and
//!    [`Node::poll_event`] (application events), then sleep until [`Node::poll_timeout`].
//!
//! `now` is passed in with every input; the node never reads a clock or draws entropy
//! except from the seed it was built with.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::config::{Config, ConfigError};
use super::message::{DecodeError, FailReason, FindSuccessor, Message};
use super::table::RoutingTable;
use crate::rng::SeededRng;
use crate::time::{Duration, Instant};
use crate::Did;

/// Identifies a request (join or lookup) made to one node; its completion event carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Why a lookup or join failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupError {
    /// No answer within `request_timeout`.
    Timeout,
    HopLimitExceeded,
    /// No next hop acknowledged the request.
    Unreachable,
    /// Too many requests in flight here or at a relay.
    Overloaded,
    /// The node has not joined a ring (or has left it).
    NotJoined,
}

impl From<FailReason> for LookupError {
    fn from(r: FailReason) -> LookupError {
        match r {
            FailReason::HopLimitExceeded => LookupError::HopLimitExceeded,
            FailReason::Unreachable => LookupError::Unreachable,
            FailReason::Overloaded => LookupError::Overloaded,
        }
    }
}

/// What the node tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    Joined {
        id: RequestId,
        successor: Did,
    },
    JoinFailed {
        id: RequestId,
        error: LookupError,
    },
    /// `owner` is the successor of `key`; it confirmed so itself.
    LookupDone {
        id: RequestId,
        key: Did,
        owner: Did,
        hops: u8,
    },
    LookupFailed {
        id: RequestId,
        key: Did,
        error: LookupError,
    },
    SuccessorChanged {
        successor: Option<Did>,
    },
    PredecessorChanged {
        predecessor: Option<Did>,
    },
    /// A peer failed to answer in time and was dropped from the routing table; the driver
    /// may close its connection.
    PeerUnreachable {
        peer: Did,
    },
}

/// A message to send to one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: Did,
    pub message: Message,
}

/// Counters: traffic, and every input dropped, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub received: u64,
    pub forwarded: u64,
    /// Frames that failed to decode.
    pub malformed: u64,
    /// Replies or acknowledgements matching nothing in flight.
    pub unexpected: u64,
    pub hop_limit_exceeded: u64,
    /// Messages that need a joined node, received before joining or after leaving.
    pub not_joined: u64,
    /// Requests refused because a bound was reached.
    pub overloaded: u64,
    /// Messages from ourselves, or listing impossible values.
    pub invalid: u64,
    pub peers_unreachable: u64,
    /// Events discarded because the application did not poll them.
    pub events_dropped: u64,
}

impl Stats {
    /// Adds every counter of `o` to this one (totals over many nodes).
    pub fn add(&mut self, o: &Stats) {
        let Stats {
            sent,
            received,
            forwarded,
            malformed,
            unexpected,
            hop_limit_exceeded,
            not_joined,
            overloaded,
            invalid,
            peers_unreachable,
            events_dropped,
        } = o;
        self.sent += sent;
        self.received += received;
        self.forwarded += forwarded;
        self.malformed += malformed;
        self.unexpected += unexpected;
        self.hop_limit_exceeded += hop_limit_exceeded;
        self.not_joined += not_joined;
        self.overloaded += overloaded;
        self.invalid += invalid;
        self.peers_unreachable += peers_unreachable;
        self.events_dropped += events_dropped;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Part of a ring (a new node is alone in its own ring).
    Joined,
    Joining(RequestId),
    Left,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum ReqKind {
    User,
    Join,
    Finger(u8),
}

#[derive(Clone, Debug)]
pub(super) struct Request {
    pub key: Did,
    pub kind: ReqKind,
    pub deadline: Instant,
    /// When the origin routes the request afresh if no answer came (a relay holding it
    /// may have crashed after acknowledging).
    pub retry_at: Instant,
    pub retries_left: u8,
}

/// A request handed to `next`, kept until `next` acknowledges it.
#[derive(Clone, Debug)]
pub(super) struct Forward {
    pub next: Did,
    pub deadline: Instant,
    pub find: FindSuccessor,
    pub attempts: u8,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct PendingStabilize {
    pub tag: u64,
    pub target: Did,
    pub deadline: Instant,
}

const MAX_EVENTS: usize = 4096;

/// One node of the ring.
#[derive(Debug)]
pub struct Node {
    pub(super) cfg: Config,
    pub(super) rng: SeededRng,
    pub(super) table: RoutingTable,
    pub(super) phase: Phase,
    pub(super) next_id: u64,
    /// Keyed by id, which grows with time: the first entry has the earliest deadline.
    pub(super) requests: BTreeMap<u64, Request>,
    /// `(retry_at, id)` of the requests above.
    pub(super) retries: BTreeSet<(Instant, u64)>,
    /// Keyed by hop tag, likewise ordered by deadline.
    pub(super) forwards: BTreeMap<u64, Forward>,
    pub(super) stabilizing: Option<PendingStabilize>,
    pub(super) next_round: Instant,
    pub(super) predecessor_seen: Instant,
    pub(super) finger_next: u32,
    pub(super) finger_budget: u8,
    pub(super) finger_req: Option<u64>,
    /// Peers that said they left, most recent last (bounded): second-hand news of them
    /// (a neighbour's stale list) is ignored.
    pub(super) departed: VecDeque<Did>,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<Event>,
    pub(super) stats: Stats,
}

impl Node {
    /// A node that is alone in its own ring until it [`join`](Node::join)s another.
    /// `seed` drives its timer jitter; nothing else is random.
    pub fn new(me: Did, cfg: Config, seed: u64, now: Instant) -> Result<Node, ConfigError> {
        cfg.validate()?;
        let mut rng = SeededRng::new(seed ^ me.low_u64());
        let first_round = now + Duration(rng.below(cfg.stabilize_interval.as_millis()));
        Ok(Node {
            table: RoutingTable::new(me, cfg.successors),
            cfg,
            rng,
            phase: Phase::Joined,
            next_id: 1,
            requests: BTreeMap::new(),
            retries: BTreeSet::new(),
            forwards: BTreeMap::new(),
            stabilizing: None,
            next_round: first_round,
            predecessor_seen: now,
            finger_next: 0,
            finger_budget: 0,
            finger_req: None,
            departed: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        })
    }

    // ---- getters ----

    pub fn did(&self) -> Did {
        self.table.me()
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    pub fn successor(&self) -> Option<Did> {
        self.table.successor()
    }

    pub fn predecessor(&self) -> Option<Did> {
        self.table.predecessor()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the node is part of a ring (a lone first node is).
    pub fn is_joined(&self) -> bool {
        self.phase == Phase::Joined
    }

    /// Estimated bytes of memory this node's state occupies (struct plus heap).
    pub fn memory_bytes(&self) -> usize {
        use core::mem::size_of;
        // A BTreeMap leaf holds up to 11 entries; count whole leaves for what is in use.
        let btree = |len: usize, entry: usize| len.div_ceil(11) * (11 * entry + 16);
        size_of::<Node>()
            + self.table.heap_bytes()
            + btree(self.requests.len(), size_of::<(u64, Request)>())
            + btree(self.forwards.len(), size_of::<(u64, Forward)>())
            + btree(self.retries.len(), size_of::<(Instant, u64)>())
            + self.departed.capacity() * size_of::<Did>()
            + self.transmits.capacity() * size_of::<Transmit>()
            + self.events.capacity() * size_of::<Event>()
    }

    // ---- application calls ----

    /// Joins the ring that `via` belongs to. Completes with [`Event::Joined`] or
    /// [`Event::JoinFailed`] carrying the returned id.
    pub fn join(&mut self, now: Instant, via: Did) -> RequestId {
        let id = self.alloc_id();
        if via == self.did() || self.phase == Phase::Left {
            self.push_event(Event::JoinFailed { id: RequestId(id), error: LookupError::Unreachable });
            return RequestId(id);
        }
        self.table.clear();
        self.phase = Phase::Joining(RequestId(id));
        let me = self.did();
        let deadline = now + self.cfg.request_timeout;
        self.requests.insert(id, Request { key: me, kind: ReqKind::Join, deadline, retry_at: deadline, retries_left: 0 });
        let find = FindSuccessor { tag: 0, req: id, origin: me, key: me, hops: 1, owner_check: false };
        self.forward_to(now, via, find, 0);
        RequestId(id)
    }

    /// Finds the owner (successor) of `key`. Completes with [`Event::LookupDone`] or
    /// [`Event::LookupFailed`] carrying the returned id.
    pub fn lookup(&mut self, now: Instant, key: Did) -> RequestId {
        let id = self.alloc_id();
        let error = if !self.is_joined() {
            Some(LookupError::NotJoined)
        } else if self.requests.len() >= self.cfg.max_requests {
            self.stats.overloaded += 1;
            Some(LookupError::Overloaded)
        } else {
            None
        };
        if let Some(error) = error {
            self.push_event(Event::LookupFailed { id: RequestId(id), key, error });
            return RequestId(id);
        }
        self.start_lookup(now, id, key, ReqKind::User);
        RequestId(id)
    }

    /// Leaves gracefully: hands the neighbours over to successor and predecessor, then
    /// goes quiet. The node cannot rejoin; make a new one.
    pub fn leave(&mut self, _now: Instant) {
        if self.phase == Phase::Joined {
            let predecessor = self.table.predecessor();
            let successors = self.table.successors().to_vec();
            let mut to: Vec<Did> = successors.first().copied().into_iter().collect();
            to.extend(predecessor.filter(|p| Some(*p) != successors.first().copied()));
            for peer in to {
                self.send(peer, Message::Leave { predecessor, successors: successors.clone() });
            }
        }
        self.phase = Phase::Left;
        self.table.clear();
        self.requests.clear();
        self.retries.clear();
        self.forwards.clear();
        self.stabilizing = None;
    }

    // ---- inputs ----

    /// A frame arrived from `from`: decode it and handle it. A malformed frame is counted
    /// and its error returned; nothing else happens.
    pub fn handle_frame(&mut self, now: Instant, from: Did, frame: &[u8]) -> Result<(), DecodeError> {
        match Message::decode(frame) {
            Ok(msg) => {
                self.handle_message(now, from, msg);
                Ok(())
            }
            Err(e) => {
                self.stats.received += 1;
                self.stats.malformed += 1;
                Err(e)
            }
        }
    }

    /// A decoded message arrived from `from` (authenticated by the transport).
    pub fn handle_message(&mut self, now: Instant, from: Did, msg: Message) {
        self.stats.received += 1;
        if self.phase == Phase::Left {
            self.stats.not_joined += 1;
            return;
        }
        if from == self.did() {
            self.stats.invalid += 1;
            return;
        }
        match msg {
            Message::FindSuccessor(find) => self.on_find_successor(now, from, find),
            Message::HopAck { tag } => self.on_hop_ack(from, tag),
            Message::Found { req, key, hops } => self.on_found(now, from, req, key, hops),
            Message::Failed { req, key, reason } => self.on_failed(now, req, key, reason.into()),
            Message::Stabilize { tag, want_fingers } => self.on_stabilize(now, from, tag, want_fingers),
            Message::StabilizeReply { tag, predecessor, successors, fingers } => {
                self.on_stabilize_reply(now, from, tag, predecessor, &successors, &fingers)
            }
            Message::Leave { predecessor, successors } => self.on_leave(now, from, predecessor, &successors),
        }
    }

    /// The transport lost its connection to `peer`.
    pub fn handle_peer_down(&mut self, now: Instant, peer: Did) {
        if self.phase == Phase::Left {
            return;
        }
        self.peer_unreachable(now, peer);
        // Requests waiting on that peer fail over now rather than at their deadline.
        let waiting: Vec<u64> = self.forwards.iter().filter(|(_, f)| f.next == peer).map(|(&t, _)| t).collect();
        for tag in waiting {
            if let Some(f) = self.forwards.remove(&tag) {
                self.retry_forward(now, f);
            }
        }
        if self.stabilizing.is_some_and(|s| s.target == peer) {
            self.stabilizing = None;
            self.stabilize_now(now);
        }
    }

    /// Time has reached (at least) the instant from [`Node::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Left {
            return;
        }
        self.expire_forwards(now);
        self.expire_requests(now);
        self.expire_retries(now);
        if let Some(s) = self.stabilizing {
            if now >= s.deadline {
                self.stabilizing = None;
                self.peer_unreachable(now, s.target);
                self.stabilize_now(now);
            }
        }
        if now >= self.next_round {
            self.round(now);
        }
    }

    // ---- outputs ----

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next instant at which [`Node::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Left {
            return None;
        }
        let mut t = self.next_round;
        let mut consider = |d: Instant| t = t.min(d);
        if let Some((_, f)) = self.forwards.first_key_value() {
            consider(f.deadline);
        }
        if let Some((_, r)) = self.requests.first_key_value() {
            consider(r.deadline);
        }
        if let Some(&(r, _)) = self.retries.first() {
            consider(r);
        }
        if let Some(s) = self.stabilizing {
            consider(s.deadline);
        }
        Some(t)
    }

    // ---- shared helpers ----

    pub(super) fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(super) fn send(&mut self, to: Did, message: Message) {
        self.stats.sent += 1;
        self.transmits.push_back(Transmit { to, message });
    }

    pub(super) fn push_event(&mut self, e: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(e);
    }

    /// Drops `peer` from the routing table and reports it.
    pub(super) fn peer_unreachable(&mut self, now: Instant, peer: Did) {
        let (present, was_succ, was_pred) = self.table.remove(peer);
        if !present {
            return;
        }
        self.stats.peers_unreachable += 1;
        self.push_event(Event::PeerUnreachable { peer });
        if was_pred {
            self.push_event(Event::PredecessorChanged { predecessor: None });
        }
        if was_succ {
            self.refill_successor(now);
            self.push_event(Event::SuccessorChanged { successor: self.table.successor() });
        }
    }
}
