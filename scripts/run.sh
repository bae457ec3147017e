#!/usr/bin/env bash
# The main job. Until the browser layer lands it runs the ring simulator and prints a
# readable report: a 10,000-node ring grows, converges and answers 10,000 lookups.
# Extra arguments go to the simulator (e.g. --nodes 100000 --lookups 100000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
if [ $# -eq 0 ]; then set -- --nodes 10000 --lookups 10000; fi
cargo run --quiet --release --example simulate -- "$@"
