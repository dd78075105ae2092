/**
 * Private pieces shared by the three proofs about moduli and ring-Pedersen parameters
 * (Pi-prm, Pi-mod, Pi-fac): exponentiation by the owner of a factorisation (CRT), the
 * validation of received group elements and integers, and array decoding with exact lengths.
 * Not exported from the package.
 * @module
 */
import { decodeArray, parseHexInt } from "../bytes.ts";
import { ProofError } from "../errors.ts";
import { crt2, gcd, invertModSecretPrime, isqrt, mod, modPowSecret } from "../math/mod.ts";

/** Wire cap of a signed integer whose magnitude is at most `bound` (bytes). */
export function capBytes(bound: bigint): number {
  return Math.ceil(bound.toString(16).length / 2);
}

/**
 * The primes p > q of N = p q recovered from phi(N) = (p - 1)(q - 1): p + q = N - phi + 1,
 * so p and q are the roots of X^2 - (p + q) X + N.
 * @throws {RangeError} when phi is not phi(N) of a product of two distinct primes.
 */
export function factorsFromPhi(N: bigint, phi: bigint): [bigint, bigint] {
  const sum = N - phi + 1n;
  const disc = sum * sum - 4n * N;
  if (sum <= 0n || disc <= 0n) throw new RangeError("phi does not match N");
  const root = isqrt(disc);
  if (root * root !== disc) throw new RangeError("phi does not match N");
  const p = (sum + root) >> 1n;
  const q = (sum - root) >> 1n;
  if (q < 2n || p * q !== N) throw new RangeError("phi does not match N");
  return [p, q];
}

/**
 * Exponentiation modulo N = p q by the owner of p and q: two half-size exponentiations with
 * the exponent reduced modulo p - 1 and q - 1 (spec `main.tex`, "CRT" optimisation), served by
 * the secret backend. For bases in Z*_N only.
 */
export class CrtPow {
  readonly N: bigint;
  readonly p: bigint;
  readonly q: bigint;
  readonly #pInvQ: bigint;
  constructor(p: bigint, q: bigint) {
    if (p === q || p < 3n || q < 3n) throw new RangeError("CrtPow: expected two distinct primes");
    this.p = p;
    this.q = q;
    this.N = p * q;
    this.#pInvQ = invertModSecretPrime(p, q);
  }
  /** b^e mod N for b in Z*_N and e >= 0. */
  pow(b: bigint, e: bigint): bigint {
    const { p, q } = this;
    const xp = modPowSecret(mod(b, p), e % (p - 1n), p);
    const xq = modPowSecret(mod(b, q), e % (q - 1n), q);
    return this.combine(xp, xq);
  }
  /** The x mod N with x = xp mod p and x = xq mod q. */
  combine(xp: bigint, xq: bigint): bigint {
    return crt2(xp, this.p, xq, this.q, this.#pInvQ);
  }
}

/**
 * A received group element: 1 < x < N - 1 and gcd(x, N) = 1 (a unit other than +-1; the
 * values +-1 are degenerate and an honest prover makes them with negligible probability).
 * @throws {ProofError} "out-of-range".
 */
export function assertElement(proof: string, field: string, x: bigint, N: bigint): void {
  if (x <= 1n || x >= N - 1n) {
    throw new ProofError(proof, "out-of-range", `field "${field}" is not in (1, N-1)`);
  }
  if (gcd(x, N) !== 1n) {
    throw new ProofError(proof, "out-of-range", `field "${field}" is not a unit modulo N`);
  }
}

/** |x| <= bound, else an out-of-range ProofError naming the field. */
export function assertAbsAtMost(proof: string, field: string, x: bigint, bound: bigint): void {
  if (x > bound || x < -bound) {
    throw new ProofError(proof, "out-of-range", `field "${field}" exceeds its bound`);
  }
}

/** An in-memory proof array of exactly `length` entries. */
export function assertLength(
  proof: string,
  field: string,
  v: readonly unknown[],
  length: number,
): void {
  if (!Array.isArray(v) || v.length !== length) {
    const got = Array.isArray(v) ? v.length : typeof v;
    throw new ProofError(
      proof,
      "malformed",
      `field "${field}": expected ${length} entries, got ${got}`,
    );
  }
}

/**
 * Decodes an array of exactly `length` unsigned hex integers, each capped at `maxBytes`.
 * @throws {TypeError} / {SyntaxError} / {RangeError} (inside `decodeProof`: "malformed").
 */
export function decodeUintArray(
  v: unknown,
  field: string,
  length: number,
  maxBytes: number,
): bigint[] {
  return decodeArray(
    v,
    `field "${field}"`,
    length,
    (x, k) => parseHexInt(x, maxBytes, `field "${field}[${k}]"`),
  );
}

/**
 * Decodes an array of exactly `length` bits, each the JSON number 0 or 1.
 * @throws {TypeError} / {RangeError} (inside `decodeProof`: "malformed").
 */
export function decodeBitArray(v: unknown, field: string, length: number): (0 | 1)[] {
  return decodeArray(v, `field "${field}"`, length, (x, k) => {
    if (x !== 0 && x !== 1) throw new TypeError(`field "${field}[${k}]": expected 0 or 1`);
    return x;
  });
}

/** The ProofError of an equation that does not hold (no secret is named). */
export function equationFailed(proof: string, which: string): ProofError {
  return new ProofError(proof, "verification-failed", `${which} does not hold`);
}
