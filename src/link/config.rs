//! The link manager's bounds and timings.

use crate::time::Duration;

/// The ring's patience with one hop in link mode (`chord::Config::hop_timeout` for every
/// driver whose links are data channels): a relay may first have to open a link to the
/// next hop — an offer signalled through the ring, 20–200 ms of setup — and an answer
/// may wait behind megabytes in the same ordered channel. The chord default (500 ms)
/// fits only an ideal network: in the simulator's link model it made joins time out and
/// retry, so a growing 3,000-node ring had 877 members after 34 s where it has 2,099
/// with this (`LINKS_VERBOSE=1 LINKS_NODES=3000 cargo test --test links under_churn`).
pub const RING_HOP_TIMEOUT: Duration = Duration::from_millis(2000);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Connections held at once, open or opening: never more. When every one is kept
    /// (the ring's successor and predecessor, a link younger than `grace`, one opening),
    /// no other starts.
    pub max_links: usize,
    /// Connections opened by peers' offers, open or not: what strangers can hold. An offer
    /// closes a link this node opened only while it holds more than its reserved
    /// `max_links - max_by_peers`, so strangers never push its own below that share.
    pub max_by_peers: usize,
    /// Of those, not open yet. When full, an offer replaces the oldest one that has had
    /// `answer_hold` to finish (a real handshake takes well under a second).
    pub max_answering: usize,
    pub answer_hold: Duration,
    /// An opening connection not open by then is closed.
    pub connect_timeout: Duration,
    /// A link younger than this is not closed to make room for another.
    pub grace: Duration,
    /// An open link silent this long is closed when the ring finds its peer unreachable.
    pub silence: Duration,
    /// Bytes waiting for one opening link; more are dropped (the core's timeouts and
    /// error reports cover them).
    pub max_queued: usize,
    /// Candidates held per connection until they can be used or sent.
    pub max_early: usize,
    /// Bytes a channel may buffer before routed-frame credit is withheld.
    pub low_water: usize,
    /// Candidates added per connection in all (each makes ICE try an address).
    pub max_candidates: usize,
    /// How long a closing link waits for its peer to close its end (the frames the
    /// peer sent before it read [`super::CLOSING`] arrive within one round trip).
    pub close_linger: Duration,
    /// Closing links held besides `max_links` (they only receive); when full, the one
    /// closing longest is closed at once. 0: links close at once.
    pub max_closing: usize,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            max_links: 64,
            max_by_peers: 32,
            max_answering: 16,
            answer_hold: Duration::from_millis(2_000),
            connect_timeout: Duration::from_millis(10_000),
            grace: Duration::from_millis(5_000),
            silence: Duration::from_millis(3_000),
            max_queued: 8 << 20,
            max_early: 32,
            low_water: 1 << 20,
            max_candidates: 64,
            close_linger: Duration::from_millis(2_000),
            max_closing: 8,
        }
    }
}
