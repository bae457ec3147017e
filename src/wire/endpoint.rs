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

use std::collections::{HashMap, VecDeque};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::frame::{Auth, ErrorBody, Frame, Header, Kind, Part, SessionProof, Signing};
use super::output::{Delivery, SendError, Undelivered, WireOutput};
use super::reassembly::{Budget, Check, Partial, Reassembly};
use super::replay::ReplayCache;
use super::sessions::{PeerSession, Sessions};
use super::{RejectReason, RouteError, WireConfig, WireStats};
use crate::chord::RoutingTable;
use crate::identity::pair::{PairKeys, NONCE_LEN, TAG_LEN};
use crate::identity::{IdentityError, Session, Vouched};
use crate::time::{Instant, WallOffset};
use crate::Did;

mod inbound;
#[cfg(all(test, not(target_arch = "wasm32")))] // uses the simulator
mod relay_tests;

#[derive(Debug)]
struct Waiting {
    /// The hellos sent, the latest last (each retry is a fresh one).
    hello_txs: Vec<u64>,
    retry: Option<Instant>,
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
    dest: Did,
    /// The link peer that handed the first frame over (charged for the pin).
    from: Did,
    /// The sequence number of the message's last frame.
    last: u32,
    until: Instant,
}

const MAX_PINS: usize = 4096;
/// Reports about others' messages a fallen link may cost this node.
const MAX_LOST_REPORTS: usize = 64;
/// Fewest body bytes in any piece of a message but its last.
pub const MIN_PIECE: usize = 1024;

use crate::chord::table::NodeHop as Hop;

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
    /// Delegations verified here or by the store (lent to it: [`Wire::vouched_mut`]).
    vouched: Vouched,
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
    reachable: Option<Vec<Did>>,
    /// With links required: the link each recent origin's frames came in over (reverse
    /// paths), so that an answer finds a node the ring cannot route to yet (a joiner
    /// linked only to its bootstrap peer); bounds in [`super::link_route::Hints`].
    hints: super::link_route::Hints,
    out: VecDeque<WireOutput>,
    stats: WireStats,
    /// Wall clock = `now` + this (issue times, expiries, delegations).
    wall: WallOffset,
}

impl Wire {
    /// `seed` keys the endpoint's CSPRNG (ephemeral keys, transaction ids): the browser
    /// passes 32 bytes from `crypto.getRandomValues`, the simulator a seeded value.
    pub fn new(me: Did, session: Option<Session>, cfg: WireConfig, seed: [u8; 32]) -> Wire {
        Wire {
            sessions: Sessions::new(cfg.session_capacity),
            vouched: Vouched::default(),
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
            wall: WallOffset::default(),
        }
    }

    /// The wall clock's offset from `now` (see [`crate::time`]).
    pub fn set_wall_offset(&mut self, wall: WallOffset) {
        self.wall = wall;
    }

    fn wall(&self, now: Instant) -> Instant {
        self.wall.wall(now)
    }

    pub fn stats(&self) -> &WireStats {
        &self.stats
    }
    pub fn config(&self) -> &WireConfig {
        &self.cfg
    }
    /// The delegations this node verified (by the wire or the store).
    pub fn vouched(&self) -> &Vouched {
        &self.vouched
    }

    /// The delegations this node verified, for the store to check records against.
    pub fn vouched_mut(&mut self) -> &mut Vouched {
        &mut self.vouched
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

    #[must_use]
    pub fn poll_output(&mut self) -> Option<WireOutput> {
        self.out.pop_front()
    }

    /// The next instant at which [`Wire::handle_timeout`] has work.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let hello = self.waiting.values().map(|w| w.retry.map_or(w.deadline, |r| r.min(w.deadline))).min();
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
        if let Some(peer) = self.sessions.get(dest, self.wall(now).as_millis()) {
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
        let deadline = now + self.cfg.hello_timeout;
        self.waiting.insert(dest, Waiting { hello_txs: Vec::new(), retry: None, deadline, messages: VecDeque::from([(tx, body)]) });
        self.hello(now, table, dest);
        Ok(tx)
    }

    /// Sends a (fresh) hello to `dest`, for which messages wait.
    fn hello(&mut self, now: Instant, table: &RoutingTable, dest: Did) {
        let hello_tx = self.rng.next_u64();
        let retry = self.cfg.hello_retry;
        let Some(w) = self.waiting.get_mut(&dest) else { return };
        w.hello_txs.push(hello_tx);
        w.retry = (retry.as_millis() > 0 && now + retry < w.deadline && w.hello_txs.len() < 8).then(|| now + retry);
        if let Err(reason) = self.emit(now, table, dest, hello_tx, Kind::Hello, Vec::new(), None) {
            self.fail_waiting(dest, reason, self.me);
        }
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
        let piece = self.cfg.piece.max(MIN_PIECE);
        let sealed_len = body.len() + if pair.is_some() { TAG_LEN } else { 0 };
        let frames = sealed_len.div_ceil(piece).max(1) as u32;
        let mut header = Header {
            network: self.cfg.network,
            session: if pair.is_some() {
                SessionProof::Known(session.fingerprint())
            } else {
                SessionProof::Full(session.delegation().clone())
            },
            issued_at: self.wall(now).as_millis(),
            ttl: self.cfg.ttl.as_millis().min(u32::MAX as u64) as u32,
            kind,
            body_len: sealed_len as u32,
            frames,
            auth: match pair {
                Some(p) => {
                    let mut nonce = [0u8; NONCE_LEN];
                    self.rng.fill_bytes(&mut nonce);
                    Auth::Pair { to: p.fingerprint, nonce, head: [0; TAG_LEN] }
                }
                None => Auth::Signature(Default::default()),
            },
        };
        let hop_limit = self.cfg.hop_limit;
        let mut signing = Signing::start(self.me, dest, tx, hop_limit, &header, session.fingerprint());
        match (pair, &mut header.auth) {
            (Some(p), Auth::Pair { nonce, head, .. }) => {
                let digest = signing.finish();
                *head = p.pair.head_tag(nonce, &digest);
                p.pair.seal(nonce, &digest, &mut body);
            }
            _ => {
                signing.body(&body);
                header.auth = Auth::Signature(session.sign(&signing.finish()));
                self.stats.signed += 1;
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
            return table.toward_node(dest);
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

    /// From now on, route only over links reported by [`Wire::link_up`].
    pub fn require_links(&mut self) {
        self.reachable.get_or_insert_with(Vec::new);
    }

    /// A link to `peer` is open (counts only after [`Wire::require_links`]).
    pub fn link_up(&mut self, peer: Did) {
        if let Some(r) = self.reachable.as_mut().filter(|r| !r.contains(&peer)) {
            r.push(peer);
        }
    }

    /// Data that waited for `peer`'s link, not yet sealed, is routed anew; every message
    /// with frames queued for the link or in flight over it (pinned to it) is reported
    /// `LinkLost` to its origin (this node's own as an `Undelivered` output), once.
    pub fn handle_peer_down(&mut self, now: Instant, table: &RoutingTable, peer: Did) {
        if let Some(r) = &mut self.reachable {
            r.retain(|l| *l != peer);
        }
        let mut lost: Vec<(Did, u64, Did)> = Vec::new();
        let mut once: std::collections::HashSet<(Did, u64)> = Default::default();
        for bytes in self.links.remove(&peer).map(|l| l.queue).unwrap_or_default() {
            match Frame::decode(&bytes) {
                // Nobody is told about a lost report.
                Ok(f) if f.header().is_none_or(|h| h.kind != Kind::Error) && once.insert((f.origin, f.tx)) => {
                    lost.push((f.origin, f.tx, f.dest));
                }
                _ => {}
            }
        }
        for (&(o, tx), p) in self.pins.iter().filter(|(_, p)| p.next == peer) {
            if once.insert((o, tx)) {
                lost.push((o, tx, p.dest));
            }
        }
        self.pins.retain(|_, p| p.next != peer);
        self.hints.drop_link(peer);
        // Our own messages are all told; others' (whose origins a relay cannot check)
        // get at most MAX_LOST_REPORTS signed reports per fallen link, so a flood of
        // forged heads queued behind a link cannot make this node sign thousands.
        let mut reports = 0;
        for (origin, tx, dest) in lost {
            if origin == self.me {
                self.undelivered(tx, dest, RouteError::LinkLost, self.me);
            } else if reports < MAX_LOST_REPORTS {
                reports += 1;
                self.report(now, table, origin, tx, dest, RouteError::LinkLost);
            }
        }
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
        let again: Vec<Did> = self.waiting.iter().filter(|(_, w)| w.retry.is_some_and(|r| r <= now)).map(|(&d, _)| d).collect();
        for dest in again {
            self.hello(now, table, dest);
        }
        for (origin, tx) in self.reasm.stalled(now, self.cfg.reassembly_timeout) {
            if let Some(p) = self.give_up(origin, tx) {
                if p.kind != Kind::Error {
                    self.report(now, table, origin, tx, self.me, RouteError::Incomplete);
                }
            }
        }
        self.replay.expire(self.wall(now).as_millis().saturating_sub(self.cfg.skew.as_millis()));
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
        if frame.handed_by() != from {
            return Err(RejectReason::PathMismatch);
        }
        if let Some(h) = frame.header() {
            self.check_header(now, h)?;
            if frame.seq != 0 {
                return Err(RejectReason::OutOfOrder);
            }
            // Used only for nodes the table does not know: only those are kept (ring
            // members' traffic would crowd out joiners'). The hop before `from` is the
            // one `from` checked.
            if self.reachable.as_ref().is_some_and(|l| !l.contains(&frame.origin)) && frame.origin != self.me && !table.knows(frame.origin)
            {
                let second = frame.path.len().checked_sub(2).map_or(frame.origin, |i| frame.path[i]);
                self.hints.note(now, frame.origin, from, second);
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
        let (now, skew) = (self.wall(now).as_millis(), self.cfg.skew.as_millis());
        if h.issued_at > now.saturating_add(skew) {
            return Err(RejectReason::FromFuture);
        }
        if h.issued_at.saturating_add(h.ttl as u64).saturating_add(skew) < now {
            return Err(RejectReason::Expired);
        }
        // A longer lifetime would hold replay entries and route pins past every bound.
        if h.ttl as u64 > self.cfg.ttl.as_millis() {
            return Err(RejectReason::TtlTooLong);
        }
        let body = h.body_len as usize;
        if body > self.cfg.max_message + TAG_LEN {
            return Err(RejectReason::TooLarge);
        }
        // Every piece but the last carries at least MIN_PIECE bytes, so a message cannot
        // be spread over more frames than its length allows (nor kept alive by tiny ones).
        if h.frames == 0 || h.frames as usize > body.div_ceil(MIN_PIECE).max(1) {
            return Err(RejectReason::Malformed);
        }
        // A signed message is checked only once whole: it must be whole in one frame.
        if h.frames > 1 && matches!(h.auth, Auth::Signature(_)) {
            return Err(RejectReason::UnexpectedKind);
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
        let pinned = self.pins.get(&key).map(|p| (p.next, frame.seq >= p.last));
        // The last piece unpins its message: nothing of it is in flight here any more.
        if let Some((_, true)) = pinned {
            self.pins.remove(&key);
        }
        let pinned = pinned.map(|(next, _)| next);
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
            // Later pieces follow the first one's path, so they arrive in order. Pins are
            // bounded in all and per link peer (a sixteenth each); past that, pieces are
            // routed one by one (usually the same way).
            let from = frame.handed_by();
            if h.frames > 1 && self.pins.len() < MAX_PINS && self.pins.values().filter(|p| p.from == from).count() < MAX_PINS / 16 {
                let until = now + crate::time::Duration(h.ttl as u64) + self.cfg.reassembly_timeout;
                self.pins.insert(key, Pin { next, dest: frame.dest, from, last: h.frames - 1, until });
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
}
