//! Fixed-size signature and key encodings (serde-friendly: arrays of 32 plus a byte).

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// A secp256k1 signature with its recovery byte, in Ethereum's `r ‖ s ‖ v` layout
/// (v = 27 or 28 when produced here; 0 or 1 is accepted too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecoverableSig {
    #[serde(with = "crate::byte_array")]
    pub r: [u8; 32],
    #[serde(with = "crate::byte_array")]
    pub s: [u8; 32],
    pub v: u8,
}

impl RecoverableSig {
    pub(crate) fn sign(key: &SigningKey, digest: &[u8; 32]) -> RecoverableSig {
        // RFC 6979 nonces, low-s: the same bytes as every Ethereum tool.
        match key.sign_prehash_recoverable(digest) {
            Ok((sig, rec)) => {
                let b = sig.to_bytes();
                let mut out = RecoverableSig { v: 27 + rec.to_byte(), ..Default::default() };
                out.r.copy_from_slice(&b[..32]);
                out.s.copy_from_slice(&b[32..]);
                out
            }
            // Only for a digest that makes the nonce invalid (probability ~2^-128).
            Err(_) => RecoverableSig::default(),
        }
    }

    /// From 65 bytes `r ‖ s ‖ v`.
    pub fn from_slice(b: &[u8]) -> Option<RecoverableSig> {
        if b.len() != 65 {
            return None;
        }
        let mut out = RecoverableSig { v: b[64], ..Default::default() };
        out.r.copy_from_slice(&b[..32]);
        out.s.copy_from_slice(&b[32..64]);
        Some(out)
    }

    pub fn to_bytes(&self) -> [u8; 65] {
        let mut b = [0u8; 65];
        b[..32].copy_from_slice(&self.r);
        b[32..64].copy_from_slice(&self.s);
        b[64] = self.v;
        b
    }

    /// The key that signed `digest`, if the signature is well formed.
    pub fn recover(&self, digest: &[u8; 32]) -> Option<VerifyingKey> {
        let parity = match self.v {
            0 | 27 => 0,
            1 | 28 => 1,
            _ => return None,
        };
        let sig = Signature::from_scalars(self.r, self.s).ok()?;
        // Wallets sign low-s; accept a high-s form too by normalizing (flips the parity).
        let (sig, parity) = match sig.normalize_s() {
            Some(n) => (n, parity ^ 1),
            None => (sig, parity),
        };
        let rec = RecoveryId::from_byte(parity)?;
        VerifyingKey::recover_from_prehash(digest, &sig, rec).ok()
    }
}

/// A plain secp256k1 signature `r ‖ s` (64 bytes), verified against a known key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CompactSig {
    #[serde(with = "crate::byte_array")]
    pub r: [u8; 32],
    #[serde(with = "crate::byte_array")]
    pub s: [u8; 32],
}

impl CompactSig {
    pub(crate) fn sign(key: &SigningKey, digest: &[u8; 32]) -> CompactSig {
        let r = RecoverableSig::sign(key, digest);
        CompactSig { r: r.r, s: r.s }
    }

    pub fn verify(&self, key: &VerifyingKey, digest: &[u8; 32]) -> bool {
        match Signature::from_scalars(self.r, self.s) {
            Ok(sig) => key.verify_prehash(digest, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// A compressed SEC1 public key (33 bytes: parity prefix and x).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKeyBytes {
    pub prefix: u8,
    #[serde(with = "crate::byte_array")]
    pub x: [u8; 32],
}

impl PublicKeyBytes {
    pub fn of(key: &VerifyingKey) -> PublicKeyBytes {
        let p = key.to_encoded_point(true);
        let b = p.as_bytes();
        let mut x = [0u8; 32];
        x.copy_from_slice(&b[1..33]);
        PublicKeyBytes { prefix: b[0], x }
    }

    pub fn to_bytes(&self) -> [u8; 33] {
        let mut b = [0u8; 33];
        b[0] = self.prefix;
        b[1..].copy_from_slice(&self.x);
        b
    }

    /// The key, if these bytes are a point on the curve.
    pub fn to_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_sec1_bytes(&self.to_bytes()).ok()
    }
}
