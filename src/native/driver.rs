//! The native driver: one [`Front`] (the node in link mode with its requests) owned by
//! one tokio task, which performs the node's [`LinkIo`] on str0m connections ([`Conns`])
//! and takes requests from the JSON-RPC handlers over a channel. Like the browser's
//! driver it decides nothing: every link decision is the core's.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Instant as StdInstant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use super::envelope;
use super::storage::Disk;
use super::rtc::{Conns, Datagram, RtcEvent};
use crate::api::{data_channel_config, ApiError, ErrorCode, Front, Value, Wait};
use crate::identity::Session;
use crate::link::ConnId;
use crate::link::CloseReason;
use crate::node::LinkIo;
use crate::store::Record;
use crate::time::Instant;
use crate::Did;

/// Channel bytes above which routed-frame credit is withheld (as in the browser).
const LOW_WATER: usize = 1 << 20;
/// Application events kept for `pollEvents`, and their messages' bytes (past either,
/// the oldest go first, counted in `droppedEvents`).
const MAX_EVENTS: usize = 4096;
const MAX_EVENT_BYTES: usize = 64 << 20;
/// Pings answered only up to this size, and while less than this waits to be sent.
const MAX_PING: usize = 64 << 10;
const PING_BACKLOG: usize = 4 << 20;
/// Requests waiting for the node task.
const MAX_QUEUED_CALLS: usize = 1024;
/// Datagrams taken per round before the node is pumped again (a flood cannot starve
/// the node's timers and requests).
const DATAGRAM_BATCH: usize = 64;
/// How long leaving waits for the goodbyes and handovers to be acknowledged.
const LEAVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

pub type Reply = oneshot::Sender<Result<Value, ApiError>>;

/// A request for the node.
#[derive(Debug)]
pub enum Call {
    CreateOffer,
    AnswerOffer(String),
    AcceptAnswer(String),
    Connect(Did),
    Disconnect(Did),
    Send { to: Did, data: Vec<u8> },
    Put { key: Vec<u8>, set: bool, value: Vec<u8>, ttl_ms: f64, keep: bool },
    Get { key: Vec<u8> },
    Forget { key: Vec<u8>, set: bool },
    Info,
    Peers,
    /// Application events since the last call (at most `max`).
    Events { max: usize },
}

enum Command {
    Call(Call, Reply),
    Shutdown(oneshot::Sender<()>),
}

/// What the HTTP side holds: a way to the node task.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
    pub did: Did,
    pub network: u32,
    /// The node's disk (bootstrap URLs that linked are noted there).
    pub disk: Option<Arc<Disk>>,
}

impl Handle {
    pub async fn call(&self, c: Call) -> Result<Value, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.tx.try_send(Command::Call(c, tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ApiError::new(ErrorCode::Busy, "the node has too many requests waiting"),
            mpsc::error::TrySendError::Closed(_) => ApiError::closed(),
        })?;
        rx.await.unwrap_or_else(|_| Err(ApiError::closed()))
    }

    /// Leaves the ring (records handed over, links closed) and stops the node task.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

pub struct Options {
    pub session: Session,
    pub seed: [u8; 32],
    pub max_connections: u32,
    /// Connections opened by peers' offers and not open yet (the public endpoint's
    /// handshakes among them).
    pub max_handshakes: u32,
    /// The addresses every connection binds a UDP socket of its own on.
    pub ips: Vec<std::net::IpAddr>,
    pub external: Vec<std::net::IpAddr>,
    /// STUN servers each connection asks for its server-reflexive address.
    pub stun: Vec<std::net::SocketAddr>,
    /// Room for records, in bytes.
    pub store_bytes: usize,
    /// Where the store's changes go, and what it held before (taken back at start).
    pub disk: Option<Arc<Disk>>,
    pub restore: Vec<Record>,
}

struct Driver {
    front: Front<Reply>,
    conns: Conns,
    disk: Option<Arc<Disk>>,
    disk_errors: u64,
    events: VecDeque<Value>,
    event_bytes: usize,
    dropped_events: u64,
    start: StdInstant,
    start_ms: u64,
}

/// The wall clock, in ms since the Unix epoch (0 if it is set before it).
pub fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Starts the node task on the current tokio runtime; the task's handle ends when the
/// node stops (or panics).
pub fn spawn(o: Options) -> Result<(Handle, tokio::task::JoinHandle<()>), ApiError> {
    let (start, start_ms) = (StdInstant::now(), wall_ms());
    let network = o.session.delegation().network;
    let mut cfg = data_channel_config(network, o.max_connections, 10_000, LOW_WATER);
    if let Some(l) = cfg.links.as_mut() {
        l.max_answering = l.max_answering.min(o.max_handshakes.max(1) as usize);
    }
    cfg.store.max_bytes = o.store_bytes;
    let mut front = Front::new(o.session, cfg, o.seed, Instant(start_ms))?;
    if o.disk.is_some() {
        let node = front.node_mut();
        node.keep_store_journal();
        node.set_wall_clock(Instant(start_ms), start_ms);
        let (mut back, total) = (0, o.restore.len());
        let on_disk: Vec<_> = o.restore.iter().map(Record::slot).collect();
        for r in o.restore {
            // Expired, or no longer valid (its delegation ran out): refused and counted.
            back += usize::from(node.restore_record(Instant(start_ms), r).is_ok());
        }
        if total > 0 {
            tracing::info!("{back} of {total} records taken back from disk");
        }
        // What did not come back is dropped from the disk now.
        let kept: std::collections::HashSet<_> = node.store().iter().map(|r| r.slot()).collect();
        let _ = node.take_store_changes();
        if let Some(d) = &o.disk {
            let _ = d.apply(on_disk.into_iter().filter(|s| !kept.contains(s)).map(|s| (s, None)));
        }
    }
    let did = front.node().did();
    let (tx, rx) = mpsc::channel(MAX_QUEUED_CALLS);
    let (dgram_tx, dgram_rx) = mpsc::channel::<Datagram>(4096);
    let handle = Handle { tx, did, network, disk: o.disk.clone() };
    let d = Driver {
        front,
        conns: Conns::new(o.ips, o.external, o.stun, dgram_tx),
        disk: o.disk,
        disk_errors: 0,
        events: VecDeque::new(),
        event_bytes: 0,
        dropped_events: 0,
        start,
        start_ms,
    };
    let task = tokio::spawn(d.run(rx, dgram_rx));
    Ok((handle, task))
}

impl Driver {
    fn now(&self) -> Instant {
        Instant(self.start_ms + self.start.elapsed().as_millis() as u64)
    }
    fn std_of(&self, t: Instant) -> StdInstant {
        self.start + std::time::Duration::from_millis(t.0.saturating_sub(self.start_ms))
    }

    async fn run(mut self, mut calls: mpsc::Receiver<Command>, mut dgrams: mpsc::Receiver<Datagram>) {
        let mut leaving: Option<(oneshot::Sender<()>, StdInstant)> = None;
        loop {
            let now = self.now();
            self.front.node_mut().set_wall_clock(now, wall_ms());
            self.pump();
            if let Some((_, until)) = &leaving {
                if self.left(*until) {
                    self.close();
                    if let Some((done, _)) = leaving.take() {
                        let _ = done.send(());
                    }
                    return;
                }
            }
            let node_wake = self.front.node().poll_timeout().map(|t| self.std_of(t));
            let wake = [node_wake, self.conns.next_timeout()].into_iter().flatten().min();
            let mut wake = wake.unwrap_or_else(|| StdInstant::now() + std::time::Duration::from_secs(1));
            if leaving.is_some() {
                wake = wake.min(StdInstant::now() + std::time::Duration::from_millis(20));
            }
            tokio::select! {
                d = dgrams.recv() => {
                    let Some(d) = d else { return };
                    self.conns.receive(StdInstant::now(), d);
                    // Take some of what else arrived meanwhile before pumping again.
                    for _ in 1..DATAGRAM_BATCH {
                        let Ok(d) = dgrams.try_recv() else { break };
                        self.conns.receive(StdInstant::now(), d);
                    }
                }
                c = calls.recv() => match c {
                    Some(Command::Call(call, reply)) => self.call(call, reply),
                    Some(Command::Shutdown(done)) => {
                        let now = self.now();
                        self.front.node_mut().leave(now);
                        // Data handed to the channels in this pump is counted next round.
                        leaving = Some((done, StdInstant::now() + LEAVE_LIMIT));
                    }
                    None => return,
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = self.now();
                    self.front.node_mut().handle_timeout(now);
                }
            }
        }
    }

    /// Drains the node until it is quiet (see [`Driver::drain`]), answering pings.
    fn pump(&mut self) {
        while self.drain() > 0 {}
    }

    /// Connection work, connection events, node events, credit back from drained
    /// channels until quiet; then settles requests and keeps the events. Returns how
    /// many pings it answered (their replies are more work).
    fn drain(&mut self) -> usize {
        loop {
            let mut work = false;
            // What the store changed goes to disk before anything that follows from it
            // (an acknowledgement, a reply) leaves.
            self.persist();
            while let Some(io) = self.front.poll_link() {
                work = true;
                self.perform(io);
            }
            let now = self.now();
            for e in self.conns.poll(StdInstant::now()) {
                work = true;
                match e {
                    RtcEvent::Described(c, Ok(sdp)) => self.front.handle_description(now, c, sdp),
                    RtcEvent::Described(c, Err(e)) => self.description_failed(c, e),
                    RtcEvent::Open(c) => self.front.node_mut().handle_link_open(now, c),
                    // A bad frame is counted by the core.
                    RtcEvent::Frame(c, bytes) => drop(self.front.node_mut().handle_link_frame(now, c, &bytes)),
                    RtcEvent::Closed(c) => self.front.node_mut().handle_link_closed(now, c),
                }
            }
            work |= self.front.drain_events();
            let owed = self.front.node().links().map(|l| l.owed()).unwrap_or_default();
            for id in owed {
                let b = self.conns.buffered(id);
                work |= self.front.node_mut().handle_link_buffered(now, id, b);
            }
            if !work {
                break;
            }
        }
        self.persist();
        let (events, settled) = self.front.take();
        for (reply, r) in settled {
            let _ = reply.send(r);
        }
        let mut pinged = 0;
        for e in events {
            tracing::debug!(event = ?e, "node event");
            if let Some((to, reply)) = envelope::ping_reply(&e) {
                // Sent to the message's authenticated origin, as large as its request;
                // not while replies pile up (a peer that pings and never reads).
                let backlog = self.front.node().wire().backlog().0;
                let now = self.now();
                if reply.len() <= MAX_PING && backlog < PING_BACKLOG && self.front.send(now, to, &reply).is_ok() {
                    pinged += 1;
                }
                continue;
            }
            let size = event_size(&e);
            while !self.events.is_empty() && (self.events.len() >= MAX_EVENTS || self.event_bytes + size > MAX_EVENT_BYTES) {
                if let Some(old) = self.events.pop_front() {
                    self.event_bytes -= event_size(&old);
                }
                self.dropped_events += 1;
            }
            self.event_bytes += size;
            self.events.push_back(e);
        }
        pinged
    }

    /// Writes the store's changed slots to disk (one transaction). A failed write is
    /// logged and counted (`diskErrors`); the node goes on in memory.
    fn persist(&mut self) {
        let Some(disk) = &self.disk else { return };
        let node = self.front.node_mut();
        let mut changed = node.take_store_changes();
        if changed.is_empty() {
            return;
        }
        let mut seen = std::collections::HashSet::new();
        changed.retain(|s| seen.insert(*s));
        let store = self.front.node().store();
        if let Err(e) = disk.apply(changed.iter().map(|s| (*s, store.held_at(*s)))) {
            self.disk_errors += 1;
            tracing::error!("{e}");
        }
    }

    fn perform(&mut self, io: LinkIo) {
        let now = self.now();
        match io {
            LinkIo::Create { conn, answer_to } => match self.conns.create(StdInstant::now(), conn, answer_to.as_deref()) {
                Ok(Some(sdp)) => self.front.handle_description(now, conn, sdp),
                Ok(None) => {} // described once its STUN servers answer
                Err(e) => self.description_failed(conn, e),
            },
            LinkIo::SetAnswer { conn, sdp } => {
                if let Err(e) = self.conns.set_answer(conn, &sdp) {
                    tracing::debug!("answer for {conn:?} refused: {e}");
                    self.conns.close(conn);
                    self.front.node_mut().handle_link_closed(now, conn);
                }
            }
            LinkIo::AddCandidate { conn, candidate } => self.conns.add_candidate(conn, &candidate),
            LinkIo::Send { conn, bytes } => self.conns.send(conn, bytes),
            // Closed in agreement: what the channel buffers is delivered first (the peer
            // reads until we close), as in the browser.
            LinkIo::Close { conn, reason: CloseReason::PeerClosed | CloseReason::Drained } => self.conns.retire(StdInstant::now(), conn),
            LinkIo::Close { conn, .. } => self.conns.close(conn),
        }
    }

    /// A connection that could not describe itself: its request fails, it closes.
    fn description_failed(&mut self, conn: ConnId, why: String) {
        let now = self.now();
        let e = self.front.description_error(conn, why);
        self.front.connection_failed(conn, Some(e));
        self.conns.close(conn);
        self.front.node_mut().handle_link_closed(now, conn);
    }

    fn call(&mut self, call: Call, reply: Reply) {
        let now = self.now();
        let f = &mut self.front;
        let r: Result<Wait, ApiError> = match call {
            Call::CreateOffer => f.create_offer(now),
            Call::AnswerOffer(t) => f.answer_offer(now, &t),
            Call::AcceptAnswer(t) => f.accept_answer(now, &t),
            Call::Connect(d) => f.connect(now, d),
            Call::Disconnect(d) => {
                f.node_mut().disconnect(now, d);
                Ok(Wait::Ready(Value::Null))
            }
            Call::Send { to, data } => f.send(now, to, &data).map(|tx| Wait::Ready(Value::Big(tx))),
            Call::Put { key, set, value, ttl_ms, keep } => f.put(now, &key, set, value, ttl_ms, keep),
            Call::Get { key } => Ok(f.get(now, &key)),
            Call::Forget { key, set } => {
                f.forget(&key, set);
                Ok(Wait::Ready(Value::Null))
            }
            Call::Info => {
                let extra = vec![
                    ("connections", self.conns.len().into()),
                    ("strayDatagrams", self.conns.stray.into()),
                    ("stunMapped", self.conns.stun_mapped.into()),
                    ("droppedEvents", self.dropped_events.into()),
                    ("diskErrors", self.disk_errors.into()),
                    ("records", f.node().store().len().into()),
                ];
                Ok(Wait::Ready(f.info(extra)))
            }
            Call::Peers => Ok(Wait::Ready(Value::List(f.peers().into_iter().map(Value::did).collect()))),
            Call::Events { max } => {
                let n = max.min(self.events.len());
                let out: Vec<Value> = self.events.drain(..n).collect();
                self.event_bytes -= out.iter().map(event_size).sum::<usize>();
                Ok(Wait::Ready(Value::List(out)))
            }
        };
        match r {
            Ok(w) => self.front.wait(w, reply),
            Err(e) => drop(reply.send(Err(e))),
        }
    }

    /// Closes every link and fails what still waits: the node is gone.
    fn close(&mut self) {
        self.front.close(self.now());
        self.pump();
        self.conns.close_all();
    }

    /// While leaving: every goodbye and handover acknowledged by the peers' SCTP (or the
    /// time is up).
    fn left(&mut self, until: StdInstant) -> bool {
        StdInstant::now() >= until || self.conns.total_buffered() == 0
    }
}

/// The bytes an event holds (a message's data).
fn event_size(e: &Value) -> usize {
    match e.get("data") {
        Some(Value::Bytes(b)) => b.len(),
        _ => 0,
    }
}
