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
//! except from the seed it was built with. Request ids and hop tags come from a ChaCha20
//! stream keyed by that seed, so a peer cannot guess them and answer for someone else.

use std::collections::{BTreeSet, HashMap, VecDeque};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::config::{Config, ConfigError};
use super::message::{DecodeError, FindSuccessor, Message};
use super::output::{Event, LookupAnswer, LookupError, RequestId, Stats, Transmit};
use super::table::RoutingTable;
use crate::rng::SeededRng;
use crate::time::{Duration, Instant};
use crate::Did;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Part of a ring (a new node is alone in its own ring).
    Joined,
    Joining(RequestId),
    Left,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReqKind {
    User,
    /// Join attempt `attempt` (0-based) through `via`.
    Join {
        via: Did,
        attempt: u8,
    },
    Finger(u8),
    /// A lookup for another part of the node (its store), answered through
    /// [`Node::poll_lookup_answer`] under the caller's tag, never as an event.
    Tagged(u64),
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

/// Where the answer to a hop goes: to this node's own request, or back to the peer that
/// handed the request over, under that peer's tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Back {
    Origin(u64),
    Relay { prev: Did, tag: u64 },
}

/// A request handed to `next` under the tag `find.tag`, kept until its answer comes back
/// (or `deadline`): the answer is accepted only from `next`.
#[derive(Clone, Debug)]
pub(super) struct Hop {
    pub next: Did,
    pub find: FindSuccessor,
    pub back: Back,
    pub attempts: u8,
    /// `Some(deadline)` until `next` acknowledges the hop.
    pub ack_by: Option<Instant>,
    pub deadline: Instant,
}

/// Why a direct check was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProbeKind {
    /// Stabilize with the first successor (or, while joining, the successor found).
    Successor,
    /// Stabilize with a node claimed to lie between this node and its successor; it is
    /// adopted only when it answers itself.
    Candidate,
    /// Ping finger `index`.
    Finger(u8),
    /// Ping the node a finger lookup for `index` found: it becomes a finger only if it
    /// answers itself and its predecessor lies before the finger's start.
    FingerFound(u8),
    /// Ping the predecessor (silent for a while, or a notifier was refused).
    Predecessor,
    /// Ping a peer that missed an acknowledgement.
    Suspect,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Probe {
    pub tag: u64,
    pub target: Did,
    pub sent: Instant,
    pub deadline: Instant,
    pub kind: ProbeKind,
}

/// Round-trip estimate of one peer (RFC 6298's smoothing), in microseconds; the peer is
/// named by the low 64 bits of its DID (16 bytes an entry: this table is scanned on every
/// answer).
#[derive(Clone, Copy, Debug)]
pub(super) struct Rtt {
    pub peer: u64,
    pub srtt: u32,
    pub rttvar: u32,
}

/// Peers whose round trip is tracked (a new one replaces a random entry when full; the
/// rest wait the full hop timeout).
pub(super) const MAX_RTTS: usize = 32;

/// Direct checks in flight at once.
pub(super) const MAX_PROBES: usize = 16;
/// Of those, checks of nodes that someone claimed to be a closer successor.
pub(super) const MAX_CANDIDATE_PROBES: usize = 2;
/// Share of `Config::max_forwards` that the requests handed over by one peer may hold.
pub(super) const PER_PEER_FORWARDS: usize = 16;
/// Peers with strikes tracked at once (a bound on what missed acknowledgements cost).
pub(super) const MAX_SUSPECTS: usize = 64;
/// Nodes known to have left or failed, whose second-hand mentions are ignored.
pub(super) const MAX_GONE: usize = 64;
/// Rounds for which a departed or failed node's second-hand mentions are ignored.
pub(super) const GONE_FOR: u64 = 5;
const MAX_EVENTS: usize = 4096;

/// One node of the ring.
#[derive(Debug)]
pub struct Node {
    pub(super) cfg: Config,
    /// Timer jitter.
    pub(super) rng: SeededRng,
    /// Request ids and hop tags: unpredictable to peers.
    pub(super) ids: ChaCha20Rng,
    pub(super) table: RoutingTable,
    pub(super) phase: Phase,
    /// This node's requests, by random id.
    pub(super) requests: HashMap<u64, Request>,
    /// `(deadline, id)` and `(retry_at, id)` of the requests above.
    pub(super) deadlines: BTreeSet<(Instant, u64)>,
    pub(super) retries: BTreeSet<(Instant, u64)>,
    /// Hops this node handed on (its own requests and relayed ones), by tag.
    pub(super) hops: HashMap<u64, Hop>,
    /// Relayed hops held per peer that handed them over (at most
    /// `max_forwards / PER_PEER_FORWARDS` each).
    pub(super) relayed: HashMap<Did, u32>,
    /// `(ack_by, tag)` and `(deadline, tag)` of the hops above.
    pub(super) ack_timers: BTreeSet<(Instant, u64)>,
    pub(super) hop_timers: BTreeSet<(Instant, u64)>,
    pub(super) probes: Vec<Probe>,
    /// Round trips of recently answering peers.
    pub(super) rtts: Vec<Rtt>,
    /// Consecutive misses per peer.
    pub(super) suspects: Vec<(Did, u8)>,
    pub(super) next_round: Instant,
    pub(super) predecessor_seen: Instant,
    /// The closest notifier refused while the predecessor seemed alive, and when: it
    /// becomes the predecessor if the old one fails its check.
    pub(super) refused_notifier: Option<(Did, Instant)>,
    /// Join attempts wait here for their backoff: `(at, via, attempt)`.
    pub(super) join_wait: Option<(Instant, Did, u8)>,
    /// While joining: the attempt whose successor is being stabilized with.
    pub(super) join_step: Option<u8>,
    /// Nodes a join goes through, in turn (the one given, or those known at a rejoin).
    pub(super) join_candidates: Vec<Did>,
    pub(super) fingers: super::fingers::Sweep,
    /// Peers that left or failed, and when, most recent last (bounded): second-hand news
    /// of them (a neighbour's stale list) is ignored until they speak to us again or
    /// [`GONE_FOR`] rounds pass (a node taken for failed by mistake comes back then).
    pub(super) gone: VecDeque<(Did, Instant)>,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<Event>,
    /// Answers to tagged lookups. At most `max_requests` are in flight, but refused ones
    /// are answered here at once, so the queue is bounded only by its reader: the
    /// composite node drains it after every call.
    pub(super) answers: VecDeque<LookupAnswer>,
    pub(super) stats: Stats,
}

impl Node {
    /// A node that is alone in its own ring until it [`join`](Node::join)s another.
    /// `seed` drives its jitter and its request ids (expanded; see [`Node::with_seed`]).
    pub fn new(me: Did, cfg: Config, seed: u64, now: Instant) -> Result<Node, ConfigError> {
        let mut expand = SeededRng::new(seed ^ me.low_u64());
        let mut key = [0u8; 32];
        for c in key.chunks_mut(8) {
            c.copy_from_slice(&expand.next_u64().to_le_bytes());
        }
        Node::with_seed(me, cfg, key, now)
    }

    /// Like [`Node::new`], with 32 bytes of seed (from a CSPRNG in the shells), so that
    /// request ids and hop tags cannot be predicted by peers.
    pub fn with_seed(me: Did, cfg: Config, seed: [u8; 32], now: Instant) -> Result<Node, ConfigError> {
        cfg.validate()?;
        let mut ids = ChaCha20Rng::from_seed(seed);
        let mut rng = SeededRng::new(ids.next_u64());
        let first_round = now + Duration(rng.below(cfg.stabilize_interval.as_millis()));
        Ok(Node {
            // Entries beyond `successors` are slack: under churn each level of the ring
            // drops the entries it knows failed, and the slack keeps the list full.
            table: RoutingTable::new(me, cfg.successors + cfg.successors / 2),
            fingers: super::fingers::Sweep::new(now),
            cfg,
            rng,
            ids,
            phase: Phase::Joined,
            requests: HashMap::new(),
            deadlines: BTreeSet::new(),
            retries: BTreeSet::new(),
            hops: HashMap::new(),
            relayed: std::collections::HashMap::new(),
            ack_timers: BTreeSet::new(),
            hop_timers: BTreeSet::new(),
            probes: Vec::new(),
            rtts: Vec::new(),
            suspects: Vec::new(),
            next_round: first_round,
            predecessor_seen: now,
            refused_notifier: None,
            join_wait: None,
            join_step: None,
            join_candidates: Vec::new(),
            gone: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            answers: VecDeque::new(),
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
            + btree(self.hops.len(), size_of::<(u64, Hop)>())
            + btree(self.deadlines.len() + self.retries.len(), size_of::<(Instant, u64)>())
            + btree(self.ack_timers.len() + self.hop_timers.len(), size_of::<(Instant, u64)>())
            + self.probes.capacity() * size_of::<Probe>()
            + self.suspects.capacity() * size_of::<(Did, u8)>()
            + self.gone.capacity() * size_of::<Did>()
            + self.transmits.capacity() * size_of::<Transmit>()
            + self.events.capacity() * size_of::<Event>()
    }

    // ---- application calls ----

    /// Joins the ring that `via` belongs to: finds this node's successor through `via`,
    /// copies its successor list, then reports [`Event::Joined`]. Attempts that get no
    /// answer are retried with backoff (`Config::join_attempts`); [`Event::JoinFailed`]
    /// carries the returned id only when every attempt failed.
    pub fn join(&mut self, now: Instant, via: Did) -> RequestId {
        let id = self.alloc_id();
        if via == self.did() || self.phase == Phase::Left {
            self.push_event(Event::JoinFailed { id: RequestId(id), error: LookupError::Unreachable });
            return RequestId(id);
        }
        self.cancel_join();
        self.table.clear();
        self.probes.clear();
        self.fingers = super::fingers::Sweep::new(now);
        self.phase = Phase::Joining(RequestId(id));
        self.join_candidates = vec![via];
        self.join_attempt(now, via, 0);
        RequestId(id)
    }

    /// Stops a join in progress (its attempts and the start-overs after them): the node is
    /// alone again, a ring of one, until it is told to join anew. A link-mode node does this
    /// when every attempt through its bootstrap peer failed, so that its driver bootstraps
    /// elsewhere instead of the node retrying through the same peer for ever.
    pub fn stop_joining(&mut self) {
        if matches!(self.phase, Phase::Joining(_)) {
            self.cancel_join();
            self.phase = Phase::Joined;
            self.table.clear();
            self.probes.clear();
            self.join_candidates.clear();
        }
    }

    /// Forgets an earlier join's pending work — its retry, its stabilization step and its
    /// attempts in flight — so that none of it can fail (or spend the attempts of) the
    /// join that follows. Answers to those attempts then match no request.
    fn cancel_join(&mut self) {
        self.join_wait = None;
        self.join_step = None;
        self.take_requests(|r| matches!(r.kind, ReqKind::Join { .. }));
    }

    /// Takes the requests `pick` chooses, in deadline order (every request has a deadline,
    /// and the order must not depend on the hash map's).
    fn take_requests(&mut self, pick: impl Fn(&Request) -> bool) -> Vec<Request> {
        let ids: Vec<u64> = self.deadlines.iter().map(|&(_, id)| id).filter(|id| self.requests.get(id).is_some_and(&pick)).collect();
        ids.into_iter().filter_map(|id| self.take_request(id)).collect()
    }

    /// Finds the owner (successor) of `key`. Completes with [`Event::LookupDone`] or
    /// [`Event::LookupFailed`] carrying the returned id.
    pub fn lookup(&mut self, now: Instant, key: Did) -> RequestId {
        let id = self.alloc_id();
        if let Some(error) = self.lookup_refused() {
            self.push_event(Event::LookupFailed { id: RequestId(id), key, error });
            return RequestId(id);
        }
        self.start_lookup(now, id, key, ReqKind::User);
        RequestId(id)
    }

    /// Finds the owner of `key` like [`Node::lookup`], for another part of the node: it
    /// ends in [`Node::poll_lookup_answer`] under `tag` (the public event stream, which
    /// drops its oldest events when full, never sees it).
    pub fn lookup_for(&mut self, now: Instant, key: Did, tag: u64) {
        if let Some(error) = self.lookup_refused() {
            self.answers.push_back(LookupAnswer { tag, key, result: Err(error) });
            return;
        }
        let id = self.alloc_id();
        self.start_lookup(now, id, key, ReqKind::Tagged(tag));
    }

    /// Why a lookup cannot start now.
    fn lookup_refused(&mut self) -> Option<LookupError> {
        if !self.is_joined() {
            Some(LookupError::NotJoined)
        } else if self.requests.len() >= self.cfg.max_requests {
            self.stats.overloaded += 1;
            Some(LookupError::Overloaded)
        } else {
            None
        }
    }

    /// Leaves gracefully: tells successor and predecessor, then goes quiet. The node
    /// cannot rejoin; make a new one.
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
        // Other parts' lookups end now rather than at their deadlines.
        for r in self.take_requests(|_| true) {
            if let ReqKind::Tagged(tag) = r.kind {
                self.answers.push_back(LookupAnswer { tag, key: r.key, result: Err(LookupError::NotJoined) });
            }
        }
        self.deadlines.clear();
        self.retries.clear();
        self.hops.clear();
        self.relayed.clear();
        self.ack_timers.clear();
        self.hop_timers.clear();
        self.probes.clear();
        self.join_wait = None;
        self.join_step = None;
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
        // Any authenticated message is first-hand proof that its sender is alive.
        self.heard_from(now, from);
        match msg {
            Message::FindSuccessor(find) => self.on_find_successor(now, from, find),
            Message::HopAck { tag } => self.on_hop_ack(now, from, tag),
            Message::Found { tag, key, owner, hops } => self.on_found(now, from, tag, key, owner, hops),
            Message::Failed { tag, key, reason } => self.on_failed(now, from, tag, key, reason),
            Message::Stabilize { tag } => self.on_stabilize(now, from, tag),
            Message::StabilizeReply { tag, predecessor, successors } => self.on_stabilize_reply(now, from, tag, predecessor, &successors),
            // A node that is not in a ring does not pass for a live neighbour.
            Message::Ping { .. } if self.phase != Phase::Joined => self.stats.not_joined += 1,
            Message::Ping { tag } => {
                let predecessor = self.table.predecessor();
                self.send(from, Message::Pong { tag, predecessor })
            }
            Message::Pong { tag, predecessor } => self.on_pong(now, from, tag, predecessor),
            Message::Between { node } => self.on_between(now, from, node),
            Message::Leave { predecessor, successors } => self.on_leave(now, from, predecessor, &successors),
        }
    }

    /// The transport lost its connection to `peer`: that is a confirmed failure.
    pub fn handle_peer_down(&mut self, now: Instant, peer: Did) {
        if self.phase == Phase::Left {
            return;
        }
        // Requests waiting on that peer fail over now rather than at their deadline.
        // (In deadline order: every hop has one, and the order must not depend on the hash
        // map's.)
        let waiting: Vec<u64> =
            self.hop_timers.iter().map(|&(_, t)| t).filter(|t| self.hops.get(t).is_some_and(|h| h.next == peer)).collect();
        for tag in waiting {
            if let Some(h) = self.take_hop(tag) {
                self.hop_unacknowledged(now, h);
            }
        }
        self.peer_failed(now, peer);
    }

    /// Time has reached (at least) the instant from [`Node::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Left {
            return;
        }
        self.expire_hops(now);
        self.expire_requests(now);
        self.expire_retries(now);
        self.expire_probes(now);
        if let Some((at, via, attempt)) = self.join_wait {
            if now >= at {
                self.join_wait = None;
                self.join_attempt(now, via, attempt);
            }
        }
        if now >= self.next_round {
            self.round(now);
        }
    }

    // ---- outputs ----

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next answer to a [`Node::lookup_for`].
    #[must_use]
    pub fn poll_lookup_answer(&mut self) -> Option<LookupAnswer> {
        self.answers.pop_front()
    }

    /// The next instant at which [`Node::handle_timeout`] must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Left {
            return None;
        }
        let firsts = [
            self.ack_timers.first().map(|t| t.0),
            self.hop_timers.first().map(|t| t.0),
            self.deadlines.first().map(|t| t.0),
            self.retries.first().map(|t| t.0),
            self.probes.iter().map(|p| p.deadline).min(),
            self.join_wait.map(|w| w.0),
        ];
        Some(firsts.into_iter().flatten().fold(self.next_round, Instant::min))
    }

    // ---- shared helpers ----

    /// A fresh request id or tag: random, never 0.
    pub(super) fn alloc_id(&mut self) -> u64 {
        loop {
            let id = self.ids.next_u64();
            if id != 0 && !self.requests.contains_key(&id) && !self.hops.contains_key(&id) {
                return id;
            }
        }
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

    /// Feeds one round-trip sample of `peer`.
    pub(super) fn rtt_sample(&mut self, peer: Did, sent: Instant, now: Instant) {
        let r = ((now - sent).as_millis().max(1) * 1000).min(u32::MAX as u64 / 8) as u32;
        let key = peer.low_u64();
        if let Some(e) = self.rtts.iter_mut().find(|e| e.peer == key) {
            e.rttvar = (3 * e.rttvar + e.srtt.abs_diff(r)) / 4;
            e.srtt = (7 * e.srtt + r) / 8;
            return;
        }
        let e = Rtt { peer: key, srtt: r, rttvar: r / 2 };
        if self.rtts.len() >= MAX_RTTS {
            // replace a pseudo-random entry (cheaper than keeping an order; the tag
            // stream is unpredictable to peers, so none can pin its own entry)
            let i = (self.ids.next_u64() % MAX_RTTS as u64) as usize;
            self.rtts[i] = e;
        } else {
            self.rtts.push(e);
        }
    }

    /// How long to wait for `peer`'s answer: its smoothed round trip plus four deviations
    /// (at least twice the round trip), half again for each strike it has, within
    /// [`Config::hop_timeout`] and not below a quarter of it. A peer never timed gets
    /// the full hop timeout.
    pub(super) fn answer_timeout(&self, peer: Did) -> Duration {
        let cap = self.cfg.hop_timeout.as_millis();
        let key = peer.low_u64();
        let Some(e) = self.rtts.iter().find(|e| e.peer == key).filter(|_| self.cfg.adaptive_timeouts) else {
            return self.cfg.hop_timeout;
        };
        let rto_ms = (e.srtt as u64 + 4 * e.rttvar as u64).max(2 * e.srtt as u64).div_ceil(1000).max(1);
        let scaled = rto_ms * (2 + self.strikes_of(peer) as u64) / 2;
        Duration(scaled.clamp((cap / 4).max(1), cap))
    }

    pub(super) fn strikes_of(&self, peer: Did) -> u8 {
        self.suspects.iter().find(|s| s.0 == peer).map_or(0, |s| s.1)
    }

    pub(super) fn is_gone(&self, d: Did) -> bool {
        self.gone.iter().any(|g| g.0 == d)
    }

    pub(super) fn mark_gone(&mut self, now: Instant, d: Did) {
        if !self.is_gone(d) {
            if self.gone.len() >= MAX_GONE {
                self.gone.pop_front();
            }
            self.gone.push_back((d, now));
        }
    }

    /// Forgets departures older than [`GONE_FOR`] rounds.
    pub(super) fn expire_gone(&mut self, now: Instant) {
        let keep = Duration(self.cfg.stabilize_interval.as_millis() * GONE_FOR);
        while self.gone.front().is_some_and(|g| g.1 + keep <= now) {
            self.gone.pop_front();
        }
    }
}
