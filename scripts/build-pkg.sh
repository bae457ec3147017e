#!/usr/bin/env bash
# Builds the npm package into pkg/: the wasm (wasm-pack, release, wasm-opt -Oz), its
# JS glue, and the TypeScript wrappers compiled with declarations. Assumes setup.sh ran.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
WASM_OUT=target/wasm-pack
BUILD=target/js-build
wasm-pack build --release --target web --no-pack --out-dir "$WASM_OUT" --out-name rings_node --no-default-features >/dev/null 2>&1 \
  || wasm-pack build --release --target web --no-pack --out-dir "$WASM_OUT" --out-name rings_node --no-default-features
rm -rf "$BUILD" pkg
mkdir -p "$BUILD" pkg/dist
cp js/*.ts js/tsconfig.json "$BUILD"/
cp "$WASM_OUT"/rings_node.js "$WASM_OUT"/rings_node.d.ts "$BUILD"/
# The types declared in Rust (src/api: error codes, views, the event map) open the
# generated .d.ts; index.ts takes them from their own module, so a consumer's tsc never
# reads the wasm glue's declarations (whose `Symbol.dispose` needs lib esnext).
{
  grep '^export type ErrorCode = ' "$WASM_OUT"/rings_node.d.ts
  awk '/@rings-views-end/ {s=0} s {print} /@rings-views-begin/ {s=1}' "$WASM_OUT"/rings_node.d.ts
} > "$BUILD"/views.ts
# Every type index.ts re-exports from views.js must be there.
for t in $(sed -n 's/^export type { \(.*\) } from "\.\/views\.js";/\1/p' js/index.ts | tr -d ','); do
  grep -qE "^export (type|interface) $t\b" "$BUILD"/views.ts || { echo "[build-pkg] $t is not among the Rust-declared types" >&2; exit 1; }
done
tsc -p "$BUILD/tsconfig.json" --outDir pkg/dist
cp "$WASM_OUT"/rings_node.js "$WASM_OUT"/rings_node.d.ts "$WASM_OUT"/rings_node_bg.wasm pkg/dist/
cp pkg-template/package.json pkg/
cp pkg-template/README.md pkg/ 2>/dev/null || cp README.md pkg/
# Size report: raw, gzip -9 and brotli (quality 11) of the wasm and of all the JS.
node -e '
const fs = require("fs"), z = require("zlib");
const size = (files) => { const b = Buffer.concat(files.map((f) => fs.readFileSync(f)));
  return [b.length, z.gzipSync(b, { level: 9 }).length, z.brotliCompressSync(b, { params: { [z.constants.BROTLI_PARAM_QUALITY]: 11 } }).length]; };
const js = fs.readdirSync("pkg/dist").filter((f) => f.endsWith(".js")).map((f) => "pkg/dist/" + f);
const [w, j] = [size(["pkg/dist/rings_node_bg.wasm"]), size(js)];
console.error(`[build-pkg] pkg/: wasm ${w[0]} B raw, ${w[1]} B gzip, ${w[2]} B brotli; JS ${j[0]} B raw, ${j[1]} B gzip, ${j[2]} B brotli`);
' 
