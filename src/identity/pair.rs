//! Pairwise keys: what two sessions share once each holds the other's delegation.
//!
//! One ECDH of this session's secret with the peer's session key, expanded with
//! HKDF-SHA256 into two XChaCha20-Poly1305 keys per direction, one for bodies and one
//! for headers (the HKDF info names the sender's and the receiver's session
//! fingerprints and the key's use, so no two of the four keys are the same).
//!
//! Nonces: every message carries a fresh 192-bit nonce drawn from the sender's CSPRNG,
//! which each process seeds with 256 bits from the platform's entropy source (the
//! browser's `crypto.getRandomValues`, the OS for the native node). A (key, nonce) pair
//! repeats with probability under 2⁻⁹⁶ after 2⁴⁸ messages over one pair of sessions,
//! and a node restarted with the same session draws new nonces, because its CSPRNG is
//! seeded anew. (Only the simulator seeds it deterministically.) The same nonce is used
//! under the header key and the body key, which are distinct keys.
//!
//! The header tag (an AEAD tag over the header digest, empty plaintext) lets the
//! receiver authenticate a message at its first frame, before it reserves anything for
//! the rest; the body's AEAD tag authenticates the header digest (associated data) and
//! the body. Only the two holders of the pair's secret can make either, and the
//! direction key says which of them did. So a data message needs no signature and no
//! per-message ECDH — one ECDH per pair of sessions replaces two elliptic-curve
//! operations per message.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{Key, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use k256::ecdsa::{SigningKey, VerifyingKey};
use sha2::Sha256;

/// Bytes sealing adds to a body (the Poly1305 tag).
pub const TAG_LEN: usize = 16;
/// Bytes of a message nonce.
pub const NONCE_LEN: usize = 24;
const INFO: &[u8] = b"rings-node/pair/v2 xchacha20poly1305 ";

/// The sealed bytes are not authentic under this pair's key: forged, altered, sealed
/// for another pair, or bound to other associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Unauthentic;

/// The two direction keys of a pair of sessions (see the module docs).
#[derive(Clone)]
pub struct PairKeys {
    send: XChaCha20Poly1305,
    recv: XChaCha20Poly1305,
    send_head: XChaCha20Poly1305,
    recv_head: XChaCha20Poly1305,
}

impl core::fmt::Debug for PairKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PairKeys(..)")
    }
}

fn direction(hk: &Hkdf<Sha256>, from: u64, to: u64, usage: &[u8; 4]) -> XChaCha20Poly1305 {
    let mut info = [0u8; INFO.len() + 20];
    info[..INFO.len()].copy_from_slice(INFO);
    info[INFO.len()..INFO.len() + 4].copy_from_slice(usage);
    info[INFO.len() + 4..INFO.len() + 12].copy_from_slice(&from.to_be_bytes());
    info[INFO.len() + 12..].copy_from_slice(&to.to_be_bytes());
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's output limit of 255 × 32.
    hk.expand(&info, &mut key).unwrap_or_default();
    XChaCha20Poly1305::new(&Key::from(key))
}

impl PairKeys {
    /// The keys session `mine` (fingerprint `my_fp`) shares with the session whose key
    /// is `theirs` (fingerprint `their_fp`). Both sides derive the same two keys, each
    /// side's `send` being the other's `recv`.
    pub fn derive(mine: &SigningKey, my_fp: u64, theirs: &VerifyingKey, their_fp: u64) -> PairKeys {
        let shared = k256::ecdh::diffie_hellman(mine.as_nonzero_scalar(), theirs.as_affine());
        let hk = Hkdf::<Sha256>::new(None, shared.raw_secret_bytes());
        PairKeys {
            send: direction(&hk, my_fp, their_fp, b"body"),
            recv: direction(&hk, their_fp, my_fp, b"body"),
            send_head: direction(&hk, my_fp, their_fp, b"head"),
            recv_head: direction(&hk, their_fp, my_fp, b"head"),
        }
    }

    /// Encrypts `body` in place for the peer and appends the tag.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], body: &mut Vec<u8>) {
        body.reserve_exact(TAG_LEN);
        // XChaCha20-Poly1305 accepts up to 256 GiB; messages are capped far below.
        let tag = self.send.encrypt_in_place_detached(&XNonce::from(*nonce), aad, body).unwrap_or_default();
        body.extend_from_slice(&tag);
    }

    /// The tag that authenticates a header digest `aad` to the peer.
    pub fn head_tag(&self, nonce: &[u8; NONCE_LEN], aad: &[u8]) -> [u8; TAG_LEN] {
        self.send_head.encrypt_in_place_detached(&XNonce::from(*nonce), aad, &mut []).unwrap_or_default().into()
    }

    /// Whether the peer made `tag` for header digest `aad`.
    pub fn check_head(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], tag: &[u8; TAG_LEN]) -> bool {
        self.recv_head.decrypt_in_place_detached(&XNonce::from(*nonce), aad, &mut [], &Tag::from(*tag)).is_ok()
    }

    /// Authenticates and decrypts (in place) what the peer sealed with [`PairKeys::seal`].
    pub fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], mut sealed: Vec<u8>) -> Result<Vec<u8>, Unauthentic> {
        let Some(at) = sealed.len().checked_sub(TAG_LEN) else {
            return Err(Unauthentic);
        };
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&sealed[at..]);
        let tag = Tag::from(tag);
        sealed.truncate(at);
        self.recv.decrypt_in_place_detached(&XNonce::from(*nonce), aad, &mut sealed, &tag).map_err(|_| Unauthentic)?;
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const N7: [u8; NONCE_LEN] = [7; NONCE_LEN];
    const N8: [u8; NONCE_LEN] = [8; NONCE_LEN];

    /// A's and B's pair (both ends), Eve posing as A to B, and B's pair with Eve.
    fn pairs(seed: u64) -> (PairKeys, PairKeys, PairKeys, PairKeys) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (a, b, eve) = (SigningKey::random(&mut rng), SigningKey::random(&mut rng), SigningKey::random(&mut rng));
        (
            PairKeys::derive(&a, 1, b.verifying_key(), 2),
            PairKeys::derive(&b, 2, a.verifying_key(), 1),
            PairKeys::derive(&eve, 1, b.verifying_key(), 2),
            PairKeys::derive(&b, 2, eve.verifying_key(), 1),
        )
    }

    #[test]
    fn headers_are_authenticated_apart_from_bodies() {
        let (ab, ba, eb, _) = pairs(10);
        let tag = ab.head_tag(&N7, b"hdr");
        assert!(ba.check_head(&N7, b"hdr", &tag));
        assert!(!ba.check_head(&N8, b"hdr", &tag), "another nonce");
        assert!(!ba.check_head(&N7, b"hdx", &tag), "another header");
        assert!(!ab.check_head(&N7, b"hdr", &tag), "reflected");
        assert!(!ba.check_head(&N7, b"hdr", &eb.head_tag(&N7, b"hdr")), "Eve posing as A");
        // A body's tag under the same nonce is not a header tag (distinct keys).
        let mut empty = Vec::new();
        ab.seal(&N7, b"hdr", &mut empty);
        assert!(!ba.check_head(&N7, b"hdr", empty[..TAG_LEN].try_into().unwrap()));
    }

    #[test]
    fn both_sides_agree_and_every_fault_is_caught() {
        let (ab, ba, eb, be) = pairs(9);
        for len in [0usize, 1, 100, 70_000] {
            let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut sealed = msg.clone();
            ab.seal(&N7, b"hdr", &mut sealed);
            assert_eq!(sealed.len(), len + TAG_LEN);
            if len >= 16 {
                assert_ne!(&sealed[..16], &msg[..16], "ciphertext is not the plaintext");
            }
            assert_eq!(ba.open(&N7, b"hdr", sealed.clone()), Ok(msg.clone()));
            // The sender cannot open its own direction: a reflected message fails.
            assert_eq!(ab.open(&N7, b"hdr", sealed.clone()), Err(Unauthentic));
            assert_eq!(be.open(&N7, b"hdr", sealed.clone()), Err(Unauthentic), "another pair");
            assert_eq!(ba.open(&N8, b"hdr", sealed.clone()), Err(Unauthentic), "another nonce");
            assert_eq!(ba.open(&N7, b"other", sealed.clone()), Err(Unauthentic), "other header");
            let mut flipped = sealed.clone();
            *flipped.last_mut().unwrap() ^= 1;
            assert_eq!(ba.open(&N7, b"hdr", flipped), Err(Unauthentic));
            let mut forged = msg.clone();
            eb.seal(&N7, b"hdr", &mut forged);
            assert_eq!(ba.open(&N7, b"hdr", forged), Err(Unauthentic), "Eve posing as A");
        }
        assert_eq!(ba.open(&N7, b"hdr", vec![0; TAG_LEN - 1]), Err(Unauthentic), "shorter than a tag");
    }
}
