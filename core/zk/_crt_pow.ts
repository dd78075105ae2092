/**
 * Exponentiation modulo N = p q by the owner of p and q, for the provers of Pi-prm and Pi-mod
 * and the verifiers of equations under their own N (Pi-enc, Pi-aff-g, Pi-log*): the secret-key
 * code path of the proofs, kept apart from `_common.ts` so that it provably never
 * imports the variable-time Euclidean inverse (math/secret_inverse_test.ts reads this file).
 * @module
 */
import { crt2, invertModSecretPrime, isqrt, mod, modPowSecret } from "../math/mod.ts";
import type { PaillierSecretKey } from "../paillier.ts";

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

/** One factor b^e of a product; e may be negative. */
export type Term = readonly [base: bigint, exponent: bigint];

/**
 * Whether prod lhs = prod rhs modulo the verifier's own N^2 (`modulus` "N2") or N ("N"),
 * computed by CRT with its primes (`PaillierSecretKey.powProduct`). A factor with a negative
 * exponent moves to the other side with the opposite exponent (b^-e x = y iff x = b^e y for a
 * unit b), so no inverse is taken, and a short negative challenge stays a short exponent. The
 * two sides compared are the public values prod b^e mod N(^2), never a residue modulo a prime.
 * Every base must be a unit modulo N, which each verifier checks before any arithmetic.
 * @param sk the verifier's key (its N is the modulus of the equation).
 * @param modulus "N2" or "N".
 * @param lhs the factors of the left side.
 * @param rhs the factors of the right side.
 * @returns whether the equation holds.
 */
export function equalByCrt(
  sk: PaillierSecretKey,
  modulus: "N" | "N2",
  lhs: readonly Term[],
  rhs: readonly Term[],
): boolean {
  const left: Term[] = [];
  const right: Term[] = [];
  for (const [b, e] of lhs) (e < 0n ? right : left).push([b, e < 0n ? -e : e]);
  for (const [b, e] of rhs) (e < 0n ? left : right).push([b, e < 0n ? -e : e]);
  return sk.powProduct(left, modulus) === sk.powProduct(right, modulus);
}
