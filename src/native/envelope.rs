//! The TypeScript `Client`'s layouts (js/envelope.ts, js/client.ts), for a native node to
//! talk to pages: a message envelope (magic 0xC1, kind, request id u32 BE, namespace
//! length, namespace, data) and store keys (namespace length, namespace, space, key).

use serde_json::Value as Json;

use super::rpc::to_json;
use crate::api::Value;

pub const MAGIC: u8 = 0xc1;
/// The namespace of JSON-RPC calls that name none.
pub const DEFAULT_NAMESPACE: &str = "rings";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Message = 0,
    Request = 1,
    Reply = 2,
    ErrorReply = 3,
}

pub fn encode(kind: Kind, id: u32, ns: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(7 + ns.len() + data.len());
    out.push(MAGIC);
    out.push(kind as u8);
    out.extend_from_slice(&id.to_be_bytes());
    out.push(ns.len().min(255) as u8);
    out.extend_from_slice(&ns[..ns.len().min(255)]);
    out.extend_from_slice(data);
    out
}

/// `(kind, id, namespace, data)`, or `None` if `b` is not an envelope.
pub fn decode(b: &[u8]) -> Option<(Kind, u32, &[u8], &[u8])> {
    if b.len() < 7 || b[0] != MAGIC {
        return None;
    }
    let kind = [Kind::Message, Kind::Request, Kind::Reply, Kind::ErrorReply].get(usize::from(b[1])).copied()?;
    let n = usize::from(b[6]);
    let ns = b.get(7..7 + n)?;
    Some((kind, u32::from_be_bytes([b[2], b[3], b[4], b[5]]), ns, &b[7 + n..]))
}

pub fn store_key(ns: &[u8], space: u8, key: &[u8]) -> Vec<u8> {
    let ns = &ns[..ns.len().min(255)];
    let mut out = Vec::with_capacity(2 + ns.len() + key.len());
    out.push(ns.len() as u8);
    out.extend_from_slice(ns);
    out.push(space);
    out.extend_from_slice(key);
    out
}

/// An event as JSON; a message's envelope opened (`namespace`, `kind`, `data` hex and
/// `text` if it is UTF-8).
pub fn event_json(e: Value) -> Json {
    let data = match e.get("data") {
        Some(Value::Bytes(b)) if e.get("type") == Some(&Value::Str("message".into())) => Some(b.clone()),
        _ => None,
    };
    let mut j = to_json(e);
    if let Some(b) = data {
        let (kind, ns, body) = match decode(&b) {
            Some((k, _, ns, body)) => (Some(k), Some(String::from_utf8_lossy(ns).into_owned()), body),
            None => (None, None, &b[..]),
        };
        j["namespace"] = ns.map_or(Json::Null, Json::String);
        j["kind"] = Json::from(match kind {
            Some(Kind::Message) => "message",
            Some(Kind::Request) => "request",
            Some(Kind::Reply) => "reply",
            Some(Kind::ErrorReply) => "errorReply",
            None => "raw",
        });
        j["data"] = Json::String(super::keys::hex(body));
        j["text"] = std::str::from_utf8(body).map_or(Json::Null, |t| Json::String(t.to_string()));
        j["bytes"] = Json::from(body.len());
    }
    j
}

/// The namespace a native node answers requests in: a `Client("ping").request(did, x)`
/// to it resolves to `x` (round trips and throughput from a page, see the benchmark).
pub const PING_NAMESPACE: &[u8] = b"ping";

/// A message event that is a request in [`PING_NAMESPACE`]: its sender and the reply
/// (the same data).
pub fn ping_reply(e: &Value) -> Option<(crate::Did, Vec<u8>)> {
    if e.get("type") != Some(&Value::Str("message".into())) {
        return None;
    }
    let (Some(Value::Bytes(b)), Some(Value::Str(from))) = (e.get("data"), e.get("from")) else { return None };
    match decode(b) {
        Some((Kind::Request, id, ns, data)) if ns == PING_NAMESPACE => Some((from.parse().ok()?, encode(Kind::Reply, id, ns, data))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_junk_is_refused() {
        let e = encode(Kind::Request, 0x01020304, b"chat", b"hi");
        assert_eq!(e, [0xc1, 1, 1, 2, 3, 4, 4, b'c', b'h', b'a', b't', b'h', b'i']);
        assert_eq!(decode(&e), Some((Kind::Request, 0x01020304, &b"chat"[..], &b"hi"[..])));
        for bad in [&[0xc1, 0, 0, 0, 0, 0][..], &[0xc0, 0, 0, 0, 0, 0, 0], &[0xc1, 9, 0, 0, 0, 0, 0], &[0xc1, 0, 0, 0, 0, 0, 5, 1]] {
            assert_eq!(decode(bad), None);
        }
        assert_eq!(store_key(b"ns", b'v', b"k"), [2, b'n', b's', b'v', b'k']);
    }

    #[test]
    fn only_requests_in_the_ping_namespace_are_echoed() {
        let from = "0x00000000000000000000000000000000000000aa";
        let ev = |data: Vec<u8>| Value::Obj(vec![("type", Value::Str("message".into())), ("from", Value::Str(from.into())), ("data", Value::Bytes(data))]);
        let (to, reply) = ping_reply(&ev(encode(Kind::Request, 9, b"ping", b"x"))).unwrap();
        assert_eq!(to, from.parse().unwrap());
        assert_eq!(reply, encode(Kind::Reply, 9, b"ping", b"x"));
        for other in [encode(Kind::Message, 9, b"ping", b"x"), encode(Kind::Request, 9, b"chat", b"x"), encode(Kind::Reply, 9, b"ping", b"x"), b"junk".to_vec()] {
            assert!(ping_reply(&ev(other)).is_none());
        }
    }
}
