// @ringsnetwork/rings-node: a Provider's peers and kept records in IndexedDB, and what tabs post to each other.

import { RingsError } from "./errors.js";

/** What same-origin tabs post to each other on the BroadcastChannel. */
export interface LocalSignal {
  type: "rings-offer" | "rings-answer";
  id: string;
  /** Offer: the DIDs asked to answer, or null for any tab. */
  to?: string[] | null;
  from?: string;
  offer?: string;
  answer?: string;
}

export interface KeptRecord {
  id: string;
  key: Uint8Array;
  set: boolean;
  value: Uint8Array;
  ttlMs: number;
}

const isPeer = (x: unknown): x is { did: string; seen: number } =>
  typeof x === "object" && x !== null && "did" in x && typeof x.did === "string" && "seen" in x && typeof x.seen === "number";

const isKept = (x: unknown): x is KeptRecord =>
  typeof x === "object" &&
  x !== null &&
  "id" in x &&
  typeof x.id === "string" &&
  "key" in x &&
  x.key instanceof Uint8Array &&
  "set" in x &&
  typeof x.set === "boolean" &&
  "value" in x &&
  x.value instanceof Uint8Array &&
  "ttlMs" in x &&
  typeof x.ttlMs === "number";

export function recordId(key: Uint8Array, set: boolean): string {
  return (set ? "s:" : "v:") + Array.from(key, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((ok, fail) => {
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(new RingsError("BAD_ARGUMENT", `IndexedDB: ${r.error?.message ?? "failed"}`));
  });
}

/** A Provider's peers and kept records in IndexedDB (`rings-node/<name>`). */
export class Persisted {
  private constructor(private readonly db: IDBDatabase) {}

  static async open(name: string): Promise<Persisted> {
    const r = indexedDB.open(`rings-node/${name}`, 2);
    r.onupgradeneeded = () => {
      // Version 1 had peers and records; version 2 adds the bootstrap URLs.
      for (const [store, keyPath] of [["peers", "did"], ["records", "id"], ["bootstrap", "url"]]) {
        if (!r.result.objectStoreNames.contains(store)) r.result.createObjectStore(store, { keyPath });
      }
    };
    return new Persisted(await request(r));
  }

  private store(name: "peers" | "records" | "bootstrap", mode: IDBTransactionMode): IDBObjectStore {
    return this.db.transaction(name, mode).objectStore(name);
  }

  /** Records a bootstrap URL that linked; the 16 most recent are kept. */
  async putBootstrap(url: string): Promise<void> {
    await request(this.store("bootstrap", "readwrite").put({ url, seen: Date.now() }));
    const all = await this.bootstraps();
    if (all.length > 16) {
      const store = this.store("bootstrap", "readwrite");
      for (const old of all.slice(16)) store.delete(old);
    }
  }

  /** Bootstrap URLs that linked, most recent first. */
  async bootstraps(): Promise<string[]> {
    const all: unknown[] = await request(this.store("bootstrap", "readonly").getAll());
    const ok = (x: unknown): x is { url: string; seen: number } =>
      typeof x === "object" && x !== null && "url" in x && typeof x.url === "string" && "seen" in x && typeof x.seen === "number";
    return all.filter(ok).sort((a, b) => b.seen - a.seen).map((b) => b.url);
  }

  /** Records a peer; the cache keeps the 64 most recently seen. */
  async putPeer(did: string): Promise<void> {
    await request(this.store("peers", "readwrite").put({ did, seen: Date.now() }));
    const all = await this.peersAll();
    if (all.length > 64) {
      const store = this.store("peers", "readwrite");
      for (const old of all.sort((a, b) => b.seen - a.seen).slice(64)) store.delete(old.did);
    }
  }

  /** The 32 most recently seen peers. */
  async peers(): Promise<{ did: string; seen: number }[]> {
    const all = await this.peersAll();
    return all.sort((a, b) => b.seen - a.seen).slice(0, 32);
  }

  /** Every peer kept (what does not have a peer's shape, written by another version, say, is skipped). */
  private async peersAll(): Promise<{ did: string; seen: number }[]> {
    const all: unknown[] = await request(this.store("peers", "readonly").getAll());
    return all.filter(isPeer);
  }

  async putRecord(r: KeptRecord): Promise<void> {
    await request(this.store("records", "readwrite").put(r));
  }

  async deleteRecord(id: string): Promise<void> {
    await request(this.store("records", "readwrite").delete(id));
  }

  async records(): Promise<KeptRecord[]> {
    const all: unknown[] = await request(this.store("records", "readonly").getAll());
    return all.filter(isKept);
  }
}
