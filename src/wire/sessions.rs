//! Other nodes' sessions this node holds: verified delegations, by account and by
//! fingerprint, bounded, least recently used forgotten first (found by one pass over the
//! table when it is full: an insert that evicts costs far less than the signature check
//! before it, and a second ordered index would cost ~9 KB of wasm).

use std::collections::HashMap;

use k256::ecdsa::VerifyingKey;

use crate::identity::pair::PairKeys;
use crate::Did;

#[derive(Clone, Debug)]
pub(super) struct PeerSession {
    pub fingerprint: u64,
    pub key: VerifyingKey,
    pub expires_at: u64,
    /// What this node's session shares with this one (derived once, at insert).
    pub pair: PairKeys,
    used: u64,
}

#[derive(Debug)]
pub(super) struct Sessions {
    capacity: usize,
    by_did: HashMap<Did, PeerSession>,
    by_fp: HashMap<u64, Did>,
    tick: u64,
}

impl Sessions {
    pub fn new(capacity: usize) -> Sessions {
        Sessions { capacity: capacity.max(1), by_did: HashMap::new(), by_fp: HashMap::new(), tick: 0 }
    }

    pub fn insert(&mut self, did: Did, fingerprint: u64, key: VerifyingKey, expires_at: u64, pair: PairKeys) {
        self.remove(did);
        if self.by_did.len() >= self.capacity {
            // Ticks are unique, so the least recently used one is too.
            if let Some(old) = self.by_did.iter().min_by_key(|(_, s)| s.used).map(|(&d, _)| d) {
                self.remove(old);
            }
        }
        self.tick += 1;
        self.by_fp.insert(fingerprint, did);
        self.by_did.insert(did, PeerSession { fingerprint, key, expires_at, pair, used: self.tick });
    }

    pub fn remove(&mut self, did: Did) {
        if let Some(s) = self.by_did.remove(&did) {
            self.by_fp.remove(&s.fingerprint);
        }
    }

    /// The live session of `did` (marks it used).
    pub fn get(&mut self, did: Did, now_ms: u64) -> Option<PeerSession> {
        let s = self.by_did.get_mut(&did)?;
        if s.expires_at < now_ms {
            self.remove(did);
            return None;
        }
        self.tick += 1;
        s.used = self.tick;
        Some(s.clone())
    }

    /// Whether `did`'s session with this fingerprint is held (does not mark it used).
    pub fn holds(&self, did: Did, fingerprint: u64) -> bool {
        self.by_did.get(&did).is_some_and(|s| s.fingerprint == fingerprint)
    }

    /// The account holding the session with this fingerprint, and the session.
    pub fn by_fingerprint(&mut self, fp: u64, now_ms: u64) -> Option<(Did, PeerSession)> {
        let did = *self.by_fp.get(&fp)?;
        self.get(did, now_ms).map(|s| (did, s))
    }

    pub fn len(&self) -> usize {
        self.by_did.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn full_table_forgets_the_least_recently_used() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let (mine, theirs) = (SigningKey::random(&mut rng), SigningKey::random(&mut rng));
        let pair = PairKeys::derive(&mine, 1, theirs.verifying_key(), 2);
        let mut t = Sessions::new(3);
        let d = |n: u8| Did::from_bytes([n; 20]);
        for n in 1..=3 {
            t.insert(d(n), n as u64, *theirs.verifying_key(), 1_000, pair.clone());
        }
        assert!(t.get(d(1), 0).is_some(), "1 used again: 2 is now the oldest");
        assert!(t.by_fingerprint(3, 0).is_some(), "3 used again by fingerprint");
        t.insert(d(4), 4, *theirs.verifying_key(), 1_000, pair.clone());
        assert_eq!(t.len(), 3);
        assert!(!t.holds(d(2), 2) && t.by_fingerprint(2, 0).is_none(), "2 forgotten, its fingerprint too");
        assert!(t.holds(d(1), 1) && t.holds(d(3), 3) && t.holds(d(4), 4));
        t.insert(d(5), 5, *theirs.verifying_key(), 1_000, pair.clone());
        assert!(!t.holds(d(1), 1), "then 1, used before 3");
        assert!(t.get(d(5), 1_001).is_none() && t.len() == 2, "an expired session is dropped when asked for");
    }
}
