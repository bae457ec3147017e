//! Pairwise keys: what two sessions share once each holds the other's delegation.
//!
//! One ECDH of this session's secret with the peer's session key, expanded with
//! HKDF-SHA256 into one ChaCha20-Poly1305 key per direction (the HKDF info names the
//! sender's and the receiver's session fingerprints, so the two directions never share
//! a key). A message is sealed under the sender→receiver key with the nonce
//! `0⁴ ‖ tx`; the receiver refuses a transaction id it has seen (replay cache), and an
//! origin draws ids from its CSPRNG, so a (key, nonce) pair is not reused in practice
//! (a collision needs ~2³² messages over one pair of sessions).
//!
//! The AEAD tag authenticates the associated data (the message header) and the body:
//! only the two holders of the pair's secret can make it, and the direction key says
//! which of them did. So a data message needs no signature and no per-message ECDH —
//! one ECDH per pair of sessions replaces two elliptic-curve operations per message.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce, Tag};
use hkdf::Hkdf;
use k256::ecdsa::{SigningKey, VerifyingKey};
use sha2::Sha256;

/// Bytes sealing adds to a body (the Poly1305 tag).
pub const TAG_LEN: usize = 16;
const INFO: &[u8] = b"rings-node/pair/v1 chacha20poly1305";

/// The sealed bytes are not authentic under this pair's key: forged, altered, sealed
/// for another pair, or bound to other associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Unauthentic;

/// The two direction keys of a pair of sessions (see the module docs).
#[derive(Clone)]
pub struct PairKeys {
    send: ChaCha20Poly1305,
    recv: ChaCha20Poly1305,
}

impl core::fmt::Debug for PairKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PairKeys(..)")
    }
}

fn direction(hk: &Hkdf<Sha256>, from: u64, to: u64) -> ChaCha20Poly1305 {
    let mut info = [0u8; INFO.len() + 16];
    info[..INFO.len()].copy_from_slice(INFO);
    info[INFO.len()..INFO.len() + 8].copy_from_slice(&from.to_be_bytes());
    info[INFO.len() + 8..].copy_from_slice(&to.to_be_bytes());
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's output limit of 255 × 32.
    hk.expand(&info, &mut key).unwrap_or_default();
    ChaCha20Poly1305::new(&Key::from(key))
}

fn nonce(tx: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&tx.to_be_bytes());
    Nonce::from(n)
}

impl PairKeys {
    /// The keys session `mine` (fingerprint `my_fp`) shares with the session whose key
    /// is `theirs` (fingerprint `their_fp`). Both sides derive the same two keys, each
    /// side's `send` being the other's `recv`.
    pub fn derive(mine: &SigningKey, my_fp: u64, theirs: &VerifyingKey, their_fp: u64) -> PairKeys {
        let shared = k256::ecdh::diffie_hellman(mine.as_nonzero_scalar(), theirs.as_affine());
        let hk = Hkdf::<Sha256>::new(None, shared.raw_secret_bytes());
        PairKeys { send: direction(&hk, my_fp, their_fp), recv: direction(&hk, their_fp, my_fp) }
    }

    /// Encrypts `body` in place for the peer and appends the tag.
    pub fn seal(&self, tx: u64, aad: &[u8], body: &mut Vec<u8>) {
        body.reserve_exact(TAG_LEN);
        // ChaCha20-Poly1305 accepts up to 256 GiB; messages are capped far below.
        let tag = self.send.encrypt_in_place_detached(&nonce(tx), aad, body).unwrap_or_default();
        body.extend_from_slice(&tag);
    }

    /// Authenticates and decrypts (in place) what the peer sealed with [`PairKeys::seal`].
    pub fn open(&self, tx: u64, aad: &[u8], mut sealed: Vec<u8>) -> Result<Vec<u8>, Unauthentic> {
        let Some(at) = sealed.len().checked_sub(TAG_LEN) else {
            return Err(Unauthentic);
        };
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&sealed[at..]);
        let tag = Tag::from(tag);
        sealed.truncate(at);
        self.recv.decrypt_in_place_detached(&nonce(tx), aad, &mut sealed, &tag).map_err(|_| Unauthentic)?;
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn both_sides_agree_and_every_fault_is_caught() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (a, b, eve) = (SigningKey::random(&mut rng), SigningKey::random(&mut rng), SigningKey::random(&mut rng));
        let ab = PairKeys::derive(&a, 1, b.verifying_key(), 2);
        let ba = PairKeys::derive(&b, 2, a.verifying_key(), 1);
        let eb = PairKeys::derive(&eve, 1, b.verifying_key(), 2);
        let be = PairKeys::derive(&b, 2, eve.verifying_key(), 1);
        for len in [0usize, 1, 100, 70_000] {
            let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut sealed = msg.clone();
            ab.seal(7, b"hdr", &mut sealed);
            assert_eq!(sealed.len(), len + TAG_LEN);
            if len >= 16 {
                assert_ne!(&sealed[..16], &msg[..16], "ciphertext is not the plaintext");
            }
            assert_eq!(ba.open(7, b"hdr", sealed.clone()), Ok(msg.clone()));
            // The sender cannot open its own direction: a reflected message fails.
            assert_eq!(ab.open(7, b"hdr", sealed.clone()), Err(Unauthentic));
            assert_eq!(be.open(7, b"hdr", sealed.clone()), Err(Unauthentic), "another pair");
            assert_eq!(ba.open(8, b"hdr", sealed.clone()), Err(Unauthentic), "another tx");
            assert_eq!(ba.open(7, b"other", sealed.clone()), Err(Unauthentic), "other header");
            let mut flipped = sealed.clone();
            *flipped.last_mut().unwrap() ^= 1;
            assert_eq!(ba.open(7, b"hdr", flipped), Err(Unauthentic));
            let mut forged = msg.clone();
            eb.seal(7, b"hdr", &mut forged);
            assert_eq!(ba.open(7, b"hdr", forged), Err(Unauthentic), "Eve posing as A");
        }
        assert_eq!(ba.open(7, b"hdr", vec![0; TAG_LEN - 1]), Err(Unauthentic), "shorter than a tag");
    }
}
