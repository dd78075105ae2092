/**
 * Shared pieces of the zero-knowledge proofs: the proof context (session id and prover index
 * that every transcript binds), wire decoding with caps and typed errors, and the validation of
 * moduli, group elements and ranges that every verifier performs before any arithmetic.
 * @module
 */
import { parseHexInt, parseHexSigned } from "../bytes.ts";
import { ProofError } from "../errors.ts";
import { bitLength, gcd, hasSmallFactor, isDefinitelyComposite } from "../math/mod.ts";
import { MODULUS_MAX_BITS, MODULUS_MIN_BITS, Point } from "../params.ts";
import { Transcript } from "../transcript.ts";

/** What binds a proof to its use: the session id and the prover's party index. */
export interface ProofContext {
  /** Session id agreed by all parties (non-empty). */
  readonly sid: Uint8Array;
  /** Index of the prover. */
  readonly prover: number;
}

/** Starts the transcript of `proof` for this context. */
export function transcriptFor(proof: string, ctx: ProofContext): Transcript {
  return Transcript.create(`zk/${proof}`, ctx.sid, ctx.prover);
}

/** A JSON object as received (unchecked). */
export type WireObject = Record<string, unknown>;

/** Checks that `v` is a plain object with exactly the `fields` keys. */
export function expectObject(proof: string, v: unknown, fields: readonly string[]): WireObject {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ProofError(proof, "malformed", "expected an object");
  }
  const o = v as WireObject;
  const keys = Object.keys(o);
  for (const k of keys) {
    if (!fields.includes(k)) throw new ProofError(proof, "malformed", `unexpected field "${k}"`);
  }
  for (const f of fields) {
    if (!(f in o)) throw new ProofError(proof, "malformed", `missing field "${f}"`);
  }
  return o;
}

function wrap<T>(proof: string, field: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ProofError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new ProofError(proof, "malformed", `field "${field}": ${msg}`);
  }
}

/** Decodes a non-negative integer field (canonical lowercase hex, at most `maxBytes`). */
export function decodeUint(
  proof: string,
  o: WireObject,
  field: string,
  maxBytes: number,
): bigint {
  return wrap(proof, field, () => parseHexInt(o[field] as string, maxBytes, field));
}

/** Decodes a signed integer field ("-" prefix for negatives). */
export function decodeInt(
  proof: string,
  o: WireObject,
  field: string,
  maxBytes: number,
): bigint {
  return wrap(proof, field, () => parseHexSigned(o[field] as string, maxBytes, field));
}

/** Decodes an array field of exactly `length` entries with `decode` applied to each. */
export function decodeArray<T>(
  proof: string,
  o: WireObject,
  field: string,
  length: number,
  decode: (v: unknown, i: number) => T,
): T[] {
  const v = o[field];
  if (!Array.isArray(v)) {
    throw new ProofError(proof, "malformed", `field "${field}": expected an array`);
  }
  if (v.length !== length) {
    throw new ProofError(
      proof,
      "malformed",
      `field "${field}": expected ${length} entries, got ${v.length}`,
    );
  }
  return v.map((x, i) => wrap(proof, `${field}[${i}]`, () => decode(x, i)));
}

/** Decodes a compressed secp256k1 point (33 bytes hex); the identity is refused. */
export function decodePoint(proof: string, o: WireObject, field: string): Point {
  return wrap(proof, field, () => parsePoint(o[field]));
}

/** Parses a compressed point from hex, refusing the identity and off-curve encodings. */
export function parsePoint(v: unknown): Point {
  if (typeof v !== "string" || !/^0[23][0-9a-f]{64}$/.test(v)) {
    throw new SyntaxError("expected a 33-byte compressed point in lowercase hex");
  }
  const P = Point.fromHex(v);
  P.assertValidity();
  if (P.is0()) throw new RangeError("point at infinity");
  return P;
}

/** |x| <= 2^bits, else an out-of-range ProofError naming the field. */
export function assertBits(proof: string, field: string, x: bigint, bits: number): void {
  const bound = 1n << BigInt(bits);
  if (x > bound || x < -bound) {
    throw new ProofError(proof, "out-of-range", `field "${field}" is outside +-2^${bits}`);
  }
}

/** 0 < x < m and gcd(x, N) = 1 (membership in Z*_m for m = N or N^2). */
export function assertUnit(proof: string, field: string, x: bigint, m: bigint, N: bigint): void {
  if (x <= 0n || x >= m || gcd(x, N) !== 1n) {
    throw new ProofError(proof, "out-of-range", `field "${field}" is not a unit modulo N`);
  }
}

/** 0 <= x < m. */
export function assertResidue(proof: string, field: string, x: bigint, m: bigint): void {
  if (x < 0n || x >= m) {
    throw new ProofError(proof, "out-of-range", `field "${field}" is not reduced`);
  }
}

/**
 * Checks a Paillier / ring-Pedersen modulus received from another party before anything else is
 * done with it: odd, 3071 or 3072 bits, no prime factor below 2^16, and not prime (one base-2
 * Fermat test). Pi-mod and Pi-fac then prove the rest.
 */
export function assertModulus(proof: string, N: bigint): void {
  const bits = bitLength(N);
  if (bits < MODULUS_MIN_BITS || bits > MODULUS_MAX_BITS) {
    throw new ProofError(
      proof,
      "bad-modulus",
      `expected N of ${MODULUS_MIN_BITS}-${MODULUS_MAX_BITS} bits, got ${bits}`,
    );
  }
  if ((N & 1n) === 0n) throw new ProofError(proof, "bad-modulus", "N is even");
  if (hasSmallFactor(N)) throw new ProofError(proof, "bad-modulus", "N has a small prime factor");
  if (!isDefinitelyComposite(N)) throw new ProofError(proof, "bad-modulus", "N is prime");
}
