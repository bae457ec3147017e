// @ringsnetwork/rings-node: errors and argument checks.

import type { ErrorCode } from "./views.js";
import { errorCodes } from "./rings_node.js";

/** Every error this package throws or rejects with. `code` is stable across versions. */
export class RingsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "RingsError";
    this.code = code;
  }
}

export function rethrow(e: unknown): never {
  if (e instanceof RingsError) throw e;
  if (e instanceof Error) {
    const code: unknown = "code" in e ? e.code : undefined;
    throw new RingsError(isErrorCode(code) ? code : "WEBRTC", e.message);
  }
  throw new RingsError("WEBRTC", String(e));
}

export function guard<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    rethrow(e);
  }
}

export async function guardAsync<T>(p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (e) {
    rethrow(e);
  }
}

let codes: Set<unknown> | undefined;

/** Whether `c` is one of the codes the wasm module throws with. */
function isErrorCode(c: unknown): c is ErrorCode {
  if (typeof c !== "string") return false;
  try {
    codes ??= new Set(errorCodes());
  } catch {
    return false; // the module is not loaded, or has just trapped
  }
  return codes.has(c);
}

export function need(cond: boolean, message: string): asserts cond {
  if (!cond) throw new RingsError("BAD_ARGUMENT", message);
}
