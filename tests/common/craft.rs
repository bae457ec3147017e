//! Messages built by hand for the attack tests: what an honest sender would put on the
//! wire, unless a field is changed before or after signing or sealing.
#![allow(dead_code)]

use rings_node::identity::pair::{PairKeys, TAG_LEN};
use rings_node::identity::Session;
use rings_node::wire::frame::{Auth, Frame, Header, Kind, Part, SessionProof, Signing};
use rings_node::Did;

/// A message built by hand: what an honest sender would put on the wire, unless a
/// field is changed before or after signing or sealing.
#[derive(Clone)]
pub struct Craft {
    pub signer: Session,
    /// Seal the body under these keys for the destination session `.1` (data);
    /// `None`: sign (hellos, error reports).
    pub seal: Option<(PairKeys, u64)>,
    pub proof: SessionProof,
    pub origin: Did,
    pub dest: Did,
    pub tx: u64,
    pub network: u32,
    pub issued_at: u64,
    pub ttl: u32,
    pub kind: Kind,
    pub hop_limit: u8,
    pub body: Vec<u8>,
    pub piece: usize,
    pub path: Vec<Did>,
    pub nonce: [u8; 24],
}

/// An application body as a node seals it: its kind byte, then the bytes.
pub fn app_body(bytes: &[u8]) -> Vec<u8> {
    let mut b = vec![rings_node::node::APP_BODY];
    b.extend_from_slice(bytes);
    b
}

impl Craft {
    pub fn frames(&self) -> Vec<Frame> {
        let mut body = self.body.clone();
        let wire_len = body.len() + if self.seal.is_some() { TAG_LEN } else { 0 };
        let mut header = Header {
            network: self.network,
            session: self.proof.clone(),
            issued_at: self.issued_at,
            ttl: self.ttl,
            kind: self.kind,
            body_len: wire_len as u32,
            frames: wire_len.div_ceil(self.piece).max(1) as u32,
            auth: match &self.seal {
                Some((_, to)) => Auth::Pair { to: *to, nonce: self.nonce, head: [0; 16] },
                None => Auth::Signature(Default::default()),
            },
        };
        let fp = match &self.proof {
            SessionProof::Full(d) => d.fingerprint(),
            SessionProof::Known(fp) => *fp,
        };
        let mut s = Signing::start(self.origin, self.dest, self.tx, self.hop_limit, &header, fp);
        match (&self.seal, &mut header.auth) {
            (Some((keys, _)), Auth::Pair { nonce, head, .. }) => {
                let digest = s.finish();
                *head = keys.head_tag(nonce, &digest);
                keys.seal(nonce, &digest, &mut body);
            }
            _ => {
                s.body(&body);
                header.auth = Auth::Signature(self.signer.sign(&s.finish()));
            }
        }
        let pieces: Vec<&[u8]> = if body.is_empty() { vec![&[][..]] } else { body.chunks(self.piece).collect() };
        pieces
            .iter()
            .enumerate()
            .map(|(i, p)| Frame {
                origin: self.origin,
                dest: self.dest,
                tx: self.tx,
                hop_limit: self.hop_limit,
                path: self.path.clone(),
                seq: i as u32,
                part: if i == 0 { Part::Head(header.clone()) } else { Part::More },
                piece: p.to_vec(),
            })
            .collect()
    }
}
