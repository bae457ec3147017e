//! Accounts and sessions for JS: a raw key signs its own delegation; a wallet signs the
//! delegation text (EIP-191) that a [`WasmDelegationRequest`] shows it.

use k256::ecdsa::SigningKey;
use wasm_bindgen::prelude::*;

use super::{api_error, js_error, parse_did};
use crate::api::{self, ErrorCode};
use crate::identity::{AccountKind, Delegation, LocalAccount, PublicKeyBytes, RecoverableSig, Session};

/// A session: an ephemeral key vouched for by an account.
#[wasm_bindgen]
#[derive(Clone)]
pub struct WasmSession(pub(crate) Session);

#[wasm_bindgen]
impl WasmSession {
    /// An account from its 32-byte secret key, delegating (raw-key signature) to a session
    /// key made from `session_seed`.
    #[wasm_bindgen(js_name = fromPrivateKey)]
    pub fn from_private_key(secret: &[u8], session_seed: &[u8], network: u32, now_ms: f64, ttl_ms: f64) -> Result<WasmSession, JsValue> {
        let secret: &[u8; 32] = secret.try_into().map_err(|_| js_error(ErrorCode::BadArgument, "a private key is 32 bytes"))?;
        let account = LocalAccount::from_bytes(secret).map_err(|e| js_error(ErrorCode::BadArgument, e))?;
        let key = api::session_key(session_seed).map_err(api_error)?;
        let (now, ttl) = api::validity(now_ms, ttl_ms).map_err(api_error)?;
        let d = account.delegate(AccountKind::Secp256k1, &PublicKeyBytes::of(key.verifying_key()), network, now, ttl);
        Session::new(key, d).map(WasmSession).map_err(|e| js_error(ErrorCode::BadArgument, e))
    }

    /// The account's DID (EIP-55 checksum form).
    #[wasm_bindgen(getter)]
    pub fn did(&self) -> String {
        self.0.did().to_checksum()
    }

    #[wasm_bindgen(getter)]
    pub fn network(&self) -> u32 {
        self.0.delegation().network
    }

    /// Milliseconds since the epoch when the delegation expires.
    #[wasm_bindgen(getter, js_name = expiresAt)]
    pub fn expires_at(&self) -> f64 {
        self.0.delegation().expires_at as f64
    }

    /// The text the account signed.
    #[wasm_bindgen(getter, js_name = delegationText)]
    pub fn delegation_text(&self) -> String {
        self.0.delegation().text()
    }
}

/// A delegation waiting for a wallet's `personal_sign` of [`WasmDelegationRequest::text`].
#[wasm_bindgen]
pub struct WasmDelegationRequest {
    key: SigningKey,
    unsigned: Delegation,
}

#[wasm_bindgen]
impl WasmDelegationRequest {
    #[wasm_bindgen(constructor)]
    pub fn new(account: &str, session_seed: &[u8], network: u32, now_ms: f64, ttl_ms: f64) -> Result<WasmDelegationRequest, JsValue> {
        let account = parse_did(account)?;
        let key = api::session_key(session_seed).map_err(api_error)?;
        let (now, ttl) = api::validity(now_ms, ttl_ms).map_err(api_error)?;
        let unsigned = Delegation::unsigned(AccountKind::Eip191, account, PublicKeyBytes::of(key.verifying_key()), network, now, ttl);
        Ok(WasmDelegationRequest { key, unsigned })
    }

    /// What the wallet must sign with `personal_sign`.
    #[wasm_bindgen(getter)]
    pub fn text(&self) -> String {
        self.unsigned.text()
    }

    /// Takes the wallet's 65-byte signature; fails unless it recovers to the account.
    pub fn finish(&self, signature: &[u8]) -> Result<WasmSession, JsValue> {
        let sig = RecoverableSig::from_slice(signature)
            .ok_or_else(|| js_error(ErrorCode::BadArgument, "a personal_sign signature is 65 bytes"))?;
        let d = self.unsigned.clone().with_signature(sig);
        d.verify_signature().map_err(|e| js_error(ErrorCode::BadSignature, e))?;
        Session::new(self.key.clone(), d).map(WasmSession).map_err(|e| js_error(ErrorCode::BadSignature, e))
    }
}
