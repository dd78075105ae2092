/**
 * Exponentiation modulo N = p q by the owner of p and q, for the provers of Pi-prm and Pi-mod:
 * the secret-key code path of the proofs, kept apart from `_common.ts` so that it provably never
 * imports the variable-time Euclidean inverse (math/secret_inverse_test.ts reads this file).
 * @module
 */
import { crt2, invertModSecretPrime, isqrt, mod, modPowSecret } from "../math/mod.ts";

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
