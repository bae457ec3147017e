//! The store side of a node: puts, gets, replication and republishing.

use super::engine::{Answer, Context, Engine, Op, OpKind, Published, StoreOutput, BATCH};
use super::reads::Reader;
use super::{GetResult, OpId, PutError, Record, RecordKind, StoreError, StoreEvent, StoreMsg};
use crate::time::{Duration, Instant};
use crate::Did;

/// Puts waiting for their write quorum, in all (and a sixteenth of it per writer's node).
const MAX_QUORUMS: usize = 1024;

/// `Op::bumps` of a renewal: it never writes above a newer version (another device of the
/// account wrote one: the renewal stops instead).
const RENEWAL: u8 = u8::MAX;

/// Versions written above a newer one, remembered so the next put starts above it.
const MAX_SEEN_VERSIONS: usize = 256;

/// Stale copies waiting for the predecessor to confirm it holds them.
const MAX_RELEASES: usize = 4096;

/// A stale copy offered to the predecessor, dropped when it confirms.
#[derive(Debug)]
pub(super) struct Release {
    tag: u64,
    slot: (Did, Did),
    version: u64,
    to: Did,
    /// Offers made to `to` so far; after `MAX_OFFERS` unconfirmed ones the copy goes
    /// anyway (a predecessor that never confirms cannot keep our copies for days).
    offers: u8,
    pub(super) deadline: Instant,
}

/// Offers of a stale copy to one predecessor before it is dropped unconfirmed.
const MAX_OFFERS: u8 = 3;

/// Whom a put's acknowledgement goes to.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reply {
    /// This node's own operation.
    Local(u64),
    /// The node that asked, under its operation id.
    Remote { to: Did, op: u64 },
}

impl Reply {
    fn peer(&self) -> Option<Did> {
        match self {
            Reply::Remote { to, .. } => Some(*to),
            Reply::Local(_) => None,
        }
    }
}

/// A put stored here as owner, waiting for `needed` more of the replicas `asked`.
#[derive(Debug)]
pub(super) struct Quorum {
    tag: u64,
    reply: Reply,
    asked: Vec<Did>,
    needed: usize,
    pub(super) deadline: Instant,
}

// ---- the store: puts, gets, replication ----
impl Engine {
    /// See [`crate::node::Node::put`].
    pub fn put(
        &mut self,
        now: Instant,
        cx: &mut Context<'_>,
        key: Did,
        kind: RecordKind,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<OpId, StoreError> {
        let published = self.published.iter().find(|p| (p.key, p.kind) == (key, kind)).map_or(0, |p| p.version);
        let seen = self.seen_versions.iter().find(|(slot, _)| *slot == (key, kind)).map_or(0, |(_, v)| *v);
        let record = self.sign_record(now, key, kind, value, ttl, published.max(seen))?;
        // A plain put replaces what was kept alive: no renewal writes the old value back.
        self.published.retain(|p| (p.key, p.kind) != (key, kind));
        Ok(self.put_record(now, cx, record))
    }

    /// See [`crate::node::Node::publish`].
    pub fn publish(
        &mut self,
        now: Instant,
        cx: &mut Context<'_>,
        key: Did,
        kind: RecordKind,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<OpId, StoreError> {
        let last = self.published.iter().find(|p| (p.key, p.kind) == (key, kind)).map_or(0, |p| p.version);
        let wall = self.store.wall_clock(now);
        let version = wall.as_millis().max(last + 1); // what `put` signs
        let op = self.put(now, cx, key, kind, value.clone(), ttl)?;
        self.published.retain(|p| (p.key, p.kind) != (key, kind));
        self.published.push(Published { key, kind, value, ttl, version, renewed: now, renewed_wall: wall });
        Ok(op)
    }

    /// Stops renewing a published record (it expires where it is stored).
    pub fn unpublish(&mut self, key: Did, kind: RecordKind) {
        self.published.retain(|p| (p.key, p.kind) != (key, kind));
    }

    /// See [`crate::node::Node::put_record`].
    pub fn put_record(&mut self, now: Instant, cx: &mut Context<'_>, record: Record) -> OpId {
        let key = record.key;
        self.start_op(now, cx, key, OpKind::Put(record), 0)
    }

    /// See [`crate::node::Node::get`].
    pub fn get(&mut self, now: Instant, cx: &mut Context<'_>, key: Did) -> OpId {
        self.start_op(now, cx, key, OpKind::Get, 0)
    }

    fn sign_record(
        &self,
        now: Instant,
        key: Did,
        kind: RecordKind,
        value: Vec<u8>,
        ttl: Duration,
        last: u64,
    ) -> Result<Record, StoreError> {
        let session = self.session.as_ref().ok_or(StoreError::NoSession)?;
        let cfg = self.store.config();
        if value.len() > cfg.max_value {
            return Err(StoreError::TooLarge);
        }
        if ttl > if kind == RecordKind::Set { cfg.max_set_ttl } else { cfg.max_ttl } {
            return Err(StoreError::TooLong);
        }
        // Versions follow the clock, so a restarted writer still overwrites its past.
        let wall = self.store.wall_clock(now).as_millis();
        let version = wall.max(last + 1);
        // A record cannot outlive the delegation that vouches for it.
        let expires = (wall + ttl.as_millis()).min(session.delegation().expires_at);
        Ok(Record::sign(session, key, kind, version, expires, value))
    }

    fn start_op(&mut self, now: Instant, cx: &mut Context<'_>, key: Did, what: OpKind, bumps: u8) -> OpId {
        let mut id = self.draw();
        while self.ops.contains_key(&id) {
            id = self.draw();
        }
        let deadline = now + self.store.config().request_timeout;
        self.ops.insert(id, Op { key, deadline, what, asked: None, hops: 0, retried: false, bumps, looking: false });
        // A node still (re)joining would answer for keys the ring gives to others.
        if !cx.joined {
            self.finish_op(id, Some(Answer::NoRoute));
        } else if cx.table.owns(key) || cx.table.successor().is_none() {
            self.op_at_owner(now, cx, id, self.me);
        } else {
            self.lookup(id, key);
        }
        OpId(id)
    }

    /// The owner of an operation's key is known: ask it (or act, if it is this node).
    pub(super) fn op_at_owner(&mut self, now: Instant, cx: &mut Context<'_>, id: u64, owner: Did) {
        let Some(op) = self.ops.get(&id) else { return };
        let me = self.me;
        match &op.what {
            OpKind::Put(record) if owner == me => {
                let record = record.clone();
                if let Some(o) = self.ops.get_mut(&id) {
                    o.asked = None; // a re-lookup found this node: bumps go here now
                }
                self.store_put(now, cx, record, Reply::Local(id));
            }
            OpKind::Put(record) => {
                let msg = StoreMsg::Put { op: id, record: record.clone() };
                if let Some(o) = self.ops.get_mut(&id) {
                    o.asked = Some(owner);
                }
                self.send_store(owner, &msg);
            }
            OpKind::Get => {
                let key = op.key;
                if owner == me {
                    self.serve_get(now, cx, Reader::Local(id), key);
                } else {
                    if let Some(o) = self.ops.get_mut(&id) {
                        o.asked = Some(owner);
                    }
                    self.send_store(owner, &StoreMsg::Get { op: id, key });
                }
            }
        }
    }

    /// Stores a record written to this node as its owner, copies it to the replicas at
    /// once (the periodic push keeps them fresh), and acknowledges it to `reply` once
    /// `write_quorum - 1` replicas confirmed holding it (at once if the record was held
    /// already, the ring has no other node, or the table of waiting puts is full).
    fn store_put(&mut self, now: Instant, cx: &mut Context<'_>, record: Record, reply: Reply) {
        let table = cx.table;
        let accepted = match self.store.accept(now, record.clone(), &|k| table.owns(k), None, cx.vouched) {
            Ok(a) => a,
            Err(StoreError::Stale) => {
                // Shown the newer version, the writer can write above it.
                let held = self.store.held_at(record.slot()).cloned();
                return match (reply, held) {
                    (Reply::Local(op), Some(held)) => self.newer_held(now, cx, op, held),
                    (Reply::Remote { to, op }, Some(record)) => self.send_store(to, &StoreMsg::Newer { op, record }),
                    (reply, None) => self.reply_put(reply, Err(StoreError::Stale)),
                };
            }
            Err(e) => return self.reply_put(reply, Err(e)),
        };
        if !accepted {
            return self.reply_put(reply, Ok(()));
        }
        let n = self.store.config().replicas.saturating_sub(1);
        let replicas: Vec<Did> = cx.table.successors().iter().copied().filter(|d| *d != self.me).take(n).collect();
        let needed = self.store.config().write_quorum.saturating_sub(1).min(replicas.len());
        let from_peer = reply.peer();
        let per_peer = self.quorums.iter().filter(|q| from_peer.is_some() && q.reply.peer() == from_peer).count();
        if needed == 0 || per_peer >= MAX_QUORUMS / 16 || !self.room_for_quorum(per_peer) {
            for r in replicas {
                self.send_store(r, &StoreMsg::Replicate { records: vec![record.clone()] });
            }
            return self.reply_put(reply, Ok(()));
        }
        let tag = self.draw();
        for &r in &replicas {
            self.send_store(r, &StoreMsg::Copy { tag, record: record.clone() });
        }
        let deadline = now + Duration(self.store.config().request_timeout.as_millis() / 2);
        self.quorums.push(Quorum { tag, reply, asked: replicas, needed, deadline });
    }

    /// Put `id` was refused as stale and `held` is the newer version at its slot. If the
    /// put is this node's own record, it is signed again one version above `held` and
    /// sent to the owner again: a device whose clock runs behind another's, or one
    /// restarted with its clock set back, still overwrites the account's earlier writes
    /// ("later write wins": the version is max(clock, highest seen + 1)). Twice at most;
    /// `held` must be the same writer's and verify, so nobody else can make a writer
    /// skip versions.
    fn newer_held(&mut self, now: Instant, cx: &mut Context<'_>, id: u64, held: Record) {
        let Some(op) = self.ops.get(&id) else { return };
        let OpKind::Put(mine) = &op.what else { return };
        let session = self.session.as_ref().filter(|s| s.did() == mine.writer && *s.delegation() == mine.delegation);
        let fits = held.slot() == mine.slot() && held.writer == mine.writer && held.version >= mine.version && held.version < u64::MAX;
        let (key, kind, version, expires, value) = (mine.key, mine.kind, held.version + 1, mine.expires_at, mine.value.clone());
        let renewal = op.bumps == RENEWAL;
        let Some(session) = session.filter(|_| fits && (op.bumps < 2 || renewal)) else {
            return self.finish_op(id, Some(Answer::Ack(Err(StoreError::Stale))));
        };
        if self.store.check(now, &held, cx.vouched).is_err() {
            return self.finish_op(id, Some(Answer::Ack(Err(StoreError::Stale))));
        }
        if renewal {
            // Another device of this account wrote after us: its value stands, and this
            // node stops keeping the old one alive.
            self.published.retain(|p| (p.key, p.kind) != (key, kind));
            return self.finish_op(id, Some(Answer::Ack(Err(StoreError::Stale))));
        }
        let record = Record::sign(session, key, kind, version, expires, value);
        if let Some(p) = self.published.iter_mut().find(|p| (p.key, p.kind) == (key, kind)) {
            p.version = p.version.max(version);
        }
        self.seen_versions.retain(|(slot, _)| *slot != (key, kind));
        if self.seen_versions.len() >= MAX_SEEN_VERSIONS {
            self.seen_versions.remove(0);
        }
        self.seen_versions.push(((key, kind), version));
        let Some(op) = self.ops.get_mut(&id) else { return };
        op.bumps += 1;
        op.what = OpKind::Put(record.clone());
        match op.asked {
            Some(owner) => self.send_store(owner, &StoreMsg::Put { op: id, record }),
            None => self.store_put(now, cx, record, Reply::Local(id)),
        }
    }

    /// Makes room for one more waiting put when the table is full: one of the asker with
    /// the most goes, answered `Unreplicated` (its writer may retry; others' puts are never
    /// acknowledged without their quorum), if it has more than one over the `asking` one's.
    fn room_for_quorum(&mut self, asking: usize) -> bool {
        if self.quorums.len() < MAX_QUORUMS {
            return true;
        }
        let Some(q) = super::reads::take_heaviest(&mut self.quorums, |q| q.reply.peer(), asking) else {
            return false;
        };
        self.reply_put(q.reply, Err(StoreError::Unreplicated));
        true
    }

    fn reply_put(&mut self, reply: Reply, result: Result<(), StoreError>) {
        match reply {
            Reply::Local(op) => self.finish_op(op, Some(Answer::Ack(result))),
            Reply::Remote { to, op } => self.send_store(to, &StoreMsg::PutAck { op, result }),
        }
    }

    /// Offers the stale copies to the predecessor `p` (once per pass for each that is due:
    /// new, refused, or unanswered in time); a copy offered `MAX_OFFERS` times to the same
    /// predecessor without its confirmation is dropped. Offers to a former predecessor
    /// start again.
    fn offer_stale(&mut self, now: Instant, p: Did, stale: Vec<Record>) {
        // `stale` comes sorted by slot (as the store holds them); `offered` marks those
        // with an offer already.
        let mut offered = vec![false; stale.len()];
        let timeout = self.store.config().request_timeout;
        let mut kept = Vec::with_capacity(self.releases.len());
        for mut r in std::mem::take(&mut self.releases) {
            let Ok(i) = stale.binary_search_by(|x| x.slot().cmp(&r.slot)) else { continue }; // refreshed or gone
            offered[i] = true;
            let record = stale[i].clone();
            if r.to != p {
                r.to = p;
                r.offers = 0;
            } else if r.deadline > now {
                kept.push(r);
                continue;
            }
            if r.offers >= MAX_OFFERS {
                self.store.release(now, r.slot, r.version);
                continue;
            }
            r.offers += 1;
            r.tag = self.draw();
            r.version = record.version;
            r.deadline = now + timeout;
            self.send_store(p, &StoreMsg::Copy { tag: r.tag, record });
            kept.push(r);
        }
        self.releases = kept;
        for (record, _) in stale.into_iter().zip(offered).filter(|(_, o)| !o) {
            if self.releases.len() >= MAX_RELEASES {
                break;
            }
            let slot = record.slot();
            let tag = self.draw();
            self.releases.push(Release { tag, slot, version: record.version, to: p, offers: 1, deadline: now + timeout });
            self.send_store(p, &StoreMsg::Copy { tag, record });
        }
    }

    /// A replica answered copy `tag`: a put's, or a stale copy's this node releases.
    fn copied(&mut self, now: Instant, cx: &mut Context<'_>, from: Did, tag: u64, held: bool) {
        if let Some(i) = self.releases.iter().position(|r| r.tag == tag && r.to == from) {
            let table = cx.table;
            let owned = table.predecessor().is_none() || table.owns(self.releases[i].slot.0);
            if held && !owned {
                let r = self.releases.swap_remove(i);
                self.store.release(now, r.slot, r.version);
            } else if held {
                self.releases.swap_remove(i);
            } else {
                self.releases[i].deadline = now; // refused: offered again next pass
            }
            return;
        }
        let Some(i) = self.quorums.iter().position(|q| q.tag == tag && q.asked.contains(&from)) else {
            return;
        };
        let q = &mut self.quorums[i];
        q.asked.retain(|a| *a != from);
        if held {
            q.needed -= 1;
        }
        if q.needed == 0 || q.asked.len() < q.needed {
            let q = self.quorums.swap_remove(i);
            self.reply_put(q.reply, if q.needed == 0 { Ok(()) } else { Err(StoreError::Unreplicated) });
        }
    }

    pub(super) fn expire_quorums(&mut self, now: Instant) {
        while let Some(i) = self.quorums.iter().position(|q| q.deadline <= now) {
            let q = self.quorums.swap_remove(i);
            self.reply_put(q.reply, Err(StoreError::Unreplicated));
        }
    }

    /// A store message from the direct peer `from`; a bad one is counted and refused.
    pub fn handle_frame(&mut self, now: Instant, cx: &mut Context<'_>, from: Did, bytes: &[u8]) -> Result<(), StoreError> {
        let msg = match StoreMsg::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.store.count(e);
                return Err(e);
            }
        };
        match msg {
            StoreMsg::Put { op, record } => {
                // Only the key's owner takes a put (with its predecessor just failed, it
                // may own any key it is asked for); anyone else's would bypass the checks
                // on pushed copies, and a node still joining owns nothing yet.
                let table = cx.table;
                let owner = cx.joined && (table.predecessor().is_none() || table.owns(record.key));
                if !owner {
                    self.store.count(StoreError::NotReplica);
                    self.send_store(from, &StoreMsg::PutAck { op, result: Err(StoreError::NotReplica) });
                    return Err(StoreError::NotReplica);
                }
                self.store_put(now, cx, record, Reply::Remote { to: from, op });
                Ok(())
            }
            StoreMsg::Copy { tag, record } => {
                let table = cx.table;
                let held = if may_push(table, from, record.key, self.store.config().replicas) {
                    // Holding this version or a newer one is holding it.
                    matches!(self.store.accept(now, record, &|k| table.owns(k), Some(from), cx.vouched), Ok(_) | Err(StoreError::Stale))
                } else {
                    self.store.count(StoreError::NotReplica);
                    false
                };
                self.send_store(from, &StoreMsg::Copied { tag, held });
                Ok(())
            }
            StoreMsg::Copied { tag, held } => {
                self.copied(now, cx, from, tag, held);
                Ok(())
            }
            StoreMsg::Newer { op, record } => {
                if self.ops.get(&op).is_some_and(|o| matches!(o.what, OpKind::Put(_)) && o.asked == Some(from) && !o.looking) {
                    self.newer_held(now, cx, op, record);
                }
                Ok(())
            }
            StoreMsg::PutAck { op, result } => {
                if self.ops.get(&op).is_some_and(|o| matches!(o.what, OpKind::Put(_)) && o.asked == Some(from) && !o.looking) {
                    // Asked a node that no longer owns the key (a join raced the lookup):
                    // look the owner up once more.
                    let again = result == Err(StoreError::NotReplica)
                        && self.ops.get_mut(&op).is_some_and(|o| !std::mem::replace(&mut o.retried, true));
                    if again {
                        let key = self.ops[&op].key;
                        self.lookup(op, key);
                    } else {
                        self.finish_op(op, Some(Answer::Ack(result)));
                    }
                }
                Ok(())
            }
            StoreMsg::Get { op, key } => {
                // A node still joining owns nothing yet (and its answer would be empty).
                if cx.joined {
                    self.serve_get(now, cx, Reader::Remote { to: from, op }, key);
                }
                Ok(())
            }
            StoreMsg::Peek { op, key } => {
                self.serve_peek(now, cx, from, op, key);
                Ok(())
            }
            StoreMsg::GetReply { op, records } => {
                if let Some(i) = self.read_asking(op, from) {
                    self.peeked(now, cx, from, i, records);
                    return Ok(());
                }
                // Only the owner asked answers (a forged reply is ignored).
                let Some(o) = self.ops.get(&op).filter(|o| matches!(o.what, OpKind::Get) && o.asked == Some(from) && !o.looking) else {
                    return Ok(());
                };
                let key = o.key;
                // Every answer is checked here: a replica cannot forge or alter a record.
                // Bad records are dropped and counted one by one; the frame itself is taken.
                let mut good = Vec::with_capacity(records.len());
                for r in records {
                    match (r.key == key).then(|| self.store.check(now, &r, cx.vouched)) {
                        Some(Ok(())) => good.push(r),
                        Some(Err(_)) => {}
                        None => self.store.count(StoreError::Malformed),
                    }
                }
                // A reader that holds copies itself (a replica) counts them too; per slot
                // the freshest version stands.
                for mine in self.store.records_at(key, now) {
                    match good.iter_mut().find(|r| r.slot() == mine.slot()) {
                        Some(r) if r.version < mine.version => *r = mine,
                        Some(_) => {}
                        None => good.push(mine),
                    }
                }
                self.finish_op(op, Some(Answer::Records(good)));
                Ok(())
            }
            StoreMsg::Replicate { records } => {
                // Each copy is judged (and a refusal counted) on its own: a bad one (a
                // writer whose clock runs ahead, a forgery) never stops the rest.
                let table = cx.table;
                for r in records {
                    if !may_push(table, from, r.key, self.store.config().replicas) {
                        self.store.count(StoreError::NotReplica);
                        continue;
                    }
                    let _ = self.store.accept(now, r, &|k| table.owns(k), Some(from), cx.vouched);
                }
                Ok(())
            }
        }
    }

    /// Ends an operation with its answer (`None`: timed out) as an event.
    pub(super) fn finish_op(&mut self, id: u64, answer: Option<Answer>) {
        let Some(op) = self.ops.remove(&id) else { return };
        let (key, op_id, hops) = (op.key, OpId(id), op.hops);
        let answer = match answer {
            Some(Answer::Records(mut rs)) => {
                rs.retain(|r| r.key == key);
                Some(Answer::Records(rs))
            }
            a => a,
        };
        let event = match (op.what, answer) {
            (OpKind::Put(_), Some(Answer::Ack(r))) => StoreEvent::Put { op: op_id, key, hops, result: r.map_err(PutError::Refused) },
            (OpKind::Put(_), Some(Answer::NoRoute)) => StoreEvent::Put { op: op_id, key, hops, result: Err(PutError::NoRoute) },
            (OpKind::Put(_), _) => StoreEvent::Put { op: op_id, key, hops, result: Err(PutError::TimedOut) },
            (OpKind::Get, Some(Answer::Records(mut rs))) => {
                // A value: the freshest version wins.
                if rs.iter().all(|r| r.kind == RecordKind::Value) && rs.len() > 1 {
                    let best = rs.iter().enumerate().max_by_key(|(_, r)| r.version).map_or(0, |(i, _)| i);
                    rs.swap(0, best);
                    rs.truncate(1);
                }
                let result = if rs.is_empty() { GetResult::NotFound } else { GetResult::Found(rs) };
                StoreEvent::Get { op: op_id, key, hops, result }
            }
            (OpKind::Get, Some(Answer::NoRoute)) => StoreEvent::Get { op: op_id, key, hops, result: GetResult::NoRoute },
            (OpKind::Get, _) => StoreEvent::Get { op: op_id, key, hops, result: GetResult::TimedOut },
        };
        self.out.push_back(StoreOutput::Event(event));
    }

    /// The periodic work: owners push their records to their replicas; a node that lost
    /// a key to a newcomer hands it over; copies nobody refreshed go up to the
    /// predecessor, then expire; writers renew what they publish.
    pub(super) fn maintain(&mut self, now: Instant, cx: &mut Context<'_>) {
        self.store.expire(self.store.wall_clock(now).as_millis());
        let me = self.me;
        let table = cx.table;
        let n = self.store.config().replicas.saturating_sub(1);
        let replicas: Vec<Did> = table.successors().iter().copied().filter(|d| *d != me).take(n).collect();
        let pred = table.predecessor().filter(|p| *p != me);
        // A copy nobody refreshed for a push and a half may be missing at its owner.
        let hand_up_after = crate::time::Duration(self.store.config().republish.as_millis() * 3 / 2);
        // A new predecessor (a newcomer, or the one behind a failed node) may own any key
        // this node does not: it gets them all, once.
        let hand_all = std::mem::take(&mut self.pred_changed);
        let mut batches: Vec<(Did, Vec<Record>)> = Vec::new();
        let mut add = |to: Did, r: &Record| match batches.iter_mut().find(|(d, _)| *d == to) {
            Some((_, v)) => v.push(r.clone()),
            None => batches.push((to, vec![r.clone()])),
        };
        // With no predecessor known (it just failed), this node may own any key it holds:
        // acting as their owner keeps them replicated until the ring says otherwise.
        let owns_now = |k: Did| table.predecessor().is_none() || table.owns(k);
        for h in self.store.iter_mut() {
            let own = owns_now(h.record.key);
            if own {
                h.refreshed = now;
                for r in &replicas {
                    add(*r, &h.record);
                }
            } else if let Some(p) = pred {
                if h.owned || hand_all || h.refreshed + hand_up_after <= now {
                    add(p, &h.record);
                }
            }
            h.owned = own;
        }
        // Copies nobody refreshed are dropped once the predecessor confirms holding them:
        // a copy on its way out may be the last one if the nodes before it crashed.
        let stale = if pred.is_some() { self.store.stale_copies(now, &owns_now) } else { Vec::new() };
        if let Some(p) = pred {
            self.offer_stale(now, p, stale);
        } else {
            self.releases.clear();
        }
        for (to, records) in batches {
            let mut batch = Vec::new();
            let mut size = 0;
            for r in records {
                let len = r.encoded_len();
                if size + len > BATCH && !batch.is_empty() {
                    self.send_store(to, &StoreMsg::Replicate { records: std::mem::take(&mut batch) });
                    size = 0;
                }
                size += len;
                batch.push(r);
            }
            if !batch.is_empty() {
                self.send_store(to, &StoreMsg::Replicate { records: batch });
            }
        }
        // Writers renew a third of the way through a record's life.
        let wall = self.store.wall_clock(now);
        for i in 0..self.published.len() {
            let p = &self.published[i];
            let third = crate::time::Duration(p.ttl.as_millis() / 3);
            if p.renewed + third > now && p.renewed_wall + third > wall {
                continue;
            }
            let (key, kind, value, ttl, last) = (p.key, p.kind, p.value.clone(), p.ttl, p.version);
            if let Ok(record) = self.sign_record(now, key, kind, value, ttl, last) {
                let p = &mut self.published[i];
                p.version = record.version;
                p.renewed = now;
                p.renewed_wall = wall;
                self.start_op(now, cx, key, OpKind::Put(record), RENEWAL);
            }
        }
    }
}

/// Whether `from` may push a copy of `key` to this node: this node owns the key (the
/// same as a put); `from` is one of this node's successors (copies go up to the
/// predecessor: a handover to a newcomer, or a copy whose owner may have lost it); or
/// `from` lies between the key and this node and not much further from it than its
/// replica set spans: within 16 × `replicas` mean gaps, the mean gap estimated from
/// this node's successor list (the owner and the replicas before us lie within
/// `replicas` gaps; the margin covers uneven gaps, e^-48 to exceed for two exponential
/// gaps).
pub(super) fn may_push(table: &crate::chord::RoutingTable, from: Did, key: Did, replicas: usize) -> bool {
    let me = table.me();
    if table.owns(key) || table.successors().contains(&from) {
        return true;
    }
    let between = key.distance_to(from) < key.distance_to(me);
    let list = table.successors();
    let Some(&last) = list.last() else { return between };
    // bits(span / len × replicas × 16), rounded up: a bound on bit lengths, not exact.
    let log2 = |n: usize| usize::BITS - n.max(1).leading_zeros();
    let allowed = me.distance_to(last).bit_len() + log2(replicas) + 4 + 1 - log2(list.len()).min(me.distance_to(last).bit_len());
    // The key itself must be that close (the sender then is too).
    between && key.distance_to(me).bit_len() <= allowed
}
