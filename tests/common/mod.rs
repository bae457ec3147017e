//! Shared by the wire tests.
#![allow(dead_code)]

pub mod craft;

#[allow(unused_imports)]
pub use rings_node::sim::pair::{ring_of_two, session, DAY, T0};
use rings_node::{Instant, Node};

pub fn pump(x: &mut Node, y: &mut Node, now: Instant) {
    rings_node::sim::pair::pump(x, y, now, None)
}

pub fn run(a: &mut Node, b: &mut Node, now: &mut Instant, ms: u64) {
    rings_node::sim::pair::run(a, b, now, ms, None)
}
