/**
 * Modular exponentiation behind one interface, with swappable backends.
 *
 * Two slots exist: `public` (exponent and base are public: verification) and `secret` (the
 * exponent or the base is a secret: proving, decryption, Paillier randomness). A backend
 * declares whether it is constant-time; only a backend whose `constantTime` is true is fit for
 * the secret slot where timing can be observed. The pure-BigInt backends below run everywhere
 * (browser, Deno, Node, edge) and are NOT constant-time: engine BigInt multiplication and
 * reduction take time that depends on operand sizes. The `platform/` adapters install faster
 * backends (OpenSSL's constant-time Montgomery ladder in Node). See SECURITY.md.
 *
 * Negative exponents need an inverse, and the extended Euclid of `bigint.ts` is variable-time.
 * The secret slot therefore inverts only when the exponent is negative, and then a blinded base
 * (b r for a fresh random unit r, multiplied back by r), so Euclid never sees a secret base; the
 * moduli of negative secret exponents are public (N, N^2) in every caller. Inverses of public
 * bases that recur (ring-Pedersen s, t) are cached per modulus.
 * @module
 */
import { bitLength, egcd, gcd, mod, modInv } from "./bigint.ts";
import { randomBelow, type RandomSource, webCryptoRandom } from "./random.ts";

/** One implementation of b^e mod m. */
export interface ModPowBackend {
  /** Short identifier, shown in benchmarks and diagnostics. */
  readonly name: string;
  /** True when the run time does not depend on the value of the exponent (nor base) beyond sizes. */
  readonly constantTime: boolean;
  /**
   * b^e mod m for an odd modulus m >= 3, 0 <= b < m and e >= 0. Callers in this module
   * guarantee those preconditions; a backend need not re-check them.
   */
  modPow(b: bigint, e: bigint, m: bigint): bigint;
}

/** Sliding-window exponentiation on built-in BigInt: fastest pure path, variable-time. */
export const bigintBackend: ModPowBackend = {
  name: "bigint-window",
  constantTime: false,
  modPow(b, e, m) {
    const bits = e.toString(2);
    const w = bits.length > 1024 ? 6 : bits.length > 256 ? 5 : bits.length > 32 ? 4 : 1;
    if (w === 1) {
      let r = 1n;
      for (let i = 0; i < bits.length; i++) {
        r = (r * r) % m;
        if (bits.charCodeAt(i) === 49) r = (r * b) % m;
      }
      return r;
    }
    // Odd powers b, b^3, ..., b^(2^w - 1).
    const b2 = (b * b) % m;
    const odd: bigint[] = [b];
    for (let i = 1; i < 1 << (w - 1); i++) odd.push((odd[i - 1] * b2) % m);
    let r = 1n;
    let i = 0;
    while (i < bits.length) {
      if (bits.charCodeAt(i) === 48) {
        r = (r * r) % m;
        i++;
        continue;
      }
      // Longest window of at most w bits starting at i and ending in a 1.
      let j = Math.min(i + w, bits.length);
      while (bits.charCodeAt(j - 1) === 48) j--;
      const val = parseInt(bits.slice(i, j), 2);
      for (let k = i; k < j; k++) r = (r * r) % m;
      r = (r * odd[val >> 1]) % m;
      i = j;
    }
    return r;
  },
};

/**
 * Fixed-window exponentiation that performs the same sequence of squarings and multiplications
 * for every exponent of a given bit length (a multiplication by the table entry for a zero digit
 * is still done). This removes the exponent-dependent operation pattern but NOT the data-dependent
 * timing of engine BigInt arithmetic, so it is still marked `constantTime: false`. It is the
 * fallback for secrets where no constant-time backend exists (browsers, Deno).
 */
export const bigintUniformBackend: ModPowBackend = {
  name: "bigint-fixed-window",
  constantTime: false,
  modPow(b, e, m) {
    const w = 4;
    const table: bigint[] = [1n, b];
    for (let i = 2; i < 16; i++) table.push((table[i - 1] * b) % m);
    let hex = e.toString(16);
    // Pad to a whole number of 64-bit words so that only coarse size is visible.
    hex = hex.padStart(Math.ceil(hex.length / 16) * 16, "0");
    let r = 1n;
    for (let i = 0; i < hex.length; i++) {
      for (let k = 0; k < w; k++) r = (r * r) % m;
      r = (r * table[parseInt(hex[i], 16)]) % m;
    }
    return r;
  },
};

/** Which backend serves which kind of exponentiation. */
export interface ModPowBackends {
  public: ModPowBackend;
  secret: ModPowBackend;
}

let backends: ModPowBackends = { public: bigintBackend, secret: bigintUniformBackend };

/** Counts of exponentiations by modulus size, for benchmarks (off unless enabled). */
export interface ModPowCounter {
  /** Key: `${kind}:${bits of modulus rounded up to 64}`, value: count. */
  counts: Map<string, number>;
  /**
   * When present, the modular inverses taken for negative exponents. Key: `${how}:${bits}` with
   * `how` one of "public" (plain inverse of a public base), "blinded" (inverse of a possibly
   * secret base, blinded by a fresh random unit), "cached" (a public base's inverse reused) or
   * "euclid-secret" (`invertModSafePrimeOrder` fell back to Euclid on a secret modulus: a prime
   * that is not safe, which the product never generates).
   */
  inversions?: Map<string, number>;
}
let counter: ModPowCounter | null = null;

/** Installs backends (used by `platform/` adapters and tests). Returns the previous ones. */
export function setModPowBackends(next: Partial<ModPowBackends>): ModPowBackends {
  const prev = backends;
  backends = { ...backends, ...next };
  return prev;
}

/** The backends in use. */
export function getModPowBackends(): ModPowBackends {
  return backends;
}

/** Starts counting exponentiations (for benchmarks); pass null to stop. */
export function setModPowCounter(c: ModPowCounter | null): void {
  counter = c;
}

function sizeKey(m: bigint): number {
  return Math.ceil(bitLength(m) / 64) * 64;
}

function countInversion(
  how: "public" | "blinded" | "cached" | "euclid-secret",
  m: bigint,
): void {
  const map = counter?.inversions;
  if (!map) return;
  const key = `${how}:${sizeKey(m)}`;
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** b^e mod m for m >= 2, 0 <= b < m and e >= 0, by the backend of `kind`. */
function exp(kind: "public" | "secret", b: bigint, e: bigint, m: bigint): bigint {
  if (counter) {
    const key = `${kind}:${sizeKey(m)}`;
    counter.counts.set(key, (counter.counts.get(key) ?? 0) + 1);
  }
  if (e === 0n) return 1n;
  if ((m & 1n) === 0n) return bigintBackend.modPow(b, e, m); // no Montgomery for even moduli
  return backends[kind].modPow(b, e, m);
}

function assertModulus(m: bigint): void {
  if (m < 1n) throw new RangeError("modPow: expected a positive modulus");
}

const NOT_INVERTIBLE = "modPow: base is not invertible for a negative exponent";

/**
 * b^-1 mod m for a base that may be secret, without running Euclid on it: Euclid runs on b r
 * for a uniform r in [1, m), which for a unit b is a uniform unit independent of b, and the
 * result is (b r)^-1 r. The modulus must be public (Euclid's run time depends on it).
 * @param b the base, 0 <= b < m.
 * @param m a public modulus >= 2.
 * @param rng source of the blinding factor.
 * @returns b^-1 mod m.
 * @throws {RangeError} when b is not a unit modulo m.
 * @example
 * ```ts
 * import { invertBlinded } from "./modpow.ts";
 * console.assert((invertBlinded(3n, 1000003n) * 3n) % 1000003n === 1n);
 * ```
 */
export function invertBlinded(
  b: bigint,
  m: bigint,
  rng: RandomSource = webCryptoRandom,
): bigint {
  if (m < 2n) throw new RangeError("invertBlinded: expected a modulus >= 2");
  for (;;) {
    const r = randomBelow(m - 1n, rng) + 1n;
    const [g, inv] = egcd((b * r) % m, m);
    if (g === 1n) return mod(mod(inv, m) * r, m);
    // b r is not a unit: b is not (refused), or r is not (negligible for the moduli used here,
    // it would reveal a factor of m; draw again). Only this failure path looks at b itself.
    if (gcd(b, m) !== 1n) throw new RangeError(NOT_INVERTIBLE);
  }
}

/**
 * a^-1 mod p for a SECRET prime modulus p (a Paillier or ring-Pedersen prime), by Fermat:
 * a^(p-2) mod p on the secret backend, so Euclid never runs on the secret modulus.
 * @param a any integer (reduced modulo p first).
 * @param p an odd prime >= 3.
 * @returns a^-1 mod p.
 * @throws {RangeError} when a is 0 modulo p, or p is composite and Fermat fails for a (a result
 *   is returned only after checking a * result = 1 mod p).
 * @example
 * ```ts
 * import { invertModSecretPrime } from "./modpow.ts";
 * console.assert((invertModSecretPrime(3n, 1000003n) * 3n) % 1000003n === 1n);
 * ```
 */
export function invertModSecretPrime(a: bigint, p: bigint): bigint {
  if (p < 3n || (p & 1n) === 0n) {
    throw new RangeError("invertModSecretPrime: expected an odd prime");
  }
  const r = mod(a, p);
  const inv = modPowSecret(r, p - 2n, p);
  if ((r * inv) % p !== 1n) {
    throw new RangeError("invertModSecretPrime: not invertible, or the modulus is not prime");
  }
  return inv;
}

/**
 * a^-1 mod (p - 1) for a SECRET safe prime p = 2p' + 1 and an odd a (the exponent of an a-th
 * root modulo p): a^(p'-2) mod p' by Fermat, lifted to the odd residue modulo 2p'. No Euclid
 * runs on the secret modulus. When p is not a safe prime (test primes only: every prime the
 * product generates is safe) the Fermat result fails its check and extended Euclid answers.
 * @param a an odd integer prime to p - 1.
 * @param p an odd prime.
 * @returns a^-1 mod (p - 1).
 * @throws {RangeError} when a is not invertible modulo p - 1.
 * @example
 * ```ts
 * import { invertModSafePrimeOrder } from "./modpow.ts";
 * console.assert((invertModSafePrimeOrder(5n, 23n) * 5n) % 22n === 1n); // 23 = 2 * 11 + 1
 * ```
 */
export function invertModSafePrimeOrder(a: bigint, p: bigint): bigint {
  const order = p - 1n;
  const half = order >> 1n;
  if (half >= 5n && (half & 1n) === 1n && (a & 1n) === 1n) {
    const x = modPowSecret(mod(a, half), half - 2n, half);
    const inv = x + half * (1n - (x & 1n)); // the odd one of x, x + p'
    if (mod(a * inv, order) === 1n) return inv;
  }
  countInversion("euclid-secret", order);
  return modInv(mod(a, order), order);
}

/**
 * 4^-1 mod m for an odd modulus m >= 3, by arithmetic alone (2^-1 = (m + 1) / 2), so no Euclid
 * runs on a secret m.
 * @example
 * ```ts
 * import { inverseOfFour } from "./modpow.ts";
 * console.assert((inverseOfFour(11n) * 4n) % 11n === 1n);
 * ```
 */
export function inverseOfFour(m: bigint): bigint {
  if (m < 3n || (m & 1n) === 0n) {
    throw new RangeError("inverseOfFour: expected an odd modulus >= 3");
  }
  const half = (m + 1n) >> 1n;
  return (half * half) % m;
}

/** Bounds of the cache of public-base inverses: moduli, and bases per modulus (LRU). */
const CACHE_MODULI = 16;
const CACHE_BASES = 16;
const publicInverses = new Map<bigint, Map<bigint, bigint>>();

/** b^-1 mod m for a PUBLIC base b (0 <= b < m), cached: ring-Pedersen s, t recur in every proof. */
function publicInverse(b: bigint, m: bigint): bigint {
  let bases = publicInverses.get(m);
  if (bases) {
    publicInverses.delete(m);
  } else {
    bases = new Map();
    if (publicInverses.size >= CACHE_MODULI) {
      publicInverses.delete(publicInverses.keys().next().value as bigint);
    }
  }
  publicInverses.set(m, bases);
  let inv = bases.get(b);
  if (inv !== undefined) {
    bases.delete(b);
    countInversion("cached", m);
  } else {
    inv = modInv(b, m);
    countInversion("public", m);
    if (bases.size >= CACHE_BASES) bases.delete(bases.keys().next().value as bigint);
  }
  bases.set(b, inv);
  return inv;
}

/** Empties the cache of public-base inverses (tests and benchmarks). */
export function clearModPowCache(): void {
  publicInverses.clear();
}

/**
 * b^e mod m where b, e and m are public. Negative e means (b^-1)^|e|.
 * @throws {RangeError} when m < 1, or e < 0 and b is not invertible modulo m.
 */
export function modPow(b: bigint, e: bigint, m: bigint): bigint {
  assertModulus(m);
  if (m === 1n) return 0n;
  b = mod(b, m);
  if (e < 0n) {
    b = modInv(b, m);
    countInversion("public", m);
    e = -e;
  }
  return exp("public", b, e, m);
}

/**
 * b^e mod m where the exponent or the base is secret: served by the `secret` backend. For
 * e >= 0 no inverse is taken; for e < 0 the base is inverted blinded (`invertBlinded`), which
 * requires a public modulus, and the sign of e is visible in the run time.
 * @param rng source of the blinding factor (used only when e < 0).
 * @throws {RangeError} as `modPow`.
 */
export function modPowSecret(
  b: bigint,
  e: bigint,
  m: bigint,
  rng: RandomSource = webCryptoRandom,
): bigint {
  assertModulus(m);
  if (m === 1n) return 0n;
  b = mod(b, m);
  if (e < 0n) {
    b = invertBlinded(b, m, rng);
    countInversion("blinded", m);
    e = -e;
  }
  return exp("secret", b, e, m);
}

/** b^e mod m for a public base b whose inverse is cached when e < 0. */
function powPublicBase(kind: "public" | "secret", b: bigint, e: bigint, m: bigint): bigint {
  assertModulus(m);
  if (m === 1n) return 0n;
  b = mod(b, m);
  if (e < 0n) {
    b = publicInverse(b, m);
    e = -e;
  }
  return exp(kind, b, e, m);
}

/**
 * a^x * b^y mod m with public inputs (ring-Pedersen verification). Inverses of the bases are
 * cached for negative exponents.
 * @throws {RangeError} as `modPow`.
 */
export function modPow2(a: bigint, x: bigint, b: bigint, y: bigint, m: bigint): bigint {
  return (powPublicBase("public", a, x, m) * powPublicBase("public", b, y, m)) % m;
}

/**
 * a^x * b^y mod m where x or y is secret and the bases a, b and the modulus are PUBLIC
 * (ring-Pedersen commitments made by a prover: s, t, or a published commitment). Inverses of
 * the public bases are cached for negative exponents; a secret base must use `modPowSecret`.
 * @throws {RangeError} as `modPow`.
 */
export function modPow2Secret(a: bigint, x: bigint, b: bigint, y: bigint, m: bigint): bigint {
  return (powPublicBase("secret", a, x, m) * powPublicBase("secret", b, y, m)) % m;
}
