//! Room under the cap: least-recently-used eviction (sparing the ring's neighbours,
//! young links and opening ones), letting a link go (closing, or dropped), and the
//! bookkeeping of a new connection.

use std::collections::VecDeque;

use super::*;

impl Links {
    /// Closes least recently used links until at most `limit` remain (see
    /// [`Links::evict`]). False if still over.
    pub(super) fn make_room(&mut self, now: Instant, limit: usize, for_peer: bool) -> bool {
        while self.len() > limit {
            if !self.evict(now, for_peer) {
                return false;
            }
        }
        true
    }

    /// Closes the least recently used open link, never a protected peer's, an opening
    /// one, or one younger than `grace`; for a peer's offer (`for_peer`) a link a peer's
    /// offer opened, or one of this node's own beyond its reserved share
    /// (`max_links - max_by_peers`: strangers cannot push it below that, and cannot be
    /// locked out by it either — the ring's true predecessor arrives as a stranger's
    /// offer). False if none may go.
    pub(super) fn evict(&mut self, now: Instant, for_peer: bool) -> bool {
        let grace = self.cfg.grace;
        // A manual offer nobody answered within `grace` goes first (it may wait long for
        // a human, but not hold the cap against the ring).
        let stale = self.conns.iter().filter(|c| c.manual && c.peer.is_none() && c.opened + grace <= now).min_by_key(|c| (c.opened, c.id));
        if let Some(id) = stale.map(|c| c.id).filter(|_| !for_peer) {
            self.drop_conn(id, CloseReason::Evicted);
            return true;
        }
        // The ring's neighbours count on neither side (they are kept anyway): a small cap
        // full of them and of our own links must still let the true predecessor in.
        let live = |c: &&Conn| c.phase != Phase::Closing;
        let kept = self.conns.iter().filter(live).filter(|c| self.protected.contains(&c.peer)).count();
        let own = self.conns.iter().filter(live).filter(|c| !c.by_peer && !self.protected.contains(&c.peer)).count();
        let own_over = own > self.cfg.max_links.saturating_sub(kept).saturating_sub(self.cfg.max_by_peers);
        let victim = self
            .conns
            .iter()
            .filter(|c| c.phase == Phase::Open && !self.protected.contains(&c.peer) && c.opened + grace <= now)
            .filter(|c| c.by_peer || !for_peer || own_over)
            .min_by_key(|c| (c.last_used, c.id))
            .map(|c| c.id);
        let Some(id) = victim else { return false };
        self.let_go(now, id, CloseReason::Evicted);
        true
    }

    /// An open link this node lets go of drains first: its peer is reported down and
    /// sent [`CLOSING`]; it receives until the peer closes or `close_linger` passes.
    /// Anything else closes at once.
    pub(super) fn let_go(&mut self, now: Instant, id: ConnId, reason: CloseReason) {
        if self.get(id).is_none_or(|c| c.phase != Phase::Open) || self.cfg.max_closing == 0 {
            return self.drop_conn(id, reason);
        }
        if self.closing() >= self.cfg.max_closing {
            let oldest = self.conns.iter().filter(|c| c.phase == Phase::Closing).min_by_key(|c| (c.deadline, c.id)).map(|c| c.id);
            if let Some(oldest) = oldest {
                self.drop_conn(oldest, CloseReason::Drained);
            }
        }
        let linger = self.cfg.close_linger;
        let Some(c) = self.get_mut(id) else { return };
        c.phase = Phase::Closing;
        c.deadline = now + linger;
        c.queue.clear();
        c.queued = 0;
        c.outstanding = 0;
        let Some(peer) = c.peer else { return };
        self.out.push_back(LinkOutput::Send { conn: id, bytes: vec![CLOSING] });
        self.out.push_back(LinkOutput::Down { peer, was_open: true, reason });
    }

    /// Asks the driver to close `id`, then forgets it.
    pub(super) fn drop_conn(&mut self, id: ConnId, reason: CloseReason) {
        if self.get(id).is_some() {
            self.out.push_back(LinkOutput::Close { conn: id, reason });
            self.forget(id, reason);
        }
    }

    /// Removes `id`; its peer, if known, is reported down (a closing one's already was).
    pub(super) fn forget(&mut self, id: ConnId, reason: CloseReason) {
        let Some(at) = self.conns.iter().position(|c| c.id == id) else { return };
        let c = self.conns.swap_remove(at);
        if let Some(peer) = c.peer.filter(|_| c.phase != Phase::Closing) {
            self.out.push_back(LinkOutput::Down { peer, was_open: c.phase == Phase::Open, reason });
        }
    }

    /// Room for one more connection, the `old` one to the same peer counting as free
    /// (closed as replaced once there is room): what waited for it to open, or `None`
    /// if there is no room.
    pub(super) fn room_replacing(&mut self, now: Instant, old: Option<ConnId>, for_peer: bool) -> Option<(VecDeque<Vec<u8>>, usize)> {
        let held = usize::from(old.is_some());
        if !self.make_room(now, (self.cfg.max_links + held).saturating_sub(1), for_peer) {
            return None;
        }
        let mut queue = (VecDeque::new(), 0);
        if let Some(old) = old {
            if let Some(c) = self.get_mut(old) {
                queue = (std::mem::take(&mut c.queue), std::mem::take(&mut c.queued));
            }
            self.drop_conn(old, CloseReason::Replaced);
        }
        Some(queue)
    }

    pub(super) fn insert(&mut self, now: Instant, peer: Option<Did>, phase: Phase, by_peer: bool) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.push(Conn {
            id,
            peer,
            phase,
            by_peer,
            manual: false,
            refused: None,
            added: 0,
            negotiation: None,
            described: false,
            remote_set: false,
            early_remote: Vec::new(),
            early_local: Vec::new(),
            deadline: now + self.cfg.connect_timeout,
            opened: now,
            last_rx: now,
            last_used: now,
            queue: VecDeque::new(),
            queued: 0,
            outstanding: 0,
            join_via: false,
        });
        id
    }
}
