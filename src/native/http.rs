//! The node's HTTP: the internal JSON-RPC endpoint (every method), the public bootstrap
//! endpoint (`answerOffer`, `nodeDid`, a status page; CORS for browsers; small bodies;
//! bounded concurrent handshakes and a per-address rate), and the client that dials
//! another node's public endpoint.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Value as Json};
use tokio::sync::Semaphore;

use super::config::HttpUrl;
use super::driver::{Call, Handle};
use super::rpc::{self, RpcError};
use crate::api::{ApiError, ErrorCode, Value};
use crate::Did;

/// Largest request body on the internal endpoint (a 16 MiB message as hex, and its JSON).
pub const INTERNAL_BODY: usize = 40 << 20;
/// Largest request body on the public endpoint (a signed offer is a few KB).
pub const PUBLIC_BODY: usize = 64 << 10;
/// Client addresses whose rate is tracked at once on the public endpoint.
const MAX_TRACKED: usize = 4096;
/// How long a request to another node may take.
const DIAL_TIMEOUT: StdDuration = StdDuration::from_secs(10);

#[derive(Clone)]
struct Internal {
    node: Handle,
}

#[derive(Clone)]
struct Public {
    node: Handle,
    handshakes: Arc<Semaphore>,
    rate: Arc<Mutex<Rates>>,
    per_minute: u32,
}

/// Requests per client address in the current minute.
#[derive(Default)]
struct Rates {
    by_ip: HashMap<IpAddr, (StdInstant, u32)>,
}

impl Rates {
    /// Counts one request from `ip`; `false` if over `limit` this minute (or too many
    /// addresses are tracked: a flood from many addresses is refused, not remembered).
    fn allow(&mut self, ip: IpAddr, limit: u32, now: StdInstant) -> bool {
        let minute = StdDuration::from_secs(60);
        if self.by_ip.len() >= MAX_TRACKED && !self.by_ip.contains_key(&ip) {
            self.by_ip.retain(|_, (start, _)| now.duration_since(*start) < minute);
            if self.by_ip.len() >= MAX_TRACKED {
                return false;
            }
        }
        let e = self.by_ip.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= minute {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 <= limit
    }
}

pub struct Limits {
    pub max_handshakes: u32,
    pub per_minute: u32,
}

/// Binds both endpoints and serves them on the current runtime; returns their addresses.
pub async fn serve(node: Handle, api: SocketAddr, public: Option<SocketAddr>, limits: Limits) -> Result<(SocketAddr, Option<SocketAddr>), String> {
    let bind = |a: SocketAddr| async move { tokio::net::TcpListener::bind(a).await.map_err(|e| format!("cannot listen on {a}: {e}")) };
    let l = bind(api).await?;
    let api_addr = l.local_addr().map_err(|e| e.to_string())?;
    let internal = Router::new()
        .route("/", post(internal_rpc))
        .layer(DefaultBodyLimit::max(INTERNAL_BODY))
        .with_state(Internal { node: node.clone() });
    tokio::spawn(async move { axum::serve(l, internal).await });
    let mut public_addr = None;
    if let Some(a) = public {
        let l = bind(a).await?;
        public_addr = Some(l.local_addr().map_err(|e| e.to_string())?);
        let state = Public {
            node,
            handshakes: Arc::new(Semaphore::new(limits.max_handshakes as usize)),
            rate: Arc::default(),
            per_minute: limits.per_minute,
        };
        let app = Router::new()
            .route("/", post(public_rpc).get(status).options(preflight))
            .layer(DefaultBodyLimit::max(PUBLIC_BODY))
            .with_state(state);
        tokio::spawn(async move { axum::serve(l, app.into_make_service_with_connect_info::<SocketAddr>()).await });
    }
    Ok((api_addr, public_addr))
}

fn json_response(v: Json, cors: bool) -> Response {
    let mut r = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response();
    if cors {
        add_cors(r.headers_mut());
    }
    r
}

fn add_cors(h: &mut HeaderMap) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
}

fn too_large(limit: usize) -> Json {
    rpc::response(Json::Null, Err(RpcError::new(rpc::INVALID_REQUEST, format!("request body over {limit} bytes"))))
}

async fn internal_rpc(State(s): State<Internal>, body: Result<Bytes, BytesRejection>) -> Response {
    let Ok(body) = body else { return json_response(too_large(INTERNAL_BODY), false) };
    let v = match rpc::parse(&body) {
        Err(e) => e,
        Ok((id, method, params)) => rpc::response(id, rpc::call(&s.node, &method, &params).await),
    };
    json_response(v, false)
}

async fn public_rpc(State(s): State<Public>, ConnectInfo(from): ConnectInfo<SocketAddr>, body: Result<Bytes, BytesRejection>) -> Response {
    let Ok(body) = body else { return json_response(too_large(PUBLIC_BODY), true) };
    let v = match rpc::parse(&body) {
        Err(e) => e,
        Ok((id, method, _)) if !rpc::PUBLIC_METHODS.contains(&method.as_str()) => {
            let e = RpcError::new(rpc::METHOD_NOT_FOUND, format!("{method:?} is not served on the public endpoint"));
            rpc::response(id, Err(e))
        }
        Ok((id, method, params)) => {
            let allowed = s.rate.lock().map(|mut r| r.allow(from.ip(), s.per_minute, StdInstant::now())).unwrap_or(false);
            let permit = if method == "answerOffer" { s.handshakes.clone().try_acquire_owned().ok() } else { None };
            if !allowed {
                rpc::response(id, Err(ApiError::new(ErrorCode::Busy, "too many requests from this address; wait a minute").into()))
            } else if method == "answerOffer" && permit.is_none() {
                rpc::response(id, Err(ApiError::new(ErrorCode::Busy, "too many handshakes at once; try again").into()))
            } else {
                let r = rpc::call(&s.node, &method, &params).await;
                drop(permit);
                rpc::response(id, r)
            }
        }
    };
    json_response(v, true)
}

async fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    add_cors(r.headers_mut());
    r
}

async fn status(State(s): State<Public>) -> Response {
    let info = s.node.call(Call::Info).await.unwrap_or(Value::Null);
    let field = |k: &str| info.get(k).cloned().map(rpc::to_json).unwrap_or(Json::Null);
    let page = format!(
        "<!doctype html><meta charset=utf-8><title>rings node</title><h1>rings node</h1>\
         <p>DID <code>{}</code>, network {}</p><p>joined: {}, successor: {}, predecessor: {}</p>\
         <p>POST JSON-RPC 2.0 <code>answerOffer {{offer}}</code> or <code>nodeDid</code> here to bootstrap.</p>",
        s.node.did.to_checksum(),
        s.node.network,
        field("joined"),
        field("successor"),
        field("predecessor"),
    );
    let mut r = Html(page).into_response();
    add_cors(r.headers_mut());
    r
}

// ---- the client ----

/// POSTs a JSON-RPC call to `url` and returns its result.
pub async fn post_rpc(url: &HttpUrl, method: &str, params: Json, max_response: usize) -> Result<Json, String> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    let req = hyper::Request::post(url.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("{url}: {e}"))?;
    let fut = async {
        let resp = client.request(req).await.map_err(|e| format!("{url}: {e}"))?;
        let body = Limited::new(resp.into_body(), max_response).collect().await.map_err(|e| format!("{url}: response: {e}"))?;
        Ok::<_, String>(body.to_bytes())
    };
    let bytes = tokio::time::timeout(DIAL_TIMEOUT, fut).await.map_err(|_| format!("{url}: no response in {DIAL_TIMEOUT:?}"))??;
    let v: Json = serde_json::from_slice(&bytes).map_err(|e| format!("{url}: not JSON: {e}"))?;
    if let Some(e) = v.get("error") {
        return Err(format!("{url}: {}", e.get("message").and_then(Json::as_str).unwrap_or("error")));
    }
    v.get("result").cloned().ok_or_else(|| format!("{url}: no result"))
}

/// Bootstraps through another node's public endpoint: our offer, its answer, the link;
/// returns its DID once the link is open (a node alone then joins the ring through it).
pub async fn connect_via_http(h: &Handle, url: &str) -> Result<Did, RpcError> {
    let url = HttpUrl::parse(url).map_err(|e| RpcError::new(rpc::INVALID_PARAMS, e))?;
    let offer = match h.call(Call::CreateOffer).await? {
        Value::Str(s) => s,
        _ => return Err(ApiError::new(ErrorCode::Webrtc, "no offer").into()),
    };
    let failed = |e: String| RpcError::from(ApiError::new(ErrorCode::ConnectFailed, e));
    let answer = post_rpc(&url, "answerOffer", json!({ "offer": offer }), PUBLIC_BODY).await.map_err(failed)?;
    let answer = answer.as_str().ok_or_else(|| failed(format!("{url}: the answer is not a string")))?;
    match h.call(Call::AcceptAnswer(answer.to_string())).await? {
        Value::Str(d) => d.parse::<Did>().map_err(|e| failed(e.to_string())),
        _ => Err(failed("no DID".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_per_address_and_bounded() {
        let mut r = Rates::default();
        let t = StdInstant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!((0..5).all(|_| r.allow(a, 5, t)));
        assert!(!r.allow(a, 5, t));
        assert!(r.allow("10.0.0.2".parse().unwrap(), 5, t));
        assert!(r.allow(a, 5, t + StdDuration::from_secs(61)));
        for i in 0..MAX_TRACKED as u32 {
            r.allow(IpAddr::from(i.to_be_bytes()), 5, t);
        }
        assert!(r.by_ip.len() <= MAX_TRACKED);
        assert!(!r.allow("192.168.9.9".parse().unwrap(), 5, t + StdDuration::from_secs(1)));
    }
}
