//! The DHT store: signed records kept on the successor of their key and replicated on
//! the next `replicas - 1` successors.
//!
//! - [`Record`]: signed by its writer's session; versioned; expiring. A value has one
//!   writer (the first live one owns the key); a set has one entry per writer.
//! - [`Store`]: one node's bounded storage. Every write is checked (expiry, size,
//!   ownership, version, delegation, signature) and refused with a typed
//!   [`StoreError`], counted in [`StoreStats`]. A copy identical to the one held only
//!   refreshes its lease, so periodic replication costs no signature checks.
//! - [`StoreMsg`]: what nodes exchange, directly over links (tag [`STORE_TAG`]): puts and
//!   gets with their answers, and replication batches. Records carry their own
//!   signatures, so the link's authentication of the sender is all the transport adds.
//!
//! Replication (driven by [`crate::node::Node`] every `republish` period): the owner of a
//! key pushes the record to its first `replicas - 1` successors; a node that stops
//! owning a key (a newcomer took it) hands the record to its new predecessor; copies a
//! node neither owns nor had refreshed for `lease` are dropped. When an owner fails, its
//! successor — already a replica — becomes the owner and pushes again.

mod engine;
mod ops;
mod reads;
mod record;

use serde::{Deserialize, Serialize};

pub use engine::{Context, Engine, StoreOutput};
pub use record::{Record, RecordKind};

use crate::identity::Vouched;
use crate::time::{Duration, Instant, WallOffset};
use crate::Did;

/// First byte of a store message on a link.
pub const STORE_TAG: u8 = 0x21;

/// Limits and timings of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Copies of each record: the owner and `replicas - 1` successors.
    pub replicas: usize,
    /// Records held by one node, and their encoded bytes.
    pub max_records: usize,
    pub max_bytes: usize,
    /// Largest value accepted, in bytes.
    pub max_value: usize,
    /// Entries of one append-set, and the largest value of one entry (a set's answer
    /// must fit one message).
    pub max_set_entries: usize,
    pub max_set_value: usize,
    /// Longest lifetime a record may ask for, and a set entry (entries live by renewal:
    /// one that stops renewing is gone within this).
    pub max_ttl: Duration,
    pub max_set_ttl: Duration,
    /// How often owners push their records to their replicas, and writers republish.
    pub republish: Duration,
    /// A copy this node does not own, not refreshed for this long, is dropped.
    pub lease: Duration,
    /// How long `put` and `get` wait for their answer.
    pub request_timeout: Duration,
    /// Nodes whose copies a `get` is answered from: the owner and `read_quorum - 1` of
    /// its replicas (at least one replica when the owner holds nothing: a handover in
    /// flight). Stale or missing copies among them are repaired.
    pub read_quorum: usize,
    /// Nodes that must hold a new record before its put is acknowledged: the owner and
    /// `write_quorum - 1` of its replicas (1: the owner alone).
    pub write_quorum: usize,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            replicas: 3,
            max_records: 100_000,
            max_bytes: 64 << 20,
            max_value: 16 << 10,
            max_set_entries: 64,
            max_set_value: 100,
            max_ttl: Duration::from_secs(7 * 86_400),
            max_set_ttl: Duration::from_secs(3_600),
            republish: Duration::from_secs(2),
            lease: Duration::from_secs(10),
            request_timeout: Duration::from_secs(8),
            read_quorum: 2,
            write_quorum: 2,
        }
    }
}

/// Why a write was refused (counted per reason in [`StoreStats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
#[non_exhaustive]
pub enum StoreError {
    /// The signature does not verify under the delegated session key (forged or altered).
    BadSignature,
    /// The delegation is invalid, expired, of another network, or not the writer's.
    BadDelegation,
    /// Not newer than the version held (a replay or a late write).
    Stale,
    /// The key's value belongs to another writer.
    NotOwner,
    /// The value is over the size limit.
    TooLarge,
    /// Already expired.
    Expired,
    /// Expires further ahead than the store allows.
    TooLong,
    /// The node's storage (or the set) is full of records it must keep.
    Full,
    /// Does not decode.
    Malformed,
    /// This node has no session to sign records with (a ring-only node).
    NoSession,
    /// A copy pushed by a node that could not hold it in this node's ring view (a key
    /// outside this node's replica range, or a sender not between the key and this
    /// node), beyond the sender's share of this node's copies, or a put to a node that
    /// does not own the key (the writer looks the owner up again).
    NotReplica,
    /// The owner stored the record, but too few replicas confirmed it in time (the
    /// owner keeps pushing it; the writer may retry).
    Unreplicated,
}

impl StoreError {
    pub const COUNT: usize = StoreError::Unreplicated as usize + 1;
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match self {
            StoreError::BadSignature => "the record's signature does not verify",
            StoreError::BadDelegation => "the record's delegation is invalid or not its writer's",
            StoreError::Stale => "a newer version of the record is stored",
            StoreError::NotOwner => "the key belongs to another writer",
            StoreError::TooLarge => "the value is over the size limit",
            StoreError::Expired => "the record has expired",
            StoreError::TooLong => "the record's lifetime is over the limit",
            StoreError::Full => "the store is full",
            StoreError::Malformed => "the store message does not decode",
            StoreError::NoSession => "this node has no session to sign records with",
            StoreError::NotReplica => "a copy this node does not take from that sender",
            StoreError::Unreplicated => "too few replicas confirmed the record in time",
        };
        f.write_str(s)
    }
}

impl std::error::Error for StoreError {}

/// What nodes exchange about records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreMsg {
    /// Store this record (to the key's owner).
    Put {
        op: u64,
        record: Record,
    },
    PutAck {
        op: u64,
        result: Result<(), StoreError>,
    },
    /// The put `op` is refused as stale: this is the newer version held (signed by the
    /// same writer, so the writer can check it and write above it).
    Newer {
        op: u64,
        record: Record,
    },
    /// Records at `key` (to its owner, which answers with its replicas' copies too).
    Get {
        op: u64,
        key: Did,
    },
    /// Records at `key` this node holds (from an owner answering a `Get`); answered by
    /// `GetReply`.
    Peek {
        op: u64,
        key: Did,
    },
    GetReply {
        op: u64,
        records: Vec<Record>,
    },
    /// Copies for a replica (or a new owner).
    Replicate {
        records: Vec<Record>,
    },
    /// A new record for a replica, from the owner, to confirm before the put is
    /// acknowledged (the write quorum).
    Copy {
        tag: u64,
        record: Record,
    },
    /// The replica holds the copy `tag` (`false`: it refused it).
    Copied {
        tag: u64,
        held: bool,
    },
}

impl StoreMsg {
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data into a Vec does not fail.
        postcard::to_extend(self, vec![STORE_TAG]).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<StoreMsg, StoreError> {
        match bytes.split_first() {
            Some((&STORE_TAG, rest)) => postcard::from_bytes(rest).map_err(|_| StoreError::Malformed),
            _ => Err(StoreError::Malformed),
        }
    }
}

/// A `put` or `get` in flight, named by its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// Why a `put` did not store its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutError {
    /// The key's owner refused it.
    Refused(StoreError),
    /// No answer in time.
    TimedOut,
    /// The key's owner could not be found.
    NoRoute,
}

/// What a `get` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetResult {
    /// The live records at the key, checked (a value: the freshest version; a set: its
    /// entries).
    Found(Vec<Record>),
    NotFound,
    TimedOut,
    /// The key's owner could not be found.
    NoRoute,
}

/// How a store operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// `hops`: the lookup of the key's owner (0: this node owned it); the request and
    /// its answer then take one link each way.
    Put {
        op: OpId,
        key: Did,
        hops: u8,
        result: Result<(), PutError>,
    },
    Get {
        op: OpId,
        key: Did,
        hops: u8,
        result: GetResult,
    },
}

/// Counters of one node's store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub accepted: u64,
    /// Identical copies that only refreshed a lease.
    pub refreshed: u64,
    pub rejected: [u64; StoreError::COUNT],
    /// Copies dropped: expired, lease over, or evicted for room.
    pub expired: u64,
    pub lease_dropped: u64,
    pub evicted: u64,
    /// Copies sent to replicas that a read found stale or missing.
    pub repaired: u64,
}

impl StoreStats {
    pub fn rejected(&self, e: StoreError) -> u64 {
        self.rejected[e as usize]
    }
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub record: Record,
    /// Whether this node owned the key when it last looked (for handover).
    pub owned: bool,
    pub refreshed: Instant,
    /// When this node first stored this slot (kept across the writer's renewals): a
    /// full set gives way from its youngest entries, never its established ones.
    since: Instant,
    /// The peer that pushed this copy (`None`: written here, or pushed by a node that
    /// as its owner).
    from: Option<Did>,
    bytes: usize,
}

/// One node's records (see the module docs).
#[derive(Debug)]
pub struct Store {
    cfg: StoreConfig,
    network: u32,
    skew: Duration,
    /// Sorted by slot (key, then writer for set entries): a key's records are adjacent.
    held: Vec<Held>,
    bytes: usize,
    stats: StoreStats,
    /// Wall clock = `now` + this (record expiry, delegations; see [`crate::time`]).
    wall: WallOffset,
    /// Slots whose record was stored, replaced or dropped since [`Store::take_changes`]
    /// (kept only once [`Store::keep_journal`] asked: a driver with a disk follows it).
    journal: Option<Vec<(Did, Did)>>,
}

impl Store {
    pub fn new(cfg: StoreConfig, network: u32, skew: Duration) -> Store {
        Store { cfg, network, skew, held: Vec::new(), bytes: 0, stats: StoreStats::default(), wall: WallOffset::default(), journal: None }
    }

    /// From now on, note every slot whose record changes (see [`Store::take_changes`]).
    pub fn keep_journal(&mut self) {
        if !cfg!(target_arch = "wasm32") {
            self.journal.get_or_insert_with(Vec::new);
        }
    }

    /// The slots changed since the last call, in order of change (a slot may repeat);
    /// what they hold now is [`Store::held_at`] (`None`: dropped).
    pub fn take_changes(&mut self) -> Vec<(Did, Did)> {
        self.journal().map(std::mem::take).unwrap_or_default()
    }

    /// The journal, if kept (never in the browser: no disk there, and no bytes for it in
    /// the wasm).
    fn journal(&mut self) -> Option<&mut Vec<(Did, Did)>> {
        if cfg!(target_arch = "wasm32") {
            None
        } else {
            self.journal.as_mut()
        }
    }

    fn note(&mut self, slot: (Did, Did)) {
        if let Some(j) = self.journal() {
            j.push(slot);
        }
    }

    /// The wall clock's offset from `now`.
    pub fn set_wall_offset(&mut self, wall: WallOffset) {
        self.wall = wall;
    }

    /// The wall clock at monotonic `now`.
    pub fn wall_clock(&self, now: Instant) -> Instant {
        self.wall.wall(now)
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }
    pub fn len(&self) -> usize {
        self.held.len()
    }
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Live records at `key` (a value, or a set's entries).
    pub fn records_at(&self, key: Did, now: Instant) -> Vec<Record> {
        let now = self.wall.wall(now).as_millis();
        self.at_key(key).iter().filter(|h| h.record.expires_at >= now).map(|h| h.record.clone()).collect()
    }

    /// Whether a live record is held at `key`.
    pub fn holds(&self, key: Did, now: Instant) -> bool {
        let now = self.wall.wall(now).as_millis();
        self.at_key(key).iter().any(|h| h.record.expires_at >= now)
    }

    /// The records held at `key`, adjacent in the sorted list.
    fn at_key(&self, key: Did) -> &[Held] {
        let start = self.held.partition_point(|h| h.record.key < key);
        let end = start + self.held[start..].partition_point(|h| h.record.key == key);
        &self.held[start..end]
    }

    fn find(&self, slot: (Did, Did)) -> Result<usize, usize> {
        self.held.binary_search_by(|h| h.record.slot().cmp(&slot))
    }

    /// The record held in `slot` (live or not).
    pub fn held_at(&self, slot: (Did, Did)) -> Option<&Record> {
        self.find(slot).ok().map(|i| &self.held[i].record)
    }

    /// Every record held (for replication and tests).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Held> {
        self.held.iter_mut()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Record> {
        self.held.iter().map(|h| &h.record)
    }

    /// Checks a record without storing it (a `get`'s answer); refusals are counted.
    pub fn check(&mut self, now: Instant, r: &Record, vouched: &mut Vouched) -> Result<(), StoreError> {
        let result = if r.expires_at < self.wall.wall(now).as_millis() { Err(StoreError::Expired) } else { self.verify(now, r, vouched) };
        if let Err(e) = result {
            self.stats.rejected[e as usize] += 1;
        }
        result
    }

    /// Counts copies sent to repair replicas.
    pub(crate) fn note_repaired(&mut self, n: usize) {
        self.stats.repaired += n as u64;
    }

    /// Counts a refusal found outside [`Store::accept`] (a message that does not decode).
    pub fn count(&mut self, e: StoreError) {
        self.stats.rejected[e as usize] += 1;
    }

    /// Checks and stores `r`; `owns` says whether this node owns a key now (records it
    /// does not own go first when room is needed); `from`: the peer that pushed a copy
    /// (once the store is half full, each sender may hold at most an eighth of its
    /// records and bytes as copies it does not own); `vouched`: the delegations this
    /// node verified (a writer's is checked once). A refusal is counted.
    pub fn accept(
        &mut self,
        now: Instant,
        r: Record,
        owns: &dyn Fn(Did) -> bool,
        from: Option<Did>,
        vouched: &mut Vouched,
    ) -> Result<bool, StoreError> {
        let result = self.check_and_insert(now, r, owns, from, vouched);
        match result {
            Ok(true) => self.stats.accepted += 1,
            Ok(false) => self.stats.refreshed += 1,
            Err(e) => self.stats.rejected[e as usize] += 1,
        }
        result
    }

    fn check_and_insert(
        &mut self,
        now: Instant,
        r: Record,
        owns: &dyn Fn(Did) -> bool,
        from: Option<Did>,
        vouched: &mut Vouched,
    ) -> Result<bool, StoreError> {
        let ms = self.wall.wall(now).as_millis();
        if r.expires_at < ms {
            return Err(StoreError::Expired);
        }
        let max_ttl = if r.kind == RecordKind::Set { self.cfg.max_set_ttl } else { self.cfg.max_ttl };
        if r.expires_at > ms.saturating_add(max_ttl.as_millis() + self.skew.as_millis()) {
            return Err(StoreError::TooLong);
        }
        let pushed = from.filter(|_| !owns(r.key));
        if r.value.len() > self.cfg.max_value {
            return Err(StoreError::TooLarge);
        }
        if r.kind == RecordKind::Set && r.value.len() > self.cfg.max_set_value {
            return Err(StoreError::TooLarge);
        }
        if r.expires_at > r.delegation.expires_at.saturating_add(self.skew.as_millis()) {
            return Err(StoreError::TooLong); // it would outlive its writer's delegation
        }
        let slot = r.slot();
        let mut frees = 0;
        let replacing = self.find(slot).ok();
        // Under pressure (half full), each sender holds at most an eighth of the records
        // and of the bytes as copies this node does not own.
        let pressed = self.held.len() * 2 > self.cfg.max_records || self.bytes * 2 > self.cfg.max_bytes;
        if let Some(f) = pushed.filter(|_| replacing.is_none() && pressed) {
            let (mut n, mut b) = (0, 0);
            for h in self.held.iter().filter(|h| h.from == Some(f)) {
                n += 1;
                b += h.bytes;
            }
            if n >= (self.cfg.max_records / 8).max(1) || b + r.encoded_len() > self.cfg.max_bytes / 8 {
                return Err(StoreError::NotReplica);
            }
        }
        let mut since = now;
        if let Some(i) = replacing {
            let h = &mut self.held[i];
            let live = h.record.expires_at >= ms;
            if live && h.record.writer != r.writer {
                return Err(StoreError::NotOwner);
            }
            if live && h.record == r {
                h.refreshed = now;
                return Ok(false);
            }
            if live && r.version <= h.record.version {
                return Err(StoreError::Stale);
            }
            if live {
                since = h.since;
            }
            frees = h.bytes;
        }
        // A full set: an expired entry gives way, else the youngest (stored here last),
        // so newcomers displace each other and never an entry that keeps renewing (only
        // once this record has proven genuine).
        let mut gives_way = None;
        if replacing.is_none() && r.kind == RecordKind::Set {
            let entries = self.at_key(r.key);
            if entries.len() >= self.cfg.max_set_entries {
                let expired = entries.iter().find(|h| h.record.expires_at < ms);
                match expired.or_else(|| entries.iter().max_by_key(|h| h.since)) {
                    Some(h) => {
                        gives_way = Some(h.record.slot());
                        frees = h.bytes;
                    }
                    None => return Err(StoreError::Full),
                }
            }
        }
        self.verify(now, &r, vouched)?;
        let bytes = r.encoded_len();
        let new_slot = replacing.is_none() && gives_way.is_none();
        // Room is made before anything is removed, so a refusal loses nothing.
        self.make_room(bytes.saturating_sub(frees), usize::from(new_slot), &[Some(slot), gives_way], owns, ms)?;
        if let Some(k) = gives_way {
            self.remove(k);
        }
        self.remove(slot);
        self.bytes += bytes;
        let owned = owns(r.key);
        let at = self.find(slot).unwrap_or_else(|i| i);
        self.held.insert(at, Held { record: r, owned, refreshed: now, since, from: pushed, bytes });
        self.note(slot);
        Ok(true)
    }

    fn verify(&self, now: Instant, r: &Record, vouched: &mut Vouched) -> Result<(), StoreError> {
        let key = r.check_delegation(self.network, self.wall.wall(now), self.skew, vouched)?;
        r.check_signature(&key)
    }

    /// Frees room for `bytes` and `slots` more: expired records first, then copies this
    /// node does not own, soonest expiry first; never the slots in `keep`.
    fn make_room(
        &mut self,
        bytes: usize,
        slots: usize,
        keep: &[Option<(Did, Did)>],
        owns: &dyn Fn(Did) -> bool,
        ms: u64,
    ) -> Result<(), StoreError> {
        let full = |s: &Store| s.held.len() + slots > s.cfg.max_records || s.bytes + bytes > s.cfg.max_bytes;
        if !full(self) {
            return Ok(());
        }
        self.expire(ms);
        while full(self) {
            let victim = self
                .held
                .iter()
                .filter(|h| !owns(h.record.key) && !keep.contains(&Some(h.record.slot())))
                .min_by_key(|h| h.record.expires_at)
                .map(|h| h.record.slot());
            let Some(k) = victim else {
                return Err(StoreError::Full);
            };
            self.remove(k);
            self.stats.evicted += 1;
        }
        Ok(())
    }

    fn remove(&mut self, slot: (Did, Did)) {
        if let Ok(i) = self.find(slot) {
            self.bytes -= self.held.remove(i).bytes;
            self.note(slot);
        }
    }

    /// Drops expired records.
    pub fn expire(&mut self, ms: u64) {
        let before = self.held.len();
        let mut freed = 0;
        let mut gone = Vec::new();
        let journal = self.journal().is_some();
        self.held.retain(|h| {
            let keep = h.record.expires_at >= ms;
            if !keep {
                freed += h.bytes;
                if journal {
                    gone.push(h.record.slot());
                }
            }
            keep
        });
        gone.into_iter().for_each(|s| self.note(s));
        self.bytes -= freed;
        self.stats.expired += (before - self.held.len()) as u64;
    }

    /// Copies this node does not own whose lease ran out: to be released once a node
    /// closer to their owner confirms holding them (see `Node`'s maintenance).
    pub(crate) fn stale_copies(&self, now: Instant, owns: &dyn Fn(Did) -> bool) -> Vec<Record> {
        let lease = self.cfg.lease;
        self.held.iter().filter(|h| !owns(h.record.key) && h.refreshed + lease <= now).map(|h| h.record.clone()).collect()
    }

    /// Drops the copy in `slot` if it is still `version` and its lease still ran out.
    pub(crate) fn release(&mut self, now: Instant, slot: (Did, Did), version: u64) {
        let Ok(i) = self.find(slot) else { return };
        let h = &self.held[i];
        if h.record.version == version && h.refreshed + self.cfg.lease <= now {
            self.bytes -= self.held.remove(i).bytes;
            self.stats.lease_dropped += 1;
            self.note(slot);
        }
    }
}
