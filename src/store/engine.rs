//! The store's protocol engine: this node's puts and gets, the writes and reads it
//! coordinates as a key's owner, replication, handovers and the renewal of what it
//! publishes. Sans-IO like the wire: inputs are calls, outputs are polled
//! ([`Engine::poll_output`]).
//!
//! The engine does not own the ring. Every input that needs it gets a [`Context`]: the
//! routing table now, whether the node is joined, and the delegations the node verified
//! (shared with the wire, so a writer's delegation is checked once for its messages and
//! its records alike). Lookups of a key's owner go out as [`StoreOutput::Lookup`] and
//! their answers come back through [`Engine::handle_lookup`] — never through the public
//! event stream.

use std::collections::{HashMap, VecDeque};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::ops::{Quorum, Release};
use super::reads::Read;
use super::{Record, RecordKind, Store, StoreConfig, StoreError, StoreEvent};
use crate::chord::{LookupError, RoutingTable};
use crate::identity::{Session, Vouched};
use crate::time::{Duration, Instant, WallOffset};
use crate::Did;

/// What the engine needs of the rest of the node for one input.
pub struct Context<'a> {
    pub table: &'a RoutingTable,
    /// The ring says this node is a member (a node still joining owns nothing).
    pub joined: bool,
    pub vouched: &'a mut Vouched,
}

/// What the engine asks its node to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOutput {
    /// An encoded [`super::StoreMsg`] to the direct peer `to`.
    Send { to: Did, bytes: Vec<u8> },
    /// Find the owner of `key` and answer [`Engine::handle_lookup`] with `tag`.
    Lookup { tag: u64, key: Did },
    /// A `put` or `get` of this node ended.
    Event(StoreEvent),
}

/// See the module docs.
#[derive(Debug)]
pub struct Engine {
    pub(super) me: Did,
    pub(super) session: Option<Session>,
    pub(super) store: Store,
    pub(super) ops: HashMap<u64, Op>,
    /// Puts this node stored as owner, waiting for replicas to confirm.
    pub(super) quorums: Vec<Quorum>,
    /// Reads this node coordinates as owner, waiting for replicas.
    pub(super) reads: Vec<Read>,
    /// Stale copies offered to the predecessor before they are dropped.
    pub(super) releases: Vec<Release>,
    /// Draws operation ids: unpredictable, so only the nodes asked can answer.
    pub(super) rng: ChaCha20Rng,
    /// Records this node writes and keeps alive, by slot.
    pub(super) published: Vec<Published>,
    /// Versions this node signed above a newer one the owner showed (another device's),
    /// by (key, kind): the next put starts above them.
    pub(super) seen_versions: Vec<((Did, RecordKind), u64)>,
    pub(super) next_republish: Instant,
    /// The predecessor changed since the last maintenance.
    pub(super) pred_changed: bool,
    pub(super) out: VecDeque<StoreOutput>,
}

#[derive(Debug)]
pub(super) struct Op {
    pub key: Did,
    pub deadline: Instant,
    pub what: OpKind,
    /// The node a put was sent to (only its acknowledgement counts).
    pub asked: Option<Did>,
    /// Hops the lookup of the key's owner took (0: this node owns it).
    pub hops: u8,
    /// A put sent to a node that did not own the key was looked up again.
    pub retried: bool,
    /// Times this node's own record was signed again above a newer version the owner
    /// showed (another device of the account, or this one before a restart).
    pub bumps: u8,
    /// The lookup of the owner is out (the node asked before it is not heard meanwhile).
    pub looking: bool,
}

#[derive(Debug)]
pub(super) enum OpKind {
    Put(Record),
    Get,
}

#[derive(Debug)]
pub(super) struct Published {
    pub key: Did,
    pub kind: RecordKind,
    pub value: Vec<u8>,
    pub ttl: Duration,
    pub version: u64,
    /// When it was last signed, by both clocks: it is renewed when either says a third
    /// of its life passed (the monotonic clock may lag the wall clock, as after a sleep).
    pub renewed: Instant,
    pub renewed_wall: Instant,
}

/// How an operation ended, before it becomes an event.
pub(super) enum Answer {
    Ack(Result<(), StoreError>),
    Records(Vec<Record>),
    NoRoute,
}

/// How soon after a change of predecessor or successor the store pushes its copies.
const REPAIR_DELAY: Duration = Duration(50);

/// Store messages are batched up to this many encoded bytes (a data channel message
/// stays far below 64 KiB).
pub(super) const BATCH: usize = 32 << 10;

impl Engine {
    /// `seed` keys the operation ids; `session` signs this node's records (`None`: a
    /// ring-only node, which stores and serves others' records but writes none).
    pub fn new(me: Did, session: Option<Session>, cfg: StoreConfig, network: u32, skew: Duration, seed: [u8; 32], now: Instant) -> Engine {
        let next_republish = now + cfg.republish;
        Engine {
            me,
            session,
            store: Store::new(cfg, network, skew),
            ops: HashMap::new(),
            quorums: Vec::new(),
            reads: Vec::new(),
            releases: Vec::new(),
            rng: ChaCha20Rng::from_seed(seed),
            published: Vec::new(),
            seen_versions: Vec::new(),
            next_republish,
            pred_changed: false,
            out: VecDeque::new(),
        }
    }

    /// The wall clock's offset from `now` (record expiry and versions follow it).
    pub fn set_wall_offset(&mut self, wall: WallOffset) {
        self.store.set_wall_offset(wall);
    }

    /// The records this node holds.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// See [`Store::keep_journal`].
    pub fn keep_journal(&mut self) {
        self.store.keep_journal();
    }

    /// See [`Store::take_changes`].
    pub fn take_changes(&mut self) -> Vec<(Did, Did)> {
        self.store.take_changes()
    }

    /// Takes back a record this node held before it restarted (from its disk): checked
    /// like any other; it then replicates and is handed over as the ring decides.
    pub fn restore(&mut self, now: Instant, cx: &mut Context<'_>, record: Record) -> Result<bool, StoreError> {
        let me = self.me;
        let table = cx.table;
        let owns = |key: Did| table.predecessor().is_none_or(|p| key.in_open_closed(p, me));
        self.store.accept(now, record, &owns, None, cx.vouched)
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<StoreOutput> {
        self.out.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let store = if self.store.is_empty() && self.published.is_empty() { None } else { Some(self.next_republish) };
        let ops = self
            .ops
            .values()
            .map(|o| o.deadline)
            .chain(self.quorums.iter().map(|q| q.deadline))
            .chain(self.reads.iter().map(|r| r.deadline))
            .min();
        [store, ops].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant, cx: &mut Context<'_>) {
        let late: Vec<u64> = self.ops.iter().filter(|(_, o)| o.deadline <= now).map(|(id, _)| *id).collect();
        for id in late {
            self.finish_op(id, None);
        }
        self.expire_quorums(now);
        self.expire_reads(now);
        if now >= self.next_republish {
            self.next_republish = now + self.store.config().republish;
            self.maintain(now, cx);
        }
    }

    /// The ring's predecessor or successor changed: ownership or the replica set moved,
    /// so copies are repaired soon.
    pub fn handle_ring_change(&mut self, now: Instant, predecessor: bool) {
        self.pred_changed |= predecessor;
        self.next_republish = self.next_republish.min(now + REPAIR_DELAY);
    }

    /// The answer to the lookup `tag` of a [`StoreOutput::Lookup`]: the key's owner and
    /// the hops it took, or why none was found. An answer for an operation that ended,
    /// is not looking, or looks for another key is ignored.
    pub fn handle_lookup(&mut self, now: Instant, cx: &mut Context<'_>, tag: u64, key: Did, result: Result<(Did, u8), LookupError>) {
        let Some(op) = self.ops.get_mut(&tag).filter(|o| o.looking && o.key == key) else { return };
        op.looking = false;
        match result {
            Ok((owner, hops)) => {
                op.hops = hops;
                self.op_at_owner(now, cx, tag, owner);
            }
            Err(_) => self.finish_op(tag, Some(Answer::NoRoute)),
        }
    }

    /// Looks up the owner of operation `id`'s key.
    pub(super) fn lookup(&mut self, id: u64, key: Did) {
        if let Some(op) = self.ops.get_mut(&id) {
            op.looking = true;
            self.out.push_back(StoreOutput::Lookup { tag: id, key });
        }
    }

    pub(super) fn send_store(&mut self, to: Did, msg: &super::StoreMsg) {
        self.out.push_back(StoreOutput::Send { to, bytes: msg.encode() });
    }

    /// Draws an unpredictable id.
    pub(super) fn draw(&mut self) -> u64 {
        self.rng.next_u64()
    }
}
