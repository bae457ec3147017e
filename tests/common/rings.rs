//! Real `rings` processes for the native tests: each in its own folder, on loopback
//! ports the kernel picks, killed when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

pub const RINGS: &str = env!("CARGO_BIN_EXE_rings");

/// Holds the machine for one multi-process test at a time: the tests of a file run in
/// parallel, and five debug-built nodes per test, several tests at once, on two cores
/// starve every node's timers (hop and connect timeouts fire that a real node's never
/// would). Taken first thing in each test of `tests/native_ring.rs`.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static MACHINE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    MACHINE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A folder of its own under the target directory.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn rings(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(RINGS).args(args).current_dir(dir).output().expect("rings runs")
}

/// `rings init` in `dir`, then the config's fields replaced by `set` (`key = value` lines).
pub fn init(dir: &Path, set: &[(&str, &str)]) -> PathBuf {
    let out = rings(&["init"], dir);
    assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
    let path = dir.join("config.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (k, v) in set {
        let line = format!("{k} = {v}");
        let at = text.lines().position(|l| l.starts_with(&format!("{k} =")) || l.starts_with(&format!("# {k} =")));
        text = match at {
            Some(i) => text.lines().enumerate().map(|(j, l)| if j == i { line.clone() } else { l.to_string() }).collect::<Vec<_>>().join("\n"),
            None => format!("{line}\n{text}"),
        };
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Loopback ports the kernel picks.
pub const ANY_PORTS: &[(&str, &str)] = &[("api_address", "\"127.0.0.1:0\""), ("public_address", "\"127.0.0.1:0\"")];

pub struct Node {
    pub child: Child,
    pub dir: PathBuf,
    pub did: String,
    pub api: String,
    pub public: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rings run` in `dir` (initialised), once it says where it listens.
pub fn run(dir: &Path) -> Node {
    let mut child = Command::new(RINGS)
        .args(["run", "-c", "config.toml"])
        .current_dir(dir)
        .env("RUST_LOG", std::env::var("RINGS_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(dir.join("stderr.log")).unwrap()))
        .spawn()
        .expect("rings run starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let field = |k: &str| line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{k}="))).unwrap_or_default().to_string();
    assert!(line.starts_with("rings: "), "rings run said {line:?}; stderr: {}", std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default());
    Node { did: field("did"), api: field("api"), public: field("public"), child, dir: dir.to_path_buf() }
}

/// A new node in a new folder, seeded with `seeds`.
pub fn start(name: &str, seeds: &[&str], extra: &[(&str, &str)]) -> Node {
    let dir = scratch(name);
    let seeds = format!("[{}]", seeds.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", "));
    let mut set: Vec<(&str, &str)> = ANY_PORTS.to_vec();
    set.push(("seeds", &seeds));
    set.extend_from_slice(extra);
    init(&dir, &set);
    run(&dir)
}

/// POSTs `body` to `url`: the HTTP status and the JSON answer.
pub fn post(url: &str, body: impl Into<Vec<u8>>) -> (u16, Json) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let body: Vec<u8> = body.into();
    rt.block_on(async move {
        let client: Client<_, Full<hyper::body::Bytes>> = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let req = hyper::Request::post(url).header("content-type", "application/json").body(Full::new(body.into())).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req)).await.expect("an answer in 30 s").expect("HTTP works");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Json::Null))
    })
}

/// Calls `method`: its result, or the error object.
pub fn call(url: &str, method: &str, params: Json) -> Result<Json, Json> {
    let (_, v) = post(url, json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }).to_string());
    assert_eq!(v["id"], 7, "{v}");
    match v.get("error") {
        Some(e) => Err(e.clone()),
        None => Ok(v["result"].clone()),
    }
}

pub fn ok(url: &str, method: &str, params: Json) -> Json {
    call(url, method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Waits up to `secs` for `f`; panics with `what` and the last state if it never holds.
pub fn eventually<T: std::fmt::Debug>(secs: u64, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > until => panic!("{what} within {secs} s: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Messages received by `node` since the last call (text, from).
pub fn messages(url: &str) -> Vec<(String, String)> {
    let ev = ok(url, "pollEvents", json!({ "max": 4096 }));
    ev.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| (e["text"].as_str().unwrap_or_default().to_string(), e["from"].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}
