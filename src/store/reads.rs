//! Quorum reads with repair: the owner of a key answers a `get` with what it and its
//! replicas hold, and brings stale or missing copies up to date on the way.
//!
//! The owner asks its `replicas - 1` successors (`StoreMsg::Peek`), takes every answer
//! into its own store (a newer version or a copy it lacked is stored: checked like any
//! pushed copy; an identical one only refreshes), answers the reader once
//! `read_quorum - 1` replicas answered (one, if the owner holds nothing: a handover in
//! flight), and sends each replica that answered what it lacked. Late answers still
//! repair, until `request_timeout / 2`. Every answer the reader gets is checked by the
//! reader again: the owner cannot forge, only withhold.

use std::collections::HashMap;

use super::engine::{Answer, Context, Engine, BATCH};
use super::{Record, StoreError, StoreMsg};
use crate::time::{Duration, Instant};
use crate::Did;

/// Reads waiting for replicas, in all (a sixteenth of it per asking node: past that a
/// node's reads are answered from the owner's copy alone).
const MAX_READS: usize = 1024;

/// Whom a read's answer goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reader {
    Local(u64),
    Remote { to: Did, op: u64 },
}

impl Reader {
    fn peer(self) -> Option<Did> {
        match self {
            Reader::Remote { to, .. } => Some(to),
            Reader::Local(_) => None,
        }
    }
}

/// The slots a replica answered with, and their versions.
type SlotVersions = Vec<((Did, Did), u64)>;

/// A read coordinated here, waiting for replicas.
#[derive(Debug)]
pub(super) struct Read {
    tag: u64,
    key: Did,
    /// `None` once answered (the read stays for the repair of late replicas).
    reader: Option<Reader>,
    asked: Vec<Did>,
    /// Replicas that answered, with the slots and versions they hold (or were sent).
    answered: Vec<(Did, SlotVersions)>,
    /// Answers still needed before the reader is answered.
    needed: usize,
    pub(super) deadline: Instant,
}

impl Engine {
    /// Answers a read of `key` for `reader` as the key's owner (see the module docs).
    pub(super) fn serve_get(&mut self, now: Instant, cx: &mut Context<'_>, reader: Reader, key: Did) {
        let me = self.me;
        let asker = reader.peer();
        // Only the owner gathers its replicas' copies (a node asked by a stale lookup
        // answers from its own: no one makes it ask others for nothing). A replica that
        // asks is asked too: its own copy counts.
        let table = cx.table;
        let owner = table.predecessor().is_none() || table.owns(key);
        let n = if owner { self.store.config().replicas.saturating_sub(1) } else { 0 };
        let replicas: Vec<Did> = table.successors().iter().copied().filter(|d| *d != me).take(n).collect();
        let wanted = if self.store.holds(key, now) { self.store.config().read_quorum.saturating_sub(1) } else { 1 };
        let needed = wanted.min(replicas.len());
        let per_asker = self.reads.iter().filter(|r| asker.is_some() && r.reader.is_some_and(|x| x.peer() == asker)).count();
        if needed == 0 || per_asker >= MAX_READS / 16 || !self.room_for_read(now, per_asker) {
            return self.answer_read(now, reader, key);
        }
        let tag = self.draw();
        for &r in &replicas {
            self.send_store(r, &StoreMsg::Peek { op: tag, key });
        }
        let deadline = now + Duration(self.store.config().request_timeout.as_millis() / 2);
        self.reads.push(Read { tag, key, reader: Some(reader), asked: replicas, answered: Vec::new(), needed, deadline });
    }

    /// Makes room for one more read when the table is full: a read already answered
    /// (kept only to repair late replicas) goes first, else a read of the asker with the
    /// most, if it has more than one over the `asking` one's (it is answered now from
    /// this node's copy). So a crowd of askers cannot keep a lone reader out.
    fn room_for_read(&mut self, now: Instant, asking: usize) -> bool {
        if self.reads.len() < MAX_READS {
            return true;
        }
        if let Some(i) = self.reads.iter().position(|r| r.reader.is_none()) {
            self.reads.swap_remove(i);
            return true;
        }
        let Some(read) = take_heaviest(&mut self.reads, |r| r.reader.and_then(|x| x.peer()), asking) else {
            return false;
        };
        if let Some(reader) = read.reader {
            self.answer_read(now, reader, read.key);
        }
        true
    }

    /// The read whose `Peek` `tag` went to `replica`.
    pub(super) fn read_asking(&self, tag: u64, replica: Did) -> Option<usize> {
        self.reads.iter().position(|r| r.tag == tag && r.asked.contains(&replica))
    }

    /// Replica `from`'s answer to the `Peek` of read `i` (see [`Node::read_asking`]).
    pub(super) fn peeked(&mut self, now: Instant, cx: &mut Context<'_>, from: Did, i: usize, records: Vec<Record>) {
        let key = self.reads[i].key;
        let table = cx.table;
        let mut held = Vec::with_capacity(records.len());
        for r in records {
            if r.key != key {
                self.store.count(StoreError::Malformed);
                continue;
            }
            held.push((r.slot(), r.version));
            // A newer version or a missing copy is taken (checked); the same one only
            // refreshes; an older one is refused as stale and repaired below.
            let _ = self.store.accept(now, r, &|k| table.owns(k), Some(from), cx.vouched);
        }
        let read = &mut self.reads[i];
        read.asked.retain(|a| *a != from);
        read.answered.push((from, held));
        read.needed = read.needed.saturating_sub(1);
        // Answered once enough replicas did, or every one asked did.
        if read.needed == 0 || read.asked.is_empty() {
            if let Some(reader) = read.reader.take() {
                self.answer_read(now, reader, key);
            }
        }
        self.repair(now, i);
        if self.reads[i].asked.is_empty() {
            self.reads.swap_remove(i);
        }
    }

    /// Sends every replica of read `i` that answered what it lacks of the freshest copies
    /// (this node's, after taking theirs): an earlier answer is repaired too when a later
    /// one brought something newer.
    fn repair(&mut self, now: Instant, i: usize) {
        let key = self.reads[i].key;
        let mut answered = std::mem::take(&mut self.reads[i].answered);
        let best = cut_to_batch(self.store.records_at(key, now));
        for (replica, held) in &mut answered {
            let lacking: Vec<Record> =
                best.iter().filter(|r| !held.iter().any(|(slot, v)| *slot == r.slot() && *v >= r.version)).cloned().collect();
            if !lacking.is_empty() {
                held.extend(lacking.iter().map(|r| (r.slot(), r.version)));
                self.store.note_repaired(lacking.len());
                self.send_store(*replica, &StoreMsg::Replicate { records: lacking });
            }
        }
        self.reads[i].answered = answered;
    }

    /// Answers reads whose replicas did not answer in time with what this node holds.
    pub(super) fn expire_reads(&mut self, now: Instant) {
        while let Some(i) = self.reads.iter().position(|r| r.deadline <= now) {
            let read = self.reads.swap_remove(i);
            if let Some(reader) = read.reader {
                self.answer_read(now, reader, read.key);
            }
        }
    }

    /// Answers `reader` with what this node holds at `key` now.
    fn answer_read(&mut self, now: Instant, reader: Reader, key: Did) {
        let records = cut_to_batch(self.store.records_at(key, now));
        match reader {
            Reader::Local(op) => self.finish_op(op, Some(Answer::Records(records))),
            Reader::Remote { to, op } => self.send_store(to, &StoreMsg::GetReply { op, records }),
        }
    }

    /// Answers an owner's `Peek` with what this node holds at `key` — only to a node that
    /// could own it or replicate it before us (as for pushed copies): nobody else makes
    /// this node upload a set.
    pub(super) fn serve_peek(&mut self, now: Instant, cx: &mut Context<'_>, from: Did, op: u64, key: Did) {
        if !super::ops::may_push(cx.table, from, key, self.store.config().replicas) {
            self.store.count(StoreError::NotReplica);
            return;
        }
        self.answer_read(now, Reader::Remote { to: from, op }, key);
    }
}

/// When a table of waiting requests is full: takes out one entry of the peer with the
/// most (`peer` names an entry's asker; `None`: this node's own), if it has more than one
/// over the `asking` peer's count — so a crowd of askers cannot keep a lone one out.
pub(super) fn take_heaviest<T>(table: &mut Vec<T>, peer: impl Fn(&T) -> Option<Did>, asking: usize) -> Option<T> {
    let (heavy, n) = heaviest(table.iter().map(&peer))?;
    if n <= asking + 1 {
        return None;
    }
    let i = table.iter().position(|e| peer(e) == Some(heavy))?;
    Some(table.remove(i))
}

/// The peer named most often, and how often (`None`s are this node's own).
fn heaviest(peers: impl Iterator<Item = Option<Did>>) -> Option<(Did, usize)> {
    let mut counts: HashMap<Did, usize> = HashMap::new();
    for p in peers.flatten() {
        *counts.entry(p).or_insert(0) += 1;
    }
    counts.into_iter().max_by_key(|&(d, n)| (n, d))
}

/// An answer stays one link message: a huge set is cut.
fn cut_to_batch(mut records: Vec<Record>) -> Vec<Record> {
    let mut size = 0;
    records.retain(|r| {
        size += r.encoded_len();
        size <= BATCH
    });
    records
}
