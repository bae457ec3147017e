//! Routed frames: the envelope and its codec.
//!
//! A message to a DID travels as one or more frames. The first (`seq` 0) carries the
//! signed [`Header`] and the first piece of the body; the rest carry further pieces. Every
//! frame repeats the routing fields (origin, destination, transaction id, hop limit, relay
//! path) so relays forward pieces without reassembling anything.
//!
//! On the link a routed frame is the tag byte [`ROUTED_TAG`] followed by the postcard
//! encoding of [`Frame`]. Postcard (varints, no field names, no padding) keeps a frame of
//! an empty sealed message at 192 bytes with a session reference; the numbers are in the
//! README.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{CompactSig, Delegation};
use crate::Did;

/// First byte of a routed frame on the link (ring maintenance frames start with 1).
pub const ROUTED_TAG: u8 = 0x12;
/// Most relays a frame may list.
pub const MAX_PATH: usize = 64;
const SIGN_DOMAIN: &[u8] = b"rings-node/envelope/v2\0";

/// What a message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Kind {
    /// Opens a session with the destination: carries the origin's delegation.
    Hello,
    /// The answer to `Hello`: carries the destination's delegation.
    HelloReply,
    /// Application data, sealed with the key the origin's and destination's sessions share.
    Data,
    /// A routing or delivery failure reported to the origin of a message (body:
    /// [`ErrorBody`]).
    Error,
}

/// How the origin proves its session: the whole delegation, or a reference to one the
/// destination already holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionProof {
    Full(Delegation),
    Known(u64),
}

/// How a message proves its origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Auth {
    /// ECDSA by the origin's session key over the [`Signing`] digest, body included
    /// (`Hello`, `HelloReply`, `Error`: messages that open sessions or report faults).
    Signature(CompactSig),
    /// `Data`: the body is sealed under the key the origin's session shares with the
    /// destination's session whose fingerprint is `to` (see
    /// [`crate::identity::pair`]), with the random `nonce`; the body's AEAD tag covers
    /// the [`Signing`] digest of the header as associated data, and the body; `head`
    /// authenticates that digest alone, so the first frame is checked on arrival.
    Pair {
        to: u64,
        #[serde(with = "crate::byte_array")]
        nonce: [u8; 24],
        #[serde(with = "crate::byte_array")]
        head: [u8; 16],
    },
}

/// The authenticated part of a message, in its first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub network: u32,
    pub session: SessionProof,
    /// Milliseconds since the Unix epoch (the driver's clock).
    pub issued_at: u64,
    /// Lifetime after `issued_at`, in milliseconds.
    pub ttl: u32,
    pub kind: Kind,
    /// Total body bytes over all frames.
    pub body_len: u32,
    /// Number of frames, this one included.
    pub frames: u32,
    pub auth: Auth,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part {
    Head(Header),
    More,
}

/// One routed frame. Messages with a signature (hellos, error reports) travel in one
/// frame; only sealed data, whose header is authenticated on arrival, spans several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub origin: Did,
    pub dest: Did,
    pub tx: u64,
    /// Signed in the header; relays stop a frame whose path reached it.
    pub hop_limit: u8,
    /// Nodes that relayed the frame so far (the origin is not listed); each sender
    /// appends itself. Not signed: see the threat model in the README.
    pub path: Vec<Did>,
    pub seq: u32,
    pub part: Part,
    #[serde(with = "serde_bytes")]
    pub piece: Vec<u8>,
}

/// Why a link frame could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameError {
    Empty,
    /// The tag byte is not one this version speaks.
    UnsupportedVersion(u8),
    /// Ends early or holds an invalid value.
    Malformed,
    TrailingBytes,
    PathTooLong,
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.piece.len() + 96 + 20 * self.path.len());
        out.push(ROUTED_TAG);
        // Serializing plain data into a Vec does not fail.
        postcard::to_extend(self, out).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        match bytes.first() {
            None => return Err(FrameError::Empty),
            Some(&ROUTED_TAG) => {}
            Some(&v) => return Err(FrameError::UnsupportedVersion(v)),
        }
        let (frame, rest): (Frame, _) = postcard::take_from_bytes(&bytes[1..]).map_err(|_| FrameError::Malformed)?;
        if !rest.is_empty() {
            return Err(FrameError::TrailingBytes);
        }
        if frame.path.len() > MAX_PATH {
            return Err(FrameError::PathTooLong);
        }
        Ok(frame)
    }

    /// The peer that handed this frame over: the last relay on its path, or its origin
    /// (checked against the link it came in on before anything else).
    pub fn handed_by(&self) -> Did {
        self.path.last().copied().unwrap_or(self.origin)
    }

    pub fn header(&self) -> Option<&Header> {
        match &self.part {
            Part::Head(h) => Some(h),
            Part::More => None,
        }
    }
}

/// The digest that authenticates a message: a domain tag, every field that must not
/// change in flight and the origin session's fingerprint; for a signed message also the
/// whole body (a sealed body is covered by its AEAD tag instead).
pub struct Signing(Sha256);

impl Signing {
    pub fn start(origin: Did, dest: Did, tx: u64, hop_limit: u8, h: &Header, fingerprint: u64) -> Signing {
        let mut s = Sha256::new();
        s.update(SIGN_DOMAIN);
        s.update(h.network.to_be_bytes());
        s.update(tx.to_be_bytes());
        s.update(origin.to_bytes());
        s.update(dest.to_bytes());
        s.update(fingerprint.to_be_bytes());
        s.update(h.issued_at.to_be_bytes());
        s.update(h.ttl.to_be_bytes());
        s.update([hop_limit, kind_byte(h.kind)]);
        s.update(h.body_len.to_be_bytes());
        s.update(h.frames.to_be_bytes());
        match h.auth {
            Auth::Signature(_) => s.update([0]),
            Auth::Pair { to, nonce, .. } => {
                s.update([1]);
                s.update(to.to_be_bytes());
                s.update(nonce);
            }
        }
        Signing(s)
    }

    pub fn body(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl core::fmt::Debug for Signing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Signing")
    }
}

fn kind_byte(k: Kind) -> u8 {
    match k {
        Kind::Hello => 1,
        Kind::HelloReply => 2,
        Kind::Data => 3,
        Kind::Error => 4,
    }
}

/// The body of a [`Kind::Error`] message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The failed message.
    pub tx: u64,
    /// Its destination.
    pub dest: Did,
    pub reason: super::RouteError,
}
