//! JSON-RPC 2.0 for the native node: requests parsed and checked here, performed by the
//! node task ([`Handle::call`]), answered as JSON. Params are by name. Errors:
//! the standard codes for bad JSON (-32700), a bad request (-32600), an unknown or
//! refused method (-32601) and bad params (-32602); a node error is `-32000 - i`, `i`
//! its [`ErrorCode`]'s position (stable: codes are only appended), with
//! `data.code` its text (`"BAD_OFFER"` …).
//!
//! Records and messages use the TypeScript `Client`'s layout (namespace, envelope), so a
//! page's `provider.client(ns)` and a native node's `namespace: ns` read each other.

use serde_json::{json, Map, Value as Json};

use super::driver::{Call, Handle};
use super::envelope::{self, Kind};
use crate::api::{ApiError, ErrorCode, Value};
use crate::Did;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;

/// Every method of the internal endpoint.
pub const METHODS: &[&str] = &[
    "nodeInfo",
    "nodeDid",
    "listPeers",
    "connectPeerViaHttp",
    "connectWithDid",
    "connectWithSeed",
    "disconnect",
    "createOffer",
    "answerOffer",
    "acceptAnswer",
    "sendMessage",
    "put",
    "get",
    "registerService",
    "lookupService",
    "pollEvents",
];
/// What the public bootstrap endpoint serves.
pub const PUBLIC_METHODS: &[&str] = &["answerOffer", "nodeDid"];

/// A JSON-RPC error.
#[derive(Debug)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Json>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError { code, message: message.into(), data: None }
    }
    fn params(message: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, message)
    }
}

impl From<ApiError> for RpcError {
    fn from(e: ApiError) -> RpcError {
        let i = ErrorCode::ALL.iter().position(|c| *c == e.code).unwrap_or(0) as i64;
        RpcError { code: -32000 - i, message: e.message, data: Some(json!({ "code": e.code.as_str() })) }
    }
}

/// The response to one request (`id` echoed).
pub fn response(id: Json, r: Result<Json, RpcError>) -> Json {
    match r {
        Ok(v) => json!({ "jsonrpc": "2.0", "id": id, "result": v }),
        Err(e) => {
            let mut err = json!({ "code": e.code, "message": e.message });
            if let Some(d) = e.data {
                err["data"] = d;
            }
            json!({ "jsonrpc": "2.0", "id": id, "error": err })
        }
    }
}

/// The request in `body`, checked: `(id, method, params)`; an error response if not.
pub fn parse(body: &[u8]) -> Result<(Json, String, Map<String, Json>), Json> {
    let v: Json = serde_json::from_slice(body).map_err(|e| response(Json::Null, Err(RpcError::new(PARSE_ERROR, format!("not JSON: {e}")))))?;
    let id = v.get("id").cloned().unwrap_or(Json::Null);
    let bad = |m: &str| response(id.clone(), Err(RpcError::new(INVALID_REQUEST, m)));
    let Json::Object(o) = &v else { return Err(bad("a request is an object (batches are not served)")) };
    if o.get("jsonrpc").and_then(Json::as_str) != Some("2.0") {
        return Err(bad("\"jsonrpc\" must be \"2.0\""));
    }
    if !matches!(id, Json::Null | Json::Number(_) | Json::String(_)) {
        return Err(bad("\"id\" must be a number, a string or null"));
    }
    let Some(method) = o.get("method").and_then(Json::as_str) else { return Err(bad("\"method\" must be a string")) };
    let params = match o.get("params") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(p)) => p.clone(),
        Some(_) => return Err(response(id, Err(RpcError::params("params must be an object (by name)")))),
    };
    Ok((id, method.to_string(), params))
}

/// A value as JSON: bytes as hex, 64-bit ids as decimal strings.
pub fn to_json(v: Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Json::from(n as i64),
        Value::Num(n) => serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number),
        Value::Big(n) => Json::String(n.to_string()),
        Value::Str(s) => Json::String(s),
        Value::Bytes(b) => Json::String(super::keys::hex(&b)),
        Value::List(l) => Json::Array(l.into_iter().map(to_json).collect()),
        Value::Obj(f) => Json::Object(f.into_iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
    }
}

// ---- params ----

fn string(p: &Map<String, Json>, name: &str) -> Result<String, RpcError> {
    match p.get(name) {
        Some(Json::String(s)) => Ok(s.clone()),
        Some(_) => Err(RpcError::params(format!("`{name}` must be a string"))),
        None => Err(RpcError::params(format!("`{name}` is missing"))),
    }
}

fn opt_string(p: &Map<String, Json>, name: &str) -> Result<Option<String>, RpcError> {
    p.get(name).filter(|v| !v.is_null()).map(|_| string(p, name)).transpose()
}

fn did(p: &Map<String, Json>, name: &str) -> Result<Did, RpcError> {
    let s = string(p, name)?;
    s.parse::<Did>().map_err(|e| RpcError::from(ApiError::new(ErrorCode::BadDid, format!("{s:?} is not a DID: {e}"))))
}

fn number(p: &Map<String, Json>, name: &str, default: f64) -> Result<f64, RpcError> {
    match p.get(name) {
        None | Some(Json::Null) => Ok(default),
        Some(v) => v.as_f64().ok_or_else(|| RpcError::params(format!("`{name}` must be a number"))),
    }
}

/// `text` (UTF-8) or `hex` bytes: exactly one.
fn payload(p: &Map<String, Json>, text: &str, hex: &str) -> Result<Vec<u8>, RpcError> {
    match (opt_string(p, text)?, opt_string(p, hex)?) {
        (Some(t), None) => Ok(t.into_bytes()),
        (None, Some(h)) => super::keys::unhex(h.strip_prefix("0x").unwrap_or(&h)).ok_or_else(|| RpcError::params(format!("`{hex}` is not hex"))),
        _ => Err(RpcError::params(format!("give one of `{text}` or `{hex}`"))),
    }
}

fn namespace(p: &Map<String, Json>) -> Result<String, RpcError> {
    let ns = opt_string(p, "namespace")?.unwrap_or_else(|| envelope::DEFAULT_NAMESPACE.to_string());
    if ns.is_empty() || ns.len() > 255 {
        return Err(RpcError::params("`namespace` must be 1 to 255 bytes"));
    }
    Ok(ns)
}

/// Performs `method`. `via_http`: how to reach another node's public endpoint (for
/// `connectPeerViaHttp` and `connectWithSeed`).
pub async fn call(h: &Handle, method: &str, p: &Map<String, Json>) -> Result<Json, RpcError> {
    let r = |v: Result<Value, ApiError>| v.map(to_json).map_err(RpcError::from);
    match method {
        "nodeInfo" => r(h.call(Call::Info).await),
        "nodeDid" => Ok(Json::String(h.did.to_checksum())),
        "listPeers" => r(h.call(Call::Peers).await),
        "connectPeerViaHttp" => {
            let url = string(p, "url")?;
            Ok(Json::String(super::http::connect_via_http(h, &url).await?.to_checksum()))
        }
        "connectWithSeed" => {
            let urls = match p.get("urls") {
                Some(Json::Array(a)) if !a.is_empty() && a.len() <= 64 => a.iter().map(|u| u.as_str().map(str::to_string)).collect::<Option<Vec<_>>>(),
                _ => None,
            };
            let urls = urls.ok_or_else(|| RpcError::params("`urls` must be a list of 1 to 64 URL strings"))?;
            let mut linked = Vec::new();
            let mut last = None;
            for u in urls {
                match super::http::connect_via_http(h, &u).await {
                    Ok(d) => linked.push(Json::String(d.to_checksum())),
                    Err(e) => last = Some(e),
                }
            }
            match (linked.is_empty(), last) {
                (true, Some(e)) => Err(e),
                _ => Ok(Json::Array(linked)),
            }
        }
        "connectWithDid" => r(h.call(Call::Connect(did(p, "did")?)).await),
        "disconnect" => r(h.call(Call::Disconnect(did(p, "did")?)).await),
        "createOffer" => r(h.call(Call::CreateOffer).await),
        "answerOffer" => r(h.call(Call::AnswerOffer(string(p, "offer")?)).await),
        "acceptAnswer" => r(h.call(Call::AcceptAnswer(string(p, "answer")?)).await),
        "sendMessage" => {
            let to = did(p, "did")?;
            let data = payload(p, "text", "hex")?;
            let data = match p.get("raw") {
                Some(Json::Bool(true)) => data,
                _ => envelope::encode(Kind::Message, 0, namespace(p)?.as_bytes(), &data),
            };
            r(h.call(Call::Send { to, data }).await)
        }
        "put" => {
            let key = envelope::store_key(namespace(p)?.as_bytes(), b'v', string(p, "key")?.as_bytes());
            let value = payload(p, "value", "valueHex")?;
            let ttl_ms = number(p, "ttlMs", 3_600_000.0)?;
            r(h.call(Call::Put { key, set: false, value, ttl_ms, keep: false }).await)
        }
        "get" => {
            let key = envelope::store_key(namespace(p)?.as_bytes(), b'v', string(p, "key")?.as_bytes());
            let found = h.call(Call::Get { key }).await.map_err(RpcError::from)?;
            let value = match found {
                Value::List(l) => l.into_iter().find(|r| r.get("kind") == Some(&Value::Str("value".into()))),
                _ => None,
            };
            Ok(value.map_or(Json::Null, |v| {
                let text = match v.get("value") {
                    Some(Value::Bytes(b)) => std::str::from_utf8(b).ok().map(str::to_string),
                    _ => None,
                };
                let mut j = to_json(v);
                j["text"] = text.map_or(Json::Null, Json::String);
                j
            }))
        }
        "registerService" => {
            let key = envelope::store_key(namespace(p)?.as_bytes(), b's', string(p, "name")?.as_bytes());
            let ttl_ms = number(p, "ttlMs", 60_000.0)?;
            if !(1000.0..=3_600_000.0).contains(&ttl_ms) {
                return Err(RpcError::params("`ttlMs` must be from 1000 to 3600000"));
            }
            r(h.call(Call::Put { key, set: true, value: Vec::new(), ttl_ms, keep: true }).await)
        }
        "lookupService" => {
            let key = envelope::store_key(namespace(p)?.as_bytes(), b's', string(p, "name")?.as_bytes());
            let found = h.call(Call::Get { key }).await.map_err(RpcError::from)?;
            let dids = match found {
                Value::List(l) => l
                    .into_iter()
                    .filter(|r| r.get("kind") == Some(&Value::Str("set".into())))
                    .filter_map(|r| r.get("writer").cloned().map(to_json))
                    .collect(),
                _ => Vec::new(),
            };
            Ok(Json::Array(dids))
        }
        "pollEvents" => {
            let max = number(p, "max", 256.0)?;
            if !(1.0..=4096.0).contains(&max) {
                return Err(RpcError::params("`max` must be from 1 to 4096"));
            }
            let events = h.call(Call::Events { max: max as usize }).await.map_err(RpcError::from)?;
            Ok(match events {
                Value::List(l) => Json::Array(l.into_iter().map(envelope::event_json).collect()),
                other => to_json(other),
            })
        }
        _ => Err(RpcError::new(METHOD_NOT_FOUND, format!("no method {method:?}"))),
    }
}
