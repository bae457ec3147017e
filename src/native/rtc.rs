//! The native node's connections: one str0m `Rtc` (sans-IO WebRTC) per connection the
//! link manager asked for, each on UDP sockets of its own (one per configured address,
//! on a port the kernel picks), as a browser's `RTCPeerConnection`: str0m tells DTLS
//! apart only by address, so two connections between the same two sockets (one
//! replacing or outliving the other) would take each other's records. Like the
//! browser's, they carry one ordered, reliable, pre-negotiated (id 0) data channel, so a
//! page and a native node link by the same SDP.
//!
//! str0m accepts at most 128 KiB of unsent data across channels; the link manager may
//! hand over megabytes (its credit window): what str0m does not take yet waits here, and
//! counts as buffered when the manager asks.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate as IceCandidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::stun::Gathering;
use crate::link::{Candidate, ConnId};

/// What the connections did, for the driver to report to the node.
#[derive(Debug)]
pub enum RtcEvent {
    /// The local description of a connection that waited for its STUN answers.
    Described(ConnId, Result<String, String>),
    Open(ConnId),
    Frame(ConnId, Vec<u8>),
    Closed(ConnId),
}

/// A datagram for the driver: the connection whose socket took it, which of its
/// sockets, from where.
pub type Datagram = (ConnId, usize, SocketAddr, Vec<u8>);

struct Conn {
    rtc: Rtc,
    /// Its own sockets (bound address) and their reader tasks (stopped with it).
    sockets: Vec<(Arc<UdpSocket>, SocketAddr)>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    channel: Option<ChannelId>,
    pending: Option<SdpPendingOffer>,
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    next: Option<StdInstant>,
    /// Since when ICE says it is disconnected (it may come back within [`ICE_GRACE`]).
    disconnected: Option<StdInstant>,
    /// Closed in agreement and forgotten by the node: it lives on, silent, only until
    /// its buffered data is acknowledged (or until then).
    retire_at: Option<StdInstant>,
    /// Waiting for STUN answers before it describes itself.
    gathering: Option<Gathering>,
}

/// How long ICE may stay disconnected before the connection counts as lost (a path that
/// lost its checks for the 7.5 s str0m waits may still recover).
pub const ICE_GRACE: Duration = Duration::from_secs(2);
/// How long a connection closed in agreement may take to deliver what it buffers.
pub const RETIRE_LIMIT: Duration = Duration::from_secs(5);
/// Candidates a peer's offer may carry (a browser sends one or two per interface).
const MAX_OFFER_CANDIDATES: usize = 16;
/// Retiring connections at once (beyond it one closes at once, its data dropped).
const MAX_RETIRING: usize = 64;
/// The largest frame str0m takes (its buffer is 128 KiB; the core's frames are 64 KiB).
const MAX_FRAME: usize = 128 << 10;

pub struct Conns {
    /// The addresses each connection binds a socket on.
    ips: Vec<IpAddr>,
    external: Vec<IpAddr>,
    stun: Vec<SocketAddr>,
    /// Server-reflexive addresses the STUN servers told (each a candidate).
    pub stun_mapped: u64,
    datagrams: mpsc::Sender<Datagram>,
    map: HashMap<ConnId, Conn>,
    retiring: usize,
    events: Vec<RtcEvent>,
    /// Datagrams that matched no connection (stray, late, or hostile).
    pub stray: u64,
}

fn channel_config() -> ChannelConfig {
    ChannelConfig { label: "rings".into(), ordered: true, reliability: Reliability::Reliable, negotiated: Some(0), protocol: String::new() }
}

impl Conns {
    /// Installs the crypto provider (once per process). Each connection binds a socket on
    /// every address of `ips`; what they receive goes to `datagrams`.
    pub fn new(ips: Vec<IpAddr>, external: Vec<IpAddr>, stun: Vec<SocketAddr>, datagrams: mpsc::Sender<Datagram>) -> Conns {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
        Conns { ips, external, stun, stun_mapped: 0, datagrams, map: HashMap::new(), retiring: 0, events: Vec::new(), stray: 0 }
    }

    /// Binds `conn`'s sockets and starts their readers (on the current tokio runtime).
    fn bind(&self, conn: ConnId) -> Result<(Vec<(Arc<UdpSocket>, SocketAddr)>, Vec<tokio::task::JoinHandle<()>>), String> {
        let (mut sockets, mut readers) = (Vec::new(), Vec::new());
        for (i, ip) in self.ips.iter().enumerate() {
            let bound = std::net::UdpSocket::bind((*ip, 0)).and_then(|s| s.set_nonblocking(true).map(|_| s)).and_then(UdpSocket::from_std);
            let sock = match bound {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    readers.iter().for_each(tokio::task::JoinHandle::abort);
                    return Err(format!("cannot bind UDP on {ip}: {e}"));
                }
            };
            let local = sock.local_addr().map_err(|e| e.to_string())?;
            let (s, tx) = (sock.clone(), self.datagrams.clone());
            readers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                loop {
                    match s.recv_from(&mut buf).await {
                        // A full queue drops the datagram, as a busy socket would.
                        Ok((n, from)) => {
                            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send((conn, i, from, buf[..n].to_vec())) {
                                return;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                        Err(e) => {
                            tracing::debug!("udp receive on {local}: {e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }));
            sockets.push((sock, local));
        }
        Ok((sockets, readers))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A new connection and its local description: our offer, or the answer to `offer`.
    /// Every local candidate is in it (host addresses, the announced external IPs, and
    /// what the STUN servers answer: `Ok(None)` while it waits for them, then an
    /// [`RtcEvent::Described`]).
    pub fn create(&mut self, now: StdInstant, conn: ConnId, offer: Option<&str>) -> Result<Option<String>, String> {
        // A peer's offer names the addresses this node will send ICE checks to: a few.
        if offer.is_some_and(|t| t.matches("a=candidate").count() > MAX_OFFER_CANDIDATES) {
            return Err(format!("over {MAX_OFFER_CANDIDATES} candidates in the offer"));
        }
        // A peer that stops answering ICE checks is noticed in about 7.5 s (str0m's
        // default, 21.5 s, left the ring routing into a dead link for that long).
        let mut cfg = RtcConfig::new();
        cfg.set_max_stun_rto(std::time::Duration::from_millis(1500));
        cfg.set_max_stun_retransmits(6);
        let mut rtc = cfg.build(now);
        let (sockets, readers) = self.bind(conn)?;
        for (_, local) in &sockets {
            if let Ok(c) = IceCandidate::host(*local, "udp") {
                rtc.add_local_candidate(c);
            }
            for ip in &self.external {
                if let Ok(c) = IceCandidate::server_reflexive(SocketAddr::new(*ip, local.port()), *local, "udp") {
                    rtc.add_local_candidate(c);
                }
            }
        }
        let gathering = Gathering::start(now, sockets.len(), &self.stun, offer.map(str::to_string), |i, to, bytes| {
            let _ = sockets[i].0.try_send_to(bytes, to);
        });
        let mut c = Conn { rtc, sockets, readers, channel: None, pending: None, queue: VecDeque::new(), queued: 0, next: Some(now), disconnected: None, retire_at: None, gathering: None };
        if let Some(g) = gathering {
            c.next = Some(g.until);
            c.gathering = Some(g);
            self.map.insert(conn, c);
            return Ok(None);
        }
        match describe(&mut c, offer) {
            Ok(sdp) => {
                self.map.insert(conn, c);
                Ok(Some(sdp))
            }
            Err(e) => {
                c.readers.iter().for_each(tokio::task::JoinHandle::abort);
                Err(e)
            }
        }
    }

    /// Ends `conn`'s wait for STUN answers: it describes itself with what it has.
    fn gathered(&mut self, conn: ConnId) {
        let Some(c) = self.map.get_mut(&conn) else { return };
        let Some(g) = c.gathering.take() else { return };
        let sdp = describe(c, g.offer.as_deref());
        c.next = Some(StdInstant::now());
        self.events.push(RtcEvent::Described(conn, sdp));
    }

    /// The peer's answer to our offer.
    pub fn set_answer(&mut self, conn: ConnId, sdp: &str) -> Result<(), String> {
        let c = self.map.get_mut(&conn).ok_or("no such connection")?;
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| format!("bad answer SDP: {e}"))?;
        let pending = c.pending.take().ok_or("no offer pending")?;
        c.rtc.sdp_api().accept_answer(pending, answer).map_err(|e| format!("answer refused: {e}"))?;
        c.next = Some(StdInstant::now());
        Ok(())
    }

    /// A candidate the peer trickled (a browser's `candidate:…` line; empty: the end).
    pub fn add_candidate(&mut self, conn: ConnId, cand: &Candidate) {
        let text = cand.candidate.trim();
        let text = text.strip_prefix("a=").unwrap_or(text);
        let (Some(c), false) = (self.map.get_mut(&conn), text.is_empty()) else { return };
        // One the parser refuses (an mDNS name, a TCP candidate) costs nothing.
        if let Ok(ice) = IceCandidate::from_sdp_string(text) {
            c.rtc.add_remote_candidate(ice);
            c.next = Some(StdInstant::now());
        }
    }

    /// Queues a frame for the channel (sent as str0m takes it).
    pub fn send(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let Some(c) = self.map.get_mut(&conn) else { return };
        c.queued += bytes.len();
        c.queue.push_back(bytes);
        // A frame str0m can never take, or a channel that refuses writes, would wedge
        // the queue: the connection is lost instead.
        if !flush(c) {
            self.lose(conn);
        }
    }

    /// Bytes not yet acknowledged by the peer's SCTP: queued here and buffered in str0m.
    pub fn buffered(&mut self, conn: ConnId) -> usize {
        let Some(c) = self.map.get_mut(&conn) else { return 0 };
        let inner = c.channel.and_then(|id| c.rtc.channel(id)).map_or(0, |mut ch| ch.buffered_amount());
        c.queued + inner
    }

    /// Bytes not yet acknowledged on every connection.
    pub fn total_buffered(&mut self) -> usize {
        let ids: Vec<ConnId> = self.map.keys().copied().collect();
        ids.into_iter().map(|c| self.buffered(c)).sum()
    }

    /// Closes and forgets `conn` (unsent data is dropped, as a closed browser connection's).
    pub fn close(&mut self, conn: ConnId) {
        if let Some(mut c) = self.remove(conn) {
            c.rtc.disconnect();
            drain(conn, &mut c, &mut Vec::new(), StdInstant::now());
        }
    }

    /// Closes `conn` once what it buffers is acknowledged (or after [`RETIRE_LIMIT`]);
    /// the node has forgotten it, so nothing it does is reported.
    pub fn retire(&mut self, now: StdInstant, conn: ConnId) {
        let full = self.retiring >= MAX_RETIRING;
        let empty = self.buffered(conn) == 0;
        match self.map.get_mut(&conn) {
            Some(c) if !full && !empty && c.retire_at.is_none() => {
                c.retire_at = Some(now + RETIRE_LIMIT);
                self.retiring += 1;
            }
            Some(_) => self.close(conn),
            None => {}
        }
    }

    fn remove(&mut self, conn: ConnId) -> Option<Conn> {
        let c = self.map.remove(&conn)?;
        c.readers.iter().for_each(tokio::task::JoinHandle::abort);
        if c.retire_at.is_some() {
            self.retiring -= 1;
        }
        Some(c)
    }

    pub fn close_all(&mut self) {
        let ids: Vec<ConnId> = self.map.keys().copied().collect();
        ids.into_iter().for_each(|c| self.close(c));
    }

    /// A datagram on `conn`'s socket `sock` from `source`.
    pub fn receive(&mut self, now: StdInstant, (conn, sock, source, data): Datagram) {
        let Some(c) = self.map.get_mut(&conn) else { return }; // closed meanwhile
        let Some((_, local)) = c.sockets.get(sock) else { return };
        let local = *local;
        if let Some(answer) = c.gathering.as_mut().and_then(|g| g.answer(sock, source, &data)) {
            // A mapped address that is the socket's own adds nothing (no NAT between).
            if let Some(mapped) = answer.filter(|m| *m != local) {
                if let Ok(cand) = IceCandidate::server_reflexive(mapped, local, "udp") {
                    c.rtc.add_local_candidate(cand);
                    self.stun_mapped += 1;
                }
            }
            if c.gathering.as_ref().is_some_and(|g| g.done(now)) {
                self.gathered(conn);
            }
            return;
        }
        let Ok(contents) = data.as_slice().try_into() else {
            self.stray += 1;
            return;
        };
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination: local, contents });
        if !c.rtc.accepts(&input) {
            self.stray += 1;
            return;
        }
        // Its output is taken at once: str0m's DTLS queues only a few records unread.
        if c.rtc.handle_input(input).is_err() {
            self.lose(conn);
            return;
        }
        let events = if c.retire_at.is_some() { &mut Vec::new() } else { &mut self.events };
        if !drain(conn, c, events, now) {
            self.lose(conn);
        }
    }

    /// Runs every connection whose timer is due (or that has new input) until it waits
    /// again; returns what they did.
    pub fn poll(&mut self, now: StdInstant) -> Vec<RtcEvent> {
        let late: Vec<ConnId> = self.map.iter().filter(|(_, c)| c.gathering.as_ref().is_some_and(|g| g.done(now))).map(|(id, _)| *id).collect();
        late.into_iter().for_each(|id| self.gathered(id));
        let mut lost = Vec::new();
        let mut retired = Vec::new();
        for (id, c) in self.map.iter_mut() {
            if c.next.is_some_and(|t| t <= now) && c.rtc.handle_input(Input::Timeout(now)).is_err() {
                lost.push(*id);
                continue;
            }
            // A retiring connection's events go nowhere: the node has forgotten it.
            let mut quiet = Vec::new();
            let events = if c.retire_at.is_some() { &mut quiet } else { &mut self.events };
            let alive = drain(*id, c, events, now);
            if let Some(until) = c.retire_at {
                let inner = c.channel.and_then(|ch| c.rtc.channel(ch)).map_or(0, |mut ch| ch.buffered_amount());
                if !alive || now >= until || c.queued + inner == 0 {
                    retired.push(*id);
                } else {
                    c.next = Some(c.next.map_or(until, |t| t.min(until)));
                }
            } else if !alive || c.disconnected.is_some_and(|t| now >= t + ICE_GRACE) {
                lost.push(*id);
            }
        }
        for id in lost {
            self.lose(id);
        }
        for id in retired {
            self.close(id);
        }
        std::mem::take(&mut self.events)
    }

    /// The earliest timer of any connection.
    pub fn next_timeout(&self) -> Option<StdInstant> {
        self.map.values().filter_map(|c| c.next).min()
    }

    fn lose(&mut self, id: ConnId) {
        if let Some(mut c) = self.remove(id) {
            c.rtc.disconnect();
            if c.retire_at.is_none() {
                self.events.push(RtcEvent::Closed(id));
            }
        }
    }
}

/// `c`'s local description: the answer to `offer`, or an offer of its own (kept pending
/// for the answer).
fn describe(c: &mut Conn, offer: Option<&str>) -> Result<String, String> {
    match offer {
        Some(text) => {
            let offer = SdpOffer::from_sdp_string(text).map_err(|e| format!("bad offer SDP: {e}"))?;
            let answer = c.rtc.sdp_api().accept_offer(offer).map_err(|e| format!("offer refused: {e}"))?;
            c.rtc.direct_api().create_data_channel(channel_config());
            Ok(answer.to_sdp_string())
        }
        None => {
            let mut api = c.rtc.sdp_api();
            api.add_channel_with_config(channel_config());
            let (offer, pending) = api.apply().ok_or("no offer to make")?;
            c.pending = Some(pending);
            Ok(offer.to_sdp_string())
        }
    }
}

/// Moves queued frames into str0m as far as it takes them. `false`: the channel failed
/// a write, or a frame is larger than str0m ever takes.
fn flush(c: &mut Conn) -> bool {
    let Some(id) = c.channel else { return true };
    while let Some(front) = c.queue.front() {
        if front.len() > MAX_FRAME {
            return false;
        }
        let Some(mut ch) = c.rtc.channel(id) else { return true };
        match ch.write(true, front) {
            Ok(true) => {
                c.queued -= front.len();
                c.queue.pop_front();
            }
            Ok(false) => return true,
            Err(_) => return false,
        }
    }
    true
}

/// Polls `c` until it waits: sends its datagrams, collects its events. `false`: it failed
/// or closed.
fn drain(id: ConnId, c: &mut Conn, events: &mut Vec<RtcEvent>, now: StdInstant) -> bool {
    loop {
        if !flush(c) {
            return false;
        }
        match c.rtc.poll_output() {
            Err(_) => return false,
            Ok(Output::Timeout(t)) => {
                c.next = Some(c.disconnected.map_or(t, |d| t.min(d + ICE_GRACE)));
                return c.rtc.is_alive();
            }
            Ok(Output::Transmit(t)) => {
                if let Some((s, _)) = c.sockets.iter().find(|(_, a)| *a == t.source).or(c.sockets.first()) {
                    // UDP: a datagram the kernel will not take now is lost, as on a wire.
                    let _ = s.try_send_to(&t.contents, t.destination);
                }
            }
            Ok(Output::Event(e)) => match e {
                Event::ChannelOpen(ch, _) => {
                    c.channel = Some(ch);
                    events.push(RtcEvent::Open(id));
                }
                Event::ChannelData(d) if d.binary => events.push(RtcEvent::Frame(id, d.data)),
                Event::ChannelClose(_) => return false,
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    c.disconnected.get_or_insert(now);
                }
                Event::IceConnectionStateChange(_) => c.disconnected = None,
                _ => {}
            },
        }
    }
}
