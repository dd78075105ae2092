/**
 * Moves protocol values (a machine's input, state and output, and its errors) across a
 * structured-clone boundary: a Web Worker or a `worker_threads` thread of the same process
 * (platform/compute_pool.ts runs every `start` / `step` there).
 *
 * Structured clone keeps bigints, byte arrays, plain objects and arrays, but drops the class of
 * an instance (a noble `Point` arrives as a bag of fields without methods) and its private
 * fields (a `PaillierSecretKey`'s CRT constants). So the few classes a state holds are written
 * as tagged plain objects and rebuilt on the other side:
 *
 * | value | written as |
 * |---|---|
 * | secp256k1 `Point` | its projective coordinates X, Y, Z (no inversion, no curve check) |
 * | `PaillierPublicKey` | N |
 * | `PaillierSecretKey` | p, q (rebuilt with its CRT constants; a decoder keeps the last few) |
 * | `Map`, `Set` | their entries |
 *
 * Anything else that is not a plain object, an array or a primitive is refused with a
 * `TypeError` naming its class, so a class added to a state later fails loudly in the tests
 * that run every protocol through this codec, not silently in production.
 *
 * Both sides of the boundary are this process's own code: the decoder checks shapes, not
 * values (nothing here is received from a peer). The secrets of a state (x_i, k_i, p, q) cross
 * the boundary inside the process only, as they already live in its memory.
 *
 * @example
 * ```ts
 * import { createDecoder, encodeValue } from "./state_codec.ts";
 * import { Point } from "../params.ts";
 * const decode = createDecoder();
 * const back = decode(structuredClone(encodeValue({ P: Point.BASE.double(), n: 3n }))) as {
 *   P: typeof Point.BASE;
 *   n: bigint;
 * };
 * console.assert(back.P.equals(Point.BASE.double()) && back.n === 3n);
 * ```
 * @module
 */
import {
  InternalError,
  InvalidKeyShare,
  KeyEpochError,
  ProofError,
  ProtocolAbort,
  TransportError,
} from "../errors.ts";
import { PaillierPublicKey, PaillierSecretKey } from "../paillier.ts";
import { Point } from "../params.ts";

/** The key that marks a tagged value (never a field name of a protocol value). */
const TAG = "$codec";

type Tagged =
  | { readonly [TAG]: "point"; readonly v: readonly [bigint, bigint, bigint] }
  | { readonly [TAG]: "paillier-pk"; readonly N: bigint }
  | { readonly [TAG]: "paillier-sk"; readonly p: bigint; readonly q: bigint }
  | { readonly [TAG]: "map"; readonly v: readonly (readonly [unknown, unknown])[] }
  | { readonly [TAG]: "set"; readonly v: readonly unknown[] };

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Encodes a protocol value for `postMessage` (module doc).
 *
 * @param v an input, a state, an output: primitives, bigints, byte arrays, plain objects,
 *   arrays, points, Paillier keys, maps and sets, nested.
 * @returns a structured-cloneable copy with the classes tagged.
 * @throws {TypeError} for a function, a symbol or an instance of another class.
 */
export function encodeValue(v: unknown): unknown {
  if (v === null || typeof v !== "object") {
    if (typeof v === "function" || typeof v === "symbol") {
      throw new TypeError(`state codec: cannot move a ${typeof v}`);
    }
    return v;
  }
  if (ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) return v.map(encodeValue);
  if (v instanceof Point) return { [TAG]: "point", v: [v.X, v.Y, v.Z] };
  if (v instanceof PaillierSecretKey) return { [TAG]: "paillier-sk", p: v.p, q: v.q };
  if (v instanceof PaillierPublicKey) return { [TAG]: "paillier-pk", N: v.N };
  if (v instanceof Map) {
    return { [TAG]: "map", v: [...v].map(([k, x]) => [encodeValue(k), encodeValue(x)]) };
  }
  if (v instanceof Set) return { [TAG]: "set", v: [...v].map(encodeValue) };
  if (!isPlainObject(v)) {
    const name = (v as { constructor?: { name?: string } }).constructor?.name ?? "object";
    throw new TypeError(`state codec: cannot move an instance of ${name}`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = encodeValue(x);
  return out;
}

/** Options of {@link createDecoder}. */
export interface DecoderOptions {
  /** Paillier secret keys kept rebuilt (default 16; 0 keeps none). */
  readonly cachedSecretKeys?: number;
}

/**
 * A decoder of {@link encodeValue}'s output. It keeps the last few `PaillierSecretKey`s it
 * rebuilt (three secret inversions each), so the steps of one session pay for them once.
 *
 * @param options the size of the key cache.
 * @returns `decode(encoded)`.
 * @throws {TypeError} (from `decode`) for a tag it does not know.
 */
export function createDecoder(options: DecoderOptions = {}): (v: unknown) => unknown {
  const keep = options.cachedSecretKeys ?? 16;
  const keys = new Map<string, PaillierSecretKey>();
  const secretKey = (p: bigint, q: bigint): PaillierSecretKey => {
    const id = `${p.toString(36)}:${q.toString(36)}`;
    let sk = keys.get(id);
    if (sk) keys.delete(id);
    else sk = new PaillierSecretKey(p, q);
    if (keep > 0) {
      keys.set(id, sk);
      if (keys.size > keep) keys.delete(keys.keys().next().value as string);
    }
    return sk;
  };
  const decode = (v: unknown): unknown => {
    if (v === null || typeof v !== "object" || ArrayBuffer.isView(v)) return v;
    if (Array.isArray(v)) return v.map(decode);
    if (Object.hasOwn(v, TAG)) {
      const t = v as Tagged;
      switch (t[TAG]) {
        case "point":
          return new Point(t.v[0], t.v[1], t.v[2]);
        case "paillier-pk":
          return new PaillierPublicKey(t.N);
        case "paillier-sk":
          return secretKey(t.p, t.q);
        case "map":
          return new Map(t.v.map(([k, x]) => [decode(k), decode(x)]));
        case "set":
          return new Set(t.v.map(decode));
        default:
          throw new TypeError(`state codec: unknown tag ${String((t as Tagged)[TAG])}`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = decode(x);
    return out;
  };
  return decode;
}

/** An error as it crosses the boundary: its class name and the fields of its class. */
export interface EncodedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly code?: string;
  readonly protocol?: string;
  readonly round?: number;
  readonly culprits?: readonly number[];
  readonly proof?: string;
}

/**
 * Encodes a thrown value: the project's error classes keep their code and blame fields.
 *
 * @param e anything thrown by a machine.
 * @returns a structured-cloneable description.
 */
export function encodeError(e: unknown): EncodedError {
  if (!(e instanceof Error)) return { name: "Error", message: `non-error thrown: ${String(e)}` };
  const f = e as Error & Partial<Omit<EncodedError, "name" | "message" | "stack">>;
  return {
    name: e.name,
    message: e.message,
    stack: e.stack,
    ...(typeof f.code === "string" ? { code: f.code } : {}),
    ...(typeof f.protocol === "string" ? { protocol: f.protocol } : {}),
    ...(typeof f.round === "number" ? { round: f.round } : {}),
    ...(Array.isArray(f.culprits) ? { culprits: [...f.culprits] } : {}),
    ...(typeof f.proof === "string" ? { proof: f.proof } : {}),
  };
}

/**
 * Rebuilds an error of {@link encodeError}: the same class (so `instanceof ProtocolAbort` and
 * the service's error mapping hold), code, blame and message; the worker's stack is kept.
 *
 * @param d the description.
 * @returns the error (an `InternalError` for a class this codec does not know, its name and
 *   message quoted).
 */
export function decodeError(d: EncodedError): Error {
  let e: Error;
  switch (d.name) {
    case "ProtocolAbort":
      e = new ProtocolAbort(
        d.protocol ?? "unknown",
        d.round ?? 0,
        d.code as ProtocolAbort["code"],
        d.culprits ?? [],
        "",
      );
      break;
    case "TransportError":
      e = new TransportError(d.code as TransportError["code"], "");
      break;
    case "ProofError":
      e = new ProofError(d.proof ?? "", d.code as ProofError["code"], "");
      break;
    case "InvalidKeyShare":
      e = new InvalidKeyShare(d.code as InvalidKeyShare["code"], "");
      break;
    case "KeyEpochError":
      e = new KeyEpochError(d.code as KeyEpochError["code"], "");
      break;
    case "InternalError":
      e = new InternalError("");
      break;
    case "TypeError":
      e = new TypeError("");
      break;
    case "RangeError":
      e = new RangeError("");
      break;
    case "SyntaxError":
      e = new SyntaxError("");
      break;
    default:
      return new InternalError(`${d.name}: ${d.message}`);
  }
  e.message = d.message;
  if (d.stack !== undefined) e.stack = d.stack;
  return e;
}
