//! What a wire endpoint hands out: messages delivered, messages that did not arrive,
//! frames to send, and why a send was refused.

use super::RouteError;
use crate::Did;

/// A message delivered to this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub from: Did,
    pub tx: u64,
    pub body: Vec<u8>,
    /// Links the first frame crossed (1: a direct neighbour).
    pub hops: u8,
}

/// A message this node sent that did not arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undelivered {
    pub tx: u64,
    pub dest: Did,
    pub reason: RouteError,
    /// The node that found the fault (this node for local failures).
    pub reporter: Did,
}

/// What the endpoint asks of its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireOutput {
    Transmit { to: Did, frame: Vec<u8> },
    Delivered(Delivery),
    Undelivered(Undelivered),
}

/// Why `send` refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// This node has no session (a ring-only node).
    NoSession,
    TooLarge {
        len: usize,
        max: usize,
    },
    /// Too many messages already wait for a session with this destination.
    QueueFull,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::NoSession => write!(f, "this node has no session and cannot send messages"),
            SendError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            SendError::QueueFull => {
                write!(f, "too many messages wait for a session with this peer")
            }
        }
    }
}

impl std::error::Error for SendError {}
