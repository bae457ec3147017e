// @ringsnetwork/rings-node: Clients: namespaced messages, requests and replies, records and services.

import type { StoredRecord } from "./views.js";
import { RingsError, need } from "./errors.js";
import type { Provider } from "./provider.js";
import { Kind, encodeEnvelope, type Envelope } from "./envelope.js";
import { randomBytes } from "./wasm.js";

export type Payload = Uint8Array | string;

function toBytes(p: Payload): Uint8Array {
  if (typeof p === "string") return new TextEncoder().encode(p);
  need(p instanceof Uint8Array, "data must be a Uint8Array or a string");
  return p;
}

export interface IncomingMessage {
  from: string;
  data: Uint8Array;
  hops: number;
  /** The data as UTF-8 text. */
  text(): string;
  /** Set for a `request`: what the handler returns (or throws) is the reply. */
  isRequest: boolean;
}

export type MessageHandler = (msg: IncomingMessage) => Payload | void | Promise<Payload | void>;

export interface RequestOptions {
  /** Default 10,000 ms. */
  timeoutMs?: number;
}

/** A record read from the ring, checked against its writer's signature. */
export interface PutOptions {
  /** Lifetime, default one hour, at most seven days. */
  ttlMs?: number;
  /** Rewrite the record while this Provider lives (default false). */
  keep?: boolean;
}

export interface ServiceOptions {
  /** Lifetime of the registration between renewals (every third of it); default 60,000. */
  ttlMs?: number;
}

/** An application's handle on a Provider, scoped to a namespace. */
export class Client {
  private readonly ns: Uint8Array;
  private readonly handlers = new Set<MessageHandler>();
  /** Requests waiting for their reply, by `peer/id`: a reply counts only from the peer
   * asked, and ids are random, so no third party can answer for it. */
  private readonly pending = new Map<string, { resolve: (b: Uint8Array) => void; reject: (e: RingsError) => void; timer: ReturnType<typeof setTimeout>; tx: bigint }>();

  /** @internal use `provider.client(namespace)` */
  constructor(
    readonly provider: Provider,
    readonly namespace: string,
  ) {
    this.ns = new TextEncoder().encode(namespace);
  }

  /** Sends `data` to `did`; resolves once handed to the ring (failures to deliver reject
   * pending requests, or surface as the provider's `undelivered` event). */
  async send(did: string, data: Payload): Promise<void> {
    this.provider.send(did, encodeEnvelope(Kind.Message, 0, this.ns, toBytes(data)));
  }

  /** Sends a request; resolves to the reply of `did`'s handler, or rejects with
   * `TIMEOUT`, `UNDELIVERED` or the remote handler's error. */
  request(did: string, data: Payload, options: RequestOptions = {}): Promise<Uint8Array> {
    const timeout = options.timeoutMs ?? 10_000;
    need(Number.isFinite(timeout) && timeout > 0, "timeoutMs must be positive");
    need(typeof did === "string", "did must be a string");
    let id = 0;
    let key = "";
    do {
      id = new DataView(randomBytes(4).buffer).getUint32(0);
      key = `${did.toLowerCase()}/${id}`;
    } while (this.pending.has(key));
    return new Promise((resolve, reject) => {
      let tx: bigint;
      try {
        tx = this.provider.send(did, encodeEnvelope(Kind.Request, id, this.ns, toBytes(data)));
      } catch (e) {
        reject(e);
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new RingsError("TIMEOUT", `no reply from ${did} within ${timeout} ms`));
      }, timeout);
      this.pending.set(key, { resolve, reject, timer, tx });
    });
  }

  /**
   * Stores `value` under `key` (in this Client's namespace) on the ring: on the key's
   * owner and its two successors, signed by this Provider's account. Only that account
   * may overwrite it. Resolves once the owner has stored it; rejects with `STALE`,
   * `NOT_OWNER`, `TOO_LARGE` (values over 16 KiB), `TIMEOUT` or `UNDELIVERED`.
   */
  put(key: string | Uint8Array, value: Payload, options: PutOptions = {}): Promise<void> {
    const ttl = options.ttlMs ?? 3_600_000;
    need(Number.isFinite(ttl) && ttl >= 1, "ttlMs must be a positive number");
    return this.provider.storePut(this.storeKey("v", key), false, toBytes(value), ttl, options.keep === true);
  }

  /** The freshest value stored under `key`, or `null`; rejects with `TIMEOUT` or
   * `UNDELIVERED` if the ring cannot answer. */
  async get(key: string | Uint8Array): Promise<StoredRecord | null> {
    const rs = await this.provider.storeGet(this.storeKey("v", key));
    return rs.find((r) => r.kind === "value") ?? null; // the core returns only the freshest
  }

  /** Announces this Provider under the service `name` (an append-set entry renewed while
   * the Provider lives, or until `unregisterService`). */
  registerService(name: string, options: ServiceOptions = {}): Promise<void> {
    need(typeof name === "string" && name.length > 0, "name must be a non-empty string");
    const ttl = options.ttlMs ?? 60_000;
    need(Number.isFinite(ttl) && ttl >= 1000 && ttl <= 3_600_000, "ttlMs must be from 1000 to 3600000 (a set entry lives at most an hour unless renewed)");
    return this.provider.storePut(this.storeKey("s", name), true, new Uint8Array(), ttl, true);
  }

  /** Stops renewing the registration (it expires within its ttl). */
  unregisterService(name: string): void {
    this.provider.storeForget(this.storeKey("s", name), true);
  }

  /** The DIDs currently registered under the service `name`. */
  async lookupService(name: string): Promise<string[]> {
    need(typeof name === "string" && name.length > 0, "name must be a non-empty string");
    const rs = await this.provider.storeGet(this.storeKey("s", name));
    return rs.filter((r) => r.kind === "set").map((r) => r.writer); // live entries only (the core filters)
  }

  private storeKey(space: "v" | "s", key: string | Uint8Array): Uint8Array {
    need(typeof key === "string" || key instanceof Uint8Array, "key must be a string or a Uint8Array");
    const k = typeof key === "string" ? new TextEncoder().encode(key) : key;
    // namespace length, namespace, space, key: no two namespaces share a key.
    const out = new Uint8Array(2 + this.ns.length + k.length);
    out[0] = this.ns.length;
    out.set(this.ns, 1);
    out[1 + this.ns.length] = space.charCodeAt(0);
    out.set(k, 2 + this.ns.length);
    return out;
  }

  /** Registers a handler; returns a function that removes it. */
  onMessage(handler: MessageHandler): () => void {
    need(typeof handler === "function", "handler must be a function");
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** @internal */
  receive(from: string, env: Envelope, hops: number): void {
    if (env.kind === Kind.Reply || env.kind === Kind.ErrorReply) {
      const key = `${from.toLowerCase()}/${env.id}`;
      const p = this.pending.get(key);
      if (!p) return; // not ours, or not from the peer asked
      this.pending.delete(key);
      clearTimeout(p.timer);
      if (env.kind === Kind.Reply) p.resolve(env.data);
      else p.reject(new RingsError("UNDELIVERED", `remote handler failed: ${new TextDecoder().decode(env.data)}`));
      return;
    }
    const msg: IncomingMessage = { from, data: env.data, hops, isRequest: env.kind === Kind.Request, text: () => new TextDecoder().decode(env.data) };
    for (const h of this.handlers) {
      const out = (async () => h(msg))();
      if (env.kind !== Kind.Request) {
        out.catch(() => undefined);
        continue;
      }
      out.then(
        (r) => this.reply(from, Kind.Reply, env.id, r === undefined ? new Uint8Array() : toBytes(r)),
        (e: unknown) => this.reply(from, Kind.ErrorReply, env.id, toBytes(String(e instanceof Error ? e.message : e))),
      );
      break; // one handler answers a request
    }
  }

  /** @internal */
  undelivered(tx: bigint, reason: string): void {
    for (const [id, p] of this.pending) {
      if (p.tx === tx) {
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.reject(new RingsError("UNDELIVERED", `request undelivered: ${reason}`));
      }
    }
  }

  /** @internal */
  fail(e: RingsError): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
  }

  private reply(to: string, kind: Kind, id: number, data: Uint8Array): void {
    try {
      this.provider.send(to, encodeEnvelope(kind, id, this.ns, data));
    } catch {
      // the requester times out
    }
  }
}
