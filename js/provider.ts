// @ringsnetwork/rings-node: the Provider: a node of the ring in this page.

import { WasmProvider } from "./rings_node.js";
import type { ProviderEvent, ProviderEventMap, ProviderInfo, StoredRecord } from "./views.js";
import { RingsError, guard, guardAsync, need, rethrow } from "./errors.js";
import { initialize, randomBytes } from "./wasm.js";
import { Account } from "./account.js";
import { Persisted, recordId, type LocalSignal } from "./persist.js";
import { Client } from "./client.js";
import { decodeEnvelope } from "./envelope.js";

export interface ProviderOptions {
  account: Account;
  /** ICE servers for NAT traversal. None are needed on one machine or a LAN. */
  iceServers?: RTCIceServer[];
  /** How long a connection may take to open, in ms. Default 10,000. */
  connectTimeoutMs?: number;
  /**
   * Most connections kept (open or opening); beyond it the least recently used link
   * that is not the ring's successor or predecessor is closed. Default 64 (Chromium
   * refuses a page more than 500 live RTCPeerConnections).
   */
  maxConnections?: number;
  /**
   * Keep this Provider's known peers and the records it keeps alive (`put(…, {keep})`,
   * `registerService`) in IndexedDB under this name, so a reloaded page can `rejoin()`
   * and republish them.
   */
  persist?: string;
  /**
   * How long an offer or answer carried through the ring waits, after its first ICE
   * candidate, for more before it leaves (default 15 ms); candidates gathered later
   * follow through the ring. 0: it leaves at once, every candidate trickles.
   */
  ringCandidateWaitMs?: number;
}

export interface RejoinOptions {
  /** The BroadcastChannel same-origin tabs share (default "rings-node"). */
  channel?: string;
  /** How long to wait for cached peers, then for any tab, then for each bootstrap URL (ms each; default 1,500). */
  timeoutMs?: number;
  /** Native nodes' public endpoints to try after the cached ones (see `connectViaHttp`). */
  bootstrap?: string[];
}

/** A handler for the Provider event `K`. */
export type Listener<K extends keyof ProviderEventMap> = (detail: ProviderEventMap[K]) => void;

/** A node of the ring, running in this page. */
export class Provider {
  private readonly node: WasmProvider;
  private readonly saved: Persisted | null;
  private readonly channels = new Set<BroadcastChannel>();
  private readonly target = new EventTarget();
  private readonly clients = new Map<string, Client>();
  private closed = false;
  readonly account: Account;
  /** This node's DID (its account's). */
  readonly did: string;

  private constructor(account: Account, options: ProviderOptions, saved: Persisted | null) {
    this.account = account;
    this.saved = saved;
    const ice = options.iceServers ?? [];
    const timeout = options.connectTimeoutMs ?? 10_000;
    need(Array.isArray(ice), "iceServers must be an array");
    need(Number.isInteger(timeout) && timeout > 0, "connectTimeoutMs must be a positive integer");
    const max = options.maxConnections ?? 64;
    need(Number.isInteger(max) && max >= 2 && max <= 500, "maxConnections must be an integer from 2 to 500");
    const wait = options.ringCandidateWaitMs ?? 15;
    need(Number.isInteger(wait) && wait >= 0 && wait <= 1500, "ringCandidateWaitMs must be an integer from 0 to 1500");
    // Events are delivered from a microtask, after the call that caused them returns.
    this.node = guard(() => new WasmProvider(account.session, randomBytes(32), ice, timeout, max, wait, (e: ProviderEvent) => queueMicrotask(() => this.dispatch(e))));
    this.did = this.node.did;
    if (saved) this.on("peerUp", ({ did }) => void saved.putPeer(did).catch(() => undefined));
  }

  static async create(options: ProviderOptions): Promise<Provider> {
    need(options?.account instanceof Account, "options.account must be an Account");
    if (typeof globalThis.RTCPeerConnection !== "function") {
      throw new RingsError(
        "WEBRTC",
        "RTCPeerConnection is not available here (a service worker or web worker?): a Provider needs a page; " +
          "in a Manifest V3 extension run it in an offscreen document (chrome.offscreen.createDocument with reason WEB_RTC)",
      );
    }
    need(options.persist === undefined || (typeof options.persist === "string" && options.persist.length > 0), "persist must be a non-empty string");
    await initialize();
    const saved = options.persist === undefined ? null : await Persisted.open(options.persist);
    return new Provider(options.account, options, saved);
  }

  /** Peers this Provider (or an earlier one with the same `persist` name) linked to,
   * most recent first. */
  async cachedPeers(): Promise<string[]> {
    return this.saved ? (await this.saved.peers()).map((p) => p.did) : [];
  }

  /**
   * Answers offers that other same-origin tabs post with `rejoin()`: those addressed to
   * this DID, and those addressed to any tab (the asker takes the first answer; the
   * others' half-open connections time out). Returns a function that stops.
   */
  shareLocally(channel = "rings-node"): () => void {
    this.open();
    const bc = new BroadcastChannel(channel);
    this.channels.add(bc);
    bc.onmessage = async ({ data }: MessageEvent<LocalSignal>) => {
      if (this.closed || data?.type !== "rings-offer" || typeof data.offer !== "string") return;
      const mine = Array.isArray(data.to) ? data.to.includes(this.did) : data.to === null;
      if (!mine) return;
      try {
        bc.postMessage({ type: "rings-answer", id: data.id, from: this.did, answer: await this.answerOffer(data.offer) } satisfies LocalSignal);
      } catch {
        // a stale or foreign offer: nothing to answer
      }
    };
    return () => {
      this.channels.delete(bc);
      bc.close();
    };
  }

  /**
   * Rejoins the ring without a manual handshake: posts an offer on a BroadcastChannel to
   * the cached peers (`persist`), then to any tab; then tries the native nodes' URLs
   * that linked before (`persist`) and those in `bootstrap`, in turn. Links to the first
   * that answers and joins through it, then republishes the records kept in IndexedDB.
   * Resolves to the peer's DID; rejects with `CONNECT_FAILED` if nobody answered.
   */
  async rejoin(options: RejoinOptions = {}): Promise<string> {
    this.open();
    const wait = options.timeoutMs ?? 1500;
    need(Number.isFinite(wait) && wait > 0, "timeoutMs must be positive");
    const given = options.bootstrap ?? [];
    need(Array.isArray(given) && given.every((u) => typeof u === "string"), "bootstrap must be an array of URLs");
    const peer = await this.rejoinLocally(options.channel ?? "rings-node", wait).catch(async (local: unknown) => {
      const urls = [...new Set([...(await this.cachedBootstraps()), ...given])];
      for (const url of urls) {
        if (this.closed) break;
        try {
          return await this.connectViaHttp(url, { timeoutMs: wait });
        } catch {
          // the next one
        }
      }
      throw urls.length === 0 ? local : new RingsError("CONNECT_FAILED", `no cached peer, no other tab and none of ${urls.join(", ")} answered`);
    });
    void this.republish();
    return peer;
  }

  /** Bootstrap URLs that linked (`connectViaHttp`), most recent first (empty without `persist`). */
  async cachedBootstraps(): Promise<string[]> {
    return this.saved ? this.saved.bootstraps().catch(() => []) : [];
  }

  private async rejoinLocally(channel: string, wait: number): Promise<string> {
    const bc = new BroadcastChannel(channel);
    const id = Array.from(randomBytes(8), (b) => b.toString(16).padStart(2, "0")).join("");
    let answered: (answer: string) => void = () => undefined;
    const answer = new Promise<string>((ok) => (answered = ok));
    bc.onmessage = ({ data }: MessageEvent<LocalSignal>) => {
      if (data?.type === "rings-answer" && data.id === id && typeof data.answer === "string") answered(data.answer);
    };
    try {
      const offer = await this.createOffer();
      const timeout = () => new Promise<null>((ok) => setTimeout(() => ok(null), wait));
      let got: string | null = null;
      for (const to of [await this.cachedPeers(), null]) {
        if (Array.isArray(to) && to.length === 0) continue;
        bc.postMessage({ type: "rings-offer", id, to, offer } satisfies LocalSignal);
        got = await Promise.race([answer, timeout()]);
        if (got) break;
      }
      if (!got) throw new RingsError("CONNECT_FAILED", "no cached peer and no other tab answered");
      return await this.acceptAnswer(got);
    } finally {
      bc.close();
    }
  }

  /** Writes again the records kept in IndexedDB, once the ring is joined. */
  private async republish(): Promise<void> {
    if (!this.saved) return;
    await this.joined(30_000);
    for (const r of await this.saved.records()) {
      if (this.closed) return;
      await this.storePut(r.key, r.set, r.value, r.ttlMs, true).catch(() => undefined);
    }
  }

  /** Resolves once this node has joined a ring (the `joined` event), or after `ms`. */
  private joined(ms: number): Promise<void> {
    if (this.closed || this.info().joined) return Promise.resolve();
    return new Promise((done) => {
      const timer = setTimeout(() => {
        off();
        done();
      }, ms);
      const off = this.on("joined", () => {
        clearTimeout(timer);
        off();
        done();
      });
    });
  }

  /** Starts a manual handshake: send the returned text to the other side (copy-paste, QR code, HTTP). */
  createOffer(): Promise<string> {
    this.open();
    return guardAsync(() => this.node.createOffer());
  }

  /** Answers an offer from `createOffer`; send the returned text back. */
  answerOffer(offer: string): Promise<string> {
    this.open();
    need(typeof offer === "string", "offer must be a string");
    return guardAsync(() => this.node.answerOffer(offer));
  }

  /** Completes a manual handshake; resolves to the peer's DID once linked. */
  acceptAnswer(answer: string): Promise<string> {
    this.open();
    need(typeof answer === "string", "answer must be a string");
    return guardAsync(() => this.node.acceptAnswer(answer));
  }

  /**
   * Bootstraps through a native `rings` node's public endpoint (`public_address` in its
   * config, e.g. `http://127.0.0.1:50001`): this Provider's signed offer is POSTed as
   * JSON-RPC `answerOffer`, the node's signed answer accepted. Resolves to the node's DID
   * once linked (a Provider alone then joins the node's ring). Rejects with
   * `CONNECT_FAILED` (unreachable, no answer in `timeoutMs`, default 10,000), `BUSY`
   * (the node's handshake limits), or the node's own error code.
   */
  async connectViaHttp(url: string, options: { timeoutMs?: number } = {}): Promise<string> {
    this.open();
    need(typeof url === "string" && /^https?:\/\/[^/\s]+/.test(url), "url must be an http:// or https:// URL");
    const timeout = options.timeoutMs ?? 10_000;
    need(Number.isFinite(timeout) && timeout > 0, "timeoutMs must be positive");
    const offer = await this.createOffer();
    let reply: unknown;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "answerOffer", params: { offer } }),
        signal: AbortSignal.timeout(timeout),
      });
      reply = await res.json();
    } catch (e) {
      throw new RingsError("CONNECT_FAILED", `${url}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const field = (o: unknown, k: string): unknown => (typeof o === "object" && o !== null && k in o ? Reflect.get(o, k) : undefined);
    const result = field(reply, "result");
    if (typeof result !== "string") {
      const err = field(reply, "error");
      const message = field(err, "message");
      const code = field(field(err, "data"), "code");
      rethrow(Object.assign(new Error(`${url}: ${typeof message === "string" ? message : "no answer"}`), { code: typeof code === "string" ? code : "CONNECT_FAILED" }));
    }
    const peer = await this.acceptAnswer(result);
    if (this.saved) await this.saved.putBootstrap(url).catch(() => undefined);
    return peer;
  }

  /** Opens a direct link to `did`, signalled through the ring (no server). */
  connect(did: string): Promise<void> {
    this.open();
    need(typeof did === "string", "did must be a string");
    return guardAsync(async () => {
      await this.node.connect(did);
    });
  }

  disconnect(did: string): void {
    this.open();
    need(typeof did === "string", "did must be a string");
    guard(() => this.node.disconnect(did));
  }

  /** DIDs with an open link. */
  peers(): string[] {
    return this.closed ? [] : this.node.peers();
  }

  info(): ProviderInfo {
    this.open();
    return this.node.info();
  }

  /** Sends raw bytes to `did` through the ring, signed and end-to-end encrypted (no
   * namespace: arrives as a `message` event). Prefer `Client`. Returns the transaction id. */
  send(did: string, data: Uint8Array): bigint {
    this.open();
    need(typeof did === "string", "did must be a string");
    need(data instanceof Uint8Array, "data must be a Uint8Array");
    return guard(() => this.node.send(did, data));
  }

  /** @internal a store write; see `Client.put` and `Client.registerService`. */
  storePut(key: Uint8Array, set: boolean, value: Uint8Array, ttlMs: number, keep: boolean): Promise<void> {
    this.open();
    const saved = this.saved;
    const stored = guardAsync(async () => {
      await this.node.storePut(key, set, value, ttlMs, keep);
    });
    if (!saved) return stored;
    // Kept in IndexedDB once the ring took it; a plain put ends keeping the old one.
    const id = recordId(key, set);
    return stored.then(() => (keep ? saved.putRecord({ id, key, set, value, ttlMs }) : saved.deleteRecord(id)).catch(() => undefined));
  }

  /** @internal a store read. */
  async storeGet(key: Uint8Array): Promise<StoredRecord[]> {
    this.open();
    return guardAsync(() => this.node.storeGet(key));
  }

  /** @internal */
  storeForget(key: Uint8Array, set: boolean): void {
    if (this.saved) void this.saved.deleteRecord(recordId(key, set)).catch(() => undefined);
    if (!this.closed) this.node.storeForget(key, set);
  }

  /** A Client for `namespace` (one per namespace). */
  client(namespace: string): Client {
    this.open();
    need(typeof namespace === "string" && namespace.length > 0 && new TextEncoder().encode(namespace).length < 256, "namespace must be 1–255 bytes");
    let c = this.clients.get(namespace);
    if (!c) {
      c = new Client(this, namespace);
      this.clients.set(namespace, c);
    }
    return c;
  }

  on<K extends keyof ProviderEventMap>(type: K, listener: Listener<K>): () => void {
    // Only `dispatch` puts events on the target, each under its own type with its detail.
    const wrapped = (e: Event) => {
      if (e instanceof CustomEvent) listener(e.detail);
    };
    this.target.addEventListener(type, wrapped);
    return () => this.target.removeEventListener(type, wrapped);
  }

  /** Leaves the ring and closes every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const bc of this.channels) bc.close();
    this.channels.clear();
    this.node.close();
    for (const c of this.clients.values()) c.fail(new RingsError("CLOSED", "provider closed"));
    this.node.free();
  }

  private open(): void {
    if (this.closed) throw new RingsError("CLOSED", "provider closed");
  }

  private dispatch(e: ProviderEvent): void {
    if (this.closed) return;
    if (e.type === "message") {
      const env = decodeEnvelope(e.data);
      if (env) {
        const c = this.clients.get(env.namespace);
        if (c) {
          c.receive(e.from, env, e.hops);
          return;
        }
      }
    }
    if (e.type === "undelivered") {
      for (const c of this.clients.values()) c.undelivered(e.tx, e.reason);
    }
    const { type, ...detail } = e;
    this.target.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
