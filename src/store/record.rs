//! Signed records: what the DHT stores.
//!
//! A record is written by an account through its session: it carries the account's
//! delegation and the session's signature over a domain tag, the key, the kind, the
//! writer, the version, the expiry and the value. Any node can check it without asking
//! anyone: signature → session key → delegation → account = writer.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::StoreError;
use crate::identity::{CompactSig, Delegation, Session, Vouched};
use crate::time::{Duration, Instant};
use crate::Did;

const SIGN_DOMAIN: &[u8] = b"rings-node/record/v1\0";

/// A single value per key (only its writer may overwrite it), or one writer's entry in an
/// append-set many writers add to (each writer owns its own entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordKind {
    Value,
    Set,
}

/// A signed, versioned, expiring record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Where it lives on the ring: sha1 of the application's key.
    pub key: Did,
    pub kind: RecordKind,
    /// The account that wrote it.
    pub writer: Did,
    /// Orders writes by the same writer: a higher version replaces a lower one.
    pub version: u64,
    /// Milliseconds since the Unix epoch; the record is dropped after it.
    pub expires_at: u64,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub delegation: Delegation,
    pub signature: CompactSig,
}

impl Record {
    /// The ring key of an application key.
    pub fn key_of(name: &[u8]) -> Did {
        Did::from_name(name)
    }

    /// A record written by `session`'s account.
    pub fn sign(session: &Session, key: Did, kind: RecordKind, version: u64, expires_at: u64, value: Vec<u8>) -> Record {
        let writer = session.did();
        let digest = digest(key, kind, writer, version, expires_at, &value);
        Record { key, kind, writer, version, expires_at, value, delegation: session.delegation().clone(), signature: session.sign(&digest) }
    }

    /// Where it is stored on a node: one slot per key for a value, one per writer for
    /// a set entry.
    pub fn slot(&self) -> (Did, Did) {
        match self.kind {
            RecordKind::Value => (self.key, Did::ZERO),
            RecordKind::Set => (self.key, self.writer),
        }
    }

    pub fn encoded_len(&self) -> usize {
        postcard::to_allocvec(self).map_or(usize::MAX, |v| v.len())
    }

    /// Checks the writer's delegation (its account is the writer, the network matches,
    /// it is valid now) and returns the session key it vouches for; its account
    /// signature is verified unless `vouched` holds it already.
    pub fn check_delegation(
        &self,
        network: u32,
        now: Instant,
        skew: Duration,
        vouched: &mut Vouched,
    ) -> Result<k256::ecdsa::VerifyingKey, StoreError> {
        if self.delegation.account != self.writer {
            return Err(StoreError::BadDelegation);
        }
        vouched.verify(&self.delegation, network, now, skew).map_err(|_| StoreError::BadDelegation)
    }

    /// Checks the session's signature over the record.
    pub fn check_signature(&self, key: &k256::ecdsa::VerifyingKey) -> Result<(), StoreError> {
        let d = digest(self.key, self.kind, self.writer, self.version, self.expires_at, &self.value);
        if self.signature.verify(key, &d) {
            Ok(())
        } else {
            Err(StoreError::BadSignature)
        }
    }
}

fn digest(key: Did, kind: RecordKind, writer: Did, version: u64, expires_at: u64, value: &[u8]) -> [u8; 32] {
    let mut s = Sha256::new();
    s.update(SIGN_DOMAIN);
    s.update(key.to_bytes());
    s.update([match kind {
        RecordKind::Value => 1,
        RecordKind::Set => 2,
    }]);
    s.update(writer.to_bytes());
    s.update(version.to_be_bytes());
    s.update(expires_at.to_be_bytes());
    s.update((value.len() as u64).to_be_bytes());
    s.update(value);
    s.finalize().into()
}
