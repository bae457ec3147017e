//! The native node's connections: one str0m `Rtc` (sans-IO WebRTC) per connection the
//! link manager asked for, all on the node's UDP sockets. Like the browser's
//! `RTCPeerConnection`s they carry one ordered, reliable, pre-negotiated (id 0) data
//! channel, so a page and a native node link by the same SDP.
//!
//! str0m accepts at most 128 KiB of unsent data across channels; the link manager may
//! hand over megabytes (its credit window): what str0m does not take yet waits here, and
//! counts as buffered when the manager asks.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate as IceCandidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;

use crate::link::{Candidate, ConnId};

/// What the connections did, for the driver to report to the node.
#[derive(Debug)]
pub enum RtcEvent {
    Open(ConnId),
    Frame(ConnId, Vec<u8>),
    Closed(ConnId),
}

struct Conn {
    rtc: Rtc,
    channel: Option<ChannelId>,
    pending: Option<SdpPendingOffer>,
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    next: Option<StdInstant>,
    /// Where its packets last came from (to find it fast).
    remote: Option<SocketAddr>,
}

pub struct Conns {
    sockets: Vec<(Arc<UdpSocket>, SocketAddr)>,
    external: Vec<IpAddr>,
    map: HashMap<ConnId, Conn>,
    events: Vec<RtcEvent>,
    /// Datagrams that matched no connection (stray, late, or hostile).
    pub stray: u64,
}

fn channel_config() -> ChannelConfig {
    ChannelConfig { label: "rings".into(), ordered: true, reliability: Reliability::Reliable, negotiated: Some(0), protocol: String::new() }
}

impl Conns {
    /// Installs the crypto provider (once per process) and takes the bound sockets.
    pub fn new(sockets: Vec<(Arc<UdpSocket>, SocketAddr)>, external: Vec<IpAddr>) -> Conns {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
        Conns { sockets, external, map: HashMap::new(), events: Vec::new(), stray: 0 }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A new connection and its local description: our offer, or the answer to `offer`.
    /// Every local candidate is in it (host addresses, and the announced external IPs).
    pub fn create(&mut self, now: StdInstant, conn: ConnId, offer: Option<&str>) -> Result<String, String> {
        let mut rtc = RtcConfig::new().build(now);
        for (_, local) in &self.sockets {
            if let Ok(c) = IceCandidate::host(*local, "udp") {
                rtc.add_local_candidate(c);
            }
            for ip in &self.external {
                if let Ok(c) = IceCandidate::server_reflexive(SocketAddr::new(*ip, local.port()), *local, "udp") {
                    rtc.add_local_candidate(c);
                }
            }
        }
        let (sdp, pending, channel) = match offer {
            Some(text) => {
                let offer = SdpOffer::from_sdp_string(text).map_err(|e| format!("bad offer SDP: {e}"))?;
                let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| format!("offer refused: {e}"))?;
                rtc.direct_api().create_data_channel(channel_config());
                (answer.to_sdp_string(), None, None)
            }
            None => {
                let mut api = rtc.sdp_api();
                api.add_channel_with_config(channel_config());
                let (offer, pending) = api.apply().ok_or("no offer to make")?;
                (offer.to_sdp_string(), Some(pending), None)
            }
        };
        let c = Conn { rtc, channel, pending, queue: VecDeque::new(), queued: 0, next: Some(now), remote: None };
        self.map.insert(conn, c);
        Ok(sdp)
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
        if let Some(c) = self.map.get_mut(&conn) {
            c.queued += bytes.len();
            c.queue.push_back(bytes);
            flush(c);
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
        if let Some(mut c) = self.map.remove(&conn) {
            c.rtc.disconnect();
            drain(&self.sockets, conn, &mut c, &mut Vec::new());
        }
    }

    pub fn close_all(&mut self) {
        let ids: Vec<ConnId> = self.map.keys().copied().collect();
        ids.into_iter().for_each(|c| self.close(c));
    }

    /// A datagram on socket `sock` from `source`.
    pub fn receive(&mut self, now: StdInstant, sock: usize, source: SocketAddr, data: &[u8]) {
        let Some((_, local)) = self.sockets.get(sock) else { return };
        let Ok(contents) = data.try_into() else {
            self.stray += 1;
            return;
        };
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination: *local, contents });
        let hit = self.map.iter().find(|(_, c)| c.remote == Some(source) && c.rtc.accepts(&input)).map(|(id, _)| *id);
        let hit = hit.or_else(|| self.map.iter().find(|(_, c)| c.rtc.accepts(&input)).map(|(id, _)| *id));
        let Some(id) = hit else {
            self.stray += 1;
            return;
        };
        let Some(c) = self.map.get_mut(&id) else { return };
        c.remote = Some(source);
        if c.rtc.handle_input(input).is_err() {
            self.lose(id);
        } else {
            c.next = Some(now);
        }
    }

    /// Runs every connection whose timer is due (or that has new input) until it waits
    /// again; returns what they did.
    pub fn poll(&mut self, now: StdInstant) -> Vec<RtcEvent> {
        let mut lost = Vec::new();
        for (id, c) in self.map.iter_mut() {
            if c.next.is_some_and(|t| t <= now) && c.rtc.handle_input(Input::Timeout(now)).is_err() {
                lost.push(*id);
                continue;
            }
            if !drain(&self.sockets, *id, c, &mut self.events) {
                lost.push(*id);
            }
        }
        for id in lost {
            self.lose(id);
        }
        std::mem::take(&mut self.events)
    }

    /// The earliest timer of any connection.
    pub fn next_timeout(&self) -> Option<StdInstant> {
        self.map.values().filter_map(|c| c.next).min()
    }

    fn lose(&mut self, id: ConnId) {
        if let Some(mut c) = self.map.remove(&id) {
            c.rtc.disconnect();
            self.events.push(RtcEvent::Closed(id));
        }
    }
}

/// Moves queued frames into str0m as far as it takes them.
fn flush(c: &mut Conn) {
    let Some(id) = c.channel else { return };
    while let Some(front) = c.queue.front() {
        let Some(mut ch) = c.rtc.channel(id) else { return };
        match ch.write(true, front) {
            Ok(true) => {
                c.queued -= front.len();
                c.queue.pop_front();
            }
            _ => return,
        }
    }
}

/// Polls `c` until it waits: sends its datagrams, collects its events. `false`: it failed
/// or closed.
fn drain(sockets: &[(Arc<UdpSocket>, SocketAddr)], id: ConnId, c: &mut Conn, events: &mut Vec<RtcEvent>) -> bool {
    loop {
        flush(c);
        match c.rtc.poll_output() {
            Err(_) => return false,
            Ok(Output::Timeout(t)) => {
                c.next = Some(t);
                return c.rtc.is_alive();
            }
            Ok(Output::Transmit(t)) => {
                if let Some((s, _)) = sockets.iter().find(|(_, a)| *a == t.source).or(sockets.first()) {
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
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => return false,
                _ => {}
            },
        }
    }
}
