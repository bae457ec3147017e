//! Signed connection offers and answers: what two peers exchange to open a WebRTC link.
//!
//! A [`Signal`] carries the sender's delegation, its session description (SDP) and a
//! signature by its session key over both, bound to the network id. An answer also names
//! the digest of the offer it answers, so it cannot be replayed to another offer. Over a
//! manual channel (copy-paste, QR code, HTTP) a signal travels as text:
//! `rings1.` + base64url of its postcard encoding. Through the ring it travels as the body
//! of a routed message (already signed and sealed by the wire).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{CompactSig, Delegation, IdentityError, Session};
use crate::time::{Duration, Instant};
use crate::Did;

const DOMAIN: &[u8] = b"rings-node/signal/v1\0";
const TEXT_PREFIX: &str = "rings1.";
/// Largest signal accepted (an SDP with many candidates is a few KB).
pub const MAX_SIGNAL: usize = 32 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalKind {
    Offer,
    /// Answers the offer whose [`Signal::digest`] it names.
    Answer(#[serde(with = "crate::byte_array")] [u8; 32]),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    pub kind: SignalKind,
    pub delegation: Delegation,
    pub sdp: String,
    /// Milliseconds since the Unix epoch.
    pub issued_at: u64,
    /// Random, so two offers with the same SDP differ.
    pub nonce: u64,
    pub signature: CompactSig,
}

/// Why a signal was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalError {
    /// Not `rings1.` + base64url, or not a signal inside.
    Malformed,
    TooLarge,
    /// The delegation does not hold (account signature, network, validity).
    Delegation(IdentityError),
    /// The session signature over the signal does not verify.
    BadSignature,
    /// Older than the allowed age or from the future.
    Stale,
    /// An offer where an answer was expected, or the reverse.
    WrongKind,
    /// An answer to another offer.
    NotOurOffer,
}

impl core::fmt::Display for SignalError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SignalError::Malformed => f.write_str("malformed signal: expected the text made by createOffer / answerOffer"),
            SignalError::TooLarge => write!(f, "signal larger than {MAX_SIGNAL} bytes"),
            SignalError::Delegation(e) => write!(f, "signal's delegation refused: {e}"),
            SignalError::BadSignature => f.write_str("signal's signature does not verify"),
            SignalError::Stale => f.write_str("signal expired or issued in the future"),
            SignalError::WrongKind => f.write_str("an offer where an answer was expected, or the reverse"),
            SignalError::NotOurOffer => f.write_str("answer to another offer"),
        }
    }
}

impl Signal {
    /// Signs `sdp` as an offer or answer from `session`.
    pub fn new(session: &Session, kind: SignalKind, sdp: String, now: Instant, nonce: u64) -> Signal {
        let mut s = Signal {
            kind,
            delegation: session.delegation().clone(),
            sdp,
            issued_at: now.as_millis(),
            nonce,
            signature: CompactSig::default(),
        };
        s.signature = session.sign(&s.signing_digest());
        s
    }

    fn signing_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.delegation.network.to_be_bytes());
        match self.kind {
            SignalKind::Offer => h.update([0]),
            SignalKind::Answer(d) => {
                h.update([1]);
                h.update(d);
            }
        }
        h.update(self.delegation.fingerprint().to_be_bytes());
        h.update(self.issued_at.to_be_bytes());
        h.update(self.nonce.to_be_bytes());
        h.update((self.sdp.len() as u64).to_be_bytes());
        h.update(self.sdp.as_bytes());
        h.finalize().into()
    }

    /// Names this signal (answers refer to their offer by it).
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }

    /// The sender's DID, if the delegation and signature hold on `network` at `now`, and
    /// the signal is younger than `max_age` (with `skew` tolerance).
    pub fn verify(&self, network: u32, now: Instant, max_age: Duration, skew: Duration) -> Result<Did, SignalError> {
        let key = self.delegation.verify(network, now, skew).map_err(SignalError::Delegation)?;
        let (t, now) = (self.issued_at, now.as_millis());
        if t > now.saturating_add(skew.as_millis()) || t.saturating_add(max_age.as_millis() + skew.as_millis()) < now {
            return Err(SignalError::Stale);
        }
        if !self.signature.verify(&key, &self.signing_digest()) {
            return Err(SignalError::BadSignature);
        }
        Ok(self.delegation.account)
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default() // to a Vec: cannot fail
    }

    pub fn decode(b: &[u8]) -> Result<Signal, SignalError> {
        if b.len() > MAX_SIGNAL {
            return Err(SignalError::TooLarge);
        }
        match postcard::take_from_bytes::<Signal>(b) {
            Ok((s, [])) => Ok(s),
            _ => Err(SignalError::Malformed),
        }
    }

    /// `rings1.` + base64url (no padding).
    pub fn to_text(&self) -> String {
        let mut s = String::from(TEXT_PREFIX);
        s.push_str(&base64url_encode(&self.encode()));
        s
    }

    pub fn from_text(text: &str) -> Result<Signal, SignalError> {
        let body = text.trim().strip_prefix(TEXT_PREFIX).ok_or(SignalError::Malformed)?;
        if body.len() > MAX_SIGNAL * 4 / 3 + 4 {
            return Err(SignalError::TooLarge);
        }
        Signal::decode(&base64url_decode(body).ok_or(SignalError::Malformed)?)
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| B64.iter().position(|&x| x == c).map(|p| p as u32);
    let bytes = s.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for c in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &ch) in c.iter().enumerate() {
            n |= val(ch)? << (18 - 6 * i);
        }
        let keep = c.len() - 1;
        let full = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Unused low bits must be zero (one text per byte string).
        if full[keep..].iter().any(|&x| x != 0) {
            return None;
        }
        out.extend_from_slice(&full[..keep]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{AccountKind, LocalAccount};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const T: u64 = 1_700_000_000_000;

    fn session(seed: u64, network: u32) -> Session {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let acct = LocalAccount::generate(&mut rng);
        Session::with_local_account(&mut rng, &acct, AccountKind::Eip191, network, Instant(T), Duration::from_secs(3600))
    }

    #[test]
    fn base64url_round_trips_and_refuses_junk() {
        for n in 0..70u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64url_decode(&base64url_encode(&v)).as_deref(), Some(&v[..]));
        }
        assert_eq!(base64url_encode(b"foob"), "Zm9vYg");
        assert_eq!(base64url_decode("Zm9vYh"), None, "non-zero trailing bits");
        assert_eq!(base64url_decode("Zm9v+g"), None, "not the url alphabet");
        assert_eq!(base64url_decode("Z"), None);
    }

    #[test]
    fn offers_and_answers_verify_and_refuse_what_they_should() {
        let (a, b) = (session(1, 1), session(2, 1));
        let now = Instant(T + 1000);
        let age = Duration::from_secs(300);
        let skew = Duration::from_secs(30);
        let offer = Signal::new(&a, SignalKind::Offer, "v=0 offer".into(), now, 7);
        let text = offer.to_text();
        assert!(text.starts_with("rings1."));
        let got = Signal::from_text(&text).unwrap();
        assert_eq!(got, offer);
        assert_eq!(got.verify(1, now, age, skew), Ok(a.did()));
        assert_eq!(got.verify(2, now, age, skew), Err(SignalError::Delegation(IdentityError::WrongNetwork)));
        assert_eq!(got.verify(1, Instant(T + 1000 + 400_000), age, skew), Err(SignalError::Stale));
        let mut tampered = got.clone();
        tampered.sdp.push('x');
        assert_eq!(tampered.verify(1, now, age, skew), Err(SignalError::BadSignature));
        let mut stolen = Signal::new(&b, SignalKind::Offer, "v=0 offer".into(), now, 7);
        stolen.delegation = a.delegation().clone(); // B's signature, A's delegation
        assert_eq!(stolen.verify(1, now, age, skew), Err(SignalError::BadSignature));

        let answer = Signal::new(&b, SignalKind::Answer(offer.digest()), "v=0 answer".into(), now, 8);
        assert_eq!(answer.verify(1, now, age, skew), Ok(b.did()));
        assert_eq!(answer.kind, SignalKind::Answer(got.digest()));
        for junk in ["", "rings1.", "rings1.!!", "hello", "rings1.AAAA"] {
            assert!(Signal::from_text(junk).is_err(), "{junk}");
        }
        assert_eq!(Signal::decode(&vec![0; MAX_SIGNAL + 1]), Err(SignalError::TooLarge));
    }
}
