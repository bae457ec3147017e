#!/usr/bin/env bash
# API reference (HTML) generated from the package's public types, pkg/dist/index.d.ts,
# into target/api-docs/ with TypeDoc. TypeDoc needs TypeScript's compiler API, which the
# workspace's TypeScript 7 no longer has: it runs from scripts/api-docs/ with its own
# TypeScript 6 (installed by scripts/setup.sh). A warning (a public type left out of the
# docs, a broken link) fails it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/scripts/api-docs"
[ -f "$ROOT/pkg/dist/index.d.ts" ] || { echo "[api-docs] build the package first (scripts/build-pkg.sh)" >&2; exit 1; }
./node_modules/.bin/typedoc --tsconfig tsconfig.json --entryPoints "$ROOT/pkg/dist/index.d.ts" \
  --out "$ROOT/target/api-docs" --name "@ringsnetwork/rings-node" --readme none \
  --disableSources --treatWarningsAsErrors --logLevel Warn
echo "[api-docs] $ROOT/target/api-docs/index.html" >&2
