// @ringsnetwork/rings-node: a structured peer-to-peer network in the browser.
// Thin, typed wrappers over the wasm core (see src/web in the repository).

import init, { WasmDelegationRequest, WasmProvider, WasmSession, cryptoBench as wasmCryptoBench } from "./rings_node.js";
import type { CryptoOps, ErrorCode, MessageDetail, ProviderEvent, ProviderEventMap, ProviderInfo, ProviderStats, StoredRecord } from "./views.js";

// ---------------------------------------------------------------- errors

// The codes and the views are declared once, in Rust (src/api/error.rs, src/api/view_ts.rs);
// scripts/build-pkg.sh takes them from the generated .d.ts into views.ts.
export type { CryptoOps, ErrorCode, MessageDetail, ProviderEvent, ProviderEventMap, ProviderInfo, ProviderStats, StoredRecord };

/** Every error this package throws or rejects with. `code` is stable across versions. */
export class RingsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "RingsError";
    this.code = code;
  }
}

function rethrow(e: unknown): never {
  if (e instanceof RingsError) throw e;
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    throw new RingsError(typeof code === "string" ? (code as ErrorCode) : "WEBRTC", e.message);
  }
  throw new RingsError("WEBRTC", String(e));
}

function guard<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    rethrow(e);
  }
}

async function guardAsync<T>(p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (e) {
    rethrow(e);
  }
}

function need(cond: boolean, message: string): void {
  if (!cond) throw new RingsError("BAD_ARGUMENT", message);
}

// ---------------------------------------------------------------- wasm

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

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return b;
}

function hexToBytes(hex: string): Uint8Array {
  const h = hex.startsWith("0x") ? hex.slice(2) : hex;
  need(h.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(h), "expected hex bytes");
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesToHex(b: Uint8Array): string {
  return "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------- accounts

export interface SessionOptions {
  /** Network id; nodes on other networks refuse our messages. Default 1. */
  network?: number;
  /** Session lifetime in milliseconds. Default 30 days. */
  ttlMs?: number;
}

/** The subset of EIP-1193 used here (MetaMask and every injected wallet provide it). */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

const DAY = 86_400_000;

/** An identity: an account (its DID) and the session key it has delegated to. */
export class Account {
  /** @internal */ readonly session: WasmSession;
  private constructor(session: WasmSession) {
    this.session = session;
  }
  /** The account's DID (EIP-55 address). */
  get did(): string {
    return this.session.did;
  }
  get network(): number {
    return this.session.network;
  }
  /** When the delegation expires (ms since the epoch). */
  get expiresAt(): number {
    return this.session.expiresAt;
  }
  /** The text the account signed. */
  get delegationText(): string {
    return this.session.delegationText;
  }

  /** A new random account. */
  static async generate(options: SessionOptions = {}): Promise<Account> {
    return Account.fromPrivateKey(randomBytes(32), options);
  }

  /** An account from its secp256k1 private key (32 bytes, or hex). */
  static async fromPrivateKey(key: Uint8Array | string, options: SessionOptions = {}): Promise<Account> {
    await initialize();
    const bytes = typeof key === "string" ? hexToBytes(key) : key;
    need(bytes instanceof Uint8Array && bytes.length === 32, "a private key is 32 bytes");
    const { network, ttl } = sessionWindow(options);
    return new Account(guard(() => WasmSession.fromPrivateKey(bytes, randomBytes(32), network, Date.now(), ttl)));
  }

  /** An account held by a wallet: asks it (EIP-191 `personal_sign`) to authorize a new
   * session key. The wallet shows readable text; its key never leaves it. */
  static async fromWallet(wallet: Eip1193Provider, options: SessionOptions & { address?: string } = {}): Promise<Account> {
    await initialize();
    need(typeof wallet?.request === "function", "wallet must be an EIP-1193 provider");
    const { network, ttl } = sessionWindow(options);
    let address = options.address;
    if (address === undefined) {
      const accounts = await wallet.request({ method: "eth_requestAccounts" }).catch((e: unknown) => {
        throw new RingsError("WALLET", `wallet refused: ${String(e)}`);
      });
      need(Array.isArray(accounts) && typeof accounts[0] === "string", "wallet returned no account");
      address = (accounts as string[])[0];
    }
    const req = guard(() => new WasmDelegationRequest(address as string, randomBytes(32), network, Date.now(), ttl));
    const text = req.text;
    const hexText = bytesToHex(new TextEncoder().encode(text));
    const sig = await wallet.request({ method: "personal_sign", params: [hexText, address] }).catch((e: unknown) => {
      throw new RingsError("WALLET", `wallet refused to sign: ${String(e)}`);
    });
    need(typeof sig === "string", "wallet returned no signature");
    return new Account(guard(() => req.finish(hexToBytes(sig as string))));
  }
}

function sessionWindow(o: SessionOptions): { network: number; ttl: number } {
  const network = o.network ?? 1;
  const ttl = o.ttlMs ?? 30 * DAY;
  need(Number.isInteger(network) && network >= 0 && network <= 0xffffffff, "network must be a u32");
  need(Number.isFinite(ttl) && ttl > 0, "ttlMs must be positive");
  return { network, ttl };
}

// ---------------------------------------------------------------- provider

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
  /** How long to wait for cached peers, then for any tab (ms each; default 1,500). */
  timeoutMs?: number;
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
   * the cached peers (`persist`), then to any tab; links to the first that answers
   * and joins through it, then republishes the records kept in IndexedDB. Resolves to the
   * peer's DID; rejects with `CONNECT_FAILED` if nobody answered.
   */
  async rejoin(options: RejoinOptions = {}): Promise<string> {
    this.open();
    const wait = options.timeoutMs ?? 1500;
    need(Number.isFinite(wait) && wait > 0, "timeoutMs must be positive");
    const bc = new BroadcastChannel(options.channel ?? "rings-node");
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
      const peer = await this.acceptAnswer(got);
      void this.republish();
      return peer;
    } finally {
      bc.close();
    }
  }

  /** Writes again the records kept in IndexedDB, once the ring is joined. */
  private async republish(): Promise<void> {
    if (!this.saved) return;
    const deadline = Date.now() + 30_000;
    while (!this.closed && !this.info().joined && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 50));
    for (const r of await this.saved.records()) {
      if (this.closed) return;
      await this.storePut(r.key, r.set, r.value, r.ttlMs, true).catch(() => undefined);
    }
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
    const wrapped = (e: Event) => listener((e as CustomEvent<ProviderEventMap[K]>).detail);
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

// ---------------------------------------------------------------- persistence

/** What same-origin tabs post to each other on the BroadcastChannel. */
interface LocalSignal {
  type: "rings-offer" | "rings-answer";
  id: string;
  /** Offer: the DIDs asked to answer, or null for any tab. */
  to?: string[] | null;
  from?: string;
  offer?: string;
  answer?: string;
}

interface KeptRecord {
  id: string;
  key: Uint8Array;
  set: boolean;
  value: Uint8Array;
  ttlMs: number;
}

function recordId(key: Uint8Array, set: boolean): string {
  return (set ? "s:" : "v:") + Array.from(key, (b) => b.toString(16).padStart(2, "0")).join("");
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((ok, fail) => {
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(new RingsError("BAD_ARGUMENT", `IndexedDB: ${r.error?.message ?? "failed"}`));
  });
}

/** A Provider's peers and kept records in IndexedDB (`rings-node/<name>`). */
class Persisted {
  private constructor(private readonly db: IDBDatabase) {}

  static async open(name: string): Promise<Persisted> {
    const r = indexedDB.open(`rings-node/${name}`, 1);
    r.onupgradeneeded = () => {
      r.result.createObjectStore("peers", { keyPath: "did" });
      r.result.createObjectStore("records", { keyPath: "id" });
    };
    return new Persisted(await request(r));
  }

  private store(name: "peers" | "records", mode: IDBTransactionMode): IDBObjectStore {
    return this.db.transaction(name, mode).objectStore(name);
  }

  /** Records a peer; the cache keeps the 64 most recently seen. */
  async putPeer(did: string): Promise<void> {
    await request(this.store("peers", "readwrite").put({ did, seen: Date.now() }));
    const all = (await request(this.store("peers", "readonly").getAll())) as { did: string; seen: number }[];
    if (all.length > 64) {
      const store = this.store("peers", "readwrite");
      for (const old of all.sort((a, b) => b.seen - a.seen).slice(64)) store.delete(old.did);
    }
  }

  /** The 32 most recently seen peers. */
  async peers(): Promise<{ did: string; seen: number }[]> {
    const all = (await request(this.store("peers", "readonly").getAll())) as { did: string; seen: number }[];
    return all.sort((a, b) => b.seen - a.seen).slice(0, 32);
  }

  async putRecord(r: KeptRecord): Promise<void> {
    await request(this.store("records", "readwrite").put(r));
  }

  async deleteRecord(id: string): Promise<void> {
    await request(this.store("records", "readwrite").delete(id));
  }

  async records(): Promise<KeptRecord[]> {
    return (await request(this.store("records", "readonly").getAll())) as KeptRecord[];
  }
}

// ---------------------------------------------------------------- client

/* Client envelope (inside the encrypted body): magic 0xC1, kind (0 message, 1 request,
 * 2 reply, 3 error reply), request id (u32 BE), namespace length (u8), namespace, data. */
const MAGIC = 0xc1;
const enum Kind {
  Message = 0,
  Request = 1,
  Reply = 2,
  ErrorReply = 3,
}

interface Envelope {
  kind: Kind;
  id: number;
  namespace: string;
  data: Uint8Array;
}

function encodeEnvelope(kind: Kind, id: number, ns: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(7 + ns.length + data.length);
  out[0] = MAGIC;
  out[1] = kind;
  new DataView(out.buffer).setUint32(2, id);
  out[6] = ns.length;
  out.set(ns, 7);
  out.set(data, 7 + ns.length);
  return out;
}

function decodeEnvelope(b: Uint8Array): Envelope | undefined {
  if (b.length < 7 || b[0] !== MAGIC || b[1] > 3) return undefined;
  const n = b[6];
  if (b.length < 7 + n) return undefined;
  const id = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(2);
  return { kind: b[1] as Kind, id, namespace: new TextDecoder().decode(b.subarray(7, 7 + n)), data: b.subarray(7 + n) };
}

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

// ---------------------------------------------------------------- utilities

/** Crypto operations per second of this browser's wasm (each run for `ms`). */
export async function cryptoBench(ms = 500): Promise<CryptoOps> {
  await initialize();
  return wasmCryptoBench(ms);
}
