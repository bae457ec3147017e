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

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// How long one connection to the public endpoint may live (a bootstrap is one request:
/// a client that trickles its body is cut off).
const PUBLIC_LIFETIME: StdDuration = StdDuration::from_secs(30);
/// Connections served at once: the public endpoint's, and the internal one's.
const PUBLIC_CONNECTIONS: usize = 256;
const INTERNAL_CONNECTIONS: usize = 64;
/// How long the status page is served from its cache.
const STATUS_CACHE: StdDuration = StdDuration::from_secs(1);

#[derive(Clone)]
struct Internal {
    node: Handle,
}

#[derive(Clone)]
struct Public {
    node: Handle,
    handshakes: Arc<Semaphore>,
    rate: Arc<Mutex<Rates>>,
    /// Node-wide `answerOffer` calls this minute (a flood from many addresses is
    /// bounded too).
    all: Arc<Mutex<(StdInstant, u32)>>,
    per_minute: u32,
    /// The status page's own counters (loading it never costs a bootstrap).
    status_rate: Arc<Mutex<Rates>>,
    status: Arc<Mutex<Option<(StdInstant, String)>>>,
}

/// `answerOffer` calls per minute node-wide, as a multiple of the per-client limit.
const ALL_CLIENTS: u32 = 64;
/// Connections one client (IPv4 address, IPv6 /64) may hold at once on the public
/// endpoint; more are closed at once.
const PER_CLIENT_CONNECTIONS: usize = 8;

/// Requests per client (an IPv4 address, or an IPv6 /64: one host's share) in the
/// current minute.
#[derive(Default)]
struct Rates {
    by_ip: HashMap<IpAddr, (StdInstant, u32)>,
}

/// The key a client's requests are counted under.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

impl Rates {
    /// Counts one request from `ip`; `false` if over `limit` this minute. At most
    /// [`MAX_TRACKED`] clients are remembered: when full, the expired go, else the one
    /// counted longest ago.
    fn allow(&mut self, ip: IpAddr, limit: u32, now: StdInstant) -> bool {
        let minute = StdDuration::from_secs(60);
        let ip = client_key(ip);
        if self.by_ip.len() >= MAX_TRACKED && !self.by_ip.contains_key(&ip) {
            self.by_ip.retain(|_, (start, _)| now.duration_since(*start) < minute);
            if self.by_ip.len() >= MAX_TRACKED {
                if let Some(oldest) = self.by_ip.iter().min_by_key(|(_, (start, _))| *start).map(|(k, _)| *k) {
                    self.by_ip.remove(&oldest);
                }
            }
        }
        let e = self.by_ip.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= minute {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
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
    tokio::spawn(serve_bounded(l, internal, INTERNAL_CONNECTIONS, usize::MAX, None));
    let mut public_addr = None;
    if let Some(a) = public {
        let l = bind(a).await?;
        public_addr = Some(l.local_addr().map_err(|e| e.to_string())?);
        let state = Public {
            node,
            handshakes: Arc::new(Semaphore::new(limits.max_handshakes as usize)),
            rate: Arc::default(),
            all: Arc::new(Mutex::new((StdInstant::now(), 0))),
            per_minute: limits.per_minute,
            status_rate: Arc::default(),
            status: Arc::default(),
        };
        let app = Router::new()
            .route("/", post(public_rpc).get(status).options(preflight))
            .layer(DefaultBodyLimit::max(PUBLIC_BODY))
            .with_state(state);
        tokio::spawn(serve_bounded(l, app, PUBLIC_CONNECTIONS, PER_CLIENT_CONNECTIONS, Some(PUBLIC_LIFETIME)));
    }
    Ok((api_addr, public_addr))
}

/// Serves `app` on `l` over HTTP/1: at most `max` connections at once (the next waits in
/// the kernel's backlog) and `per_client` from one client (more are closed at once),
/// headers within [`HEADER_TIMEOUT`], each connection cut off after `lifetime`. Handlers
/// see the client's address as [`ConnectInfo`].
async fn serve_bounded(l: tokio::net::TcpListener, app: Router, max: usize, per_client: usize, lifetime: Option<StdDuration>) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = Arc::new(Semaphore::new(max));
    let held: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let (stream, from) = match l.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(StdDuration::from_millis(50)).await;
                continue;
            }
        };
        let client = client_key(from.ip());
        let admitted = held.lock().map(|mut h| {
            let n = h.entry(client).or_insert(0);
            *n += 1;
            *n <= per_client
        }).unwrap_or(false);
        let release = {
            let held = held.clone();
            move || {
                if let Ok(mut h) = held.lock() {
                    if let Some(n) = h.get_mut(&client) {
                        *n -= 1;
                        if *n == 0 {
                            h.remove(&client);
                        }
                    }
                }
            }
        };
        if !admitted {
            release();
            drop(stream); // closed at once
            continue;
        }
        let app = app.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(from));
                tower_service::Service::call(&mut app.clone(), req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            match lifetime {
                Some(t) => drop(tokio::time::timeout(t, conn).await),
                None => drop(conn.await),
            }
            release();
            drop(slot);
        });
    }
}

/// Whether a request to the internal endpoint may be served: `Content-Type:
/// application/json` (a cross-site form cannot send it, and a cross-site `fetch` with it
/// needs a preflight this endpoint never grants) and a loopback `Host` (a DNS-rebound
/// name is refused).
fn local_request(h: &HeaderMap) -> Result<(), String> {
    let ct = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return Err("Content-Type must be application/json".into());
    }
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    let loopback = name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!("Host {host:?} is not a loopback name or address"));
    }
    Ok(())
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

async fn internal_rpc(State(s): State<Internal>, req: axum::extract::Request) -> Response {
    // The headers are checked before a byte of the body is read.
    if let Err(why) = local_request(req.headers()) {
        let v = rpc::response(Json::Null, Err(RpcError::new(rpc::INVALID_REQUEST, why)));
        let mut r = json_response(v, false);
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), INTERNAL_BODY).await else { return json_response(too_large(INTERNAL_BODY), false) };
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
            let now = StdInstant::now();
            let mut allowed = s.rate.lock().map(|mut r| r.allow(from.ip(), s.per_minute, now)).unwrap_or(false);
            if allowed && method == "answerOffer" {
                allowed = s.all.lock().map(|mut a| {
                    if now.duration_since(a.0) >= StdDuration::from_secs(60) {
                        *a = (now, 0);
                    }
                    a.1 += 1;
                    a.1 <= s.per_minute.saturating_mul(ALL_CLIENTS)
                }).unwrap_or(false);
            }
            let permit = if method == "answerOffer" { s.handshakes.clone().try_acquire_owned().ok() } else { None };
            if !allowed {
                rpc::response(id, Err(ApiError::new(ErrorCode::Busy, "too many requests (from this address, or in all); wait a minute").into()))
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

async fn status(State(s): State<Public>, ConnectInfo(from): ConnectInfo<SocketAddr>) -> Response {
    let now = StdInstant::now();
    let allowed = s.status_rate.lock().map(|mut r| r.allow(from.ip(), s.per_minute.saturating_mul(4), now)).unwrap_or(false);
    if !allowed {
        let mut r = (StatusCode::TOO_MANY_REQUESTS, "too many requests from this address; wait a minute").into_response();
        add_cors(r.headers_mut());
        return r;
    }
    let cached = s.status.lock().ok().and_then(|c| c.as_ref().filter(|(at, _)| now.duration_since(*at) < STATUS_CACHE).map(|(_, p)| p.clone()));
    let page = match cached {
        Some(p) => p,
        None => {
            let p = status_page(&s).await;
            if let Ok(mut c) = s.status.lock() {
                *c = Some((now, p.clone()));
            }
            p
        }
    };
    let mut r = Html(page).into_response();
    add_cors(r.headers_mut());
    r
}

async fn status_page(s: &Public) -> String {
    let info = s.node.call(Call::Info).await.unwrap_or(Value::Null);
    let field = |k: &str| info.get(k).cloned().map(rpc::to_json).unwrap_or(Json::Null);
    format!(
        "<!doctype html><meta charset=utf-8><title>rings node</title><h1>rings node</h1>\
         <p>DID <code>{}</code>, network {}</p><p>joined: {}, successor: {}, predecessor: {}</p>\
         <p>POST JSON-RPC 2.0 <code>answerOffer {{offer}}</code> or <code>nodeDid</code> here to bootstrap.</p>",
        s.node.did.to_checksum(),
        s.node.network,
        field("joined"),
        field("successor"),
        field("predecessor"),
    )
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
    let did = match h.call(Call::AcceptAnswer(answer.to_string())).await? {
        Value::Str(d) => d.parse::<Did>().map_err(|e| failed(e.to_string()))?,
        _ => return Err(failed("no DID".into())),
    };
    super::remember(h.disk.as_deref(), &url.to_string());
    Ok(did)
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
        // An IPv6 host's /64 is one client.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!((0..5).all(|i| r.allow(v6(&format!("2001:db8::{i}")), 5, t)));
        assert!(!r.allow(v6("2001:db8::ffff:1"), 5, t));
        assert!(r.allow(v6("2001:db8:0:1::1"), 5, t));
        assert!((0..5).all(|_| r.allow(v6("10.0.0.3"), 5, t)));
        assert!(!r.allow(v6("::ffff:10.0.0.3"), 5, t), "a mapped IPv4 address counts as itself");
        // Full: a new client is still counted, the one counted longest ago is forgotten.
        for i in 0..MAX_TRACKED as u32 {
            r.allow(IpAddr::from((i + 1).to_be_bytes()), 5, t + StdDuration::from_millis(u64::from(i)));
        }
        assert!(r.by_ip.len() <= MAX_TRACKED);
        assert!(r.allow("192.168.9.9".parse().unwrap(), 5, t + StdDuration::from_secs(5)));
        assert!(r.by_ip.len() <= MAX_TRACKED);
    }

    #[test]
    fn the_internal_endpoint_wants_json_from_loopback() {
        let h = |ct: &str, host: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            m.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            local_request(&m)
        };
        for host in ["127.0.0.1:50000", "localhost:1", "[::1]:8", "127.9.9.9", "LOCALHOST"] {
            assert!(h("application/json", host).is_ok(), "{host}");
        }
        assert!(h("application/json; charset=utf-8", "127.0.0.1:1").is_ok());
        for host in ["evil.example:50000", "127.0.0.1.evil.example", "[2001:db8::1]:1", ""] {
            assert!(h("application/json", host).is_err(), "{host}");
        }
        assert!(h("text/plain", "127.0.0.1:1").is_err());
        assert!(local_request(&HeaderMap::new()).is_err());
    }
}
