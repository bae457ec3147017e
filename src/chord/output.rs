//! What a Chord node hands out: request ids, events, frames to send, counters, and the
//! answers of lookups made for another part of the node.

use super::message::{FailReason, Message};
use crate::Did;

/// Identifies a request (join or lookup) made to one node; its completion event carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Why a lookup or join failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupError {
    /// No answer within `request_timeout`.
    Timeout,
    HopLimitExceeded,
    /// No next hop acknowledged the request.
    Unreachable,
    /// Too many requests in flight here or at a relay.
    Overloaded,
    /// The node has not joined a ring (or has left it).
    NotJoined,
}

impl From<FailReason> for LookupError {
    fn from(r: FailReason) -> LookupError {
        match r {
            FailReason::HopLimitExceeded => LookupError::HopLimitExceeded,
            FailReason::Unreachable => LookupError::Unreachable,
            FailReason::Overloaded => LookupError::Overloaded,
            FailReason::NotReady => LookupError::NotJoined,
        }
    }
}

/// What the node tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    Joined {
        id: RequestId,
        successor: Did,
    },
    JoinFailed {
        id: RequestId,
        error: LookupError,
    },
    /// `owner` is the successor of `key`; it confirmed so itself.
    LookupDone {
        id: RequestId,
        key: Did,
        owner: Did,
        hops: u8,
    },
    LookupFailed {
        id: RequestId,
        key: Did,
        error: LookupError,
    },
    SuccessorChanged {
        successor: Option<Did>,
    },
    PredecessorChanged {
        predecessor: Option<Did>,
    },
    /// A peer failed `strikes` checks in a row (or its link closed) and was dropped from
    /// the routing table; the driver may close its connection.
    PeerUnreachable {
        peer: Did,
    },
    /// Every successor failed: the node is joining again through another node it knows.
    Rejoining {
        via: Did,
    },
}

/// A message to send to one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: Did,
    pub message: Message,
}

/// Counters: traffic, and every input dropped, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub received: u64,
    pub forwarded: u64,
    /// Frames that failed to decode.
    pub malformed: u64,
    /// Replies or acknowledgements matching nothing in flight.
    pub unexpected: u64,
    pub hop_limit_exceeded: u64,
    /// Messages that need a joined node, received before joining or after leaving.
    pub not_joined: u64,
    /// Requests refused because a bound was reached.
    pub overloaded: u64,
    /// Messages from ourselves, or listing impossible values.
    pub invalid: u64,
    pub peers_unreachable: u64,
    /// Events discarded because the application did not poll them.
    pub events_dropped: u64,
    /// Unanswered requests or checks counted against a peer (a strike is followed by a
    /// direct check; `Config::strikes` in a row drop it).
    pub strikes: u64,
    /// Direct checks sent: pings, stabilizations with a claimed neighbour.
    pub checks: u64,
    /// Join attempts after the first (a join through a node that did not answer).
    pub join_retries: u64,
    /// Times every successor failed and the node joined again.
    pub rejoins: u64,
}

impl Stats {
    /// Adds every counter of `o` to this one (totals over many nodes).
    pub fn add(&mut self, o: &Stats) {
        let Stats {
            sent,
            received,
            forwarded,
            malformed,
            unexpected,
            hop_limit_exceeded,
            not_joined,
            overloaded,
            invalid,
            peers_unreachable,
            events_dropped,
            strikes,
            checks,
            join_retries,
            rejoins,
        } = o;
        self.sent += sent;
        self.received += received;
        self.forwarded += forwarded;
        self.malformed += malformed;
        self.unexpected += unexpected;
        self.hop_limit_exceeded += hop_limit_exceeded;
        self.not_joined += not_joined;
        self.overloaded += overloaded;
        self.invalid += invalid;
        self.peers_unreachable += peers_unreachable;
        self.events_dropped += events_dropped;
        self.strikes += strikes;
        self.checks += checks;
        self.join_retries += join_retries;
        self.rejoins += rejoins;
    }
}

/// The end of a lookup started with [`Node::lookup_for`](super::Node::lookup_for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupAnswer {
    pub tag: u64,
    pub key: Did,
    /// The owner and the hops it took.
    pub result: Result<(Did, u8), LookupError>,
}
