//! The signed, encrypted wire: messages of any size to any DID, routed over the ring.
//!
//! - [`frame`]: the envelope ([`Header`]) and routed [`Frame`]s, with their codec;
//! - [`Wire`]: one node's endpoint — sessions with other nodes, sending (sign, seal,
//!   split), relaying (loop and hop-limit checks, route pinning, per-link flow control),
//!   receiving (replay and expiry checks, reassembly, verification, opening);
//! - [`RejectReason`]: why an input was refused (counted per reason in [`WireStats`]);
//! - [`RouteError`]: why a message did not arrive, as reported back to its origin.

mod endpoint;
pub mod frame;
mod link_route;
mod output;
mod reassembly;
mod replay;
mod sessions;

use serde::{Deserialize, Serialize};

use crate::time::Duration;

pub use endpoint::{Wire, MIN_PIECE};
pub use frame::{Auth, ErrorBody, Frame, FrameError, Header, Kind, Part, SessionProof, ROUTED_TAG};
pub use output::{Delivery, SendError, Undelivered, WireOutput};

/// Limits and timings of the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireConfig {
    /// Messages from other networks are refused; delegations name it too.
    pub network: u32,
    /// Largest application message, in bytes.
    pub max_message: usize,
    /// Body bytes per frame; a frame stays under 64 KiB with its routing fields.
    pub piece: usize,
    /// How long a message may take to start arriving; headers asking for more are
    /// refused at every hop (nodes of one network should agree on it).
    pub ttl: Duration,
    /// Clock difference tolerated between nodes.
    pub skew: Duration,
    pub hop_limit: u8,
    /// Transaction ids remembered against replay.
    pub replay_capacity: usize,
    /// Sessions of other nodes held (least recently used is forgotten first). A new
    /// session into a full table scans it once for the oldest: at the default 4,096 that
    /// is far cheaper than the signature checks before it; at a million it is not.
    pub session_capacity: usize,
    /// Reassembly memory per origin, per link peer that hands frames over, and in
    /// total, in bytes.
    pub reassembly_per_origin: usize,
    pub reassembly_per_link: usize,
    pub reassembly_total: usize,
    /// A partly received message with no progress for this long is dropped, and any
    /// message this long after its expiry (so a message must arrive in full within
    /// `ttl + reassembly_timeout` of being sent: 80 s by default, about 0.8 MB/s for
    /// the largest).
    pub reassembly_timeout: Duration,
    /// Bytes handed to the transport for one peer before it reports them sent.
    pub link_window: usize,
    /// Bytes a relay queues for one peer beyond the window before it drops frames.
    pub relay_queue: usize,
    /// Messages waiting for a session with their destination, per destination.
    pub waiting_per_peer: usize,
    /// How long to wait for a session (`HelloReply`).
    pub hello_timeout: Duration,
    /// A hello unanswered this long is sent again (a fresh one: the first may have been
    /// lost with a relay), until `hello_timeout`. Zero: never.
    pub hello_retry: Duration,
    /// Lifetime of the delegation a node makes for its own session.
    pub session_ttl: Duration,
}

impl Default for WireConfig {
    fn default() -> WireConfig {
        WireConfig {
            network: 1,
            max_message: 64 << 20,
            piece: 63 << 10,
            ttl: Duration::from_secs(60),
            skew: Duration::from_secs(30),
            hop_limit: 32,
            replay_capacity: 1 << 16,
            session_capacity: 4096,
            reassembly_per_origin: (64 << 20) + (1 << 20),
            reassembly_per_link: 128 << 20,
            reassembly_total: 256 << 20,
            reassembly_timeout: Duration::from_secs(20),
            link_window: 1 << 20,
            relay_queue: 8 << 20,
            waiting_per_peer: 256,
            hello_timeout: Duration::from_secs(8),
            hello_retry: Duration::from_secs(2),
            session_ttl: Duration::from_secs(30 * 86_400),
        }
    }
}

/// Why a routed frame was refused. Each is counted in [`WireStats::rejected`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[repr(u8)]
pub enum RejectReason {
    /// Does not decode (truncated, bad value, trailing bytes, path too long).
    Malformed,
    UnsupportedVersion,
    WrongNetwork,
    /// Older than its ttl plus the allowed skew.
    Expired,
    /// Issued further in the future than the allowed skew.
    FromFuture,
    /// A transaction id seen before from the same origin.
    Replay,
    /// The origin's signature does not verify under the session key (forged, or a
    /// header or body changed in flight).
    BadSignature,
    /// A session reference the receiver does not hold.
    UnknownSession,
    DelegationExpired,
    /// The delegation is signed by an account other than the one it names.
    DelegationSigner,
    /// Any other fault of the delegation (bad key, not yet valid, inverted validity).
    DelegationInvalid,
    /// The delegation's account is not the frame's origin.
    SessionMismatch,
    /// Over the message size limit.
    TooLarge,
    DuplicateFrame,
    OutOfOrder,
    /// A continuation frame of a message that is not being received.
    UnknownMessage,
    /// The pieces do not add up to the announced body length.
    Truncated,
    HopLimitExceeded,
    RoutingLoop,
    /// The path does not end with the peer the frame came from.
    PathMismatch,
    /// The destination is not in the ring.
    NoRoute,
    /// The sealed body does not open with this node's session key.
    Undecryptable,
    /// Reassembly memory for the origin or in total is exhausted.
    ReassemblyFull,
    /// A relay's queue toward the next hop is full.
    RelayOverflow,
    /// A kind that is not valid here (for instance data without a session).
    UnexpectedKind,
    /// This node has no session of its own, so it cannot receive messages.
    NoSession,
    /// The header asks for a lifetime over this node's `WireConfig::ttl`.
    TtlTooLong,
    /// The replay cache holds one message of each of as many distinct origins as it
    /// has room for (a flood of accounts): the message cannot be remembered, so it is
    /// refused.
    ReplayFull,
}

impl RejectReason {
    pub const COUNT: usize = RejectReason::ReplayFull as usize + 1;
}

/// Why a message did not reach its destination, as told to its origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RouteError {
    HopLimitExceeded,
    RoutingLoop,
    /// The destination is not in the ring.
    NoRoute,
    /// The destination does not hold the origin's session any more; the next message
    /// opens a new one.
    UnknownSession,
    TooLarge,
    /// The destination or a relay had no room for it.
    Busy,
    /// Frames went missing; the destination gave up reassembling it.
    Incomplete,
    /// The destination could not open the sealed body.
    Undecryptable,
    /// No session with the destination could be opened in time.
    SessionTimeout,
    /// The local node left the ring or lost the route before sending.
    NotSent,
    /// A relay (or the origin) lost its link to the next hop with the message queued
    /// for it or in flight over it.
    LinkLost,
    /// The destination did not acknowledge it in time (sent with an acknowledgement
    /// asked: [`crate::NodeConfig::delivery_timeout`]). It may still have arrived.
    Unacknowledged,
}

/// Counters of one node's wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireStats {
    pub messages_sent: u64,
    pub messages_delivered: u64,
    /// Messages whose origin signature and delegation were verified here.
    pub verified: u64,
    pub frames_sent: u64,
    pub frames_relayed: u64,
    pub frames_received: u64,
    pub bytes_sent: u64,
    pub errors_reported: u64,
    pub undelivered: u64,
    /// The public-key work this node did: messages it signed (hellos, replies, reports),
    /// delegations it verified in full, and pair keys it derived (one ECDH each).
    pub signed: u64,
    pub delegations_verified: u64,
    pub pairs_derived: u64,
    pub rejected: [u64; RejectReason::COUNT],
}

impl Default for WireStats {
    fn default() -> WireStats {
        WireStats {
            messages_sent: 0,
            messages_delivered: 0,
            verified: 0,
            frames_sent: 0,
            frames_relayed: 0,
            frames_received: 0,
            bytes_sent: 0,
            errors_reported: 0,
            undelivered: 0,
            signed: 0,
            delegations_verified: 0,
            pairs_derived: 0,
            rejected: [0; RejectReason::COUNT],
        }
    }
}

impl WireStats {
    pub fn rejected(&self, r: RejectReason) -> u64 {
        self.rejected[r as usize]
    }
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }
    pub fn add(&mut self, o: &WireStats) {
        self.messages_sent += o.messages_sent;
        self.messages_delivered += o.messages_delivered;
        self.verified += o.verified;
        self.frames_sent += o.frames_sent;
        self.frames_relayed += o.frames_relayed;
        self.frames_received += o.frames_received;
        self.bytes_sent += o.bytes_sent;
        self.errors_reported += o.errors_reported;
        self.undelivered += o.undelivered;
        self.signed += o.signed;
        self.delegations_verified += o.delegations_verified;
        self.pairs_derived += o.pairs_derived;
        for (a, b) in self.rejected.iter_mut().zip(o.rejected.iter()) {
            *a += b;
        }
    }
}
