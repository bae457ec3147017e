//! What link managers say to each other through the ring to open a link: offers, answers
//! and late candidates. They travel as routed messages, so the wire has already checked
//! who sent them (signed by the origin's session, sealed to ours); only their sizes are
//! checked here.

/// Largest session description accepted (an SDP with many candidates is a few KB).
pub const MAX_SDP: usize = 32 * 1024;
/// Largest candidate line, and media id.
pub const MAX_CANDIDATE: usize = 1024;
pub const MAX_MID: usize = 64;

/// An ICE candidate, as the browser's `RTCIceCandidate` (or str0m's) describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub candidate: String,
    pub mid: Option<String>,
    pub mline: Option<u16>,
}

/// Names one negotiation: the offerer's number for it (the wire vouches for who the
/// offerer is, so the number needs no secrecy, only to differ from its earlier ones).
pub type Negotiation = u64;

#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Tag byte, the negotiation (8 bytes, little endian), then an SDP as the rest, or a
    /// candidate as length-prefixed (u16) fields. Written by hand: serde's derive for
    /// these three shapes cost the wasm more than this does.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        let (tag, id) = match self {
            LinkMsg::Offer { id, .. } => (0, id),
            LinkMsg::Answer { id, .. } => (1, id),
            LinkMsg::Candidate { id, .. } => (2, id),
        };
        out.push(tag);
        out.extend_from_slice(&id.to_le_bytes());
        let field = |out: &mut Vec<u8>, s: &str| {
            let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(b);
        };
        match self {
            LinkMsg::Offer { sdp, .. } | LinkMsg::Answer { sdp, .. } => out.extend_from_slice(sdp.as_bytes()),
            LinkMsg::Candidate { candidate: c, .. } => {
                field(&mut out, &c.candidate);
                match &c.mid {
                    Some(m) => {
                        out.push(1);
                        field(&mut out, m);
                    }
                    None => out.push(0),
                }
                match c.mline {
                    Some(l) => {
                        out.push(1);
                        out.extend_from_slice(&l.to_le_bytes());
                    }
                    None => out.push(0),
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<LinkMsg, LinkMsgError> {
        if bytes.len() > MAX_SDP + 64 {
            return Err(LinkMsgError::TooLarge);
        }
        let mut r = Reader(bytes);
        let tag = r.take(1)?[0];
        let id = u64::from_le_bytes(r.take(8)?.try_into().map_err(|_| LinkMsgError::Malformed)?);
        let m = match tag {
            0 | 1 => {
                let sdp = r.text(r.0.len())?;
                if sdp.len() > MAX_SDP {
                    return Err(LinkMsgError::TooLarge);
                }
                if tag == 0 {
                    LinkMsg::Offer { id, sdp }
                } else {
                    LinkMsg::Answer { id, sdp }
                }
            }
            2 => {
                let candidate = r.field(MAX_CANDIDATE)?;
                let mid = if r.flag()? { Some(r.field(MAX_MID)?) } else { None };
                let mline = if r.flag()? { Some(u16::from_le_bytes([r.take(1)?[0], r.take(1)?[0]])) } else { None };
                LinkMsg::Candidate { id, candidate: Candidate { candidate, mid, mline } }
            }
            _ => return Err(LinkMsgError::Malformed),
        };
        if !r.0.is_empty() {
            return Err(LinkMsgError::Malformed);
        }
        Ok(m)
    }

    pub fn negotiation(&self) -> Negotiation {
        match self {
            LinkMsg::Offer { id, .. } | LinkMsg::Answer { id, .. } | LinkMsg::Candidate { id, .. } => *id,
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LinkMsgError> {
        if self.0.len() < n {
            return Err(LinkMsgError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn text(&mut self, n: usize) -> Result<String, LinkMsgError> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| LinkMsgError::Malformed)
    }
    fn flag(&mut self) -> Result<bool, LinkMsgError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(LinkMsgError::Malformed),
        }
    }
    /// A u16-length-prefixed string of at most `max` bytes.
    fn field(&mut self, max: usize) -> Result<String, LinkMsgError> {
        let len = u16::from_le_bytes([self.take(1)?[0], self.take(1)?[0]]) as usize;
        if len > max {
            return Err(LinkMsgError::TooLarge);
        }
        self.text(len)
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
        // Trailing bytes after a candidate, a bad flag, bad UTF-8.
        let mut t = LinkMsg::Candidate { id: 1, candidate: cand() }.encode();
        t.push(0);
        assert_eq!(LinkMsg::decode(&t), Err(LinkMsgError::Malformed));
        assert_eq!(LinkMsg::decode(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0xff]), Err(LinkMsgError::Malformed));
    }

    fn cand() -> Candidate {
        Candidate { candidate: "candidate:1".into(), mid: None, mline: None }
    }

    /// Random bytes and every truncation of real messages: an error, never a panic.
    #[test]
    fn random_and_truncated_input_is_refused_not_a_panic() {
        let mut rng = crate::rng::SeededRng::new(7);
        for _ in 0..100_000 {
            let len = rng.below(48) as usize;
            let b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = LinkMsg::decode(&b);
        }
        let c = Candidate { candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(), mid: Some("0".into()), mline: Some(3) };
        let full = LinkMsg::Candidate { id: 9, candidate: c }.encode();
        for n in 0..full.len() {
            assert!(LinkMsg::decode(&full[..n]).is_err(), "{n}");
        }
    }
}
