// @ringsnetwork/rings-node: the Client envelope codec.

/* Client envelope (inside the encrypted body): magic 0xC1, kind (0 message, 1 request,
 * 2 reply, 3 error reply), request id (u32 BE), namespace length (u8), namespace, data. */
export const MAGIC = 0xc1;
export enum Kind {
  Message = 0,
  Request = 1,
  Reply = 2,
  ErrorReply = 3,
}

export interface Envelope {
  kind: Kind;
  id: number;
  namespace: string;
  data: Uint8Array;
}

export function encodeEnvelope(kind: Kind, id: number, ns: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(7 + ns.length + data.length);
  out[0] = MAGIC;
  out[1] = kind;
  new DataView(out.buffer).setUint32(2, id);
  out[6] = ns.length;
  out.set(ns, 7);
  out.set(data, 7 + ns.length);
  return out;
}

const KINDS = [Kind.Message, Kind.Request, Kind.Reply, Kind.ErrorReply];

export function decodeEnvelope(b: Uint8Array): Envelope | undefined {
  const kind = KINDS[b[1]];
  if (b.length < 7 || b[0] !== MAGIC || kind === undefined) return undefined;
  const n = b[6];
  if (b.length < 7 + n) return undefined;
  const id = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(2);
  return { kind, id, namespace: new TextDecoder().decode(b.subarray(7, 7 + n)), data: b.subarray(7 + n) };
}

