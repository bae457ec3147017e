//! The simulator's model of WebRTC links, for nodes in link mode: each node's link
//! manager asks for connections ([`LinkIo`]) and the model answers as browsers would —
//! descriptions at once (a token naming the connection stands for the SDP), the channel
//! open a setup time after the answer is set (uniform in a range, a share of setups
//! failing), frames delivered in order with the pair's latency and the bandwidth, a
//! close seen by the peer after the latency, a crash only after `crash_detect`.
//! Bootstrap is a manual offer carried to a member and its answer carried back.

use std::collections::HashMap;

use super::{NodeIx, Sim, What};
use crate::link::{ConnId, LinkConfig, Negotiation};
use crate::node::LinkIo;
use crate::time::{Duration, Instant};

/// How links behave in the simulator.
#[derive(Clone, Debug)]
pub struct LinkModel {
    /// Every node's link manager configuration.
    pub config: LinkConfig,
    /// From the answer being set to the channel open (or the setup failing).
    pub setup_min: Duration,
    pub setup_max: Duration,
    /// Share of setups that fail, in parts per million.
    pub fail_ppm: u32,
    /// How long a peer takes to notice that the other end crashed.
    pub crash_detect: Duration,
    /// How long a bootstrap (manual) offer waits for its answer.
    pub bootstrap_patience: Duration,
    /// The ring's hop timeout in link mode, as the data-channel drivers set it.
    pub ring_hop_timeout: Duration,
}

impl Default for LinkModel {
    fn default() -> LinkModel {
        LinkModel {
            config: LinkConfig::default(),
            setup_min: Duration::from_millis(20),
            setup_max: Duration::from_millis(200),
            fail_ppm: 20_000,
            crash_detect: Duration::from_millis(3_000),
            bootstrap_patience: Duration::from_millis(10_000),
            ring_hop_timeout: crate::link::RING_HOP_TIMEOUT,
        }
    }
}

/// What the link model saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Connections created to offer, and to answer an offer.
    pub offers: u64,
    pub answers: u64,
    /// Answering connections not for a real offer to this node, or for one answered
    /// before (must stay 0: a node opens a connection only for its own reasons or a
    /// real offer to it, once).
    pub unsolicited: u64,
    /// Offers answered after their connection was gone (the offerer gave up or replaced it).
    pub stale_offers: u64,
    /// Frames a connection sent after its CLOSING (must stay 0).
    pub sent_after_closing: u64,
    pub opened: u64,
    pub failed_setups: u64,
    pub closed: u64,
    pub frames: u64,
    /// Frames that reached a connection already closed (in flight at the close).
    pub frames_dropped: u64,
    /// The most connections any node held at once, open or opening.
    pub max_held: usize,
    /// The most closing connections (draining after [`crate::link::CLOSING`]) any node
    /// held at once besides those.
    pub max_closing: usize,
}

pub(super) enum LinkWhat {
    Described {
        node: NodeIx,
        conn: ConnId,
        sdp: String,
    },
    Open {
        node: NodeIx,
        conn: ConnId,
    },
    Closed {
        node: NodeIx,
        conn: ConnId,
    },
    Frame {
        node: NodeIx,
        conn: ConnId,
        bytes: Vec<u8>,
    },
    /// The channel has sent what it was given: buffered amount 0.
    Drained {
        node: NodeIx,
        conn: ConnId,
    },
}

#[derive(Clone, Copy)]
enum Manual {
    /// A bootstrap offer to carry to `via`.
    Offer { via: NodeIx, id: Negotiation },
    /// The answer to carry back to `to`'s offer `id`.
    Answer { to: NodeIx, id: Negotiation },
}

struct SimConn {
    peer: Option<(NodeIx, ConnId)>,
    open: bool,
    /// It sent CLOSING: it only receives now.
    closing: bool,
    manual: Option<Manual>,
}

#[derive(Default)]
pub(super) struct LinkNet {
    model: Option<LinkModel>,
    conns: HashMap<(NodeIx, ConnId), SimConn>,
    held: HashMap<NodeIx, usize>,
    closing: HashMap<NodeIx, usize>,
    /// Every offering connection ever made, with the node it was meant for (`None`: a
    /// manual offer, for whoever answers) and whether it has been answered.
    offers: HashMap<(NodeIx, ConnId), (Option<crate::Did>, bool)>,
    /// When each connection's channel finishes sending, in microseconds.
    free: HashMap<(NodeIx, ConnId), u64>,
    stats: LinkStats,
}

impl LinkNet {
    pub(super) fn new(model: Option<LinkModel>) -> LinkNet {
        LinkNet { model, ..LinkNet::default() }
    }
    pub(super) fn model(&self) -> Option<&LinkModel> {
        self.model.as_ref()
    }
    fn remove(&mut self, key: (NodeIx, ConnId)) -> Option<SimConn> {
        let c = self.conns.remove(&key)?;
        self.free.remove(&key);
        let count = if c.closing { &mut self.closing } else { &mut self.held };
        if let Some(n) = count.get_mut(&key.0) {
            *n = n.saturating_sub(1);
        }
        Some(c)
    }
}

fn token(node: NodeIx, conn: ConnId) -> String {
    format!("sim:{node}:{}", conn.0)
}

fn parse(sdp: &str) -> Option<(NodeIx, ConnId)> {
    let mut it = sdp.strip_prefix("sim:")?.split(':');
    let node = it.next()?.parse().ok()?;
    let conn = it.next()?.parse().ok()?;
    Some((node, ConnId(conn)))
}

impl Sim {
    pub fn link_stats(&self) -> &LinkStats {
        &self.links.stats
    }

    /// Connections node `ix` holds in the model (open or opening).
    pub fn links_held(&self, ix: NodeIx) -> usize {
        self.links.held.get(&ix).copied().unwrap_or(0)
    }

    /// Live nodes that have not joined (yet, or again).
    pub fn unjoined(&self) -> Vec<NodeIx> {
        (0..self.slots.len() as NodeIx).filter(|&i| self.slots[i as usize].alive && !self.slots[i as usize].joined).collect()
    }

    /// Bootstraps again every live node that has not joined and holds no connection
    /// (its bootstrap link failed, or its bootstrap peer crashed), each through a random
    /// member. Returns how many.
    pub fn retry_bootstraps(&mut self) -> usize {
        let mut n = 0;
        for ix in self.unjoined() {
            if self.links_held(ix) == 0 && !self.oracle.is_empty() {
                if let Some(via) = self.random_member() {
                    n += usize::from(self.bootstrap(ix, via));
                }
            }
        }
        n
    }

    /// Node `ix` (in link mode) offers a link by hand to `via`, which answers; once open,
    /// `ix` joins through it if it has no ring. False if `ix` had no room.
    pub fn bootstrap(&mut self, ix: NodeIx, via: NodeIx) -> bool {
        let Some(patience) = self.links.model.as_ref().map(|m| m.bootstrap_patience) else { return false };
        let now = self.clock_of(ix);
        let Some((conn, id)) = self.slots[ix as usize].node.manual_offer(now, patience) else { return false };
        self.drain_links(ix);
        if let Some(c) = self.links.conns.get_mut(&(ix, conn)) {
            c.manual = Some(Manual::Offer { via, id });
        }
        self.after_input(ix);
        true
    }

    /// Performs what node `ix`'s link manager asked.
    pub(super) fn drain_links(&mut self, ix: NodeIx) {
        if self.links.model.is_none() {
            return;
        }
        while let Some(io) = self.slots[ix as usize].node.poll_link() {
            match io {
                LinkIo::Create { conn, answer_to } => {
                    let mut peer = None;
                    match answer_to.as_deref().map(parse) {
                        None => {
                            self.links.stats.offers += 1;
                            let meant = self.slots[ix as usize].node.links().and_then(|l| l.peer_of(conn));
                            self.links.offers.insert((ix, conn), (meant, false));
                        }
                        Some(named) => {
                            self.links.stats.answers += 1;
                            let me = self.slots[ix as usize].node.did();
                            // A real offer, meant for this node (or manual), answered once.
                            let real = named.and_then(|k| self.links.offers.get_mut(&k).map(|o| (k, o)));
                            match real {
                                Some((k, o)) if o.0.is_none_or(|d| d == me) && !o.1 => {
                                    o.1 = true;
                                    match self.links.conns.get(&k) {
                                        Some(c) if c.peer.is_none() && !c.open => peer = Some(k),
                                        _ => self.links.stats.stale_offers += 1,
                                    }
                                }
                                _ => self.links.stats.unsolicited += 1,
                            }
                        }
                    }
                    self.links.conns.insert((ix, conn), SimConn { peer, open: false, closing: false, manual: None });
                    let held = self.links.held.entry(ix).or_default();
                    *held += 1;
                    self.links.stats.max_held = self.links.stats.max_held.max(*held);
                    let sdp = token(ix, conn);
                    self.schedule(self.now, What::Link(LinkWhat::Described { node: ix, conn, sdp }));
                }
                LinkIo::SetAnswer { conn, sdp } => {
                    let Some(theirs) = parse(&sdp) else { continue };
                    let answered = self.links.conns.get(&theirs).is_some_and(|c| c.peer == Some((ix, conn)));
                    let Some(mine) = self.links.conns.get_mut(&(ix, conn)) else { continue };
                    if !answered {
                        continue; // the answerer is gone: this side times out
                    }
                    mine.peer = Some(theirs);
                    self.set_up((ix, conn), theirs);
                }
                LinkIo::AddCandidate { .. } => {}
                LinkIo::Send { conn, bytes } => {
                    if self.links.conns.get(&(ix, conn)).is_some_and(|c| c.closing) {
                        self.links.stats.sent_after_closing += 1;
                    }
                    if bytes == [crate::link::CLOSING] {
                        self.mark_closing((ix, conn));
                    }
                    self.link_send(ix, conn, bytes)
                }
                LinkIo::Close { conn, .. } => {
                    let Some(c) = self.links.remove((ix, conn)) else { continue };
                    self.links.stats.closed += 1;
                    if let Some((p, pc)) = c.peer {
                        let at = self.now + self.latency(self.slots[ix as usize].node.did(), self.slots[p as usize].node.did());
                        self.schedule(at, What::Link(LinkWhat::Closed { node: p, conn: pc }));
                    }
                }
            }
        }
    }

    fn mark_closing(&mut self, key: (NodeIx, ConnId)) {
        let Some(c) = self.links.conns.get_mut(&key).filter(|c| !c.closing) else { return };
        c.closing = true;
        if let Some(n) = self.links.held.get_mut(&key.0) {
            *n = n.saturating_sub(1);
        }
        let n = self.links.closing.entry(key.0).or_default();
        *n += 1;
        self.links.stats.max_closing = self.links.stats.max_closing.max(*n);
    }

    /// Both ends have descriptions: after the setup time the channel opens, or fails.
    fn set_up(&mut self, a: (NodeIx, ConnId), b: (NodeIx, ConnId)) {
        let Some(m) = self.links.model.as_ref() else { return };
        let (lo, hi, fail) = (m.setup_min.as_millis(), m.setup_max.as_millis(), m.fail_ppm);
        let at = self.now + Duration(lo + self.rng.below(hi.saturating_sub(lo) + 1));
        let failed = fail > 0 && self.rng.chance_ppm(fail);
        if failed {
            self.links.stats.failed_setups += 1;
        }
        for (node, conn) in [a, b] {
            let what = if failed { LinkWhat::Closed { node, conn } } else { LinkWhat::Open { node, conn } };
            self.schedule(at, What::Link(what));
        }
    }

    fn link_send(&mut self, ix: NodeIx, conn: ConnId, bytes: Vec<u8>) {
        let Some((p, pc)) = self.links.conns.get(&(ix, conn)).filter(|c| c.open).and_then(|c| c.peer) else {
            self.links.stats.frames_dropped += 1;
            return;
        };
        self.links.stats.frames += 1;
        let mut start = self.now;
        if self.cfg.bandwidth > 0 {
            let now_us = self.now.as_millis() * 1000;
            let free = self.links.free.entry((ix, conn)).or_insert(now_us);
            let done = (*free).max(now_us) + (bytes.len() as u64 * 1000).div_ceil(self.cfg.bandwidth);
            *free = done;
            start = Instant(done.div_ceil(1000));
        }
        if bytes.first() == Some(&crate::wire::ROUTED_TAG) {
            self.schedule(start, What::Link(LinkWhat::Drained { node: ix, conn }));
        }
        let (me, peer) = (self.slots[ix as usize].node.did(), self.slots[p as usize].node.did());
        // A cut link stays open and drains, but what it carries is lost.
        if self.is_cut(me, peer) {
            self.stats.lost += 1;
            return;
        }
        let at = start + self.latency(me, peer);
        self.schedule(at, What::Link(LinkWhat::Frame { node: p, conn: pc, bytes }));
    }

    /// Node `ix` stopped: its peers see its links close, after `crash_detect` if it
    /// crashed, after the latency if it left.
    pub(super) fn links_gone(&mut self, ix: NodeIx, crashed: bool) {
        let Some(detect) = self.links.model.as_ref().map(|m| m.crash_detect) else { return };
        let mine: Vec<(NodeIx, ConnId)> = self.links.conns.keys().filter(|k| k.0 == ix).copied().collect();
        for key in mine {
            let Some(c) = self.links.remove(key) else { continue };
            if let Some((p, pc)) = c.peer {
                let delay =
                    if crashed { detect } else { self.latency(self.slots[ix as usize].node.did(), self.slots[p as usize].node.did()) };
                self.schedule(self.now + delay, What::Link(LinkWhat::Closed { node: p, conn: pc }));
            }
        }
    }

    pub(super) fn dispatch_link(&mut self, w: LinkWhat) {
        let (node, conn) = match &w {
            LinkWhat::Described { node, conn, .. }
            | LinkWhat::Open { node, conn }
            | LinkWhat::Closed { node, conn }
            | LinkWhat::Frame { node, conn, .. }
            | LinkWhat::Drained { node, conn } => (*node, *conn),
        };
        if !self.slots[node as usize].alive || !self.links.conns.contains_key(&(node, conn)) {
            if matches!(w, LinkWhat::Frame { .. }) {
                self.links.stats.frames_dropped += 1;
            }
            return;
        }
        let now = self.clock_of(node);
        match w {
            LinkWhat::Described { sdp, .. } => {
                self.slots[node as usize].node.handle_local_description(now, conn, sdp.clone());
                let manual = self.links.conns.get(&(node, conn)).and_then(|c| c.manual);
                self.after_input(node);
                match manual {
                    Some(Manual::Offer { via, id }) => self.carry_offer(node, via, id, sdp),
                    Some(Manual::Answer { to, id }) => {
                        if self.slots[to as usize].alive {
                            let me = self.slots[node as usize].node.did();
                            let t = self.clock_of(to);
                            self.slots[to as usize].node.accept_manual_answer(t, id, me, sdp);
                            self.after_input(to);
                        }
                    }
                    None => {}
                }
            }
            LinkWhat::Open { .. } => {
                self.links.stats.opened += 1;
                if let Some(c) = self.links.conns.get_mut(&(node, conn)) {
                    c.open = true;
                }
                self.slots[node as usize].node.handle_link_open(now, conn);
                self.after_input(node);
            }
            LinkWhat::Closed { .. } => {
                self.links.remove((node, conn));
                self.slots[node as usize].node.handle_link_closed(now, conn);
                self.after_input(node);
            }
            LinkWhat::Frame { bytes, .. } => {
                if let Err(crate::node::FrameError::Ring(_)) = self.slots[node as usize].node.handle_link_frame(now, conn, &bytes) {
                    self.stats.decode_errors += 1;
                }
                self.after_input(node);
            }
            LinkWhat::Drained { .. } => {
                self.slots[node as usize].node.handle_link_buffered(now, conn, 0);
                self.after_input(node);
            }
        }
    }

    /// The bootstrap offer reaches `via` (by hand: at once), which answers it.
    fn carry_offer(&mut self, from: NodeIx, via: NodeIx, id: Negotiation, sdp: String) {
        if !self.slots[via as usize].alive {
            return;
        }
        let peer = self.slots[from as usize].node.did();
        let now = self.clock_of(via);
        let Some(conn) = self.slots[via as usize].node.answer_manual(now, peer, sdp) else {
            self.after_input(via);
            return;
        };
        self.drain_links(via);
        if let Some(c) = self.links.conns.get_mut(&(via, conn)) {
            c.manual = Some(Manual::Answer { to: from, id });
        }
        self.after_input(via);
    }
}
