//! ECIES on secp256k1: encrypt to a session public key.
//!
//! `seal` draws an ephemeral key, derives a one-time key from the ECDH secret with
//! HKDF-SHA256 (salt: both public keys; info: a domain tag) and encrypts with
//! ChaCha20-Poly1305 under the caller's associated data. Output layout:
//! `ephemeral public key (33, compressed) ‖ ciphertext ‖ tag (16)`. The key is used for
//! one message only, so the nonce is derived with it.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce, Tag};
use hkdf::Hkdf;
use k256::ecdsa::{SigningKey, VerifyingKey};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::PublicKey;
use rand_chacha::rand_core::{CryptoRng, RngCore};
use sha2::Sha256;

/// Bytes `seal` adds to a plaintext.
pub const OVERHEAD: usize = 33 + 16;
const INFO: &[u8] = b"rings-node/ecies/v1 chacha20poly1305";

/// Why a sealed message does not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpenError {
    /// Shorter than the fixed overhead.
    Truncated,
    /// The ephemeral key is not a curve point.
    BadEphemeralKey,
    /// Authentication failed: wrong recipient, wrong associated data, or altered bytes.
    Unauthentic,
}

fn cipher(shared: &[u8], eph: &[u8; 33], recipient: &[u8]) -> (ChaCha20Poly1305, Nonce) {
    let mut salt = [0u8; 66];
    salt[..33].copy_from_slice(eph);
    salt[33..].copy_from_slice(recipient);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
    let (mut key, mut nonce) = ([0u8; 32], [0u8; 12]);
    // 44 bytes is far below HKDF-SHA256's limit of 255 × 32.
    hk.expand(INFO, &mut key).unwrap_or_default();
    hk.expand(b"rings-node/ecies/v1 nonce", &mut nonce).unwrap_or_default();
    (ChaCha20Poly1305::new(&Key::from(key)), Nonce::from(nonce))
}

fn compressed(key: &PublicKey) -> [u8; 33] {
    let mut b = [0u8; 33];
    b.copy_from_slice(key.to_encoded_point(true).as_bytes());
    b
}

/// Encrypts `plaintext` (in place, then framed) for the holder of `recipient`'s secret.
pub fn seal(rng: &mut (impl CryptoRng + RngCore), recipient: &VerifyingKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let eph = k256::ecdh::EphemeralSecret::random(rng);
    let eph_pub = compressed(&eph.public_key());
    let recipient_pk = PublicKey::from(recipient);
    let shared = eph.diffie_hellman(&recipient_pk);
    let (c, nonce) = cipher(shared.raw_secret_bytes(), &eph_pub, &compressed(&recipient_pk));
    let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
    out.extend_from_slice(&eph_pub);
    out.extend_from_slice(plaintext);
    // ChaCha20-Poly1305 accepts up to 256 GiB; messages are capped far below.
    let tag = c.encrypt_in_place_detached(&nonce, aad, &mut out[33..]).unwrap_or_default();
    out.extend_from_slice(&tag);
    out
}

/// Decrypts what [`seal`] produced for `secret`'s public key, under the same `aad`.
pub fn open(secret: &SigningKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < OVERHEAD {
        return Err(OpenError::Truncated);
    }
    let mut eph_pub = [0u8; 33];
    eph_pub.copy_from_slice(&sealed[..33]);
    let eph = PublicKey::from_sec1_bytes(&eph_pub).map_err(|_| OpenError::BadEphemeralKey)?;
    let shared = k256::ecdh::diffie_hellman(secret.as_nonzero_scalar(), eph.as_affine());
    let me = PublicKey::from(secret.verifying_key());
    let (c, nonce) = cipher(shared.raw_secret_bytes(), &eph_pub, &compressed(&me));
    let body = &sealed[33..sealed.len() - 16];
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&sealed[sealed.len() - 16..]);
    let tag = Tag::from(tag);
    let mut out = body.to_vec();
    c.decrypt_in_place_detached(&nonce, aad, &mut out, &tag).map_err(|_| OpenError::Unauthentic)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn round_trip_and_every_fault_is_caught() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let bob = SigningKey::random(&mut rng);
        let eve = SigningKey::random(&mut rng);
        for len in [0usize, 1, 100, 70_000] {
            let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed = seal(&mut rng, bob.verifying_key(), b"hdr", &msg);
            assert_eq!(sealed.len(), len + OVERHEAD);
            if len >= 16 {
                assert_ne!(&sealed[33..49], &msg[..16], "ciphertext is not the plaintext");
            }
            assert_eq!(open(&bob, b"hdr", &sealed), Ok(msg.clone()));
            assert_eq!(open(&eve, b"hdr", &sealed), Err(OpenError::Unauthentic));
            assert_eq!(open(&bob, b"other", &sealed), Err(OpenError::Unauthentic));
            let mut flipped = sealed.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert_eq!(open(&bob, b"hdr", &flipped), Err(OpenError::Unauthentic));
            assert_eq!(open(&bob, b"hdr", &sealed[..OVERHEAD - 1]), Err(OpenError::Truncated));
        }
        let mut bad = seal(&mut rng, bob.verifying_key(), b"", b"x");
        bad[0] = 7; // not a SEC1 prefix
        assert_eq!(open(&bob, b"", &bad), Err(OpenError::BadEphemeralKey));
    }

    #[test]
    fn two_seals_of_one_message_differ() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let bob = SigningKey::random(&mut rng);
        let a = seal(&mut rng, bob.verifying_key(), b"", b"same");
        let b = seal(&mut rng, bob.verifying_key(), b"", b"same");
        assert_ne!(a, b);
    }
}
