// @ringsnetwork/rings-node: accounts (a raw key, or a wallet delegating a session key).

import { WasmDelegationRequest, WasmSession } from "./rings_node.js";
import { RingsError, guard, need } from "./errors.js";
import { bytesToHex, hexToBytes, initialize, randomBytes } from "./wasm.js";

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
      const first: unknown = Array.isArray(accounts) ? accounts[0] : undefined;
      need(typeof first === "string", "wallet returned no account");
      address = first;
    }
    const req = guard(() => new WasmDelegationRequest(address, randomBytes(32), network, Date.now(), ttl));
    const text = req.text;
    const hexText = bytesToHex(new TextEncoder().encode(text));
    const sig = await wallet.request({ method: "personal_sign", params: [hexText, address] }).catch((e: unknown) => {
      throw new RingsError("WALLET", `wallet refused to sign: ${String(e)}`);
    });
    need(typeof sig === "string", "wallet returned no signature");
    return new Account(guard(() => req.finish(hexToBytes(sig))));
  }
}

function sessionWindow(o: SessionOptions): { network: number; ttl: number } {
  const network = o.network ?? 1;
  const ttl = o.ttlMs ?? 30 * DAY;
  need(Number.isInteger(network) && network >= 0 && network <= 0xffffffff, "network must be a u32");
  need(Number.isFinite(ttl) && ttl > 0, "ttlMs must be positive");
  return { network, ttl };
}
