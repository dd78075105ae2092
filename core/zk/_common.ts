/**
 * Shared pieces of the zero-knowledge proofs: the proof context (session id and prover index
 * that every transcript binds), the typed errors of wire decoding, and the validation of
 * moduli, group elements and ranges that every verifier performs before any arithmetic.
 * @module
 */
import { assertPoint } from "../bytes.ts";
import { ProofError } from "../errors.ts";
import { bitLength, gcd, hasSmallFactor, isDefinitelyComposite } from "../math/mod.ts";
import { MODULUS_MAX_BITS, MODULUS_MIN_BITS, type Point } from "../params.ts";
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

/**
 * Runs the decoder of a proof's wire form, written with the shared decoders of `core/bytes.ts`
 * (which cap every length before parsing): any error it throws becomes a "malformed" ProofError
 * of `proof`, with the decoder's message (which names the field).
 * @param proof the proof's name.
 * @param decode the decoder.
 * @returns what `decode` returns.
 * @throws {ProofError} "malformed".
 */
export function decodeProof<T>(proof: string, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof ProofError) throw e;
    throw new ProofError(proof, "malformed", e instanceof Error ? e.message : String(e));
  }
}

/**
 * A point of a statement or proof: on the curve and not the identity.
 * @throws {ProofError} "out-of-range".
 */
export function assertValidPoint(proof: string, field: string, P: Point): void {
  try {
    assertPoint(P, field);
  } catch {
    throw new ProofError(proof, "out-of-range", `field "${field}" is not a valid point`);
  }
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
