#!/usr/bin/env bash
# The test command: sets up what is missing, then runs every native test, the wasm
# build, and the browser tests in headless Chromium. Exit status is the verdict.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-60}"

echo "== native tests (unit, integration, doc, examples built)"
cargo test --all-targets
cargo test --doc

echo "== wasm32 build"
cargo build --lib --release --target wasm32-unknown-unknown --no-default-features
WASM=target/wasm32-unknown-unknown/release/rings_node.wasm
echo "wasm32 cdylib: $(stat -c %s "$WASM") bytes raw, $(gzip -9 -c "$WASM" | wc -c) bytes gzip (before wasm-bindgen and wasm-opt)"

echo "== browser tests (wasm-bindgen-test in headless Chromium), as users type them"
wasm-pack test --headless --chrome -- --no-default-features

echo "== npm package: build, pack, install into a scratch project, tsc --strict"
bash scripts/build-pkg.sh
bash scripts/check-pack.sh
node --test tests/js/
bash scripts/api-docs.sh

echo "== package in headless Chromium (playwright-core): rings of Providers over real WebRTC"
node tests/browser/provider.test.mjs

echo "== consumers of the packed tarball in headless Chromium: a plain ES-module page, Vite 8 (dev, build), Vite 7 (dev)"
node tests/browser/consumers.test.mjs

echo "== the Manifest V3 extension example, unpacked, in headless Chromium"
node tests/browser/extension.test.mjs

echo "== pages and native rings nodes in one ring: HTTP bootstrap, messages, records, services, 16 MiB, two Chromium processes"
cargo build --quiet --bin rings
node tests/browser/native.test.mjs
