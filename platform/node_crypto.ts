/**
 * Runtime adapter: exponentiation and safe primes through `node:crypto`.
 *
 * Node links OpenSSL. `DiffieHellman.computeSecret(base)` with the exponent installed as the
 * private key computes base^exponent mod modulus with `BN_mod_exp_mont_consttime` (OpenSSL marks
 * DH private keys `BN_FLG_CONSTTIME`), so under Node this backend is constant-time in the exponent
 * and fit for secrets. Deno implements `node:crypto` DH in Rust with a variable-time big-integer
 * library: there the same adapter is used for public exponents only.
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

/** Small LRU of DH contexts keyed by modulus: building one for a prime modulus runs DH_check. */
class DhCache {
  #map = new Map<bigint, DiffieHellman>();
  constructor(readonly size: number) {}
  get(m: bigint): DiffieHellman {
    let dh = this.#map.get(m);
    if (dh) {
      this.#map.delete(m);
    } else {
      dh = createDiffieHellman(toBuf(m), Buffer.from([2]));
      if (this.#map.size >= this.size) this.#map.delete(this.#map.keys().next().value as bigint);
    }
    this.#map.set(m, dh);
    return dh;
  }
}

/**
 * A ModPowBackend over node:crypto DH. `constantTime` is the caller's statement about the
 * runtime's implementation (true for Node's OpenSSL, false for Deno's polyfill).
 */
export function createNodeCryptoBackend(name: string, constantTime: boolean): ModPowBackend {
  const cache = new DhCache(64);
  return {
    name,
    constantTime,
    modPow(b: bigint, e: bigint, m: bigint): bigint {
      // DH rejects "public keys" outside [2, m-2]; answer those bases directly.
      if (b === 0n) return 0n;
      if (b === 1n) return 1n;
      if (b === m - 1n) return (e & 1n) === 1n ? m - 1n : 1n;
      const bits = bitLength(m);
      if (bits < MIN_BITS || bits > MAX_BITS) return bigintBackend.modPow(b, e, m);
      const dh = cache.get(m);
      const pow = (exp: bigint): bigint => {
        dh.setPrivateKey(toBuf(exp));
        const out = dh.computeSecret(toBuf(b));
        if (out.length === 0) throw new Error("empty DH result");
        return BigInt("0x" + out.toString("hex"));
      };
      try {
        return pow(e);
      } catch {
        // OpenSSL refuses a DH shared secret equal to 1 or m-1. Then b^e is +-1, and
        // b^(e-1) = +-b^-1 is not (b != +-1 here), so one step back always succeeds.
        return e === 1n ? b : (pow(e - 1n) * b) % m;
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
