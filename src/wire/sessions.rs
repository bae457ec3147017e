//! Other nodes' sessions this node holds: verified delegations, by account and by
//! fingerprint, bounded, least recently used forgotten first.

use std::collections::{BTreeSet, HashMap};

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
    lru: BTreeSet<(u64, Did)>,
    tick: u64,
}

impl Sessions {
    pub fn new(capacity: usize) -> Sessions {
        Sessions { capacity: capacity.max(1), by_did: HashMap::new(), by_fp: HashMap::new(), lru: BTreeSet::new(), tick: 0 }
    }

    pub fn insert(&mut self, did: Did, fingerprint: u64, key: VerifyingKey, expires_at: u64, pair: PairKeys) {
        self.remove(did);
        if self.by_did.len() >= self.capacity {
            if let Some((_, old)) = self.lru.pop_first() {
                self.remove(old);
            }
        }
        self.tick += 1;
        self.lru.insert((self.tick, did));
        self.by_fp.insert(fingerprint, did);
        self.by_did.insert(did, PeerSession { fingerprint, key, expires_at, pair, used: self.tick });
    }

    pub fn remove(&mut self, did: Did) {
        if let Some(s) = self.by_did.remove(&did) {
            self.lru.remove(&(s.used, did));
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
        self.lru.remove(&(s.used, did));
        self.tick += 1;
        s.used = self.tick;
        self.lru.insert((self.tick, did));
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
