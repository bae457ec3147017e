//! Delivery acknowledgements: with [`NodeConfig::delivery_timeout`] set, every
//! application message asks its destination to acknowledge it ([`ACKED_BODY`]); the
//! destination answers with a sealed [`ACK_BODY`] naming it, and a message not
//! acknowledged in time is reported `Unacknowledged` to the application. So every
//! message a live node sends ends in one of two events: `Acknowledged`, or
//! `Undelivered` (a relay's report, or the timeout) — none is lost silently, whatever
//! crashed on the way. A relay cannot forge an acknowledgement: it is sealed under the
//! keys the origin shares with the destination.
//!
//! [`NodeConfig::delivery_timeout`]: super::NodeConfig::delivery_timeout

use super::{Event, Node};
use crate::time::{Duration, Instant};
use crate::wire::{RouteError, Undelivered};
use crate::Did;

/// An application body whose destination is asked to acknowledge it.
pub const ACKED_BODY: u8 = 2;
/// An acknowledgement: the 8-byte transaction id of the message it acknowledges.
pub const ACK_BODY: u8 = 3;

/// Messages awaiting acknowledgement at once; a send beyond is refused (`QueueFull`).
pub const MAX_UNACKED: usize = 8192;

/// Acknowledgements are not sent while this node's own outgoing backlog holds this many
/// messages (a peer that stops reading cannot make it queue acks without bound: the
/// origin reports those messages `Unacknowledged`).
const MAX_ACK_BACKLOG: usize = 1024;
/// Recent acknowledgements sent, so a report on one never reaches the application.
const ACKS_REMEMBERED: usize = 1024;

/// The slowest rate a message is expected to cross the ring at: its deadline grows by
/// its size over this (bytes per millisecond), so a large one is not reported early.
const FLOOR_RATE: usize = 256;

#[derive(Debug, Default)]
pub(super) struct Unacked {
    /// (destination, transaction, deadline): a short list scanned (a hash table type
    /// costs the wasm more than the scan costs the node).
    pending: Vec<(Did, u64, Instant)>,
    next: Option<Instant>,
    /// Transactions of acknowledgements this node sent lately.
    sent: Vec<u64>,
    /// Acknowledgements not sent for the backlog.
    pub(super) skipped: u64,
}

impl Unacked {
    pub(super) fn is_full(&self) -> bool {
        self.pending.len() >= MAX_UNACKED
    }

    pub(super) fn track(&mut self, now: Instant, timeout: Duration, dest: Did, tx: u64, len: usize) {
        let deadline = now + timeout + Duration((len / FLOOR_RATE) as u64);
        self.pending.push((dest, tx, deadline));
        self.next = Some(self.next.map_or(deadline, |n| n.min(deadline)));
    }

    /// Whether `tx` to `dest` was waiting (it is not any more).
    pub(super) fn settle(&mut self, dest: Did, tx: u64) -> bool {
        match self.pending.iter().position(|p| p.0 == dest && p.1 == tx) {
            Some(at) => {
                self.pending.swap_remove(at);
                true
            }
            None => false,
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// Messages whose deadline passed (forgotten here).
    pub(super) fn expired(&mut self, now: Instant) -> Vec<(Did, u64)> {
        if self.next.is_none_or(|n| n > now) {
            return Vec::new();
        }
        let late: Vec<(Did, u64)> = self.pending.iter().filter(|p| p.2 <= now).map(|p| (p.0, p.1)).collect();
        self.pending.retain(|p| p.2 > now);
        self.next = self.pending.iter().map(|p| p.2).min();
        late
    }
}

impl Node {
    /// An acknowledged application message arrived from `from` (transaction `tx`):
    /// acknowledge it, sealed, through the ring.
    pub(super) fn acknowledge(&mut self, now: Instant, from: Did, tx: u64) {
        let mut body = Vec::with_capacity(9);
        body.push(ACK_BODY);
        body.extend_from_slice(&tx.to_be_bytes());
        if self.wire.backlog().1 >= MAX_ACK_BACKLOG {
            self.unacked.skipped += 1;
            return;
        }
        // A lost or refused acknowledgement costs only a late report at the origin.
        if let Ok(tx) = self.wire.send(now, self.ring.table(), from, body) {
            let sent = &mut self.unacked.sent;
            if sent.len() >= ACKS_REMEMBERED {
                sent.remove(0);
            }
            sent.push(tx);
        }
    }

    /// An acknowledgement from `from`.
    pub(super) fn on_ack(&mut self, from: Did, body: &[u8]) {
        let Ok(tx) = <[u8; 8]>::try_from(body).map(u64::from_be_bytes) else {
            self.link_errors += 1;
            return;
        };
        if self.unacked.settle(from, tx) {
            self.events.push_back(Event::Acknowledged { tx, dest: from });
        }
    }

    /// Whether a report on one of this node's messages goes to the application: not
    /// for an acknowledgement it sent, and with acknowledgements asked, only for a
    /// message still awaiting its outcome (so each ends in exactly one event).
    pub(super) fn settle_reported(&mut self, u: &Undelivered) -> bool {
        if let Some(at) = self.unacked.sent.iter().position(|&t| t == u.tx) {
            self.unacked.sent.remove(at);
            return false;
        }
        self.unacked.settle(u.dest, u.tx) || self.delivery_timeout.is_none()
    }

    pub(super) fn expire_unacked(&mut self, now: Instant) {
        let me = self.did();
        for (dest, tx) in self.unacked.expired(now) {
            self.events.push_back(Event::Undelivered(Undelivered { tx, dest, reason: RouteError::Unacknowledged, reporter: me }));
        }
    }
}
