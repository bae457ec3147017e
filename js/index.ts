// @ringsnetwork/rings-node: a structured peer-to-peer network in the browser.
// Thin, typed wrappers over the wasm core (see src/web in the repository), one module per
// concern; this one is the package's entry.

import { cryptoBench as wasmCryptoBench } from "./rings_node.js";
import type { CryptoOps } from "./views.js";
import { initialize } from "./wasm.js";

// The codes and the views are declared once, in Rust (src/api/error.rs, src/api/view_ts.rs);
// scripts/build-pkg.sh takes them from the generated .d.ts into views.ts.
export type { CryptoOps, ErrorCode, MessageDetail, ProviderEvent, ProviderEventMap, ProviderInfo, ProviderStats, StoredRecord } from "./views.js";
export { RingsError } from "./errors.js";
export { initialize } from "./wasm.js";
export { Account, type Eip1193Provider, type SessionOptions } from "./account.js";
export { Provider, type Listener, type ProviderOptions, type RejoinOptions } from "./provider.js";
export { Client, type IncomingMessage, type MessageHandler, type Payload, type PutOptions, type RequestOptions, type ServiceOptions } from "./client.js";

/** Crypto operations per second of this browser's wasm (each run for `ms`). */
export async function cryptoBench(ms = 500): Promise<CryptoOps> {
  await initialize();
  return wasmCryptoBench(ms);
}
