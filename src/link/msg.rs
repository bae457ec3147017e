//! What link managers say to each other through the ring to open a link: offers, answers
//! and late candidates. They travel as routed messages, so the wire has already checked
//! who sent them (signed by the origin's session, sealed to ours); only their sizes are
//! checked here.

use serde::{Deserialize, Serialize};

/// Largest session description accepted (an SDP with many candidates is a few KB).
pub const MAX_SDP: usize = 32 * 1024;
/// Largest candidate line, and media id.
pub const MAX_CANDIDATE: usize = 1024;
pub const MAX_MID: usize = 64;

/// An ICE candidate, as the browser's `RTCIceCandidate` (or str0m's) describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub candidate: String,
    pub mid: Option<String>,
    pub mline: Option<u16>,
}

/// Names one negotiation: the offerer's number for it (the wire vouches for who the
/// offerer is, so the number needs no secrecy, only to differ from its earlier ones).
pub type Negotiation = u64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkMsg {
    Offer { id: Negotiation, sdp: String },
    Answer { id: Negotiation, sdp: String },
    Candidate { id: Negotiation, candidate: Candidate },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMsgError {
    Malformed,
    TooLarge,
}

impl LinkMsg {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<LinkMsg, LinkMsgError> {
        if bytes.len() > MAX_SDP + 64 {
            return Err(LinkMsgError::TooLarge);
        }
        let m: LinkMsg = postcard::from_bytes(bytes).map_err(|_| LinkMsgError::Malformed)?;
        let fits = match &m {
            LinkMsg::Offer { sdp, .. } | LinkMsg::Answer { sdp, .. } => sdp.len() <= MAX_SDP,
            LinkMsg::Candidate { candidate: c, .. } => {
                c.candidate.len() <= MAX_CANDIDATE && c.mid.as_ref().is_none_or(|m| m.len() <= MAX_MID)
            }
        };
        if fits {
            Ok(m)
        } else {
            Err(LinkMsgError::TooLarge)
        }
    }

    pub fn negotiation(&self) -> Negotiation {
        match self {
            LinkMsg::Offer { id, .. } | LinkMsg::Answer { id, .. } | LinkMsg::Candidate { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let c = Candidate { candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(), mid: Some("0".into()), mline: Some(0) };
        for m in [
            LinkMsg::Offer { id: 7, sdp: "v=0\r\n".into() },
            LinkMsg::Answer { id: 7, sdp: "v=0\r\n".into() },
            LinkMsg::Candidate { id: 7, candidate: c.clone() },
        ] {
            assert_eq!(LinkMsg::decode(&m.encode()), Ok(m.clone()));
            assert_eq!(m.negotiation(), 7);
        }
        let big = LinkMsg::Offer { id: 1, sdp: "a".repeat(MAX_SDP + 1) };
        assert_eq!(LinkMsg::decode(&big.encode()), Err(LinkMsgError::TooLarge));
        let long = LinkMsg::Candidate { id: 1, candidate: Candidate { candidate: "c".repeat(MAX_CANDIDATE + 1), ..c.clone() } };
        assert_eq!(LinkMsg::decode(&long.encode()), Err(LinkMsgError::TooLarge));
        let mid = LinkMsg::Candidate { id: 1, candidate: Candidate { mid: Some("m".repeat(MAX_MID + 1)), ..c } };
        assert_eq!(LinkMsg::decode(&mid.encode()), Err(LinkMsgError::TooLarge));
        assert_eq!(LinkMsg::decode(&[9, 9, 9]), Err(LinkMsgError::Malformed));
        assert_eq!(LinkMsg::decode(&[]), Err(LinkMsgError::Malformed));
    }
}
