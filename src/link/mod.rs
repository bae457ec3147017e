//! The link manager: which peers this node holds a direct link to, and the policy every
//! driver shares — when a link opens, the bounded queue of bytes waiting for it, the cap
//! and least-recently-used eviction, glare, the verdict on silent peers, late candidates,
//! and joining the ring through the first manual link. Sans-IO, like the rest of the
//! core: the driver owns the connections (an `RTCPeerConnection` and its channel, or a
//! str0m one, or the simulator's model), performs what [`Links::poll_output`] asks, and
//! reports back what the connections did.
//!
//! Offers, answers and candidates are [`LinkMsg`]s carried through the ring
//! ([`LinkOutput::Signal`]); the wire has authenticated their origin before they reach
//! [`Links::handle_signal`].
//!
//! Closing: a link this node lets go of (evicted, or closed by the application) says so
//! on its channel ([`CLOSING`]) and stops sending, but keeps receiving until the peer
//! closes its end (it does on reading that frame, after everything it sent before), or
//! `close_linger` passes: the frames the peer had in flight still land. A peer's
//! `CLOSING` closes this end at once.
//!
//! Bounds: at most `max_links` connections (opening ones count), of which at most
//! `max_answering` opened by peers' offers and not yet open; one connection per peer;
//! besides them at most `max_closing` closing ones, which only receive;
//! `max_queued` bytes waiting per opening link; `max_early` candidates held per
//! connection before its descriptions are in place.

use std::collections::VecDeque;

use crate::time::{Duration, Instant};
use crate::Did;

mod config;
pub mod msg;
mod room;

pub use config::{LinkConfig, RING_HOP_TIMEOUT};
pub use msg::{Candidate, LinkMsg, LinkMsgError, Negotiation};

/// A connection, named by this node's link manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// It did not open within `connect_timeout`.
    TimedOut,
    /// The cap: least recently used.
    Evicted,
    /// The peer's offer (glare, or the peer started again) or a new manual link replaced it.
    Replaced,
    /// The ring found the peer unreachable and the link had been silent.
    Silent,
    /// The offer or answer could not be routed to the peer.
    SignalUndeliverable,
    /// The application closed it, or this node left.
    Closed,
    /// The peer closes its end (it sent [`CLOSING`]).
    PeerClosed,
    /// Closing, it had `close_linger` to drain (or room was needed for another).
    Drained,
    /// The connection closed or failed on its own (the driver said so).
    Lost,
    /// Every attempt to join the ring through it failed and the bootstrap peer fell
    /// silent: the node gives the join's links up so that its driver can bootstrap
    /// through another peer.
    JoinFailed,
}

/// The frame a closing link's last: the peer stops sending and closes its end.
pub const CLOSING: u8 = 0x30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkOutput {
    /// Create connection `conn`: make an offer (`answer_to: None`) or answer the peer's
    /// offer; report the local description by [`Links::handle_local_description`].
    Create {
        conn: ConnId,
        answer_to: Option<String>,
    },
    /// Set the peer's answer as the remote description of `conn`.
    SetAnswer {
        conn: ConnId,
        sdp: String,
    },
    AddCandidate {
        conn: ConnId,
        candidate: Candidate,
    },
    Send {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    /// Close `conn` and forget it (no [`Links::handle_closed`] is expected for it).
    Close {
        conn: ConnId,
        reason: CloseReason,
    },
    /// Route `msg` to `to` through the ring.
    Signal {
        to: Did,
        msg: LinkMsg,
    },
    /// A link to `peer` is open: route over it.
    Up {
        peer: Did,
    },
    /// The link to `peer` is gone (it was open, or the connection to it never opened).
    Down {
        peer: Did,
        was_open: bool,
        reason: CloseReason,
    },
    /// Join the ring through `via` (the first manual link of a node alone).
    Join {
        via: Did,
    },
    /// Routed bytes for `peer` that were dropped: return their credit to the wire.
    Credit {
        peer: Did,
        bytes: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Offering,
    Answering,
    Open,
    /// Its peer has been reported down; it only receives until `deadline`.
    Closing,
}

#[derive(Debug)]
struct Conn {
    id: ConnId,
    /// `None`: a manual offer whose answer has not come (the peer is unknown).
    peer: Option<Did>,
    phase: Phase,
    /// The peer's offer opened it (counts against `max_answering` until open).
    by_peer: bool,
    /// A manual handshake: its descriptions and candidates travel by hand, never the ring.
    manual: bool,
    /// The peer's offer this connection refused in glare (a late copy is ignored too).
    refused: Option<Negotiation>,
    /// Remote candidates added so far.
    added: usize,
    /// The offer this connection negotiates, once known.
    negotiation: Option<Negotiation>,
    /// Our description has left: our candidates may follow it.
    described: bool,
    /// The remote description is set: the peer's candidates can be added.
    remote_set: bool,
    early_remote: Vec<Candidate>,
    early_local: Vec<Candidate>,
    deadline: Instant,
    opened: Instant,
    last_rx: Instant,
    last_used: Instant,
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    /// Routed bytes handed to the channel whose credit has not been returned.
    outstanding: usize,
    join_via: bool,
}

/// See the module docs.
#[derive(Debug)]
pub struct Links {
    cfg: LinkConfig,
    me: Did,
    conns: Vec<Conn>,
    next_conn: u64,
    next_negotiation: Negotiation,
    /// Never evicted: the ring's successor and predecessor.
    protected: [Option<Did>; 2],
    out: VecDeque<LinkOutput>,
    /// Late candidates (sent through the ring, added from it).
    candidates: (u64, u64),
}

/// Manual offers awaiting their answer at once; a new one replaces the oldest.
pub const MAX_MANUAL_OFFERS: usize = 4;

/// The first byte of a routed frame (only those draw on the wire's link credit).
const ROUTED: u8 = crate::wire::ROUTED_TAG;

impl Links {
    /// `negotiation_seed`: where this node's negotiation numbers start (random, so a
    /// restarted node does not reuse its earlier ones).
    pub fn new(me: Did, cfg: LinkConfig, negotiation_seed: u64) -> Links {
        Links {
            cfg,
            me,
            conns: Vec::new(),
            next_conn: 1,
            next_negotiation: negotiation_seed,
            protected: [None; 2],
            out: VecDeque::new(),
            candidates: (0, 0),
        }
    }

    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    /// Peers with an open link.
    pub fn open_peers(&self) -> impl Iterator<Item = Did> + '_ {
        self.conns.iter().filter(|c| c.phase == Phase::Open).filter_map(|c| c.peer)
    }

    /// Connections held, open or opening (closing ones apart: [`Links::closing`]).
    pub fn len(&self) -> usize {
        self.conns.iter().filter(|c| c.phase != Phase::Closing).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a connection to `peer` is open or opening.
    pub fn holds(&self, peer: Did) -> bool {
        self.by_peer(peer).is_some()
    }

    /// Bytes waiting for links to open, and routed bytes handed to channels whose
    /// credit has not come back.
    pub fn backlog(&self) -> (usize, usize) {
        self.conns.iter().fold((0, 0), |(q, o), c| (q + c.queued, o + c.outstanding))
    }

    /// Open connections with routed bytes whose credit has not come back (the ones
    /// whose buffered amount the driver should report).
    pub fn owed(&self) -> Vec<ConnId> {
        self.conns.iter().filter(|c| c.phase == Phase::Open && c.outstanding > 0).map(|c| c.id).collect()
    }

    /// Candidates sent through the ring, and added from it.
    pub fn candidates(&self) -> (u64, u64) {
        self.candidates
    }

    /// Connections closing (they only receive).
    pub fn closing(&self) -> usize {
        self.conns.iter().filter(|c| c.phase == Phase::Closing).count()
    }

    pub fn is_open(&self, peer: Did) -> bool {
        self.by_peer(peer).is_some_and(|c| c.phase == Phase::Open)
    }

    /// Whether connection `conn` is held (opening, open or closing).
    pub fn has(&self, conn: ConnId) -> bool {
        self.get(conn).is_some()
    }

    /// The peer of connection `conn`, once known.
    pub fn peer_of(&self, conn: ConnId) -> Option<Did> {
        self.get(conn).and_then(|c| c.peer)
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<LinkOutput> {
        self.out.pop_front()
    }

    /// When [`Links::handle_timeout`] has work: an opening or closing connection's deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns.iter().filter(|c| c.phase != Phase::Open).map(|c| c.deadline).min()
    }

    /// The ring's successor and predecessor: never evicted.
    pub fn protect(&mut self, successor: Option<Did>, predecessor: Option<Did>) {
        self.protected = [successor, predecessor];
    }

    // ---- what the node asks ----

    /// Bytes for the link peer `to`: sent if the link is open, queued if it is opening,
    /// else a link is opened through the ring (if any link is open to carry the offer).
    /// Returns false if the bytes were dropped.
    pub fn transmit(&mut self, now: Instant, to: Did, bytes: Vec<u8>) -> bool {
        // A link closing is not opened again by a transmit while it drains (a late
        // answer to the peer's last frames would undo the eviction); an explicit
        // `connect`, or the peer's own offer, may open a new one.
        let closing = || self.conns.iter().any(|c| c.phase == Phase::Closing && c.peer == Some(to));
        if to == self.me || (self.by_peer(to).is_none() && (closing() || self.open(now, to).is_none())) {
            return self.dropped(to, &bytes);
        }
        let max_queued = self.cfg.max_queued;
        let Some(c) = self.by_peer_mut(to) else { return false };
        if c.phase != Phase::Open {
            if c.queued + bytes.len() > max_queued {
                return self.dropped(to, &bytes);
            }
            c.queued += bytes.len();
            c.queue.push_back(bytes);
            return true;
        }
        c.last_used = now;
        if bytes.first() == Some(&ROUTED) {
            c.outstanding += bytes.len();
        }
        let conn = c.id;
        self.out.push_back(LinkOutput::Send { conn, bytes });
        true
    }

    /// Routed bytes the wire counted against its credit for `to` that will not be sent.
    fn dropped(&mut self, to: Did, bytes: &[u8]) -> bool {
        if bytes.first() == Some(&ROUTED) && to != self.me {
            self.out.push_back(LinkOutput::Credit { peer: to, bytes: bytes.len() });
        }
        false
    }

    /// Opens a link to `peer` through the ring unless one is held; `None` if it cannot
    /// start (no open link to carry the offer, or no room).
    pub fn connect(&mut self, now: Instant, peer: Did) -> Option<ConnId> {
        match self.by_peer(peer) {
            Some(c) => Some(c.id),
            None => self.open(now, peer),
        }
    }

    /// Closes the link to `peer`, if any (an open one drains first).
    pub fn close(&mut self, now: Instant, peer: Did) {
        if let Some(id) = self.by_peer(peer).map(|c| c.id) {
            self.let_go(now, id, CloseReason::Closed);
        }
    }

    /// Every attempt of the join through `via` failed. If its link is open and was heard
    /// from within `silence`, the fault lies further in the ring and the join goes on
    /// (false). Else the bootstrap is dead: the node lets go of it and of the links it
    /// offered itself for the join (true); its peers' links, manual answers it gave and
    /// manual offers not yet open (perhaps the next bootstrap) stay.
    pub fn give_up_join(&mut self, now: Instant, via: Did) -> bool {
        if self.by_peer(via).is_some_and(|c| c.phase == Phase::Open && c.last_rx + self.cfg.silence > now) {
            return false;
        }
        let joins = |c: &Conn| c.peer == Some(via) || (!c.manual && !c.by_peer && c.peer.is_some());
        let ids: Vec<ConnId> = self.conns.iter().filter(|c| c.phase != Phase::Closing && joins(c)).map(|c| c.id).collect();
        for id in ids {
            self.let_go(now, id, CloseReason::JoinFailed);
        }
        true
    }

    /// Closes every connection at once (the node leaves).
    pub fn close_all(&mut self) {
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            self.drop_conn(id, CloseReason::Closed);
        }
    }

    /// A manual offer (carried by hand, QR, HTTP): the connection, to be described by
    /// the driver and answered through [`Links::accept_manual_answer`]; `None`: no room.
    pub fn manual_offer(&mut self, now: Instant, patience: Duration) -> Option<ConnId> {
        // Unanswered manual offers are few: the oldest gives way.
        let unanswered = |c: &&Conn| c.manual && c.peer.is_none();
        if self.conns.iter().filter(unanswered).count() >= MAX_MANUAL_OFFERS {
            if let Some(oldest) = self.conns.iter().filter(unanswered).min_by_key(|c| (c.opened, c.id)).map(|c| c.id) {
                self.drop_conn(oldest, CloseReason::Replaced);
            }
        }
        if !self.make_room(now, self.cfg.max_links.saturating_sub(1), false) {
            return None;
        }
        let id = self.insert(now, None, Phase::Offering, false);
        let n = self.negotiation();
        if let Some(c) = self.get_mut(id) {
            c.negotiation = Some(n);
            c.deadline = now + patience;
            c.manual = true;
        }
        self.out.push_back(LinkOutput::Create { conn: id, answer_to: None });
        Some(id)
    }

    /// The negotiation a manual offer's text must name (known at once).
    pub fn negotiation_of(&self, conn: ConnId) -> Option<Negotiation> {
        self.get(conn).and_then(|c| c.negotiation)
    }

    /// The answer to our manual offer `id` came from `peer`: this node joins the ring
    /// through it if alone. Replaces any other connection to `peer`.
    pub fn accept_manual_answer(&mut self, now: Instant, id: Negotiation, peer: Did, sdp: String) -> Option<ConnId> {
        if peer == self.me {
            return None;
        }
        let conn = self.conns.iter().find(|c| c.peer.is_none() && c.phase == Phase::Offering && c.negotiation == Some(id))?.id;
        if let Some(old) = self.by_peer(peer).map(|c| c.id) {
            self.drop_conn(old, CloseReason::Replaced);
        }
        let timeout = self.cfg.connect_timeout;
        let c = self.get_mut(conn)?;
        c.peer = Some(peer);
        c.phase = Phase::Answering;
        c.join_via = true;
        c.deadline = now + timeout;
        self.out.push_back(LinkOutput::SetAnswer { conn, sdp });
        self.remote_set(conn);
        Some(conn)
    }

    /// Answers a manual offer from `peer` (replacing any connection to it); `None`: no room.
    pub fn answer_manual(&mut self, now: Instant, peer: Did, sdp: String) -> Option<ConnId> {
        if peer == self.me {
            return None;
        }
        let old = self.by_peer(peer).map(|c| c.id);
        self.room_replacing(now, old, false)?;
        let id = self.insert(now, Some(peer), Phase::Answering, false);
        if let Some(c) = self.get_mut(id) {
            c.manual = true;
        }
        self.out.push_back(LinkOutput::Create { conn: id, answer_to: Some(sdp) });
        self.remote_set(id);
        Some(id)
    }

    // ---- what the connections did ----

    /// The local description of `conn` is ready: a ring-signalled one leaves now, with
    /// the candidates gathered so far behind it.
    pub fn handle_local_description(&mut self, _now: Instant, conn: ConnId, sdp: String) {
        // A number is drawn only for an offer not yet named.
        let unnamed = self.get(conn).is_some_and(|c| c.phase == Phase::Offering && c.negotiation.is_none());
        let fresh = if unnamed { self.negotiation() } else { 0 };
        let Some(c) = self.get_mut(conn) else { return };
        c.described = true;
        let Some(peer) = c.peer.filter(|_| !c.manual) else { return }; // the driver carries it
        let msg = match c.phase {
            Phase::Offering => {
                let id = *c.negotiation.get_or_insert(fresh);
                LinkMsg::Offer { id, sdp }
            }
            Phase::Answering => match c.negotiation {
                Some(id) => LinkMsg::Answer { id, sdp },
                None => return, // a manual answer: the driver carries it
            },
            Phase::Open | Phase::Closing => return,
        };
        let (id, early) = (msg.negotiation(), std::mem::take(&mut c.early_local));
        self.out.push_back(LinkOutput::Signal { to: peer, msg });
        for candidate in early {
            self.candidates.0 += 1;
            self.out.push_back(LinkOutput::Signal { to: peer, msg: LinkMsg::Candidate { id, candidate } });
        }
    }

    /// A candidate `conn` gathered: it follows the description through the ring (until
    /// the link is open; a manual link's candidates travel in its description).
    pub fn handle_local_candidate(&mut self, _now: Instant, conn: ConnId, candidate: Candidate) {
        let max_early = self.cfg.max_early;
        let Some(c) = self.get_mut(conn) else { return };
        if matches!(c.phase, Phase::Open | Phase::Closing) || c.manual {
            return;
        }
        match (c.peer, c.negotiation, c.described) {
            (Some(to), Some(id), true) => {
                self.candidates.0 += 1;
                self.out.push_back(LinkOutput::Signal { to, msg: LinkMsg::Candidate { id, candidate } });
            }
            _ if c.early_local.len() < max_early => c.early_local.push(candidate),
            _ => {}
        }
    }

    /// The connection's channel opened.
    pub fn handle_open(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.get_mut(conn).filter(|c| matches!(c.phase, Phase::Offering | Phase::Answering)) else { return };
        let Some(peer) = c.peer else { return };
        c.phase = Phase::Open;
        c.opened = now;
        c.last_rx = now;
        c.last_used = now;
        c.early_local.clear();
        c.early_remote.clear();
        let join = std::mem::take(&mut c.join_via);
        let queue = std::mem::take(&mut c.queue);
        c.queued = 0;
        self.out.push_back(LinkOutput::Up { peer });
        for bytes in queue {
            self.transmit(now, peer, bytes);
        }
        // Only a node that has no ring yet joins through it.
        if join && self.protected[0].is_none() {
            self.out.push_back(LinkOutput::Join { via: peer });
        }
    }

    /// The connection closed or failed on its own (a closing one: the peer closed its
    /// end, nothing more will come).
    pub fn handle_closed(&mut self, _now: Instant, conn: ConnId) {
        self.forget(conn, CloseReason::Lost);
    }

    /// `bytes` arrived on `conn`: the peer they are from, for the node to read them
    /// (`None`: not an open or closing link, or the peer's [`CLOSING`], taken here).
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) -> Option<Did> {
        let c = self.get_mut(conn).filter(|c| matches!(c.phase, Phase::Open | Phase::Closing))?;
        if bytes == [CLOSING] {
            self.drop_conn(conn, CloseReason::PeerClosed);
            return None;
        }
        if c.phase == Phase::Open {
            c.last_rx = now;
            c.last_used = now;
        } else if !matches!(bytes.first(), Some(&ROUTED) | Some(&crate::store::STORE_TAG)) {
            // A closing link still delivers data in flight, not ring maintenance from a
            // peer already reported down (it would put the peer back in the table).
            return None;
        }
        c.peer
    }

    /// `conn`'s channel now buffers `buffered` bytes: the routed bytes it has sent on
    /// beyond `low_water`, to be credited to the wire (peer, bytes).
    pub fn handle_buffered(&mut self, conn: ConnId, buffered: usize) -> Option<(Did, usize)> {
        let low = self.cfg.low_water;
        let c = self.get_mut(conn).filter(|c| c.phase == Phase::Open && c.outstanding > 0)?;
        let back = c.outstanding.saturating_sub(buffered.saturating_sub(low));
        if back == 0 {
            return None;
        }
        c.outstanding -= back;
        Some((c.peer?, back))
    }

    /// A link message from `from`, its origin vouched for by the wire.
    pub fn handle_signal(&mut self, now: Instant, from: Did, msg: LinkMsg) {
        match msg {
            LinkMsg::Offer { id, sdp } => self.on_offer(now, from, id, sdp),
            LinkMsg::Answer { id, sdp } => {
                let Some(c) = self.by_peer_mut(from) else { return };
                if c.phase != Phase::Offering || c.negotiation != Some(id) {
                    return;
                }
                c.phase = Phase::Answering;
                let conn = c.id;
                self.out.push_back(LinkOutput::SetAnswer { conn, sdp });
                self.remote_set(conn);
            }
            LinkMsg::Candidate { id, candidate } => {
                let (max_early, max_candidates) = (self.cfg.max_early, self.cfg.max_candidates);
                let Some(c) = self.by_peer_mut(from) else { return };
                if c.phase == Phase::Open || c.negotiation != Some(id) {
                    return;
                }
                if c.remote_set {
                    if c.added < max_candidates {
                        c.added += 1;
                        let conn = c.id;
                        self.candidates.1 += 1;
                        self.out.push_back(LinkOutput::AddCandidate { conn, candidate });
                    }
                } else if c.early_remote.len() < max_early {
                    c.early_remote.push(candidate);
                }
            }
        }
    }

    /// A link message of negotiation `id` to `to` could not be delivered: that
    /// negotiation's connection goes, if it is still opening.
    pub fn handle_signal_undeliverable(&mut self, to: Did, id: Negotiation) {
        if let Some(id) = self.by_peer(to).filter(|c| c.phase != Phase::Open && c.negotiation == Some(id)).map(|c| c.id) {
            self.drop_conn(id, CloseReason::SignalUndeliverable);
        }
    }

    /// The ring found `peer` unreachable: an open link silent for `silence` goes (one
    /// that delivered frames lately is congested, not dead; an opening one has its own
    /// deadline).
    pub fn handle_unreachable(&mut self, now: Instant, peer: Did) {
        let silence = self.cfg.silence;
        if let Some(id) = self.by_peer(peer).filter(|c| c.phase == Phase::Open && c.last_rx + silence <= now).map(|c| c.id) {
            self.drop_conn(id, CloseReason::Silent);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let late: Vec<(ConnId, Phase)> =
            self.conns.iter().filter(|c| c.phase != Phase::Open && c.deadline <= now).map(|c| (c.id, c.phase)).collect();
        for (id, phase) in late {
            self.drop_conn(id, if phase == Phase::Closing { CloseReason::Drained } else { CloseReason::TimedOut });
        }
    }

    // ---- inside ----

    fn on_offer(&mut self, now: Instant, from: Did, id: Negotiation, sdp: String) {
        let old = self.by_peer(from).map(|c| (c.id, c.phase, c.by_peer, c.negotiation, c.refused, c.opened));
        if let Some((old, phase, by_peer, negotiation, refused, opened)) = old {
            // The same offer again, or a late copy of one refused in glare: a replay.
            if (by_peer && negotiation == Some(id)) || refused == Some(id) {
                return;
            }
            // Glare: both offered; the larger DID's offer wins.
            if phase == Phase::Offering && self.me > from {
                if let Some(c) = self.get_mut(old) {
                    c.refused = Some(id);
                }
                return;
            }
            // A peer may start again (a new offer over an old link), but not churn: a
            // link open for less than `grace`, or its own offer younger than
            // `answer_hold`, stays.
            let young = match phase {
                Phase::Open => opened + self.cfg.grace > now,
                _ => by_peer && opened + self.cfg.answer_hold > now,
            };
            if young {
                return;
            }
        }
        let others = |c: &&Conn| c.peer != Some(from) && c.phase != Phase::Closing;
        let unfinished = |c: &&Conn| c.by_peer && matches!(c.phase, Phase::Offering | Phase::Answering);
        let by_peers = self.conns.iter().filter(others).filter(|c| c.by_peer && !self.protected.contains(&c.peer)).count();
        let answering = self.conns.iter().filter(others).filter(unfinished).count();
        if answering >= self.cfg.max_answering {
            // The oldest unfinished handshake of a stranger that had its time makes room.
            let hold = self.cfg.answer_hold;
            let stale = self
                .conns
                .iter()
                .filter(others)
                .filter(unfinished)
                .filter(|c| c.opened + hold <= now)
                .min_by_key(|c| (c.opened, c.id))
                .map(|c| c.id);
            let Some(stale) = stale else { return };
            self.drop_conn(stale, CloseReason::Evicted);
        } else if by_peers >= self.cfg.max_by_peers && !self.evict(now, true) {
            return;
        }
        // What waited for our own (losing) offer goes over the link that wins.
        let Some(queue) = self.room_replacing(now, old.map(|o| o.0), true) else { return };
        let conn = self.insert(now, Some(from), Phase::Answering, true);
        if let Some(c) = self.get_mut(conn) {
            c.negotiation = Some(id);
            (c.queue, c.queued) = queue;
        }
        self.out.push_back(LinkOutput::Create { conn, answer_to: Some(sdp) });
        self.remote_set(conn);
    }

    /// A connection to `peer` as offerer through the ring, if one can start.
    fn open(&mut self, now: Instant, peer: Did) -> Option<ConnId> {
        if peer == self.me || !self.conns.iter().any(|c| c.phase == Phase::Open) {
            return None;
        }
        if !self.make_room(now, self.cfg.max_links.saturating_sub(1), false) {
            return None;
        }
        let id = self.insert(now, Some(peer), Phase::Offering, false);
        self.out.push_back(LinkOutput::Create { conn: id, answer_to: None });
        Some(id)
    }

    /// The remote description of `conn` is (being) set: held candidates can be added.
    fn remote_set(&mut self, conn: ConnId) {
        let Some(c) = self.get_mut(conn) else { return };
        c.remote_set = true;
        c.added += c.early_remote.len();
        for candidate in std::mem::take(&mut c.early_remote) {
            self.candidates.1 += 1;
            self.out.push_back(LinkOutput::AddCandidate { conn, candidate });
        }
    }

    fn negotiation(&mut self) -> Negotiation {
        self.next_negotiation = self.next_negotiation.wrapping_add(1);
        self.next_negotiation
    }

    fn get(&self, id: ConnId) -> Option<&Conn> {
        self.conns.iter().find(|c| c.id == id)
    }
    fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }
    /// The live (open or opening) connection to `peer`.
    fn by_peer(&self, peer: Did) -> Option<&Conn> {
        self.conns.iter().find(|c| c.peer == Some(peer) && c.phase != Phase::Closing)
    }
    fn by_peer_mut(&mut self, peer: Did) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.peer == Some(peer) && c.phase != Phase::Closing)
    }
}

#[cfg(test)]
mod tests;
