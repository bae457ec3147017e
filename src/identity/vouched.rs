//! Delegations this node verified, shared by every part that checks one (the wire for a
//! message's origin, the store for a record's writer): an account's signature is checked
//! once per delegation, however many messages and records it vouches for.
//!
//! Entries are keyed by the delegation's fingerprint and hold the whole delegation: a hit
//! needs every signed and unsigned field to match (a 64-bit fingerprint alone could be
//! collided), and the delegation's clock and network checks run on every use (they cost
//! nothing). The table is bounded; when full, the least recently used entry goes
//! (found by one pass: an insert that evicts follows a signature check that costs far
//! more). A peer that fills it with fresh delegations of its own only makes this node
//! verify others' again, which is what it costs without the table.

use std::collections::HashMap;

use k256::ecdsa::VerifyingKey;

use super::{Delegation, IdentityError};
use crate::time::{Duration, Instant};

/// Delegations remembered by default.
pub const VOUCHED_CAPACITY: usize = 512;

#[derive(Debug)]
struct Entry {
    delegation: Delegation,
    key: VerifyingKey,
    used: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Vouched {
    capacity: usize,
    entries: HashMap<u64, Entry>,
    tick: u64,
    verified: u64,
}

impl Default for Vouched {
    fn default() -> Vouched {
        Vouched::new(VOUCHED_CAPACITY)
    }
}

impl Vouched {
    pub fn new(capacity: usize) -> Vouched {
        Vouched { capacity: capacity.max(1), entries: HashMap::new(), tick: 0, verified: 0 }
    }

    /// Checks `d` at wall time `now` like [`Delegation::verify`] and returns the session
    /// key it vouches for; its account signature is verified only if this delegation was
    /// not verified before.
    pub fn verify(&mut self, d: &Delegation, network: u32, now: Instant, skew: Duration) -> Result<VerifyingKey, IdentityError> {
        d.check_validity(network, now, skew)?;
        let fp = d.fingerprint();
        self.tick += 1;
        if let Some(e) = self.entries.get_mut(&fp).filter(|e| e.delegation == *d) {
            e.used = self.tick;
            return Ok(e.key);
        }
        // Counted before the check: a forged delegation costs this node the same work.
        self.verified += 1;
        let key = d.verify_signature()?;
        if self.entries.len() >= self.capacity {
            if let Some(old) = self.entries.iter().min_by_key(|(_, e)| e.used).map(|(&f, _)| f) {
                self.entries.remove(&old);
            }
        }
        self.entries.insert(fp, Entry { delegation: d.clone(), key, used: self.tick });
        Ok(key)
    }

    /// Account signatures checked in full so far (forged ones included).
    pub fn verified(&self) -> u64 {
        self.verified
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))] // sessions from the simulator
mod tests {
    use super::*;
    use crate::sim::pair::{session, DAY, T0};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const SKEW: Duration = Duration(30_000);

    #[test]
    fn a_delegation_is_verified_once_and_its_clock_checked_always() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let s = session(&mut rng, 1, T0, DAY);
        let d = s.delegation().clone();
        let mut v = Vouched::new(4);
        let now = Instant(T0 + 1_000);
        assert_eq!(v.verify(&d, 1, now, SKEW), Ok(*s.public_key()));
        assert_eq!(v.verify(&d, 1, Instant(T0 + 2_000), SKEW), Ok(*s.public_key()));
        assert_eq!(v.verified(), 1, "the second check used the table");
        // Remembered, the delegation still answers for its network and its window.
        assert_eq!(v.verify(&d, 2, now, SKEW), Err(IdentityError::WrongNetwork));
        let late = Instant(d.expires_at + SKEW.as_millis() + 1);
        assert_eq!(v.verify(&d, 1, late, SKEW), Err(IdentityError::Expired));
        assert_eq!(v.verified(), 1);
    }

    #[test]
    fn a_forged_delegation_is_never_remembered_and_the_table_stays_bounded() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let now = Instant(T0 + 1_000);
        let honest = session(&mut rng, 1, T0, DAY);
        let mut v = Vouched::new(4);
        assert!(v.verify(honest.delegation(), 1, now, SKEW).is_ok());
        // Another account's signature under the honest account's name: refused, twice
        // (it is verified each time, never remembered, and each check is counted).
        let other = session(&mut rng, 1, T0, DAY);
        let mut forged = other.delegation().clone();
        forged.account = honest.did();
        for _ in 0..2 {
            assert_eq!(v.verify(&forged, 1, now, SKEW), Err(IdentityError::WrongSigner));
        }
        assert_eq!(v.verified(), 3);
        assert_eq!(v.len(), 1);
        // A crowd of fresh delegations fills the table; it never holds more than its
        // capacity, and the honest one, pushed out, is verified again (not refused).
        for _ in 0..10 {
            let s = session(&mut rng, 1, T0, DAY);
            assert!(v.verify(s.delegation(), 1, now, SKEW).is_ok());
            assert!(v.len() <= 4);
        }
        let before = v.verified();
        assert!(v.verify(honest.delegation(), 1, now, SKEW).is_ok());
        assert_eq!(v.verified(), before + 1);
    }

    #[test]
    fn the_least_recently_used_delegation_goes_first() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let now = Instant(T0 + 1_000);
        let s: Vec<_> = (0..4).map(|_| session(&mut rng, 1, T0, DAY)).collect();
        let mut v = Vouched::new(3);
        for x in &s[..3] {
            assert!(v.verify(x.delegation(), 1, now, SKEW).is_ok());
        }
        // Using the oldest makes the second the least recently used: the fourth evicts it.
        assert!(v.verify(s[0].delegation(), 1, now, SKEW).is_ok());
        assert!(v.verify(s[3].delegation(), 1, now, SKEW).is_ok());
        assert_eq!((v.len(), v.verified()), (3, 4));
        for (i, expect_check) in [(0, 0), (2, 0), (3, 0), (1, 1)] {
            let before = v.verified();
            assert!(v.verify(s[i].delegation(), 1, now, SKEW).is_ok());
            assert_eq!(v.verified() - before, expect_check, "session {i}");
        }
        // Not yet valid: refused from the table as it would be without it.
        let early = Instant(s[0].delegation().issued_at - SKEW.as_millis() - 1);
        assert_eq!(v.verify(s[0].delegation(), 1, early, SKEW), Err(IdentityError::NotYetValid));
    }
}
