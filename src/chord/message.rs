//! The ring protocol's messages and their compact binary codec.
//!
//! The sender of a message is the peer the transport received it from (the transport
//! authenticates peers), so messages do not repeat it. Every reply names the random tag
//! of the request it answers and is accepted only from the peer that request went to.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::Did;

/// Codec version byte, first on the wire (2: answers travel back along the request's path).
pub const WIRE_VERSION: u8 = 2;
/// Most successors a peer may list in one message.
pub const MAX_LISTED: usize = 160;

/// What the sender of a [`FindSuccessor`] asks of its receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Check {
    /// Route it on toward the owner.
    Route,
    /// The sender believes the receiver owns `key`: confirm it from the receiver's own
    /// predecessor, or pass the request back to a node that joined in between.
    Owner,
    /// Like `Owner`, passed back from a successor that has a closer predecessor.
    PassedBack,
}

/// A lookup travelling hop by hop toward the owner of `key` (recursive routing). It names
/// no origin: its answer travels back along the path it came, one known link at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindSuccessor {
    /// Hop tag, drawn at random by the sender of this hop: the receiver acknowledges it
    /// with [`Message::HopAck`] and answers it with `Found` / `Failed` carrying it.
    pub tag: u64,
    pub key: Did,
    /// Hops taken so far, this one included.
    pub hops: u8,
    pub check: Check,
    /// A joiner asks for its own successor: the node whose DID is `key` (the joiner
    /// itself, still in some tables if it restarted or a join attempt failed) is skipped.
    pub join: bool,
}

/// Why a lookup could not complete, as told back along its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FailReason {
    HopLimitExceeded,
    /// Every candidate next hop failed to acknowledge.
    Unreachable,
    /// A relay had too many requests in flight.
    Overloaded,
    /// The node asked to confirm ownership does not know its predecessor yet (it has
    /// just joined, or its predecessor failed): ask again shortly.
    NotReady,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    FindSuccessor(FindSuccessor),
    HopAck {
        tag: u64,
    },
    /// The answer to the hop `tag`: `owner` is the successor of `key` (it confirmed so
    /// itself to the node that asked it, and every relay passed it back).
    Found {
        tag: u64,
        key: Did,
        owner: Did,
        hops: u8,
    },
    Failed {
        tag: u64,
        key: Did,
        reason: FailReason,
    },
    /// Notify ("I may be your predecessor") and "tell me your predecessor and successors".
    Stabilize {
        tag: u64,
    },
    StabilizeReply {
        tag: u64,
        predecessor: Option<Did>,
        successors: Vec<Did>,
    },
    /// A direct liveness check (no notify); the answer names the receiver's predecessor,
    /// which also tells whether it is still the successor of a finger's start.
    Ping {
        tag: u64,
    },
    Pong {
        tag: u64,
        predecessor: Option<Did>,
    },
    /// From a successor to its old predecessor: `node` just took the place between them.
    /// A hint only: the receiver checks `node` directly (a stabilization) before it
    /// takes it as successor.
    Between {
        node: Did,
    },
    /// Graceful departure. The lists are hints only: nothing named in them is adopted
    /// before it answers for itself.
    Leave {
        predecessor: Option<Did>,
        successors: Vec<Did>,
    },
}

/// A frame that is not a valid protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    Empty,
    UnsupportedVersion(u8),
    /// The bytes do not parse as a message.
    Malformed,
    /// Bytes left over after a complete message.
    TrailingBytes(usize),
    /// A list longer than [`MAX_LISTED`].
    ListTooLong(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => write!(f, "empty frame"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported wire version {v}"),
            DecodeError::Malformed => write!(f, "malformed message"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} trailing bytes after message"),
            DecodeError::ListTooLong(n) => write!(f, "list of {n} entries exceeds {MAX_LISTED}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Message {
    /// Version byte + postcard body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![WIRE_VERSION];
        // Serializing plain data into a Vec cannot fail (postcard errors only on
        // unsupported types or full fixed buffers).
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if version != WIRE_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let (msg, rest): (Message, &[u8]) = postcard::take_from_bytes(body).map_err(|_| DecodeError::Malformed)?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len()));
        }
        let longest = match &msg {
            Message::StabilizeReply { successors, .. } => successors.len(),
            Message::Leave { successors, .. } => successors.len(),
            _ => 0,
        };
        if longest > MAX_LISTED {
            return Err(DecodeError::ListTooLong(longest));
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRng;

    fn samples() -> Vec<Message> {
        let d = Did::from_u64;
        vec![
            Message::FindSuccessor(FindSuccessor { tag: 1, key: Did::MAX, hops: 3, check: Check::Owner, join: true }),
            Message::HopAck { tag: 99 },
            Message::Found { tag: 5, key: d(7), owner: d(8), hops: 4 },
            Message::Failed { tag: 5, key: d(7), reason: FailReason::HopLimitExceeded },
            Message::Stabilize { tag: 3 },
            Message::StabilizeReply { tag: 3, predecessor: Some(d(2)), successors: vec![d(3), d(4)] },
            Message::Ping { tag: 4 },
            Message::Pong { tag: 4, predecessor: None },
            Message::Between { node: d(6) },
            Message::Leave { predecessor: None, successors: vec![d(9)] },
        ]
    }

    #[test]
    fn round_trip() {
        for m in samples() {
            assert_eq!(Message::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert_eq!(Message::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Message::decode(&[9, 0]), Err(DecodeError::UnsupportedVersion(9)));
        assert_eq!(Message::decode(&[1, 0]), Err(DecodeError::UnsupportedVersion(1)), "version 1 answered origins directly");
        assert_eq!(Message::decode(&[WIRE_VERSION, 200]), Err(DecodeError::Malformed));
        let mut b = Message::HopAck { tag: 1 }.encode();
        b.push(0);
        assert_eq!(Message::decode(&b), Err(DecodeError::TrailingBytes(1)));
        let long = Message::Leave { predecessor: None, successors: vec![Did::ZERO; MAX_LISTED + 1] };
        assert_eq!(Message::decode(&long.encode()), Err(DecodeError::ListTooLong(MAX_LISTED + 1)));
        // every truncation of every sample is an error, not a panic
        for m in samples() {
            let b = m.encode();
            for cut in 0..b.len() {
                assert!(Message::decode(&b[..cut]).is_err());
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = SeededRng::new(42);
        let mut ok = 0;
        for i in 0..200_000 {
            let len = rng.below(64) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if i % 2 == 0 && !b.is_empty() {
                b[0] = WIRE_VERSION; // get past the version check half the time
            }
            if let Ok(m) = Message::decode(&b) {
                ok += 1;
                // anything accepted re-encodes to the same bytes (canonical codec)
                assert_eq!(Message::decode(&m.encode()), Ok(m));
            }
        }
        assert!(ok > 0, "some random frames should parse");
    }
}
