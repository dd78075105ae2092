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
 * @module
 */
import { bitLength, egcd, mod, modInv } from "./bigint.ts";

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

function run(kind: "public" | "secret", b: bigint, e: bigint, m: bigint): bigint {
  if (m < 1n) throw new RangeError("modPow: expected a positive modulus");
  if (m === 1n) return 0n;
  b = mod(b, m);
  if (kind === "secret") {
    // A secret exponent's sign must not show as an extra inversion: always run Euclid, then pick.
    const [g, inv] = egcd(b, m);
    if (e < 0n) {
      if (g !== 1n) throw new RangeError("modPow: base is not invertible for a negative exponent");
      b = mod(inv, m);
      e = -e;
    }
  } else if (e < 0n) {
    b = modInv(b, m);
    e = -e;
  }
  if (counter) {
    const key = `${kind}:${Math.ceil(bitLength(m) / 64) * 64}`;
    counter.counts.set(key, (counter.counts.get(key) ?? 0) + 1);
  }
  if (e === 0n) return 1n;
  if ((m & 1n) === 0n) return bigintBackend.modPow(b, e, m); // no Montgomery for even moduli
  return backends[kind].modPow(b, e, m);
}

/**
 * b^e mod m where b, e and m are public. Negative e means (b^-1)^|e|.
 * @throws {RangeError} when m < 1, or e < 0 and b is not invertible modulo m.
 */
export function modPow(b: bigint, e: bigint, m: bigint): bigint {
  return run("public", b, e, m);
}

/**
 * b^e mod m where the exponent or the base is secret: served by the `secret` backend.
 * @throws {RangeError} as `modPow`.
 */
export function modPowSecret(b: bigint, e: bigint, m: bigint): bigint {
  return run("secret", b, e, m);
}

/** a^x * b^y mod m with public inputs (ring-Pedersen verification). */
export function modPow2(a: bigint, x: bigint, b: bigint, y: bigint, m: bigint): bigint {
  return (run("public", a, x, m) * run("public", b, y, m)) % m;
}

/** a^x * b^y mod m where x or y is secret (ring-Pedersen commitments made by a prover). */
export function modPow2Secret(a: bigint, x: bigint, b: bigint, y: bigint, m: bigint): bigint {
  return (run("secret", a, x, m) * run("secret", b, y, m)) % m;
}
