/**
 * Primality testing and safe-prime generation on the pure BigInt path (any runtime).
 * Node installs OpenSSL's generator through `platform/`; this one is the portable fallback
 * and the one used inside Deno and browsers.
 * @module
 */
import { bitLength } from "./bigint.ts";
import { modPow, modPowSecret } from "./modpow.ts";
import { randomBits, randomInRange, type RandomSource, webCryptoRandom } from "./random.ts";

function oddPrimesBelow(limit: number): number[] {
  const composite = new Uint8Array(limit);
  const out: number[] = [];
  for (let i = 3; i < limit; i += 2) {
    if (composite[i]) continue;
    out.push(i);
    for (let j = i * i; j < limit; j += 2 * i) composite[j] = 1;
  }
  return out;
}

/** Odd primes below 2^16, for trial division. */
export const SMALL_PRIMES: readonly number[] = oddPrimesBelow(1 << 16);

// Sieve primes for the safe-prime search, built on first use (~80k primes below 2^20).
let sievePrimes: number[] | null = null;

/** Whether n has a prime factor below 2^16 (and is not itself that prime). */
export function hasSmallFactor(n: bigint): boolean {
  if (n < 2n) return true;
  if ((n & 1n) === 0n) return n !== 2n;
  for (const p of SMALL_PRIMES) {
    const bp = BigInt(p);
    if (bp * bp > n) return false;
    if (n % bp === 0n) return n !== bp;
  }
  return false;
}

/**
 * Miller-Rabin with `rounds` random bases (error <= 4^-rounds for any odd n).
 * Small n are answered by trial division. `secret`: n is a secret (a party's own prime, or
 * half of one): the exponentiations run on the secret slot of `modpow.ts`.
 */
export function millerRabin(
  n: bigint,
  rounds: number,
  rng: RandomSource = webCryptoRandom,
  secret = false,
): boolean {
  if (n < 2n) return false;
  if (n < 4n) return true;
  if ((n & 1n) === 0n) return false;
  if (n < 1n << 32n) return !hasSmallFactor(n);
  let d = n - 1n;
  let s = 0;
  while ((d & 1n) === 0n) {
    d >>= 1n;
    s++;
  }
  outer: for (let i = 0; i < rounds; i++) {
    const a = i === 0 ? 2n : randomInRange(2n, n - 2n, rng);
    let x = secret ? modPowSecret(a, d, n) : modPow(a, d, n);
    if (x === 1n || x === n - 1n) continue;
    for (let r = 1; r < s; r++) {
      x = (x * x) % n;
      if (x === n - 1n) continue outer;
      if (x === 1n) return false;
    }
    return false;
  }
  return true;
}

const SMALL_PRIME_SET = new Set(SMALL_PRIMES);

/** Probable-prime test for values from outside: trial division then 64 Miller-Rabin rounds. */
export function isProbablePrime(n: bigint, rng: RandomSource = webCryptoRandom): boolean {
  if (n < 2n) return false;
  if (n === 2n) return true;
  if (n < 1n << 16n) return SMALL_PRIME_SET.has(Number(n));
  if (hasSmallFactor(n)) return false;
  return millerRabin(n, 64, rng);
}

/**
 * Cheap proof of compositeness: true when n is even (and > 2) or fails the base-2 Fermat test,
 * which only composites do. One exponentiation; used to refuse a prime modulus from a peer
 * before any proof about it is checked.
 */
export function isDefinitelyComposite(n: bigint): boolean {
  if (n < 4n) return false;
  if ((n & 1n) === 0n) return true;
  return modPow(2n, n - 1n, n) !== 1n;
}

/** Whether p is a safe prime: p and (p-1)/2 both prime. */
export function isSafePrime(p: bigint, rng: RandomSource = webCryptoRandom): boolean {
  if (p < 7n || (p & 3n) !== 3n) return p === 5n;
  return isProbablePrime((p - 1n) >> 1n, rng) && isProbablePrime(p, rng);
}

/** Progress callback for long prime searches: candidates tested so far. */
export type PrimeProgress = (info: { bits: number; candidates: number }) => void;

const SIEVE_WINDOW = 1 << 16; // candidates per sieve pass (p = p0 + 12 j)

/** 2^e mod m for odd m: square-and-double, where the multiply by the base is a shift. */
function pow2Mod(e: bigint, m: bigint): bigint {
  const bits = e.toString(2);
  let r = 1n;
  for (let i = 0; i < bits.length; i++) {
    r = (r * r) % m;
    if (bits.charCodeAt(i) === 49) {
      r <<= 1n;
      if (r >= m) r -= m;
    }
  }
  return r;
}

/**
 * A random safe prime p = 2q + 1 of exactly `bits` bits with its top two bits set (so that the
 * product of two has exactly 2*bits bits) and p = 3 mod 4 (Blum). Search: random start p0 with
 * p0 = 11 mod 12, a sieve over the window p0 + 12j removing every j where p or q has a factor
 * below 2^16, then a base-2 Fermat test of q and of p, then Miller-Rabin rounds on both.
 * Expected work at 1536 bits: a few thousand base-2 exponentiations of 1536 bits.
 */
export function generateSafePrimeSync(
  bits: number,
  rng: RandomSource = webCryptoRandom,
  onProgress?: PrimeProgress,
): bigint {
  if (!Number.isInteger(bits) || bits < 16) throw new RangeError("generateSafePrime: bits >= 16");
  let candidates = 0;
  for (;;) {
    let p0 = randomBits(bits, rng) | (3n << BigInt(bits - 2));
    p0 = p0 - (p0 % 12n) + 11n;
    if (bitLength(p0 + 12n * BigInt(SIEVE_WINDOW)) !== bits) continue;
    const dead = new Uint8Array(SIEVE_WINDOW);
    sievePrimes ??= oddPrimesBelow(1 << 20);
    for (const r of sievePrimes) {
      if (r === 3) continue; // handled by p = 11 mod 12
      const br = BigInt(r);
      const p0r = Number(p0 % br);
      const inv12 = modInvSmall(12 % r, r);
      // p = 0 mod r  <=>  j = -p0 / 12;  q = 0 mod r  <=>  p = 1 mod r  <=>  j = (1 - p0) / 12.
      const j0 = ((r - p0r) * inv12) % r;
      const j1 = (((1 - p0r + r) % r) * inv12) % r;
      for (let j = j0; j < SIEVE_WINDOW; j += r) dead[j] = 1;
      for (let j = j1; j < SIEVE_WINDOW; j += r) dead[j] = 1;
    }
    for (let j = 0; j < SIEVE_WINDOW; j++) {
      if (dead[j]) continue;
      candidates++;
      if (onProgress && candidates % 256 === 0) onProgress({ bits, candidates });
      const p = p0 + 12n * BigInt(j);
      const q = p >> 1n;
      if (pow2Mod(q - 1n, q) !== 1n) continue;
      // p = 2q+1 with q prime: 2^(p-1) = 1 mod p is the cheap second filter.
      if (pow2Mod(p - 1n, p) !== 1n) continue;
      if (millerRabin(q, 40, rng) && millerRabin(p, 40, rng)) return p;
    }
  }
}

/** Promise form of `generateSafePrimeSync` (same search; the work starts on a later microtask). */
export function generateSafePrime(
  bits: number,
  rng: RandomSource = webCryptoRandom,
  onProgress?: PrimeProgress,
): Promise<bigint> {
  return Promise.resolve().then(() => generateSafePrimeSync(bits, rng, onProgress));
}

function modInvSmall(a: number, m: number): number {
  let [r0, r1] = [a, m];
  let [s0, s1] = [1, 0];
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}
