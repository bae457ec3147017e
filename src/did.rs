//! Decentralized identifiers: 160-bit points on the identifier ring Z/2^160.
//!
//! A [`Did`] is at the same time an Ethereum-style address (for accounts) and a key on the
//! Chord ring (for resources). Arithmetic wraps modulo 2^160; "clockwise" means increasing.

use core::cmp::Ordering;
use core::fmt;

use sha1::Sha1;
use sha3::{Digest, Keccak256};

/// Number of bits in a [`Did`].
pub const DID_BITS: u32 = 160;

/// A point on the 160-bit identifier ring, stored as five big-endian 32-bit limbs
/// (limb 0 is the most significant), so the derived ordering is numeric order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Did([u32; 5]);

/// Why a string is not a valid DID.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DidError {
    /// The string does not start with `0x`.
    MissingPrefix,
    /// After `0x` there must be exactly 40 hex digits.
    BadLength { found: usize },
    /// A character that is not a hex digit, at this index of the whole string.
    NonHex { index: usize, found: char },
    /// Mixed-case input whose case does not match its EIP-55 checksum.
    BadChecksum,
}

impl fmt::Display for DidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DidError::MissingPrefix => write!(f, "DID must start with 0x"),
            DidError::BadLength { found } => {
                write!(f, "DID must have 40 hex digits after 0x, found {found}")
            }
            DidError::NonHex { index, found } => {
                write!(f, "DID has non-hex character {found:?} at index {index}")
            }
            DidError::BadChecksum => write!(f, "DID mixed-case checksum (EIP-55) does not match"),
        }
    }
}

impl std::error::Error for DidError {}

impl Did {
    /// The point 0.
    pub const ZERO: Did = Did([0; 5]);
    /// The point 2^160 - 1.
    pub const MAX: Did = Did([u32::MAX; 5]);

    /// From 20 big-endian bytes.
    pub fn from_bytes(b: [u8; 20]) -> Did {
        let mut l = [0u32; 5];
        for (i, limb) in l.iter_mut().enumerate() {
            *limb = u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        }
        Did(l)
    }

    /// To 20 big-endian bytes.
    pub fn to_bytes(self) -> [u8; 20] {
        let mut b = [0u8; 20];
        for (i, limb) in self.0.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&limb.to_be_bytes());
        }
        b
    }

    /// A small number as a DID (tests and examples).
    pub fn from_u64(v: u64) -> Did {
        Did([0, 0, 0, (v >> 32) as u32, v as u32])
    }

    /// Lowest 64 bits.
    pub fn low_u64(self) -> u64 {
        ((self.0[3] as u64) << 32) | self.0[4] as u64
    }

    /// 2^i for i < 160; `None` otherwise.
    pub fn pow2(i: u32) -> Option<Did> {
        if i >= DID_BITS {
            return None;
        }
        let mut l = [0u32; 5];
        l[4 - (i / 32) as usize] = 1 << (i % 32);
        Some(Did(l))
    }

    /// Number of significant bits (0 for ZERO, 160 for values ≥ 2^159).
    pub fn bit_len(self) -> u32 {
        for (i, limb) in self.0.iter().enumerate() {
            if *limb != 0 {
                return (5 - i as u32) * 32 - limb.leading_zeros();
            }
        }
        0
    }

    /// `self + rhs` modulo 2^160.
    pub fn wrapping_add(self, rhs: Did) -> Did {
        let mut out = [0u32; 5];
        let mut carry = 0u64;
        for i in (0..5).rev() {
            let s = self.0[i] as u64 + rhs.0[i] as u64 + carry;
            out[i] = s as u32;
            carry = s >> 32;
        }
        Did(out)
    }

    /// `self - rhs` modulo 2^160.
    pub fn wrapping_sub(self, rhs: Did) -> Did {
        let mut out = [0u32; 5];
        let mut borrow = 0i64;
        for i in (0..5).rev() {
            let mut d = self.0[i] as i64 - rhs.0[i] as i64 - borrow;
            borrow = 0;
            if d < 0 {
                d += 1 << 32;
                borrow = 1;
            }
            out[i] = d as u32;
        }
        Did(out)
    }

    /// Clockwise distance from `self` to `to`: `to - self` modulo 2^160.
    pub fn distance_to(self, to: Did) -> Did {
        to.wrapping_sub(self)
    }

    /// `self ∈ (a, b]` on the ring. `(a, a]` is the whole ring.
    pub fn in_open_closed(self, a: Did, b: Did) -> bool {
        let db = a.distance_to(b);
        let dx = a.distance_to(self);
        db == Did::ZERO || (dx != Did::ZERO && dx <= db)
    }

    /// `self ∈ (a, b)` on the ring. `(a, a)` is the whole ring except `a`.
    pub fn in_open_open(self, a: Did, b: Did) -> bool {
        let db = a.distance_to(b);
        let dx = a.distance_to(self);
        dx != Did::ZERO && (db == Did::ZERO || dx < db)
    }

    /// Orders `x` and `y` by clockwise distance from `base`.
    pub fn cmp_from(base: Did, x: Did, y: Did) -> Ordering {
        base.distance_to(x).cmp(&base.distance_to(y))
    }

    /// Account DID: the Ethereum address of a secp256k1 public key
    /// (last 20 bytes of keccak-256 of the 64-byte uncompressed point).
    pub fn from_public_key(key: &k256::PublicKey) -> Did {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        let point = key.to_encoded_point(false);
        let hash = Keccak256::digest(&point.as_bytes()[1..]);
        let mut b = [0u8; 20];
        b.copy_from_slice(&hash[12..]);
        Did::from_bytes(b)
    }

    /// Resource DID: sha1 of a name.
    pub fn from_name(name: &[u8]) -> Did {
        let hash = Sha1::digest(name);
        let mut b = [0u8; 20];
        b.copy_from_slice(&hash);
        Did::from_bytes(b)
    }

    /// `0x` + 40 hex digits in EIP-55 mixed-case checksum form.
    pub fn to_checksum(self) -> String {
        let lower = lower_hex(self.to_bytes());
        let hash = Keccak256::digest(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0xf;
            out.push(if c.is_ascii_alphabetic() && nibble >= 8 { c.to_ascii_uppercase() } else { c });
        }
        out
    }
}

fn lower_hex(bytes: [u8; 20]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(40);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

impl core::str::FromStr for Did {
    type Err = DidError;

    /// Accepts `0x` + 40 hex digits: all lower case, all upper case, or EIP-55 mixed case
    /// (whose checksum must match).
    fn from_str(s: &str) -> Result<Did, DidError> {
        let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).ok_or(DidError::MissingPrefix)?;
        let count = digits.chars().count();
        if count != 40 {
            return Err(DidError::BadLength { found: count });
        }
        let mut bytes = [0u8; 20];
        let (mut upper, mut lower) = (false, false);
        for (i, c) in digits.chars().enumerate() {
            let v = c.to_digit(16).ok_or(DidError::NonHex { index: i + 2, found: c })? as u8;
            upper |= c.is_ascii_uppercase();
            lower |= c.is_ascii_lowercase();
            bytes[i / 2] |= if i % 2 == 0 { v << 4 } else { v };
        }
        let did = Did::from_bytes(bytes);
        if upper && lower && did.to_checksum()[2..] != *digits {
            return Err(DidError::BadChecksum);
        }
        Ok(did)
    }
}

impl fmt::Display for Did {
    /// Lower-case `0x` + 40 hex digits (use [`Did::to_checksum`] for EIP-55).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", lower_hex(self.to_bytes()))
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short form keeps logs readable; the full value is in Display.
        let s = lower_hex(self.to_bytes());
        write!(f, "Did(0x{}…{})", &s[..6], &s[36..])
    }
}

impl serde::Serialize for Did {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::byte_array::serialize(&self.to_bytes(), s)
    }
}

impl<'de> serde::Deserialize<'de> for Did {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Did, D::Error> {
        crate::byte_array::deserialize::<D, 20>(d).map(Did::from_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(v: u64) -> Did {
        Did::from_u64(v)
    }

    #[test]
    fn arithmetic_wraps() {
        assert_eq!(Did::MAX.wrapping_add(d(1)), Did::ZERO);
        assert_eq!(Did::ZERO.wrapping_sub(d(1)), Did::MAX);
        assert_eq!(d(5).distance_to(d(3)), Did::MAX.wrapping_sub(d(1)));
        assert_eq!(d(u32::MAX as u64).wrapping_add(d(1)), d(1 << 32));
        assert_eq!(Did::pow2(159).unwrap().wrapping_add(Did::pow2(159).unwrap()), Did::ZERO);
        assert_eq!(Did::pow2(160), None);
        assert_eq!(Did::pow2(0).unwrap().bit_len(), 1);
        assert_eq!(Did::pow2(100).unwrap().bit_len(), 101);
        assert_eq!(Did::MAX.bit_len(), 160);
        assert_eq!(Did::ZERO.bit_len(), 0);
    }

    #[test]
    fn intervals_handle_wrap_around() {
        // (10, 20]
        assert!(d(20).in_open_closed(d(10), d(20)));
        assert!(!d(10).in_open_closed(d(10), d(20)));
        assert!(!d(21).in_open_closed(d(10), d(20)));
        // (MAX-1, 5] wraps through zero
        let a = Did::MAX.wrapping_sub(d(1));
        assert!(Did::MAX.in_open_closed(a, d(5)));
        assert!(Did::ZERO.in_open_closed(a, d(5)));
        assert!(d(5).in_open_closed(a, d(5)));
        assert!(!d(6).in_open_closed(a, d(5)));
        assert!(!a.in_open_closed(a, d(5)));
        // degenerate intervals
        assert!(d(7).in_open_closed(d(7), d(7)));
        assert!(d(8).in_open_closed(d(7), d(7)));
        assert!(!d(7).in_open_open(d(7), d(7)));
        assert!(d(8).in_open_open(d(7), d(7)));
        assert!(!d(20).in_open_open(d(10), d(20)));
        assert!(d(19).in_open_open(d(10), d(20)));
    }

    #[test]
    fn ordering_relative_to_base() {
        let base = d(100);
        assert_eq!(Did::cmp_from(base, d(101), d(99)), Ordering::Less);
        assert_eq!(Did::cmp_from(base, d(99), d(101)), Ordering::Greater);
        assert_eq!(Did::cmp_from(base, d(100), d(0)), Ordering::Less);
    }

    #[test]
    fn parse_and_print() {
        let s = "0x52908400098527886e0f7030069857d2e4169ee7";
        let did: Did = s.parse().unwrap();
        assert_eq!(did.to_string(), s);
        assert_eq!(did.to_checksum(), "0x52908400098527886E0F7030069857D2E4169EE7");
        assert_eq!("0x52908400098527886E0F7030069857D2E4169EE7".parse::<Did>().unwrap(), did);
    }

    #[test]
    fn eip55_vectors() {
        // From the EIP-55 specification.
        for s in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let did: Did = s.parse().unwrap();
            assert_eq!(did.to_checksum(), s);
            assert_eq!(did.to_string(), s.to_lowercase());
        }
    }

    #[test]
    fn parse_errors_are_typed() {
        assert_eq!("52908400098527886e0f7030069857d2e4169ee7".parse::<Did>(), Err(DidError::MissingPrefix));
        assert_eq!("0x1234".parse::<Did>(), Err(DidError::BadLength { found: 4 }));
        assert_eq!("0x52908400098527886e0f7030069857d2e4169ee7aa".parse::<Did>(), Err(DidError::BadLength { found: 42 }));
        assert_eq!("0x5290840009852788ge0f7030069857d2e4169ee7".parse::<Did>(), Err(DidError::NonHex { index: 18, found: 'g' }));
        // one letter's case flipped
        assert_eq!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD".parse::<Did>(), Err(DidError::BadChecksum));
        // multi-byte characters never panic on slicing
        assert!("0xé".parse::<Did>().is_err());
        assert!(matches!("0xéééééééééééééééééééééééééééééééééééééééé".parse::<Did>(), Err(DidError::NonHex { index: 2, .. })));
    }

    #[test]
    fn account_did_is_ethereum_address() {
        // Well-known Ethereum accounts: private key 1, private key 2, and web3.js's doc key.
        let cases = [
            ("0000000000000000000000000000000000000000000000000000000000000001", "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"),
            ("0000000000000000000000000000000000000000000000000000000000000002", "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"),
            ("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318", "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"),
        ];
        for (sk, addr) in cases {
            let mut b = [0u8; 32];
            for i in 0..32 {
                b[i] = u8::from_str_radix(&sk[2 * i..2 * i + 2], 16).unwrap();
            }
            let key = k256::SecretKey::from_slice(&b).unwrap();
            assert_eq!(Did::from_public_key(&key.public_key()).to_checksum(), addr);
        }
    }

    #[test]
    fn resource_did_is_sha1() {
        assert_eq!(Did::from_name(b"abc").to_string(), "0xa9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(Did::from_name(b"").to_string(), "0xda39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}
