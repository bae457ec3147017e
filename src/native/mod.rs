//! The native node (`rings`): the second thin driver of the same core. A tokio task owns
//! the node ([`driver`]) and performs its link work on str0m WebRTC connections over UDP
//! ([`rtc`]); JSON-RPC over HTTP ([`rpc`], [`http`]) is its API and its public bootstrap
//! endpoint for browsers. Native only (feature `native`); nothing here reaches the wasm.

pub mod cli;
pub mod config;
pub mod driver;
pub mod envelope;
pub mod http;
pub mod keys;
pub mod rpc;
pub mod rtc;
pub mod storage;
pub mod stun;

use std::net::SocketAddr;
use std::sync::Arc;

use config::Checked;
use driver::{Call, Handle};

use crate::api::{ErrorCode, Value};
use crate::time::{Duration, Instant};

/// A running node: its handle and where it listens.
pub struct Running {
    pub node: Handle,
    pub api: SocketAddr,
    pub public: Option<SocketAddr>,
    /// The addresses each connection binds its own UDP port on.
    pub udp: Vec<std::net::IpAddr>,
    /// Ends when the node task does: after `shutdown`, or if it panicked.
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the node of `cfg` on the current tokio runtime: the node task, its UDP
/// sockets, both HTTP endpoints, and the bootstrap through its seeds.
pub async fn start(cfg: &Checked) -> Result<Running, String> {
    if cfg.raw.ice_servers.iter().any(|s| s.urls.starts_with("turn")) {
        tracing::warn!("turn: servers are not used (str0m has no TURN client); stun: servers are");
    }
    let wall = driver::wall_ms();
    let session = match &cfg.session {
        Some(path) => keys::read_session(path, cfg.raw.network, Instant(wall))?,
        None => {
            let account = keys::read_key(&cfg.key_file)?;
            let ttl = Duration::from_secs(u64::from(cfg.raw.session_ttl_days) * 86_400);
            keys::new_session(&account, cfg.raw.network, Instant(wall), ttl)?
        }
    };
    let disk = cfg.storage.as_deref().map(storage::Disk::open).transpose()?.map(Arc::new);
    let (restore, bad) = disk.as_ref().map(|d| d.records()).transpose()?.unwrap_or_default();
    if bad > 0 {
        tracing::warn!("{bad} records on disk do not decode: skipped");
    }
    let mut seeds: Vec<String> = cfg.seeds.iter().map(|s| s.to_string()).collect();
    for s in disk.as_ref().map(|d| d.seeds()).transpose()?.unwrap_or_default() {
        if !seeds.contains(&s) {
            seeds.push(s);
        }
    }
    let (node, task) = driver::spawn(driver::Options {
        session,
        seed: keys::entropy()?,
        max_connections: cfg.raw.max_connections,
        max_handshakes: cfg.raw.max_handshakes,
        ips: cfg.udp_listen.clone(),
        external: cfg.external_ips.clone(),
        stun: cfg.stun.clone(),
        store_bytes: (cfg.raw.storage_capacity_mb as usize) << 20,
        disk: disk.clone(),
        restore,
    })
    .map_err(|e| e.message)?;
    let limits = http::Limits { max_handshakes: cfg.raw.max_handshakes, per_minute: cfg.raw.handshakes_per_minute };
    let (api, public) = http::serve(node.clone(), cfg.api_address, cfg.public_address, limits).await?;
    if !seeds.is_empty() {
        tokio::spawn(keep_joined(node.clone(), seeds));
    }
    Ok(Running { node, api, public, udp: cfg.udp_listen.clone(), task })
}

/// Bootstraps through the seeds, in order, whenever the node has no link (at start, and
/// after it lost them all or gave up a join): every 2 s, then backing off to 30 s.
async fn keep_joined(node: Handle, seeds: Vec<String>) {
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        tokio::time::sleep(wait).await;
        let peers = match node.call(Call::Peers).await {
            Ok(Value::List(l)) => l.len(),
            Ok(_) => 0,
            Err(e) if e.code == ErrorCode::Closed => return, // the node is gone
            Err(_) => continue,                              // busy: look again later
        };
        if peers > 0 {
            wait = std::time::Duration::from_secs(2);
            continue;
        }
        let mut linked = false;
        for s in &seeds {
            match http::connect_via_http(&node, s).await {
                Ok(did) => {
                    tracing::info!("linked to seed {s} ({did})");
                    linked = true;
                    break;
                }
                Err(e) => tracing::warn!("seed {s}: {}", e.message),
            }
        }
        wait = if linked { std::time::Duration::from_secs(2) } else { (wait * 2).clamp(std::time::Duration::from_secs(2), std::time::Duration::from_secs(30)) };
    }
}

/// Notes on disk that `url` linked (a restart tries it after the configured seeds).
pub fn remember(disk: Option<&storage::Disk>, url: &str) {
    let wall = driver::wall_ms();
    if let Some(Err(e)) = disk.map(|d| d.linked_through(url, wall)) {
        tracing::warn!("{e}");
    }
}
