//! The browser shell (wasm32). For now it exports DID helpers; the WebRTC driver and the
//! Provider / Client API build on this module.

use wasm_bindgen::prelude::*;

use crate::Did;

/// Parses a DID (`0x` + 40 hex, EIP-55 checked) and returns it in checksum form.
/// Throws an `Error` naming what is wrong.
#[wasm_bindgen(js_name = normalizeDid)]
pub fn normalize_did(s: &str) -> Result<String, JsError> {
    s.parse::<Did>().map(Did::to_checksum).map_err(|e| JsError::new(&e.to_string()))
}

/// The resource DID of a name: sha1 of its UTF-8 bytes.
#[wasm_bindgen(js_name = resourceDid)]
pub fn resource_did(name: &str) -> String {
    Did::from_name(name.as_bytes()).to_string()
}
