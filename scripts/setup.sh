#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine of this kind: installs what is missing,
# skips what is present. Sourced by scripts/run.sh and scripts/test.sh; safe to run alone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"

log() { printf '[setup] %s\n' "$*" >&2; }
need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. rustup wasm32 target
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# 2. Debian's chromium + chromium-driver (the browser tests run in real headless Chromium)
if [ "${SETUP_SKIP_BROWSER:-0}" != 1 ]; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing chromium and chromium-driver from Debian"
    need_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive need_root apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
fi

# 3. wasm-bindgen CLI pinned to the version in Cargo.lock (no --locked: see docs/toolchain)
WBG_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)"
if [ -z "$WBG_VERSION" ]; then echo "[setup] cannot read wasm-bindgen version from Cargo.lock" >&2; exit 1; fi
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WBG_VERSION\$"; then
  log "installing wasm-bindgen-cli $WBG_VERSION (about 3 minutes)"
  cargo install -q wasm-bindgen-cli --version "$WBG_VERSION" --force
fi

# 4. wasm-pack
if ! command -v wasm-pack >/dev/null; then
  log "installing wasm-pack (about 2.5 minutes)"
  cargo install -q wasm-pack --locked
fi

# 5. npm dependencies (typescript, playwright-core, binaryen's wasm-opt)
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
fi
# 6. TypeDoc for the API reference (its own TypeScript 6; see scripts/api-docs.sh)
D=scripts/api-docs
if [ ! -d $D/node_modules ] || [ $D/package-lock.json -nt $D/node_modules/.package-lock.json ]; then
  log "installing the API docs tool (TypeDoc)"
  (cd $D && npm ci --no-audit --no-fund --loglevel=error)
fi
log "ready: $(rustc --version), wasm-bindgen $(wasm-bindgen --version | awk '{print $2}'), $(wasm-pack --version 2>/dev/null | tail -1), $(chromium --version 2>/dev/null | tail -1 || echo 'no chromium')"
