#!/usr/bin/env bash
# `npm pack` the built package, install the tarball into a scratch project, and
# type-check a consumer with `tsc --strict` (no network: the package has no dependencies).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/node_modules/.bin:$PATH"
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
TGZ="$(cd "$ROOT/pkg" && npm pack --silent --pack-destination "$SCRATCH" | tail -1)"
cd "$SCRATCH"
printf '{ "name": "scratch", "private": true, "type": "module" }\n' > package.json
npm install --silent --no-audit --no-fund --offline "./$TGZ"
cat > consumer.ts <<'TS'
import { Account, Provider, RingsError, type ProviderInfo, type IncomingMessage } from "@ringsnetwork/rings-node";

export async function main(): Promise<ProviderInfo> {
  const account = await Account.generate({ network: 1 });
  const provider = await Provider.create({ account, iceServers: [] });
  const chat = provider.client("chat");
  chat.onMessage((m: IncomingMessage) => `echo: ${m.text()}`);
  provider.on("peerUp", ({ did }) => console.log(did.toLowerCase()));
  try {
    await chat.request(provider.did, "hi", { timeoutMs: 1000 });
  } catch (e) {
    if (e instanceof RingsError && e.code === "TIMEOUT") console.log("timed out");
  }
  return provider.info();
}
TS
# The README's TypeScript usage, verbatim (the other side's answer and a peer's DID are
# declared, as the text says they come from elsewhere).
{
  echo 'declare const answer: string;'
  echo 'declare const someDid: string;'
  awk '/^## TypeScript usage/ {s=1} s && /^```ts/ {c=1; next} c && /^```/ {exit} c {print}' "$ROOT/README.md"
  echo 'export {};'
} > readme.ts
grep -q 'Provider.create' readme.ts || { echo "[check-pack] no TypeScript usage found in README.md" >&2; exit 1; }
printf '{ "compilerOptions": { "strict": true, "noEmit": true, "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "lib": ["ES2022", "DOM"] } }\n' > tsconfig.json
tsc -p tsconfig.json
if grep -nE ':\s*any\b|<any>|any\[\]' node_modules/@ringsnetwork/rings-node/dist/index.d.ts; then echo "[check-pack] 'any' in the public types" >&2; exit 1; fi
# The package's manifest and types as tools see them: publint, and "are the types
# wrong" for an ES-module-only package (the .wasm entry is an asset, not a module).
(cd "$ROOT/pkg" && publint --strict)
attw --pack "$ROOT/pkg" --profile esm-only --exclude-entrypoints ./rings_node_bg.wasm
echo "[check-pack] $TGZ installs; a consumer and the README's usage type-check under tsc --strict; publint and attw (ESM-only) find nothing" >&2
