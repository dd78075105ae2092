/**
 * Runtime adapter: exponentiation and safe primes through `node:crypto`.
 *
 * Node links OpenSSL. `DiffieHellman.computeSecret(base)` with the exponent installed as the
 * private key computes base^exponent mod modulus with `BN_mod_exp_mont_consttime` (OpenSSL marks
 * DH private keys `BN_FLG_CONSTTIME`), so under Node this backend is constant-time in the exponent
 * and fit for secrets. Deno implements `node:crypto` DH in Rust with a variable-time big-integer
 * library: there the same adapter is used for public exponents only.
 *
 * Node builds a DH context (`createDiffieHellman`) for each new modulus, and that runs `DH_check`:
 * a primality test of the modulus and, for a prime, of (m-1)/2: ~100-200 ms for a 1536-bit
 * Paillier prime (m = p in `invertModSecretPrime`), one Miller-Rabin exponentiation for a
 * composite (N, N^2, p^2). Moduli below {@link SMALL_MODULUS_BITS} bits (the primes) are therefore
 * worked modulo 3m: 3 | 3m, so `DH_check`'s trial division stops at once, and because m | 3m,
 * (b^e mod 3m) mod m = b^e mod m. No primality test then runs on a secret prime either. The
 * price, measured: an exponentiation mod 3p takes about twice as long as mod p (25 words miss
 * OpenSSL's 24-word fast path), +1.2 ms for each of the 3 per party in a signing, against
 * 100-700 ms of `DH_check` per prime and context. The composites keep their own modulus (3N would
 * slow every exponentiation) and pay their one check once per context, so the context cache should
 * hold every modulus of every account the process serves (`setCapacity`, `platform/mod.ts`
 * `sizeModPowCaches`).
 *
 * Not for browsers; `core/` never imports this file. Entry points install it via `platform/mod.ts`.
 * @module
 */
import { createDiffieHellman, type DiffieHellman, generatePrime } from "node:crypto";
import { Buffer } from "node:buffer";
import { bigintBackend, type ModPowBackend } from "../core/math/modpow.ts";
import { bitLength } from "../core/math/bigint.ts";

// OpenSSL 3 DH accepts moduli of 512 to 10000 bits (DH_MIN_MODULUS_BITS,
// OPENSSL_DH_MAX_MODULUS_BITS); outside that the pure backend answers.
const MIN_BITS = 512;
const MAX_BITS = 10000;

function toBuf(x: bigint): Buffer {
  let h = x.toString(16);
  if (h.length % 2) h = "0" + h;
  return Buffer.from(h, "hex");
}

/**
 * Moduli below this many bits are worked modulo 3m (module doc): the Paillier primes and their
 * halves (1535-1536 bits) are below it, every composite modulus of the protocols (N, p^2, N^2:
 * 3071 bits and up) above.
 */
export const SMALL_MODULUS_BITS = 2048;

/** Default number of DH contexts kept: the moduli of about six accounts. */
export const DEFAULT_CONTEXT_CAPACITY = 64;

/** LRU of DH contexts keyed by the working modulus (creating one runs `DH_check`). */
class DhCache {
  #map = new Map<bigint, DiffieHellman>();
  /** Contexts created (each one ran `DH_check`). */
  created = 0;
  constructor(public capacity: number) {}
  get(m: bigint): DiffieHellman {
    let dh = this.#map.get(m);
    if (dh) {
      this.#map.delete(m);
    } else {
      dh = createDiffieHellman(toBuf(m), Buffer.from([2]));
      this.created++;
      this.#trim(this.capacity - 1);
    }
    this.#map.set(m, dh);
    return dh;
  }
  #trim(size: number): void {
    while (this.#map.size > Math.max(0, size)) {
      this.#map.delete(this.#map.keys().next().value as bigint);
    }
  }
  setCapacity(n: number): void {
    this.capacity = n;
    this.#trim(n);
  }
  contexts(): { bits: number; verifyError: number }[] {
    return [...this.#map].map(([m, dh]) => ({ bits: bitLength(m), verifyError: dh.verifyError }));
  }
}

/** A node:crypto backend: a ModPowBackend with its context cache's controls. */
export interface NodeCryptoBackend extends ModPowBackend {
  /** Sets how many DH contexts (one per modulus) are kept; the least recently used go first. */
  setCapacity(n: number): void;
  /** How many contexts were created so far (each ran `DH_check`): for tests and benchmarks. */
  contextsCreated(): number;
  /** The contexts kept, least recently used first: working modulus size and `DH_check` codes. */
  contexts(): { bits: number; verifyError: number }[];
  /** How many contexts are kept at most. */
  capacity(): number;
}

/**
 * A ModPowBackend over node:crypto DH. `constantTime` is the caller's statement about the
 * runtime's implementation (true for Node's OpenSSL, false for Deno's polyfill).
 * @param name shown in benchmarks and diagnostics.
 * @param constantTime whether the runtime's DH runs OpenSSL's constant-time exponentiation.
 * @param capacity DH contexts kept (default {@link DEFAULT_CONTEXT_CAPACITY}).
 */
export function createNodeCryptoBackend(
  name: string,
  constantTime: boolean,
  capacity: number = DEFAULT_CONTEXT_CAPACITY,
): NodeCryptoBackend {
  const cache = new DhCache(capacity);
  return {
    name,
    constantTime,
    setCapacity: (n) => cache.setCapacity(n),
    contextsCreated: () => cache.created,
    contexts: () => cache.contexts(),
    capacity: () => cache.capacity,
    modPow(b: bigint, e: bigint, m: bigint): bigint {
      // DH rejects "public keys" outside [2, m-2]; answer those bases directly.
      if (b === 0n) return 0n;
      if (b === 1n) return 1n;
      if (b === m - 1n) return (e & 1n) === 1n ? m - 1n : 1n;
      const bits = bitLength(m);
      // The working modulus: 3m for the small (prime) moduli, so that DH_check stops at once.
      const w = bits < SMALL_MODULUS_BITS ? 3n * m : m;
      const wbits = bitLength(w);
      if (wbits < MIN_BITS || wbits > MAX_BITS) return bigintBackend.modPow(b, e, m);
      const dh = cache.get(w);
      const pow = (exp: bigint): bigint => {
        dh.setPrivateKey(toBuf(exp));
        const out = dh.computeSecret(toBuf(b));
        if (out.length === 0) throw new Error("empty DH result");
        return BigInt("0x" + out.toString("hex"));
      };
      try {
        return pow(e) % m;
      } catch {
        // OpenSSL refuses a DH shared secret z <= 1 or z = w-1. For z = +-1, b is a unit mod w
        // and b^(e-1) = +-b^-1 is neither (2 <= b <= m-2 here), so one step back succeeds.
        // z = 0 (b not a unit, b^e = 0 mod w) is left to the pure backend.
        if (e === 1n) return b;
        try {
          return (pow(e - 1n) * b) % m;
        } catch {
          return bigintBackend.modPow(b, e, m);
        }
      }
    },
  };
}

/** A safe prime of `bits` bits from OpenSSL (`BN_generate_prime_ex`, top two bits set). */
export function opensslSafePrime(bits: number): Promise<bigint> {
  return new Promise((resolve, reject) => {
    generatePrime(bits, { safe: true, bigint: true }, (err, p) => {
      if (err) reject(err);
      else resolve(p as bigint);
    });
  });
}
