// @ringsnetwork/rings-node: loading the wasm module, and byte helpers.

import init from "./rings_node.js";
import { RingsError, need } from "./errors.js";

let ready: Promise<void> | undefined;

/**
 * Loads the wasm module (once). Called by `Account` and `Provider` factories; call it
 * yourself to pass a custom URL or `Response` for the `.wasm` file. A failure rejects
 * with a `RingsError` (`WASM`) saying what to do, and is not kept: a later call (with
 * other bytes, say) tries again.
 */
export function initialize(wasm?: URL | string | Response | BufferSource): Promise<void> {
  ready ??= init(wasm === undefined ? undefined : { module_or_path: wasm }).then(
    () => undefined,
    (e: unknown) => {
      ready = undefined;
      throw wasmError(e);
    },
  );
  return ready;
}

/** A load or compile failure of the wasm module, with a hint at its usual cause. */
function wasmError(e: unknown): RingsError {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  let hint = "pass the .wasm file's URL, a Response or its bytes to initialize()";
  if (/3c 21|3c 68|found 3c/i.test(text) || /text\/html/i.test(text)) {
    hint =
      "the server answered the .wasm request with HTML: a bundler's dev server rewrote its path (Vite: add " +
      "optimizeDeps: { exclude: [\"@ringsnetwork/rings-node\"] }, or pass initialize(wasmUrl) with " +
      "import wasmUrl from \"@ringsnetwork/rings-node/rings_node_bg.wasm?url\")";
  } else if (/Content Security Policy|unsafe-eval|Refused to compile/i.test(text)) {
    hint = "the page's Content Security Policy forbids compiling WebAssembly: allow 'wasm-unsafe-eval' in script-src";
  } else if (/fetch|NetworkError|404|Failed to load/i.test(text)) {
    hint = "the .wasm file could not be fetched: serve rings_node_bg.wasm next to the package's JS, or pass its URL to initialize()";
  }
  return new RingsError("WASM", `could not load the rings-node wasm module (${text}); ${hint}`);
}

export function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return b;
}

export function hexToBytes(hex: string): Uint8Array {
  const h = hex.startsWith("0x") ? hex.slice(2) : hex;
  need(h.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(h), "expected hex bytes");
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(b: Uint8Array): string {
  return "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
