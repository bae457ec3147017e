//! The browser shell (wasm32): sessions for JS, and the WebRTC driver behind `Provider`.
//! The idiomatic TypeScript API in `js/` wraps these exports; what they show (errors,
//! events, views) comes from [`crate::api`].

mod provider;
mod rtc;
mod session;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::api::{ApiError, ErrorCode, Value};
use crate::Did;

pub use provider::WasmProvider;
pub use session::{WasmDelegationRequest, WasmSession};

#[wasm_bindgen(typescript_custom_section)]
const ERROR_CODE: &str = crate::api::ERROR_CODE_TS;
#[wasm_bindgen(typescript_custom_section)]
const VIEWS: &str = crate::api::VIEW_TS;

/// A JS `Error` whose `name` is `RingsError` and whose `code` is stable, for the TS
/// wrappers to turn into their typed error classes.
pub(crate) fn js_error(code: ErrorCode, message: impl core::fmt::Display) -> JsValue {
    let e = js_sys::Error::new(&message.to_string());
    e.set_name("RingsError");
    let _ = js_sys::Reflect::set(&e, &"code".into(), &code.as_str().into());
    e.into()
}

pub(crate) fn api_error(e: ApiError) -> JsValue {
    js_error(e.code, e.message)
}

/// An `Error`'s message, or the value's debug text.
pub(crate) fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map_or_else(|| format!("{e:?}"), |e| String::from(e.message()))
}

/// A view as a JS value: objects, arrays, `Uint8Array`s, `bigint` ids.
pub(crate) fn to_js(v: Value) -> JsValue {
    match v {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => b.into(),
        Value::Num(n) => n.into(),
        Value::Big(n) => n.into(),
        Value::Str(s) => s.into(),
        Value::Bytes(b) => js_sys::Uint8Array::from(&b[..]).into(),
        Value::List(l) => l.into_iter().map(to_js).collect::<js_sys::Array>().into(),
        Value::Obj(fields) => {
            let o = js_sys::Object::new();
            for (k, v) in fields {
                let _ = js_sys::Reflect::set(&o, &k.into(), &to_js(v));
            }
            o.into()
        }
    }
}

pub(crate) fn parse_did(s: &str) -> Result<Did, JsValue> {
    s.parse::<Did>().map_err(|e| js_error(ErrorCode::BadDid, format!("{s:?} is not a DID: {e}")))
}

/// Parses a DID (`0x` + 40 hex, EIP-55 checked) and returns it in checksum form.
/// Throws an `Error` naming what is wrong.
#[wasm_bindgen(js_name = normalizeDid)]
pub fn normalize_did(s: &str) -> Result<String, JsError> {
    s.parse::<Did>().map(Did::to_checksum).map_err(|e| JsError::new(&e.to_string()))
}

/// Every error code (the `code` of a `RingsError`), for the wrappers to tell ours apart.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL.iter().map(|c| c.as_str().to_string()).collect()
}

/// The resource DID of a name: sha1 of its UTF-8 bytes.
#[wasm_bindgen(js_name = resourceDid)]
pub fn resource_did(name: &str) -> String {
    Did::from_name(name.as_bytes()).to_string()
}

/// Operations per second of the wire's cryptography in this browser, each run for
/// `ms` milliseconds: `{sign, verify, delegation, pair, seal, open, seal16kMBps}`.
#[wasm_bindgen(js_name = cryptoBench, unchecked_return_type = "CryptoOps")]
pub fn crypto_bench(ms: f64) -> JsValue {
    let mut clock = || js_sys::Date::now();
    to_js(crate::api::crypto(&crate::bench::crypto_ops(&mut clock, ms)))
}
