#!/usr/bin/env bash
# Builds the npm package into pkg/: the wasm (wasm-pack, release, wasm-opt -Oz), its
# JS glue, and the TypeScript wrappers compiled with declarations. Assumes setup.sh ran.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
WASM_OUT=target/wasm-pack
BUILD=target/js-build
wasm-pack build --release --target web --no-pack --out-dir "$WASM_OUT" --out-name rings_node >/dev/null 2>&1 \
  || wasm-pack build --release --target web --no-pack --out-dir "$WASM_OUT" --out-name rings_node
rm -rf "$BUILD" pkg
mkdir -p "$BUILD" pkg/dist
cp js/index.ts js/tsconfig.json "$BUILD"/
cp "$WASM_OUT"/rings_node.js "$WASM_OUT"/rings_node.d.ts "$BUILD"/
tsc -p "$BUILD/tsconfig.json" --outDir pkg/dist
cp "$WASM_OUT"/rings_node.js "$WASM_OUT"/rings_node.d.ts "$WASM_OUT"/rings_node_bg.wasm pkg/dist/
cp pkg-template/package.json pkg/
cp pkg-template/README.md pkg/ 2>/dev/null || cp README.md pkg/
W=pkg/dist/rings_node_bg.wasm
echo "[build-pkg] pkg/: wasm $(stat -c %s "$W") B raw, $(gzip -9 -c "$W" | wc -c) B gzip" >&2
