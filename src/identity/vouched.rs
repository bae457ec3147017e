//! Delegations this node verified, shared by every part that checks one (the wire for a
//! message's origin, the store for a record's writer): an account's signature is checked
//! once per delegation, however many messages and records it vouches for.
//!
//! Entries are keyed by the delegation's fingerprint and hold its account: a hit needs
//! both to match, and the delegation's clock and network checks run on every use (they
//! cost nothing). The table is bounded; when full, the least recently used entry goes
//! (found by one pass: an insert that evicts follows a signature check that costs far
//! more). A peer that fills it with fresh delegations of its own only makes this node
//! verify others' again, which is what it costs without the table.

use std::collections::HashMap;

use k256::ecdsa::VerifyingKey;

use super::{Delegation, IdentityError};
use crate::time::{Duration, Instant};
use crate::Did;

/// Delegations remembered by default.
pub const VOUCHED_CAPACITY: usize = 512;

#[derive(Debug)]
struct Entry {
    account: Did,
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
        if let Some(e) = self.entries.get_mut(&fp).filter(|e| e.account == d.account) {
            e.used = self.tick;
            return Ok(e.key);
        }
        let key = d.verify_signature()?;
        self.verified += 1;
        if self.entries.len() >= self.capacity {
            if let Some(old) = self.entries.iter().min_by_key(|(_, e)| e.used).map(|(&f, _)| f) {
                self.entries.remove(&old);
            }
        }
        self.entries.insert(fp, Entry { account: d.account, key, used: self.tick });
        Ok(key)
    }

    /// Account signatures verified in full so far.
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
        // (it is verified each time, never remembered).
        let other = session(&mut rng, 1, T0, DAY);
        let mut forged = other.delegation().clone();
        forged.account = honest.did();
        for _ in 0..2 {
            assert_eq!(v.verify(&forged, 1, now, SKEW), Err(IdentityError::WrongSigner));
        }
        assert_eq!(v.verified(), 1);
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
}
