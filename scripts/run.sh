#!/usr/bin/env bash
# The main job: builds the npm package and serves the example app on 127.0.0.1.
# Open http://127.0.0.1:8080/examples/web/ in two or more tabs: they join one ring, and
# pages in other browsers join it through the native node this also starts (port 50001).
# `bash scripts/run.sh sim [args]` runs the ring simulator instead (e.g. --nodes 100000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
if [ "${1:-}" = sim ]; then
  shift
  if [ $# -eq 0 ]; then set -- --nodes 10000 --lookups 10000; fi
  exec cargo run --quiet --release --example simulate -- "$@"
fi
bash scripts/build-pkg.sh
cargo build --quiet --bin rings
PORT="${PORT:-8080}"
# One native node beside the page server: pages in any browser bootstrap through its
# public endpoint (RINGS_PUBLIC, default 50001); its JSON-RPC is on RINGS_API (50000).
node tests/browser/native.mjs "${RINGS_PUBLIC:-50001}" "${RINGS_API:-50000}" &
NATIVE=$!
trap 'kill $NATIVE 2>/dev/null || true' EXIT INT TERM
echo "open http://127.0.0.1:$PORT/examples/web/ in two or more tabs or browsers (Ctrl-C stops)"
node tests/browser/server.mjs "$PORT"
