/**
 * Uniform sampling from a cryptographic random source, with no modulo bias.
 *
 * The source is injected (`RandomSource`); the default reads Web Crypto's
 * `crypto.getRandomValues`, present in browsers, Deno, Node and edge runtimes.
 * @module
 */
import { bitLength, fromBytesBE, gcd } from "./bigint.ts";

/** Fills the given buffer with cryptographically strong random bytes. */
export type RandomSource = (out: Uint8Array) => void;

/** Web Crypto random source (getRandomValues is limited to 65536 bytes per call). */
export const webCryptoRandom: RandomSource = (out) => {
  for (let i = 0; i < out.length; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(out.length, i + 65536)));
  }
};

/** `n` fresh random bytes. */
export function randomBytes(n: number, rng: RandomSource = webCryptoRandom): Uint8Array {
  const out = new Uint8Array(n);
  rng(out);
  return out;
}

/** A uniform integer in [0, 2^bits). */
export function randomBits(bits: number, rng: RandomSource = webCryptoRandom): bigint {
  if (!Number.isInteger(bits) || bits < 0) throw new RangeError("randomBits: bad bit count");
  if (bits === 0) return 0n;
  const bytes = randomBytes(Math.ceil(bits / 8), rng);
  const extra = bytes.length * 8 - bits;
  bytes[0] &= 0xff >> extra;
  return fromBytesBE(bytes);
}

/** A uniform integer in [0, n) by rejection sampling (expected < 2 draws). */
export function randomBelow(n: bigint, rng: RandomSource = webCryptoRandom): bigint {
  if (n <= 0n) throw new RangeError("randomBelow: expected a positive bound");
  const bits = bitLength(n - 1n);
  for (;;) {
    const x = randomBits(bits, rng);
    if (x < n) return x;
  }
}

/** A uniform integer in [lo, hi] (inclusive). */
export function randomInRange(lo: bigint, hi: bigint, rng: RandomSource = webCryptoRandom): bigint {
  if (hi < lo) throw new RangeError("randomInRange: empty range");
  return lo + randomBelow(hi - lo + 1n, rng);
}

/** A uniform integer in the symmetric interval [-2^bits, 2^bits] (the paper's "+-2^bits"). */
export function randomSigned(bits: number, rng: RandomSource = webCryptoRandom): bigint {
  const b = 1n << BigInt(bits);
  return randomInRange(-b, b, rng);
}

/** A uniform element of Z*_n: random in [1, n) with gcd(x, n) = 1. */
export function randomUnit(n: bigint, rng: RandomSource = webCryptoRandom): bigint {
  if (n < 2n) throw new RangeError("randomUnit: expected a modulus >= 2");
  for (;;) {
    const x = randomBelow(n, rng);
    if (x !== 0n && gcd(x, n) === 1n) return x;
  }
}
