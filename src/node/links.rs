//! Link mode: the node owns its [`Links`] and the driver owns only connections. Ring,
//! store and routed frames for a peer go through the link manager (sent if the link is
//! open, queued while it opens, a link opened through the ring otherwise); offers,
//! answers and candidates travel as routed messages of their own body kind
//! ([`LINK_BODY`]), so the application never sees them; a link message that cannot be
//! delivered ends its negotiation.
//!
//! The driver performs what [`Node::poll_link`] asks ([`LinkIo`]) and reports what its
//! connections did through the `handle_link_*` inputs.

use std::collections::VecDeque;

use super::{Event, Node};
use crate::link::{Candidate, CloseReason, ConnId, LinkMsg, LinkOutput, Links, Negotiation};
use crate::time::{Duration, Instant};
use crate::Did;

/// The first byte of every message body a node sends (inside the seal): the
/// application's, or the link manager's own.
pub const APP_BODY: u8 = 0;
pub const LINK_BODY: u8 = 1;

/// Link messages sent and not yet known to have failed, to end their negotiation when
/// one comes back undelivered; the oldest are forgotten past this many.
const MAX_LINK_TXS: usize = 1024;

/// What the node asks of the driver's connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkIo {
    /// Create connection `conn` and its data channel: make an offer (`answer_to: None`)
    /// or answer the peer's offer; report its description by
    /// [`Node::handle_local_description`] and its candidates by
    /// [`Node::handle_local_candidate`].
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
    /// Send `bytes` as one message on `conn`'s channel.
    Send {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    /// Close `conn` and forget it (no [`Node::handle_link_closed`] is expected for it).
    Close {
        conn: ConnId,
        reason: CloseReason,
    },
}

/// A direct link came or went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    Up {
        peer: Did,
    },
    /// `was_open`: false if the connection never opened.
    Down {
        peer: Did,
        was_open: bool,
        reason: CloseReason,
    },
}

#[derive(Debug)]
pub(super) struct LinkState {
    pub(super) links: Links,
    io: VecDeque<LinkIo>,
    /// (wire transaction, peer, negotiation) of link messages in flight.
    txs: Vec<(u64, Did, Negotiation)>,
    /// The peer of the bootstrap link this node is joining through and the ring's id for
    /// that join, until it joined or gave up.
    pub(super) bootstrap: Option<(Did, crate::chord::RequestId)>,
}

impl LinkState {
    pub(super) fn new(links: Links) -> LinkState {
        LinkState { links, io: VecDeque::new(), txs: Vec::new(), bootstrap: None }
    }
}

impl Node {
    /// The link manager (link mode only).
    pub fn links(&self) -> Option<&Links> {
        self.link.as_ref().map(|l| &l.links)
    }

    /// The next thing to do with a connection (link mode).
    #[must_use]
    pub fn poll_link(&mut self) -> Option<LinkIo> {
        self.link.as_mut()?.io.pop_front()
    }

    /// Opens a link to `peer` through the ring unless one is held; `None` if it cannot
    /// start (no open link to carry the offer, no room, or not in link mode).
    pub fn connect(&mut self, now: Instant, peer: Did) -> Option<ConnId> {
        let id = self.link.as_mut()?.links.connect(now, peer);
        self.pump(now);
        id
    }

    /// Closes the link to `peer`, if any.
    pub fn disconnect(&mut self, now: Instant, peer: Did) {
        if let Some(l) = self.link.as_mut() {
            l.links.close(now, peer);
        }
        self.pump(now);
    }

    /// A manual offer (carried by hand, QR code or HTTP): the connection to describe, and
    /// the negotiation its text names; `None`: no room or not in link mode. Its
    /// description is the driver's to carry; the answer comes back through
    /// [`Node::accept_manual_answer`].
    pub fn manual_offer(&mut self, now: Instant, patience: Duration) -> Option<(ConnId, Negotiation)> {
        let l = self.link.as_mut()?;
        let conn = l.links.manual_offer(now, patience)?;
        let n = l.links.negotiation_of(conn)?;
        self.pump(now);
        Some((conn, n))
    }

    /// The answer `sdp` to manual offer `id` came from `peer` (its identity checked by
    /// the driver: a signed answer); a node with no ring joins through it once open.
    pub fn accept_manual_answer(&mut self, now: Instant, id: Negotiation, peer: Did, sdp: String) -> Option<ConnId> {
        let conn = self.link.as_mut()?.links.accept_manual_answer(now, id, peer, sdp);
        self.pump(now);
        conn
    }

    /// Answers `peer`'s manual offer `sdp` (its identity checked by the driver); the
    /// answer's description is the driver's to carry back.
    pub fn answer_manual(&mut self, now: Instant, peer: Did, sdp: String) -> Option<ConnId> {
        let conn = self.link.as_mut()?.links.answer_manual(now, peer, sdp);
        self.pump(now);
        conn
    }

    /// The local description of `conn` is ready.
    pub fn handle_local_description(&mut self, now: Instant, conn: ConnId, sdp: String) {
        if let Some(l) = self.link.as_mut() {
            l.links.handle_local_description(now, conn, sdp);
        }
        self.pump(now);
    }

    pub fn handle_local_candidate(&mut self, now: Instant, conn: ConnId, candidate: Candidate) {
        if let Some(l) = self.link.as_mut() {
            l.links.handle_local_candidate(now, conn, candidate);
        }
        self.pump(now);
    }

    /// `conn`'s channel opened.
    pub fn handle_link_open(&mut self, now: Instant, conn: ConnId) {
        if let Some(l) = self.link.as_mut() {
            l.links.handle_open(now, conn);
        }
        self.pump(now);
    }

    /// `conn` closed or failed on its own.
    pub fn handle_link_closed(&mut self, now: Instant, conn: ConnId) {
        if let Some(l) = self.link.as_mut() {
            l.links.handle_closed(now, conn);
        }
        self.pump(now);
    }

    /// `conn`'s channel buffers `buffered` bytes now (its `bufferedAmount`). True if
    /// that gave credit back (the wire may have sent more).
    pub fn handle_link_buffered(&mut self, now: Instant, conn: ConnId, buffered: usize) -> bool {
        let back = self.link.as_mut().and_then(|l| l.links.handle_buffered(conn, buffered));
        let Some((peer, bytes)) = back else { return false };
        self.wire.handle_sent(now, self.ring.table(), peer, bytes);
        self.pump(now);
        true
    }

    /// A message arrived on `conn`. Frames on a connection that is not an open link are
    /// ignored (`Ok`); a bad frame is counted and its reason returned.
    pub fn handle_link_frame(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) -> Result<(), super::FrameError> {
        let from = self.link.as_mut().and_then(|l| l.links.handle_frame(now, conn, bytes));
        match from {
            Some(from) => self.handle_frame(now, from, bytes),
            None => {
                self.pump(now);
                Ok(())
            }
        }
    }

    // ---- inside ----

    /// Hands what the ring, the wire and the store queued for peers to the link manager.
    pub(super) fn transmits_to_links(&mut self, now: Instant) {
        let Some(l) = self.link.as_mut() else { return };
        let table = self.ring.table();
        l.links.protect(table.successor(), table.predecessor());
        while let Some(t) = self.transmits.pop_front() {
            l.links.transmit(now, t.to, t.frame.encode());
        }
    }

    /// A delivered body of the link kind: the link manager's message.
    pub(super) fn on_link_body(&mut self, now: Instant, from: Did, body: &[u8]) {
        let Some(l) = self.link.as_mut() else { return };
        match LinkMsg::decode(body) {
            Ok(msg) => l.links.handle_signal(now, from, msg),
            Err(_) => self.link_errors += 1,
        }
    }

    /// Whether `tx` to `dest` was a link message (then its negotiation ends).
    pub(super) fn link_undelivered(&mut self, tx: u64, dest: Did) -> bool {
        let Some(l) = self.link.as_mut() else { return false };
        let Some(at) = l.txs.iter().position(|&(t, d, _)| t == tx && d == dest) else { return false };
        let (_, to, n) = l.txs.remove(at);
        l.links.handle_signal_undeliverable(to, n);
        true
    }

    /// Performs what the link manager asked; true if it asked anything.
    pub(super) fn pump_links(&mut self, now: Instant) -> bool {
        let Some(l) = self.link.as_mut() else { return false };
        let table = self.ring.table();
        l.links.protect(table.successor(), table.predecessor());
        let mut any = false;
        while let Some(o) = self.link.as_mut().and_then(|l| l.links.poll_output()) {
            any = true;
            let io = match o {
                LinkOutput::Create { conn, answer_to } => LinkIo::Create { conn, answer_to },
                LinkOutput::SetAnswer { conn, sdp } => LinkIo::SetAnswer { conn, sdp },
                LinkOutput::AddCandidate { conn, candidate } => LinkIo::AddCandidate { conn, candidate },
                LinkOutput::Send { conn, bytes } => LinkIo::Send { conn, bytes },
                LinkOutput::Close { conn, reason } => LinkIo::Close { conn, reason },
                LinkOutput::Signal { to, msg } => {
                    self.signal(now, to, msg);
                    continue;
                }
                LinkOutput::Up { peer } => {
                    self.signals_settled(peer);
                    self.wire.link_up(peer);
                    self.events.push_back(Event::Link(LinkEvent::Up { peer }));
                    continue;
                }
                LinkOutput::Down { peer, was_open, reason } => {
                    self.signals_settled(peer);
                    self.ring.handle_peer_down(now, peer);
                    self.wire.handle_peer_down(now, self.ring.table(), peer);
                    self.events.push_back(Event::Link(LinkEvent::Down { peer, was_open, reason }));
                    continue;
                }
                LinkOutput::Join { via } => {
                    let id = self.ring.join(now, via);
                    if let Some(l) = self.link.as_mut() {
                        l.bootstrap = Some((via, id));
                    }
                    continue;
                }
                LinkOutput::Credit { peer, bytes } => {
                    self.wire.handle_sent(now, self.ring.table(), peer, bytes);
                    continue;
                }
            };
            if let Some(l) = self.link.as_mut() {
                l.io.push_back(io);
            }
        }
        any
    }

    /// The negotiations with `peer` are over (its link opened or went): their messages
    /// are not awaited any more.
    fn signals_settled(&mut self, peer: Did) {
        if let Some(l) = self.link.as_mut() {
            l.txs.retain(|t| t.1 != peer);
        }
    }

    /// Link messages sent whose fate is not known yet.
    pub fn signals_in_flight(&self) -> usize {
        self.link.as_ref().map_or(0, |l| l.txs.len())
    }

    /// Closes every connection at once (before the node is dropped; after
    /// [`Node::leave`] and a pump, so the goodbyes have left).
    pub fn close_links(&mut self, now: Instant) {
        if let Some(l) = self.link.as_mut() {
            l.links.close_all();
        }
        self.pump(now);
    }

    /// Routes a link message to `to`; one that cannot leave ends its negotiation.
    fn signal(&mut self, now: Instant, to: Did, msg: LinkMsg) {
        let n = msg.negotiation();
        let mut body = Vec::with_capacity(1 + 64);
        body.push(LINK_BODY);
        body.extend_from_slice(&msg.encode());
        match self.wire.send(now, self.ring.table(), to, body) {
            Ok(tx) => {
                if let Some(l) = self.link.as_mut() {
                    if l.txs.len() >= MAX_LINK_TXS {
                        l.txs.remove(0); // the oldest (kept in order of sending)
                    }
                    l.txs.push((tx, to, n));
                }
            }
            Err(_) => {
                if let Some(l) = self.link.as_mut() {
                    l.links.handle_signal_undeliverable(to, n);
                }
            }
        }
    }
}
