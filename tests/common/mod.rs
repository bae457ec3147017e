//! Shared by the wire tests.
#![allow(dead_code)]

pub mod craft;
#[cfg(all(feature = "native", not(target_arch = "wasm32")))]
pub mod rings;

#[allow(unused_imports)]
pub use rings_node::sim::pair::{ring_of_two, session, DAY, T0};
use rings_node::{Instant, Node};

pub fn pump(x: &mut Node, y: &mut Node, now: Instant) {
    rings_node::sim::pair::pump(x, y, now, None)
}

pub fn run(a: &mut Node, b: &mut Node, now: &mut Instant, ms: u64) {
    rings_node::sim::pair::run(a, b, now, ms, None)
}

/// Runs `sim` in steps of `step` ms, up to `tries` of them, until operation `op` of node
/// `ix` ends; its event, or `None` if it did not end.
pub fn store_event(
    sim: &mut rings_node::sim::Sim,
    ix: u32,
    op: rings_node::store::OpId,
    step: u64,
    tries: usize,
) -> Option<rings_node::store::StoreEvent> {
    for _ in 0..tries {
        if let Some(e) = sim.take_store_event(ix, op) {
            return Some(e);
        }
        sim.run_until(Instant(sim.now().as_millis() + step));
    }
    None
}
