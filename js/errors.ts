// @ringsnetwork/rings-node: errors and argument checks.

import type { ErrorCode } from "./views.js";

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
    const code = (e as Error & { code?: unknown }).code;
    throw new RingsError(typeof code === "string" ? (code as ErrorCode) : "WEBRTC", e.message);
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

export function need(cond: boolean, message: string): void {
  if (!cond) throw new RingsError("BAD_ARGUMENT", message);
}
