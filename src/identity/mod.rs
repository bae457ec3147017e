//! Accounts, sessions and delegations.
//!
//! An **account** owns a DID (its Ethereum address). It never signs network traffic:
//! once, it signs a **delegation** — readable text naming an ephemeral **session key**, the
//! network id, an issue time and an expiry — and from then on the node signs with the
//! session key. Anyone holding the delegation verifies the chain session → account → DID.
//!
//! Two account kinds sign a delegation:
//! - [`AccountKind::Eip191`]: Ethereum `personal_sign` (EIP-191 version `0x45`), so
//!   MetaMask or any EIP-1193 wallet can authorize a node without exposing its key;
//! - [`AccountKind::Secp256k1`]: a raw key signing keccak256 of a domain tag and the text.
//!
//! Both are recoverable secp256k1 signatures: the verifier recovers the signer's address
//! and compares it with the account DID, so the delegation carries no account public key.

pub mod pair;
mod sig;
mod text;
mod vouched;

use k256::ecdsa::{SigningKey, VerifyingKey};
use rand_chacha::rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::time::{Duration, Instant};
use crate::Did;

pub use sig::{CompactSig, PublicKeyBytes, RecoverableSig};
pub use text::delegation_text;
pub use vouched::{Vouched, VOUCHED_CAPACITY};

/// Domain tag in front of what a raw-key account signs (an EIP-191 wallet has its own).
pub const RAW_ACCOUNT_DOMAIN: &[u8] = b"rings-node/account/v1\n";

/// How an account signed its delegation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AccountKind {
    /// A raw secp256k1 key: signature over keccak256(`RAW_ACCOUNT_DOMAIN` ‖ text).
    Secp256k1,
    /// Ethereum `personal_sign`: keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ text).
    Eip191,
}

/// Why a delegation (or a signature made under one) is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentityError {
    /// The account signature is malformed or does not recover to any key.
    BadAccountSignature,
    /// The account signature recovers to an address other than the claimed account.
    WrongSigner,
    /// The session public key is not a point on the curve.
    BadSessionKey,
    /// The delegation is for another network.
    WrongNetwork,
    /// The delegation's expiry has passed.
    Expired,
    /// The delegation was issued in the future (beyond the allowed clock skew).
    NotYetValid,
    /// Issue time after expiry.
    BadValidity,
    /// A private key that is zero or not below the curve order.
    BadPrivateKey,
}

impl core::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match self {
            IdentityError::BadAccountSignature => "delegation signature is malformed",
            IdentityError::WrongSigner => "delegation is signed by another account",
            IdentityError::BadSessionKey => "session public key is not a valid secp256k1 point",
            IdentityError::WrongNetwork => "delegation is for another network",
            IdentityError::Expired => "delegation has expired",
            IdentityError::NotYetValid => "delegation is not valid yet",
            IdentityError::BadValidity => "delegation expires before it is issued",
            IdentityError::BadPrivateKey => "private key must be 32 bytes, non-zero and below the curve order",
        };
        f.write_str(s)
    }
}

impl std::error::Error for IdentityError {}

/// keccak256 of an EIP-191 `personal_sign` message.
pub fn eip191_hash(text: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"\x19Ethereum Signed Message:\n");
    h.update(text.len().to_string().as_bytes());
    h.update(text);
    h.finalize().into()
}

fn account_hash(kind: AccountKind, text: &[u8]) -> [u8; 32] {
    match kind {
        AccountKind::Eip191 => eip191_hash(text),
        AccountKind::Secp256k1 => {
            let mut h = Keccak256::new();
            h.update(RAW_ACCOUNT_DOMAIN);
            h.update(text);
            h.finalize().into()
        }
    }
}

/// A key this process holds: it can sign as an account (either kind).
#[derive(Clone)]
pub struct LocalAccount {
    key: SigningKey,
    did: Did,
}

impl core::fmt::Debug for LocalAccount {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "LocalAccount({})", self.did) // never the key
    }
}

impl LocalAccount {
    pub fn from_bytes(secret: &[u8; 32]) -> Result<LocalAccount, IdentityError> {
        let key = SigningKey::from_bytes(secret.into()).map_err(|_| IdentityError::BadPrivateKey)?;
        let did = Did::from_public_key(&key.verifying_key().into());
        Ok(LocalAccount { key, did })
    }

    pub fn generate(rng: &mut (impl CryptoRng + RngCore)) -> LocalAccount {
        let key = SigningKey::random(rng);
        let did = Did::from_public_key(&key.verifying_key().into());
        LocalAccount { key, did }
    }

    pub fn did(&self) -> Did {
        self.did
    }

    /// `personal_sign` of `text`, as a wallet would produce it (v = 27 or 28).
    pub fn personal_sign(&self, text: &[u8]) -> RecoverableSig {
        RecoverableSig::sign(&self.key, &eip191_hash(text))
    }

    /// Signs a delegation to `session` with this account (`kind` chooses the scheme).
    pub fn delegate(&self, kind: AccountKind, session: &PublicKeyBytes, network: u32, issued_at: Instant, ttl: Duration) -> Delegation {
        let mut d = Delegation::unsigned(kind, self.did, *session, network, issued_at, ttl);
        d.signature = RecoverableSig::sign(&self.key, &account_hash(kind, d.text().as_bytes()));
        d
    }
}

/// An account's signed statement that a session key may act for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub kind: AccountKind,
    pub account: Did,
    pub session: PublicKeyBytes,
    pub network: u32,
    /// Milliseconds since the Unix epoch.
    pub issued_at: u64,
    pub expires_at: u64,
    pub signature: RecoverableSig,
}

impl Delegation {
    /// A delegation waiting for its account signature: show [`Delegation::text`] to a
    /// wallet, then put its signature in with [`Delegation::with_signature`].
    pub fn unsigned(
        kind: AccountKind,
        account: Did,
        session: PublicKeyBytes,
        network: u32,
        issued_at: Instant,
        ttl: Duration,
    ) -> Delegation {
        Delegation {
            kind,
            account,
            session,
            network,
            issued_at: issued_at.as_millis(),
            expires_at: issued_at.as_millis().saturating_add(ttl.as_millis()),
            signature: RecoverableSig::default(),
        }
    }

    pub fn with_signature(mut self, signature: RecoverableSig) -> Delegation {
        self.signature = signature;
        self
    }

    /// The text the account signs (what a wallet shows).
    pub fn text(&self) -> String {
        delegation_text(self.account, &self.session, self.network, self.issued_at, self.expires_at)
    }

    /// Checks the account signature, the network and the validity window (with `skew`
    /// tolerance); returns the session key it vouches for.
    pub fn verify(&self, network: u32, now: Instant, skew: Duration) -> Result<VerifyingKey, IdentityError> {
        self.check_validity(network, now, skew)?;
        self.verify_signature()
    }

    /// The network and the validity window only (no signature).
    pub fn check_validity(&self, network: u32, now: Instant, skew: Duration) -> Result<(), IdentityError> {
        if self.network != network {
            return Err(IdentityError::WrongNetwork);
        }
        if self.issued_at > self.expires_at {
            return Err(IdentityError::BadValidity);
        }
        if self.issued_at > now.as_millis().saturating_add(skew.as_millis()) {
            return Err(IdentityError::NotYetValid);
        }
        if now.as_millis().saturating_sub(skew.as_millis()) > self.expires_at {
            return Err(IdentityError::Expired);
        }
        Ok(())
    }

    /// Only the signature chain (no clock, no network): the session key, if the claimed
    /// account signed this delegation.
    pub fn verify_signature(&self) -> Result<VerifyingKey, IdentityError> {
        let session = self.session.to_key().ok_or(IdentityError::BadSessionKey)?;
        let hash = account_hash(self.kind, self.text().as_bytes());
        let signer = self.signature.recover(&hash).ok_or(IdentityError::BadAccountSignature)?;
        if Did::from_public_key(&signer.into()) != self.account {
            return Err(IdentityError::WrongSigner);
        }
        Ok(session)
    }

    /// A short name for this delegation: the first 8 bytes of keccak256 of its encoding.
    /// Peers that hold the delegation accept the fingerprint in its place.
    pub fn fingerprint(&self) -> u64 {
        let enc = postcard::to_allocvec(self).unwrap_or_default(); // serializing to a Vec cannot fail
        let h = Keccak256::digest(&enc);
        u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
    }
}

/// This node's session: an ephemeral key and the delegation that vouches for it.
#[derive(Clone)]
pub struct Session {
    key: SigningKey,
    delegation: Delegation,
    fingerprint: u64,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Session({} #{:016x})", self.delegation.account, self.fingerprint)
    }
}

impl Session {
    /// A fresh session key, to be vouched for by a delegation.
    pub fn generate_key(rng: &mut (impl CryptoRng + RngCore)) -> SigningKey {
        SigningKey::random(rng)
    }

    /// The session for `key` under `delegation`; fails unless the delegation names this
    /// key and its account signature holds.
    pub fn new(key: SigningKey, delegation: Delegation) -> Result<Session, IdentityError> {
        let vouched = delegation.verify_signature()?;
        if vouched != *key.verifying_key() {
            return Err(IdentityError::BadSessionKey);
        }
        let fingerprint = delegation.fingerprint();
        Ok(Session { key, delegation, fingerprint })
    }

    /// A local account delegating to a fresh session key in one step.
    pub fn with_local_account(
        rng: &mut (impl CryptoRng + RngCore),
        account: &LocalAccount,
        kind: AccountKind,
        network: u32,
        now: Instant,
        ttl: Duration,
    ) -> Session {
        let key = Session::generate_key(rng);
        let delegation = account.delegate(kind, &PublicKeyBytes::of(key.verifying_key()), network, now, ttl);
        let fingerprint = delegation.fingerprint();
        Session { key, delegation, fingerprint }
    }

    pub fn did(&self) -> Did {
        self.delegation.account
    }
    pub fn delegation(&self) -> &Delegation {
        &self.delegation
    }
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
    pub fn public_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// The keys this session shares with the session `theirs` (fingerprint `their_fp`).
    pub fn pair_keys(&self, theirs: &VerifyingKey, their_fp: u64) -> pair::PairKeys {
        pair::PairKeys::derive(&self.key, self.fingerprint, theirs, their_fp)
    }

    /// Signs a 32-byte digest with the session key.
    pub fn sign(&self, digest: &[u8; 32]) -> CompactSig {
        CompactSig::sign(&self.key, digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn hex(s: &str) -> Vec<u8> {
        let s = s.trim_start_matches("0x");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The web3.js documentation's `web3.eth.accounts.sign('Some data', key)` example.
    const WEB3_KEY: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    const WEB3_ADDRESS: &str = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";
    const WEB3_HASH: &str = "0x1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655";
    const WEB3_SIG: &str = "0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c";

    #[test]
    fn eip191_vector_from_web3js_recovers_the_address() {
        let hash = eip191_hash(b"Some data");
        assert_eq!(hash.to_vec(), hex(WEB3_HASH));
        let sig = RecoverableSig::from_slice(&hex(WEB3_SIG)).expect("65 bytes");
        let signer = sig.recover(&hash).expect("recovers");
        let expected: Did = WEB3_ADDRESS.parse().unwrap();
        assert_eq!(Did::from_public_key(&signer.into()), expected);
    }

    #[test]
    fn our_personal_sign_matches_web3js_byte_for_byte() {
        let key: [u8; 32] = hex(WEB3_KEY).try_into().unwrap();
        let acct = LocalAccount::from_bytes(&key).unwrap();
        assert_eq!(acct.did(), WEB3_ADDRESS.parse().unwrap());
        assert_eq!(acct.personal_sign(b"Some data").to_bytes().to_vec(), hex(WEB3_SIG));
    }

    #[test]
    fn delegation_chain_verifies_and_rejects_each_fault() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let acct = LocalAccount::generate(&mut rng);
        let day = Duration::from_secs(86_400);
        let skew = Duration::from_secs(30);
        for kind in [AccountKind::Eip191, AccountKind::Secp256k1] {
            let s = Session::with_local_account(&mut rng, &acct, kind, 7, Instant(1_000_000), day);
            let d = s.delegation().clone();
            assert_eq!(d.verify(7, Instant(1_000_000), skew), Ok(*s.public_key()));
            assert_eq!(d.verify(8, Instant(1_000_000), skew), Err(IdentityError::WrongNetwork));
            assert_eq!(d.verify(7, Instant(1_000_000 + day.as_millis() + 31_000), skew), Err(IdentityError::Expired));
            assert_eq!(d.verify(7, Instant(1_000_000 - 31_000), skew), Err(IdentityError::NotYetValid));
            let other = LocalAccount::generate(&mut rng);
            let mut forged = d.clone();
            forged.account = other.did(); // claims another account
            assert_eq!(forged.verify(7, Instant(1_000_000), skew), Err(IdentityError::WrongSigner));
            let mut longer = d.clone();
            longer.expires_at += 1; // the text changes, so the signature no longer matches
            assert_eq!(longer.verify(7, Instant(1_000_000), skew), Err(IdentityError::WrongSigner));
            let stranger = Session::generate_key(&mut rng);
            assert_eq!(Session::new(stranger, d.clone()).err(), Some(IdentityError::BadSessionKey));
        }
    }

    #[test]
    fn a_wallet_signature_over_the_text_completes_a_delegation() {
        // What the browser does with MetaMask: show the text, get personal_sign back.
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let wallet = LocalAccount::generate(&mut rng);
        let key = Session::generate_key(&mut rng);
        let unsigned = Delegation::unsigned(
            AccountKind::Eip191,
            wallet.did(),
            PublicKeyBytes::of(key.verifying_key()),
            1,
            Instant(1_700_000_000_000),
            Duration::from_secs(3600),
        );
        let text = unsigned.text();
        assert!(text.contains(&wallet.did().to_checksum()), "{text}");
        assert!(text.contains("2023-11-14T22:13:20Z"), "{text}");
        let signed = unsigned.with_signature(wallet.personal_sign(text.as_bytes()));
        let session = Session::new(key, signed).expect("valid");
        assert_eq!(session.did(), wallet.did());
    }
}
