//! One node's wire endpoint: sessions, sending, relaying, receiving.
//!
//! Sending to a DID whose session this node does not hold first opens one: a signed
//! `Hello` carrying this node's delegation, answered by a signed `HelloReply` carrying
//! the destination's. Both sides then hold each other's session and derive the keys the
//! two sessions share (one ECDH, [`crate::identity::pair`]), so data messages carry an
//! 8-byte fingerprint instead of the delegation and are sealed under the pair's key: the
//! AEAD tag both hides the body and proves the origin, with no signature and no
//! elliptic-curve operation per message. Messages wait (bounded) while the session opens.
//!
//! Relays read only routing fields: they check the network, the age and size of a
//! message, the hop limit and the path, and forward. Only the destination authenticates
//! a message (once, after reassembly) and opens the body.

use std::collections::{BTreeSet, HashMap, VecDeque};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::frame::{Auth, ErrorBody, Frame, Header, Kind, Part, SessionProof, Signing};
use super::reassembly::{Check, Partial, Reassembly};
use super::replay::ReplayCache;
use super::sessions::{PeerSession, Sessions};
use super::{RejectReason, RouteError, WireConfig, WireStats};
use crate::chord::RoutingTable;
use crate::identity::pair::{PairKeys, TAG_LEN};
use crate::identity::{Delegation, IdentityError, Session};
use crate::time::Instant;
use crate::Did;

/// A message delivered to this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub from: Did,
    pub tx: u64,
    pub body: Vec<u8>,
    /// Links the first frame crossed (1: a direct neighbour).
    pub hops: u8,
}

/// A message this node sent that did not arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undelivered {
    pub tx: u64,
    pub dest: Did,
    pub reason: RouteError,
    /// The node that found the fault (this node for local failures).
    pub reporter: Did,
}

/// What the endpoint asks of its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireOutput {
    Transmit { to: Did, frame: Vec<u8> },
    Delivered(Delivery),
    Undelivered(Undelivered),
}

/// Why `send` refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// This node has no session (a ring-only node).
    NoSession,
    TooLarge {
        len: usize,
        max: usize,
    },
    /// Too many messages already wait for a session with this destination.
    QueueFull,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::NoSession => write!(f, "this node has no session and cannot send messages"),
            SendError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            SendError::QueueFull => {
                write!(f, "too many messages wait for a session with this peer")
            }
        }
    }
}

impl std::error::Error for SendError {}

#[derive(Debug)]
struct Waiting {
    hello_tx: u64,
    deadline: Instant,
    messages: VecDeque<(u64, Vec<u8>)>,
}

#[derive(Debug)]
struct Link {
    credit: usize,
    queue: VecDeque<Vec<u8>>,
    queued: usize,
}

/// A data message waiting for its first hop's link to drain, not yet sealed: sealing
/// happens as the link takes it, so a burst of sends does not block on cryptography
/// while the link idles.
#[derive(Debug)]
struct Outgoing {
    dest: Did,
    tx: u64,
    peer: PeerSession,
    body: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Pin {
    next: Did,
    until: Instant,
}

const MAX_PINS: usize = 4096;

enum Hop {
    Local,
    Next(Did),
    NoRoute,
}

/// The next hop toward `dest` by this node's routing table.
fn next_hop(table: &RoutingTable, dest: Did) -> Hop {
    if dest == table.me() {
        return Hop::Local;
    }
    let direct = table.predecessor() == Some(dest) || table.successors().contains(&dest) || table.finger_nodes().any(|f| f == dest);
    if direct {
        return Hop::Next(dest);
    }
    if table.predecessor().is_some() && table.owns(dest) || table.successors().is_empty() {
        return Hop::NoRoute; // this node would be dest's successor: dest is not in the ring
    }
    match table.owner_candidate(dest).or_else(|| table.closest_preceding(dest)) {
        Some(n) => Hop::Next(n),
        None => Hop::NoRoute,
    }
}

/// How the origin's session was proven on a received message.
struct Proven {
    key: k256::ecdsa::VerifyingKey,
    fingerprint: u64,
    full: bool,
    /// The delegation's expiry.
    expires_at: u64,
    /// The message's expiry (issue time plus ttl).
    msg_expires: u64,
    hops: u8,
    /// The keys shared with the origin's session, when this node holds it.
    pair: Option<PairKeys>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Wire {
    cfg: WireConfig,
    me: Did,
    session: Option<Session>,
    rng: ChaCha20Rng,
    sessions: Sessions,
    replay: ReplayCache,
    reasm: Reassembly,
    waiting: HashMap<Did, Waiting>,
    pins: HashMap<(Did, u64), Pin>,
    links: HashMap<Did, Link>,
    /// Data messages by first hop, sealed and framed when that link's queue empties.
    outbox: HashMap<Did, VecDeque<Outgoing>>,
    /// Peers with a live link, when the driver says links matter (the browser): routed
    /// frames then travel only over live links, so no frame waits on a connection that
    /// only the ring itself could signal. `None`: every known node is reachable (simulator).
    reachable: Option<BTreeSet<Did>>,
    /// With links required: the link each recent origin's frames came in over (reverse
    /// paths), so that an answer finds a node the ring cannot route to yet (a joiner
    /// linked only to its bootstrap peer); bounds in [`super::hints`].
    hints: super::link_route::Hints,
    out: VecDeque<WireOutput>,
    stats: WireStats,
}

impl Wire {
    /// `seed` keys the endpoint's CSPRNG (ephemeral keys, transaction ids): the browser
    /// passes 32 bytes from `crypto.getRandomValues`, the simulator a seeded value.
    pub fn new(me: Did, session: Option<Session>, cfg: WireConfig, seed: [u8; 32]) -> Wire {
        Wire {
            sessions: Sessions::new(cfg.session_capacity),
            replay: ReplayCache::new(cfg.replay_capacity),
            cfg,
            me,
            session,
            rng: ChaCha20Rng::from_seed(seed),
            reasm: Reassembly::default(),
            waiting: HashMap::new(),
            pins: HashMap::new(),
            links: HashMap::new(),
            outbox: HashMap::new(),
            reachable: None,
            hints: super::link_route::Hints::default(),
            out: VecDeque::new(),
            stats: WireStats::default(),
        }
    }

    pub fn stats(&self) -> &WireStats {
        &self.stats
    }
    pub fn config(&self) -> &WireConfig {
        &self.cfg
    }
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }
    /// Sessions of other nodes held, messages in reassembly and their reserved bytes.
    pub fn held(&self) -> (usize, usize, usize) {
        (self.sessions.len(), self.reasm.len(), self.reasm.bytes())
    }

    /// Bytes of frames queued for links beyond their window, and data messages waiting
    /// in the outbox to be sealed.
    pub fn backlog(&self) -> (usize, usize) {
        (self.links.values().map(|l| l.queued).sum(), self.outbox.values().map(VecDeque::len).sum())
    }

    pub fn poll_output(&mut self) -> Option<WireOutput> {
        self.out.pop_front()
    }

    /// The next instant at which [`Wire::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let hello = self.waiting.values().map(|w| w.deadline).min();
        let reasm = self.reasm.next_deadline(self.cfg.reassembly_timeout);
        match (hello, reasm) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- application calls ----

    /// Sends `body` to `dest`, end-to-end encrypted; returns the transaction id that a
    /// later [`Undelivered`] names.
    pub fn send(&mut self, now: Instant, table: &RoutingTable, dest: Did, body: Vec<u8>) -> Result<u64, SendError> {
        if self.session.is_none() {
            return Err(SendError::NoSession);
        }
        // The sealed body must fit the limit the receiver checks.
        let max = self.cfg.max_message;
        if body.len() > max {
            return Err(SendError::TooLarge { len: body.len(), max });
        }
        let tx = self.rng.next_u64();
        if dest == self.me {
            self.stats.messages_sent += 1;
            self.stats.messages_delivered += 1;
            self.out.push_back(WireOutput::Delivered(Delivery { from: dest, tx, body, hops: 0 }));
            return Ok(tx);
        }
        if let Some(peer) = self.sessions.get(dest, now.as_millis()) {
            self.send_data(now, table, dest, tx, &peer, body);
            return Ok(tx);
        }
        if let Some(w) = self.waiting.get_mut(&dest) {
            if w.messages.len() >= self.cfg.waiting_per_peer {
                return Err(SendError::QueueFull);
            }
            w.messages.push_back((tx, body));
            return Ok(tx);
        }
        let hello_tx = self.rng.next_u64();
        let deadline = now + self.cfg.hello_timeout;
        self.waiting.insert(dest, Waiting { hello_tx, deadline, messages: VecDeque::from([(tx, body)]) });
        if let Err(reason) = self.emit(now, table, dest, hello_tx, Kind::Hello, Vec::new(), None) {
            self.fail_waiting(dest, reason, self.me);
        }
        Ok(tx)
    }

    fn send_data(&mut self, now: Instant, table: &RoutingTable, dest: Did, tx: u64, peer: &PeerSession, body: Vec<u8>) {
        self.stats.messages_sent += 1;
        if let Hop::Next(hop) = self.next_hop(now, table, dest, self.me, &[]) {
            let busy = self.links.get(&hop).is_some_and(|l| !l.queue.is_empty());
            let queue = self.outbox.entry(hop).or_default();
            if busy || !queue.is_empty() {
                queue.push_back(Outgoing { dest, tx, peer: peer.clone(), body });
                return;
            }
        }
        self.emit_data(now, table, Outgoing { dest, tx, peer: peer.clone(), body });
    }

    fn emit_data(&mut self, now: Instant, table: &RoutingTable, m: Outgoing) {
        if let Err(reason) = self.emit(now, table, m.dest, m.tx, Kind::Data, m.body, Some(&m.peer)) {
            self.undelivered(m.tx, m.dest, reason, self.me);
        }
    }

    /// Seals and hands over data waiting for `hop` while that link has nothing queued.
    fn flush_outbox(&mut self, now: Instant, table: &RoutingTable, hop: Did) {
        while self.links.get(&hop).is_none_or(|l| l.queue.is_empty()) {
            let Some(m) = self.outbox.get_mut(&hop).and_then(VecDeque::pop_front) else {
                break;
            };
            self.emit_data(now, table, m);
        }
        if self.outbox.get(&hop).is_some_and(VecDeque::is_empty) {
            self.outbox.remove(&hop);
        }
    }

    /// Authenticates and splits a message and hands its frames to the first hop: sealed
    /// under the keys shared with `pair`'s session, else signed with the delegation in
    /// full.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        now: Instant,
        table: &RoutingTable,
        dest: Did,
        tx: u64,
        kind: Kind,
        mut body: Vec<u8>,
        pair: Option<&PeerSession>,
    ) -> Result<(), RouteError> {
        let Some(session) = self.session.as_ref() else {
            return Err(RouteError::NotSent);
        };
        let next = match self.next_hop(now, table, dest, self.me, &[]) {
            Hop::Next(n) => n,
            Hop::Local | Hop::NoRoute => return Err(RouteError::NoRoute),
        };
        let piece = self.cfg.piece.max(1);
        let sealed_len = body.len() + if pair.is_some() { TAG_LEN } else { 0 };
        let frames = sealed_len.div_ceil(piece).max(1) as u32;
        let mut header = Header {
            network: self.cfg.network,
            session: if pair.is_some() {
                SessionProof::Known(session.fingerprint())
            } else {
                SessionProof::Full(session.delegation().clone())
            },
            issued_at: now.as_millis(),
            ttl: self.cfg.ttl.as_millis().min(u32::MAX as u64) as u32,
            kind,
            body_len: sealed_len as u32,
            frames,
            auth: match pair {
                Some(p) => Auth::Pair { to: p.fingerprint },
                None => Auth::Signature(Default::default()),
            },
        };
        let hop_limit = self.cfg.hop_limit;
        let mut signing = Signing::start(self.me, dest, tx, hop_limit, &header, session.fingerprint());
        match pair {
            Some(p) => p.pair.seal(tx, &signing.finish(), &mut body),
            None => {
                signing.body(&body);
                header.auth = Auth::Signature(session.sign(&signing.finish()));
            }
        }
        let mut part = Some(Part::Head(header));
        for (seq, chunk) in body.chunks(piece).map(Some).chain(core::iter::once(None)).enumerate() {
            let chunk = match chunk {
                Some(c) => c,
                None if seq == 0 => &[][..], // an empty body still has its head frame
                None => break,
            };
            let frame = Frame {
                origin: self.me,
                dest,
                tx,
                hop_limit,
                path: Vec::new(),
                seq: seq as u32,
                part: part.take().unwrap_or(Part::More),
                piece: chunk.to_vec(),
            };
            self.stats.frames_sent += 1;
            self.push_frame(next, frame.encode(), false);
        }
        Ok(())
    }

    /// The next hop toward `dest`: by the routing table, or, when links are required, the
    /// linked peer closest before `dest` (else the first one after it), never the frame's
    /// `origin` nor a relay on its `path`.
    fn next_hop(&self, now: Instant, table: &RoutingTable, dest: Did, origin: Did, path: &[Did]) -> Hop {
        let Some(links) = &self.reachable else {
            return next_hop(table, dest);
        };
        if dest == self.me {
            return Hop::Local;
        }
        let hint = self.hints.get(now, dest);
        match super::link_route::next_link(table, links, dest, origin, path, hint) {
            Some(n) => Hop::Next(n),
            None => Hop::NoRoute,
        }
    }

    fn undelivered(&mut self, tx: u64, dest: Did, reason: RouteError, reporter: Did) {
        self.stats.undelivered += 1;
        self.out.push_back(WireOutput::Undelivered(Undelivered { tx, dest, reason, reporter }));
    }

    fn fail_waiting(&mut self, dest: Did, reason: RouteError, reporter: Did) {
        if let Some(w) = self.waiting.remove(&dest) {
            for (tx, _) in w.messages {
                self.undelivered(tx, dest, reason, reporter);
            }
        }
    }

    // ---- flow control ----

    /// Hands a frame to the transport if the link's window allows, else queues it. A
    /// relay's queue is bounded; the origin's own frames are bounded by admission.
    fn push_frame(&mut self, to: Did, frame: Vec<u8>, relay: bool) -> bool {
        let window = self.cfg.link_window;
        let link = self.links.entry(to).or_insert_with(|| Link { credit: window, queue: VecDeque::new(), queued: 0 });
        if link.queue.is_empty() && link.credit >= frame.len() {
            link.credit -= frame.len();
            self.stats.bytes_sent += frame.len() as u64;
            self.out.push_back(WireOutput::Transmit { to, frame });
            return true;
        }
        if relay && link.queued + frame.len() > self.cfg.relay_queue {
            return false; // the caller refuses the frame, and that counts it
        }
        link.queued += frame.len();
        link.queue.push_back(frame);
        true
    }

    /// The transport has sent `bytes` toward `peer` (its buffer drained by that much).
    pub fn handle_sent(&mut self, now: Instant, table: &RoutingTable, peer: Did, bytes: usize) {
        self.drain_link(peer, bytes);
        self.flush_outbox(now, table, peer);
    }

    fn drain_link(&mut self, peer: Did, bytes: usize) {
        let window = self.cfg.link_window;
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        link.credit = (link.credit + bytes).min(window);
        while link.queue.front().is_some_and(|f| f.len() <= link.credit) {
            let Some(frame) = link.queue.pop_front() else {
                break;
            };
            link.credit -= frame.len();
            link.queued -= frame.len();
            self.stats.bytes_sent += frame.len() as u64;
            self.out.push_back(WireOutput::Transmit { to: peer, frame });
        }
        if link.queue.is_empty() && link.credit == window {
            self.links.remove(&peer);
        }
    }

    /// The transport lost `peer`: frames queued for it are dropped (their messages
    /// time out at their destinations and are reported to their origins).
    /// From now on, route only over links reported by [`Wire::link_up`].
    pub fn require_links(&mut self) {
        self.reachable.get_or_insert_with(BTreeSet::new);
    }

    /// A link to `peer` is open (counts only after [`Wire::require_links`]).
    pub fn link_up(&mut self, peer: Did) {
        if let Some(r) = &mut self.reachable {
            r.insert(peer);
        }
    }

    /// Data that waited for `peer`'s link is routed anew (or reported undelivered).
    pub fn handle_peer_down(&mut self, now: Instant, table: &RoutingTable, peer: Did) {
        if let Some(r) = &mut self.reachable {
            r.remove(&peer);
        }
        self.links.remove(&peer);
        self.pins.retain(|_, p| p.next != peer);
        self.hints.drop_link(peer);
        for m in self.outbox.remove(&peer).unwrap_or_default() {
            self.emit_data(now, table, m);
        }
    }

    // ---- timers ----

    pub fn handle_timeout(&mut self, now: Instant, table: &RoutingTable) {
        let expired: Vec<Did> = self.waiting.iter().filter(|(_, w)| w.deadline <= now).map(|(&d, _)| d).collect();
        for dest in expired {
            self.fail_waiting(dest, RouteError::SessionTimeout, self.me);
        }
        for (origin, tx) in self.reasm.stalled(now, self.cfg.reassembly_timeout) {
            if let Some(p) = self.reasm.finish(origin, tx) {
                if p.kind != Kind::Error {
                    self.report(now, table, origin, tx, self.me, RouteError::Incomplete);
                }
            }
        }
        self.replay.expire(now.as_millis().saturating_sub(self.cfg.skew.as_millis()));
        self.pins.retain(|_, p| p.until > now);
        self.hints.expire(now);
        let hops: Vec<Did> = self.outbox.keys().copied().collect();
        for hop in hops {
            self.flush_outbox(now, table, hop);
        }
    }

    // ---- frames from peers ----

    /// A routed frame arrived from the link peer `from`.
    pub fn handle_frame(&mut self, now: Instant, table: &RoutingTable, from: Did, bytes: &[u8]) -> Result<(), RejectReason> {
        self.stats.frames_received += 1;
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(super::FrameError::UnsupportedVersion(_)) => return Err(self.reject(RejectReason::UnsupportedVersion)),
            Err(_) => return Err(self.reject(RejectReason::Malformed)),
        };
        let result = self.check_frame(now, table, from, frame);
        result.map_err(|r| self.reject(r))
    }

    fn reject(&mut self, r: RejectReason) -> RejectReason {
        self.stats.rejected[r as usize] += 1;
        r
    }

    fn check_frame(&mut self, now: Instant, table: &RoutingTable, from: Did, frame: Frame) -> Result<(), RejectReason> {
        if frame.path.last().copied().unwrap_or(frame.origin) != from {
            return Err(RejectReason::PathMismatch);
        }
        if let Some(h) = frame.header() {
            self.check_header(now, h)?;
            if frame.seq != 0 {
                return Err(RejectReason::OutOfOrder);
            }
            // Hints are used only for nodes the table does not know: only those are kept.
            if self.reachable.is_some() && frame.origin != from && !table.knows(frame.origin) {
                self.hints.note(now, frame.origin, from);
            }
        }
        if frame.dest == self.me {
            return self.receive(now, table, frame);
        }
        self.relay(now, table, frame)
    }

    /// What every node checks on a first frame: network, age, size.
    fn check_header(&self, now: Instant, h: &Header) -> Result<(), RejectReason> {
        if h.network != self.cfg.network {
            return Err(RejectReason::WrongNetwork);
        }
        let (now, skew) = (now.as_millis(), self.cfg.skew.as_millis());
        if h.issued_at > now.saturating_add(skew) {
            return Err(RejectReason::FromFuture);
        }
        if h.issued_at.saturating_add(h.ttl as u64).saturating_add(skew) < now {
            return Err(RejectReason::Expired);
        }
        let body = h.body_len as usize;
        if body > self.cfg.max_message + TAG_LEN {
            return Err(RejectReason::TooLarge);
        }
        if h.frames == 0 || h.frames as usize > body.max(1) {
            return Err(RejectReason::Malformed);
        }
        Ok(())
    }

    fn relay(&mut self, now: Instant, table: &RoutingTable, mut frame: Frame) -> Result<(), RejectReason> {
        let head_kind = frame.header().map(|h| h.kind);
        let report = head_kind.is_some_and(|k| k != Kind::Error);
        if frame.path.len() + 1 >= frame.hop_limit as usize || frame.path.len() >= super::frame::MAX_PATH {
            if report {
                self.report(now, table, frame.origin, frame.tx, frame.dest, RouteError::HopLimitExceeded);
            }
            return Err(RejectReason::HopLimitExceeded);
        }
        if frame.origin == self.me || frame.path.contains(&self.me) {
            if report {
                self.report(now, table, frame.origin, frame.tx, frame.dest, RouteError::RoutingLoop);
            }
            return Err(RejectReason::RoutingLoop);
        }
        let key = (frame.origin, frame.tx);
        let pinned = self.pins.get(&key).map(|p| p.next);
        let next = match pinned {
            Some(n) => n,
            None => match self.next_hop(now, table, frame.dest, frame.origin, &frame.path) {
                Hop::Next(n) => n,
                Hop::Local | Hop::NoRoute => {
                    if report {
                        self.report(now, table, frame.origin, frame.tx, frame.dest, RouteError::NoRoute);
                    }
                    return Err(RejectReason::NoRoute);
                }
            },
        };
        if let Some(h) = frame.header() {
            if h.frames > 1 && self.pins.len() < MAX_PINS {
                // Later pieces follow the first one's path, so they arrive in order.
                let until = now + crate::time::Duration(h.ttl as u64) + self.cfg.reassembly_timeout;
                self.pins.insert(key, Pin { next, until });
            }
        }
        frame.path.push(self.me);
        self.stats.frames_relayed += 1;
        if !self.push_frame(next, frame.encode(), true) {
            if report {
                self.report(now, table, frame.origin, frame.tx, frame.dest, RouteError::Busy);
            }
            return Err(RejectReason::RelayOverflow);
        }
        Ok(())
    }

    /// Resolves the origin's session proof to a verified session key.
    fn prove(&mut self, now: Instant, origin: Did, proof: &SessionProof, msg_expires: u64) -> Result<Proven, RejectReason> {
        match proof {
            SessionProof::Known(fp) => {
                let (did, s) = self.sessions.by_fingerprint(*fp, now.as_millis()).ok_or(RejectReason::UnknownSession)?;
                if did != origin {
                    return Err(RejectReason::SessionMismatch);
                }
                Ok(Proven { key: s.key, fingerprint: *fp, full: false, expires_at: s.expires_at, msg_expires, hops: 0, pair: Some(s.pair) })
            }
            SessionProof::Full(d) => {
                if d.account != origin {
                    return Err(RejectReason::SessionMismatch);
                }
                let fingerprint = d.fingerprint();
                // A delegation verified before (same fingerprint, same account) is not
                // verified again; its network and expiry still are.
                let known = self.sessions.by_fingerprint(fingerprint, now.as_millis()).filter(|(did, _)| *did == origin);
                let key = match known {
                    Some((_, s)) if d.network == self.cfg.network => s.key,
                    _ => verify_delegation(d, self.cfg.network, now, self.cfg.skew)?,
                };
                Ok(Proven { key, fingerprint, full: true, expires_at: d.expires_at, msg_expires, hops: 0, pair: None })
            }
        }
    }

    fn receive(&mut self, now: Instant, table: &RoutingTable, frame: Frame) -> Result<(), RejectReason> {
        let (origin, tx) = (frame.origin, frame.tx);
        let Part::Head(h) = frame.part else {
            return self.receive_more(now, table, frame);
        };
        if self.reasm.contains(origin, tx) {
            return Err(RejectReason::DuplicateFrame);
        }
        let expires_at = h.issued_at.saturating_add(h.ttl as u64);
        if !self.replay.is_fresh(origin, tx, expires_at) {
            return Err(RejectReason::Replay);
        }
        if self.session.is_none() {
            return Err(RejectReason::NoSession);
        }
        let mut proven = match self.prove(now, origin, &h.session, expires_at) {
            Ok(p) => p,
            Err(RejectReason::UnknownSession) => {
                if h.kind != Kind::Error {
                    self.report(now, table, origin, tx, self.me, RouteError::UnknownSession);
                }
                return Err(RejectReason::UnknownSession);
            }
            Err(e) => return Err(e),
        };
        proven.hops = (frame.path.len() + 1).min(u8::MAX as usize) as u8;
        // Sessions open with signed hellos carrying the delegation; data is sealed under
        // the pair's keys; nothing else is accepted.
        let fits = match (h.kind, h.auth) {
            (Kind::Hello | Kind::HelloReply, Auth::Signature(_)) => proven.full,
            (Kind::Error, Auth::Signature(_)) => true,
            (Kind::Data, Auth::Pair { .. }) => proven.pair.is_some(),
            _ => false,
        };
        if !fits {
            return Err(RejectReason::UnexpectedKind);
        }
        let signing = Signing::start(origin, self.me, tx, frame.hop_limit, &h, proven.fingerprint);
        let mut check = match (h.auth, proven.pair.take()) {
            (Auth::Pair { to }, Some(keys)) => {
                if self.session.as_ref().is_some_and(|s| s.fingerprint() != to) {
                    // Sealed for a session of this node's account it does not hold (an
                    // older one): the origin must open a new session.
                    self.report(now, table, origin, tx, self.me, RouteError::Undecryptable);
                    return Err(RejectReason::Undecryptable);
                }
                Check::Sealed { keys, aad: signing.finish() }
            }
            (Auth::Signature(signature), _) => Check::Signed { signature, signing },
            (Auth::Pair { .. }, None) => return Err(RejectReason::UnexpectedKind),
        };
        let body_len = h.body_len as usize;
        if frame.piece.len() > body_len || (h.frames == 1 && frame.piece.len() != body_len) {
            return Err(RejectReason::Truncated);
        }
        if let Check::Signed { signing, .. } = &mut check {
            signing.body(&frame.piece);
        }
        if h.frames == 1 {
            let body = authenticate(check, &proven.key, tx, frame.piece)?;
            return self.complete(now, table, origin, tx, h.kind, &proven, body);
        }
        let mut body = Vec::new();
        if body.try_reserve_exact(body_len).is_err() {
            return Err(RejectReason::ReassemblyFull);
        }
        body.extend_from_slice(&frame.piece);
        let partial = Partial {
            kind: h.kind,
            key: proven.key,
            fingerprint: proven.fingerprint,
            full_proof: proven.full,
            check,
            expires_at: proven.expires_at,
            msg_expires: expires_at,
            hops: proven.hops,
            frames: h.frames,
            next_seq: 1,
            body_len,
            body,
            last_progress: now,
        };
        if !self.reasm.start(origin, tx, partial, self.cfg.reassembly_per_origin, self.cfg.reassembly_total) {
            if h.kind != Kind::Error {
                self.report(now, table, origin, tx, self.me, RouteError::Busy);
            }
            return Err(RejectReason::ReassemblyFull);
        }
        Ok(())
    }

    fn receive_more(&mut self, now: Instant, table: &RoutingTable, frame: Frame) -> Result<(), RejectReason> {
        let (origin, tx) = (frame.origin, frame.tx);
        let Some(p) = self.reasm.get_mut(origin, tx) else {
            return Err(if self.replay.contains(origin, tx) { RejectReason::DuplicateFrame } else { RejectReason::UnknownMessage });
        };
        if frame.seq < p.next_seq {
            return Err(RejectReason::DuplicateFrame);
        }
        let fault = if frame.seq > p.next_seq || frame.seq >= p.frames {
            Some(RejectReason::OutOfOrder)
        } else if p.body.len() + frame.piece.len() > p.body_len
            || (frame.seq + 1 == p.frames && p.body.len() + frame.piece.len() != p.body_len)
        {
            Some(RejectReason::Truncated)
        } else {
            None
        };
        if let Some(fault) = fault {
            // A gap or a wrong length cannot heal: give the message up now.
            if let Some(p) = self.reasm.finish(origin, tx) {
                if p.kind != Kind::Error {
                    self.report(now, table, origin, tx, self.me, RouteError::Incomplete);
                }
            }
            return Err(fault);
        }
        if let Check::Signed { signing, .. } = &mut p.check {
            signing.body(&frame.piece);
        }
        p.body.extend_from_slice(&frame.piece);
        p.next_seq += 1;
        p.last_progress = now;
        if p.next_seq < p.frames {
            return Ok(());
        }
        let Some(p) = self.reasm.finish(origin, tx) else {
            return Ok(());
        };
        let body = authenticate(p.check, &p.key, tx, p.body)?;
        let proven = Proven {
            key: p.key,
            fingerprint: p.fingerprint,
            full: p.full_proof,
            expires_at: p.expires_at,
            msg_expires: p.msg_expires,
            hops: p.hops,
            pair: None,
        };
        self.complete(now, table, origin, tx, p.kind, &proven, body)
    }

    /// A whole, authenticated message (its body opened).
    #[allow(clippy::too_many_arguments)]
    fn complete(
        &mut self,
        now: Instant,
        table: &RoutingTable,
        origin: Did,
        tx: u64,
        kind: Kind,
        proven: &Proven,
        body: Vec<u8>,
    ) -> Result<(), RejectReason> {
        self.replay.insert(origin, tx, proven.msg_expires.saturating_add(self.cfg.skew.as_millis()));
        self.stats.verified += 1;
        if proven.full && !self.sessions.holds(origin, proven.fingerprint) {
            if let Some(me) = &self.session {
                let pair = me.pair_keys(&proven.key, proven.fingerprint);
                self.sessions.insert(origin, proven.fingerprint, proven.key, proven.expires_at, pair);
            }
        }
        match kind {
            Kind::Hello | Kind::HelloReply => {
                if kind == Kind::Hello {
                    // If no route back exists now, the origin's hello times out and it
                    // reports that; there is nobody else to tell.
                    let reply_tx = self.rng.next_u64();
                    let _ = self.emit(now, table, origin, reply_tx, Kind::HelloReply, Vec::new(), None);
                }
                // Either way both sides now hold each other's session (a crossing pair
                // of hellos included): release what waited for it.
                let waiting = self.waiting.remove(&origin);
                if let (Some(w), Some(peer)) = (waiting, self.sessions.get(origin, now.as_millis())) {
                    for (tx, body) in w.messages {
                        self.send_data(now, table, origin, tx, &peer, body);
                    }
                }
                Ok(())
            }
            Kind::Data => {
                self.stats.messages_delivered += 1;
                self.out.push_back(WireOutput::Delivered(Delivery { from: origin, tx, body, hops: proven.hops }));
                Ok(())
            }
            Kind::Error => {
                let Ok(e) = postcard::from_bytes::<ErrorBody>(&body) else {
                    return Err(RejectReason::Malformed);
                };
                if matches!(e.reason, RouteError::UnknownSession | RouteError::Undecryptable) {
                    // It lost ours, or we hold an old one of its: open a new session next time.
                    self.sessions.remove(origin);
                }
                let hello = self.waiting.get(&e.dest).is_some_and(|w| w.hello_tx == e.tx);
                if hello {
                    self.fail_waiting(e.dest, e.reason, origin);
                } else {
                    self.undelivered(e.tx, e.dest, e.reason, origin);
                }
                Ok(())
            }
        }
    }

    /// Tells the origin of `tx` why it failed (signed; never about an error message).
    fn report(&mut self, now: Instant, table: &RoutingTable, origin: Did, tx: u64, dest: Did, reason: RouteError) {
        if self.session.is_none() || origin == self.me {
            return;
        }
        let body = postcard::to_allocvec(&ErrorBody { tx, dest, reason }).unwrap_or_default();
        let err_tx = self.rng.next_u64();
        if self.emit(now, table, origin, err_tx, Kind::Error, body, None).is_ok() {
            self.stats.errors_reported += 1;
        }
    }
}

/// Checks a whole message's signature, or opens its sealed body; returns the body.
fn authenticate(check: Check, key: &k256::ecdsa::VerifyingKey, tx: u64, body: Vec<u8>) -> Result<Vec<u8>, RejectReason> {
    match check {
        Check::Signed { signature, signing } => {
            if signature.verify(key, &signing.finish()) {
                Ok(body)
            } else {
                Err(RejectReason::BadSignature)
            }
        }
        Check::Sealed { keys, aad } => keys.open(tx, &aad, body).map_err(|_| RejectReason::BadSignature),
    }
}

/// Verifies a delegation and maps its faults to reject reasons.
fn verify_delegation(
    d: &Delegation,
    network: u32,
    now: Instant,
    skew: crate::time::Duration,
) -> Result<k256::ecdsa::VerifyingKey, RejectReason> {
    d.verify(network, now, skew).map_err(|e| match e {
        IdentityError::Expired => RejectReason::DelegationExpired,
        IdentityError::WrongSigner | IdentityError::BadAccountSignature => RejectReason::DelegationSigner,
        IdentityError::WrongNetwork => RejectReason::WrongNetwork,
        _ => RejectReason::DelegationInvalid,
    })
}
