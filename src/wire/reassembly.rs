//! Messages arriving in several frames, reassembled at their destination only.
//!
//! Memory is reserved for the announced body length when the first frame is accepted,
//! against a budget per origin and a total budget, so a peer cannot make the node
//! allocate more than it admitted. A message with no progress for the configured time
//! is dropped and its memory freed.

use std::collections::HashMap;

use k256::ecdsa::VerifyingKey;

use super::frame::{Kind, Signing};
use crate::identity::pair::PairKeys;
use crate::identity::CompactSig;
use crate::time::Instant;
use crate::Did;

#[derive(Debug)]
pub(super) struct Partial {
    pub kind: Kind,
    pub key: VerifyingKey,
    pub fingerprint: u64,
    pub full_proof: bool,
    pub check: Check,
    pub expires_at: u64,
    pub msg_expires: u64,
    pub hops: u8,
    pub frames: u32,
    pub next_seq: u32,
    pub body_len: usize,
    pub body: Vec<u8>,
    pub last_progress: Instant,
}

/// How a message is authenticated once all its frames are in.
#[derive(Debug)]
pub(super) enum Check {
    /// The signature over the digest of header and body (hashed as pieces arrive).
    Signed { signature: CompactSig, signing: Signing },
    /// The AEAD tag at the end of the body, under the pair's keys, the header digest
    /// as associated data.
    Sealed { keys: PairKeys, aad: [u8; 32] },
}

#[derive(Debug, Default)]
pub(super) struct Reassembly {
    partials: HashMap<(Did, u64), Partial>,
    per_origin: HashMap<Did, usize>,
    total: usize,
}

impl Reassembly {
    /// Admits a message if both budgets allow its announced length.
    pub fn start(&mut self, origin: Did, tx: u64, p: Partial, per_origin: usize, total: usize) -> bool {
        let used = self.per_origin.get(&origin).copied().unwrap_or(0);
        if used + p.body_len > per_origin || self.total + p.body_len > total {
            return false;
        }
        *self.per_origin.entry(origin).or_insert(0) += p.body_len;
        self.total += p.body_len;
        self.partials.insert((origin, tx), p);
        true
    }

    pub fn get_mut(&mut self, origin: Did, tx: u64) -> Option<&mut Partial> {
        self.partials.get_mut(&(origin, tx))
    }

    pub fn contains(&self, origin: Did, tx: u64) -> bool {
        self.partials.contains_key(&(origin, tx))
    }

    pub fn finish(&mut self, origin: Did, tx: u64) -> Option<Partial> {
        let p = self.partials.remove(&(origin, tx))?;
        self.total -= p.body_len;
        if let Some(u) = self.per_origin.get_mut(&origin) {
            *u -= p.body_len;
            if *u == 0 {
                self.per_origin.remove(&origin);
            }
        }
        Some(p)
    }

    /// Messages whose last progress is `timeout` or more before `now`.
    pub fn stalled(&self, now: Instant, timeout: crate::time::Duration) -> Vec<(Did, u64)> {
        self.partials.iter().filter(|(_, p)| p.last_progress + timeout <= now).map(|(&k, _)| k).collect()
    }

    pub fn next_deadline(&self, timeout: crate::time::Duration) -> Option<Instant> {
        self.partials.values().map(|p| p.last_progress + timeout).min()
    }

    pub fn bytes(&self) -> usize {
        self.total
    }

    pub fn len(&self) -> usize {
        self.partials.len()
    }
}
