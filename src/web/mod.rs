//! The browser shell (wasm32): sessions for JS, and the WebRTC driver behind `Provider`.
//! The idiomatic TypeScript API in `js/` wraps these exports.

mod manual;
mod provider;
mod rtc;
mod session;

use wasm_bindgen::prelude::*;

use crate::Did;

pub use provider::WasmProvider;
pub use session::{WasmDelegationRequest, WasmSession};

/// A JS `Error` whose `name` is `RingsError` and whose `code` is stable, for the TS
/// wrappers to turn into their typed error classes.
pub(crate) fn js_error(code: &str, message: impl core::fmt::Display) -> JsValue {
    let e = js_sys::Error::new(&message.to_string());
    e.set_name("RingsError");
    let _ = js_sys::Reflect::set(&e, &"code".into(), &code.into());
    e.into()
}

pub(crate) fn parse_did(s: &str) -> Result<Did, JsValue> {
    s.parse::<Did>().map_err(|e| js_error("BAD_DID", format!("{s:?} is not a DID: {e}")))
}

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

/// Operations per second of the wire's cryptography in this browser, each run for
/// `ms` milliseconds: `{sign, verify, delegation, pair, seal, open, seal16kMBps}`.
#[wasm_bindgen(js_name = cryptoBench)]
pub fn crypto_bench(ms: f64) -> JsValue {
    let mut clock = || js_sys::Date::now();
    let c = crate::bench::crypto_ops(&mut clock, ms);
    let o = js_sys::Object::new();
    for (k, v) in [
        ("sign", c.sign),
        ("verify", c.verify),
        ("delegation", c.delegation),
        ("pair", c.pair),
        ("seal", c.seal),
        ("open", c.open),
        ("seal16kMBps", c.seal_16k_mb_s),
    ] {
        let _ = js_sys::Reflect::set(&o, &k.into(), &v.into());
    }
    o.into()
}
