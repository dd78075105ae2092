/**
 * Paillier encryption over N = p q with p, q safe primes (so N is a Blum integer), as used by
 * CGGMP21 (ePrint 2021/060, Section 2.2 / Definition 2.4). Public operations work modulo N^2;
 * the key owner's operations use the factorisation (CRT modulo p^2 and q^2).
 *
 * Encryption: Enc(m; rho) = (1 + N)^m * rho^N mod N^2 = (1 + m N) * rho^N mod N^2.
 * Plaintexts are read as signed integers in (-N/2, N/2] on decryption, as the paper's proofs
 * require ("we identify Z_N with the interval [-N/2, N/2]").
 * @module
 */
import {
  bitLength,
  crt2,
  gcd,
  hasSmallFactor,
  invertModSafePrimeOrder,
  invertModSecretPrime,
  isDefinitelyComposite,
  mod,
  modPow,
  modPowSecret,
  type RandomSource,
  randomUnit,
  webCryptoRandom,
} from "./math/mod.ts";
import { MODULUS_MAX_BITS, MODULUS_MIN_BITS } from "./params.ts";

/** The public key: N and the cached N^2. */
export class PaillierPublicKey {
  /** Paillier modulus N (the paper's N_i). */
  readonly N: bigint;
  /** N^2, the ciphertext modulus. */
  readonly N2: bigint;
  constructor(N: bigint) {
    if (N < 15n || (N & 1n) === 0n) throw new RangeError("paillier: N must be odd and >= 15");
    this.N = N;
    this.N2 = N * N;
  }
  /** Bits of N. */
  get bits(): number {
    return bitLength(this.N);
  }
  /** Whether c is a valid ciphertext: 0 < c < N^2 and gcd(c, N) = 1 (`isValidCiphertext`). */
  isCiphertext(c: bigint): boolean {
    return isValidCiphertext(c, this.N);
  }
  /** rho^N mod N^2 for a randomizer rho in Z*_N (public-key side, no factorisation). */
  randomizer(rho: bigint): bigint {
    return modPowSecret(rho, this.N, this.N2);
  }
  /** Enc(m; rho) with the randomizer's N-th power `rhoN` = rho^N mod N^2 given. */
  encryptWithRandomizer(m: bigint, rhoN: bigint): bigint {
    return ((1n + mod(m, this.N) * this.N) * rhoN) % this.N2;
  }
  /** Enc(m; rho). m may be negative (encoded mod N). */
  encryptWithNonce(m: bigint, rho: bigint): bigint {
    return this.encryptWithRandomizer(m, this.randomizer(rho));
  }
  /** Enc(m) with fresh rho; returns [ciphertext, rho]. */
  encrypt(m: bigint, rng: RandomSource = webCryptoRandom): [bigint, bigint] {
    const rho = randomUnit(this.N, rng);
    return [this.encryptWithNonce(m, rho), rho];
  }
  /** c1 (+) c2: Enc(m1 + m2). */
  add(c1: bigint, c2: bigint): bigint {
    return (c1 * c2) % this.N2;
  }
  /** k (.) c: Enc(k m); k may be negative and secret (the MtA multiplier). */
  mul(c: bigint, k: bigint): bigint {
    return modPowSecret(c, k, this.N2);
  }
  /** k (.) c for public k (verification side). */
  mulPublic(c: bigint, k: bigint): bigint {
    return modPow(c, k, this.N2);
  }
}

/** The secret key: the safe primes p, q and CRT constants. Never serialised by this class. */
export class PaillierSecretKey {
  readonly publicKey: PaillierPublicKey;
  /** The prime factors (the paper's p_i, q_i). */
  readonly p: bigint;
  readonly q: bigint;
  /** phi(N) = (p-1)(q-1). */
  readonly phi: bigint;
  readonly #p2: bigint;
  readonly #q2: bigint;
  readonly #hp: bigint; // (L_p(g^(p-1) mod p^2))^-1 mod p with g = 1 + N, i.e. q^-1 mod p
  readonly #hq: bigint;
  readonly #pInvQ: bigint;
  readonly #p2InvQ2: bigint;
  readonly #nModPhiP2: bigint; // N mod phi(p^2) = N mod p(p-1)
  readonly #nModPhiQ2: bigint;
  #nthRoot?: { dp: bigint; dq: bigint }; // N^-1 mod p-1 and mod q-1, made on first use

  constructor(p: bigint, q: bigint) {
    if (p === q) throw new RangeError("paillier: p and q must differ");
    this.p = p;
    this.q = q;
    this.publicKey = new PaillierPublicKey(p * q);
    this.phi = (p - 1n) * (q - 1n);
    this.#p2 = p * p;
    this.#q2 = q * q;
    // With g = 1 + N: g^(p-1) mod p^2 = 1 + (p-1) N mod p^2, so L_p = (p-1) q mod p = -q mod p.
    // The inverses modulo the secret primes are taken by Fermat on the secret backend (no
    // variable-time Euclid on p or q); p^-1 mod q^2 is Hensel's lift of p^-1 mod q.
    this.#hp = invertModSecretPrime(-q, p);
    this.#hq = invertModSecretPrime(-p, q);
    this.#pInvQ = invertModSecretPrime(p, q);
    const pInvQ2 = mod(this.#pInvQ * (2n - p * this.#pInvQ), this.#q2);
    this.#p2InvQ2 = (pInvQ2 * pInvQ2) % this.#q2;
    this.#nModPhiP2 = this.publicKey.N % (p * (p - 1n));
    this.#nModPhiQ2 = this.publicKey.N % (q * (q - 1n));
  }

  /** N of the public key. */
  get N(): bigint {
    return this.publicKey.N;
  }

  /** Decryption to the unsigned residue in [0, N) (CRT: Paillier 1999, Section 7). */
  decryptUnsigned(c: bigint): bigint {
    const { p, q } = this;
    const mp = mod(((modPowSecret(c % this.#p2, p - 1n, this.#p2) - 1n) / p) * this.#hp, p);
    const mq = mod(((modPowSecret(c % this.#q2, q - 1n, this.#q2) - 1n) / q) * this.#hq, q);
    return crt2(mp, p, mq, q, this.#pInvQ);
  }

  /** Decryption to the signed representative in (-N/2, N/2]. */
  decrypt(c: bigint): bigint {
    const m = this.decryptUnsigned(c);
    return m > this.N >> 1n ? m - this.N : m;
  }

  /** rho^N mod N^2 via CRT modulo p^2 and q^2 (about 4x faster than the public-key path). */
  randomizer(rho: bigint): bigint {
    const a = modPowSecret(rho % this.#p2, this.#nModPhiP2, this.#p2);
    const b = modPowSecret(rho % this.#q2, this.#nModPhiQ2, this.#q2);
    return crt2(a, this.#p2, b, this.#q2, this.#p2InvQ2);
  }

  /** Enc(m; rho) computed by the owner with CRT. */
  encryptWithNonce(m: bigint, rho: bigint): bigint {
    return this.publicKey.encryptWithRandomizer(m, this.randomizer(rho));
  }

  /** Enc(m) with fresh rho; returns [ciphertext, rho]. */
  encrypt(m: bigint, rng: RandomSource = webCryptoRandom): [bigint, bigint] {
    const rho = randomUnit(this.N, rng);
    return [this.encryptWithNonce(m, rho), rho];
  }

  /**
   * prod_k b_k^e_k modulo N^2 (`modulus` "N2") or N ("N"), computed by the owner of p and q:
   * each power modulo p^2 and q^2 (p and q) with its exponent reduced modulo the order of that
   * group (p (p - 1), q (q - 1); p - 1, q - 1), on the secret backend (the moduli and the
   * reduced exponents reveal p and q), then joined by CRT. The verifier of a statement under its
   * own N (Pi-aff-g's D modulo N^2, the ring-Pedersen N-hat = N of Pi-enc, Pi-aff-g, Pi-log*)
   * computes its equations so; the value returned is the public one, prod b_k^e_k mod N(^2).
   * @param terms [b, e] pairs: b in Z*_N (a unit: the reduction of e is exact only then), e >= 0.
   * @param modulus "N2" or "N".
   * @returns the product, reduced.
   * @throws {RangeError} for a negative exponent.
   */
  powProduct(terms: readonly (readonly [bigint, bigint])[], modulus: "N" | "N2"): bigint {
    const { p, q } = this;
    const [mp, mq] = modulus === "N2" ? [this.#p2, this.#q2] : [p, q];
    const [op, oq] = modulus === "N2" ? [p * (p - 1n), q * (q - 1n)] : [p - 1n, q - 1n];
    let xp = 1n;
    let xq = 1n;
    for (const [b, e] of terms) {
      if (e < 0n) throw new RangeError("powProduct: expected exponents >= 0");
      if (e === 0n) continue;
      xp = (xp * powReduced(b, e, mp, op)) % mp;
      xq = (xq * powReduced(b, e, mq, oq)) % mq;
    }
    return modulus === "N2"
      ? crt2(xp, mp, xq, mq, this.#p2InvQ2)
      : crt2(xp, mp, xq, mq, this.#pInvQ);
  }

  /**
   * Recovers the randomizer rho of a ciphertext: rho = (c mod N)^(N^-1 mod phi(N)) mod N, as
   * the N-th roots modulo p and q (exponents N^-1 mod p-1 and q-1, taken without Euclid on the
   * secret moduli for safe primes), joined by CRT.
   * Used by provers who only know a ciphertext they decrypted (e.g. in Pi-aff-g's prover side).
   */
  recoverNonce(c: bigint): bigint {
    // c = (1 + mN) rho^N, and (1 + mN) = 1 mod N, so c mod N = rho^N mod N.
    const { p, q, N } = this;
    this.#nthRoot ??= {
      dp: invertModSafePrimeOrder(N % (p - 1n), p),
      dq: invertModSafePrimeOrder(N % (q - 1n), q),
    };
    const y = c % N;
    const rp = modPowSecret(y % p, this.#nthRoot.dp, p);
    const rq = modPowSecret(y % q, this.#nthRoot.dq, q);
    return crt2(rp, p, rq, q, this.#pInvQ);
  }
}

/** b^e mod m for a unit b and e > 0 whose group order divides `order` (secret m, secret order). */
function powReduced(b: bigint, e: bigint, m: bigint, order: bigint): bigint {
  if (e === 1n) return b % m;
  return modPowSecret(b % m, e % order, m);
}

// ---------------------------------------------------------------------------------------------
// Randomizers computed ahead of time (CGGMP21 notes: "r^N can be precomputed off-line").

/** A Paillier randomizer: rho in Z*_N and its N-th power rho^N mod N^2. Used once, then dropped. */
export type Randomizer = readonly [rho: bigint, rhoN: bigint];

/** The key of a modulus whose randomizers are wanted: the owner's (CRT) or a public key. */
export type RandomizerKey = PaillierPublicKey | PaillierSecretKey;

/**
 * Where provers take the randomizers of their Paillier encryptions (presigning's K_i, G_i, the
 * MtA masks, the first messages of Pi-enc, Pi-aff-g and Pi-log*). Every randomizer a source
 * hands out is handed out once: whoever takes it owns rho (a proof's response uses it) and
 * nobody else ever gets it.
 */
export interface RandomizerSource {
  /**
   * A fresh randomizer for `key`'s N: precomputed, or rho drawn from `rng` and rho^N computed
   * now (by CRT when `key` is the owner's secret key).
   */
  take(key: RandomizerKey, rng: RandomSource): Randomizer;
}

/** The source without precomputation: rho from `rng`, rho^N computed at once. */
export const inlineRandomizers: RandomizerSource = {
  take(key, rng) {
    const rho = randomUnit(key.N, rng);
    return [rho, key.randomizer(rho)];
  },
};

/** Counters of a pool or a registry since it was made. */
export interface RandomizerStats {
  /** Entries ready now. */
  readonly ready: number;
  /** Entries precomputed. */
  readonly made: number;
  /** Randomizers handed out from the precomputed entries. */
  readonly fromPool: number;
  /** Randomizers computed on demand because no entry was ready. */
  readonly inline: number;
}

/**
 * A pool of precomputed randomizers (rho, rho^N mod N^2) for one modulus, kept in memory only.
 * `take` removes the entry it hands out, so no entry is ever handed out twice; an empty pool
 * computes the randomizer on demand (counted apart).
 */
export class RandomizerPool {
  #key: RandomizerKey;
  readonly #rng: RandomSource;
  #items: Randomizer[] = [];
  #made = 0;
  #fromPool = 0;
  #inline = 0;
  /**
   * @param key the owner's secret key (entries by CRT) or a public key.
   * @param rng randomness of the precomputed entries (default Web Crypto).
   */
  constructor(key: RandomizerKey, rng: RandomSource = webCryptoRandom) {
    this.#key = key;
    this.#rng = rng;
  }
  /** The modulus N. */
  get N(): bigint {
    return this.#key.N;
  }
  /** Whether entries are made by the owner (CRT), about 3x cheaper than with the public key. */
  get owned(): boolean {
    return this.#key instanceof PaillierSecretKey;
  }
  /** Number of ready entries. */
  get size(): number {
    return this.#items.length;
  }
  /**
   * Makes later entries with the owner's key (CRT) instead of the public key.
   * @throws {RangeError} when `sk` is the key of another modulus.
   */
  useOwnerKey(sk: PaillierSecretKey): void {
    if (sk.N !== this.N) throw new RangeError("randomizer pool: the key of another modulus");
    this.#key = sk;
  }
  /** Precomputes `count` entries. */
  fill(count: number): void {
    for (let i = 0; i < count; i++) {
      const rho = randomUnit(this.N, this.#rng);
      this.#items.push([rho, this.#key.randomizer(rho)]);
      this.#made++;
    }
  }
  /**
   * Takes one entry [rho, rho^N mod N^2] out of the pool; when none is ready, rho is drawn from
   * `rng` (default the pool's) and its power computed now.
   */
  take(rng: RandomSource = this.#rng): Randomizer {
    const item = this.#items.pop();
    if (item) {
      this.#fromPool++;
      return item;
    }
    this.#inline++;
    const rho = randomUnit(this.N, rng);
    return [rho, this.#key.randomizer(rho)];
  }
  /** Drops every ready entry. */
  clear(): void {
    this.#items = [];
  }
  /** The pool's counters. */
  stats(): RandomizerStats {
    return {
      ready: this.#items.length,
      made: this.#made,
      fromPool: this.#fromPool,
      inline: this.#inline,
    };
  }
}

/** Options of {@link RandomizerRegistry}. */
export interface RandomizerRegistryOptions {
  /**
   * Entries kept ready for a modulus whose secret key was seen (default 18: one presigning
   * takes 2 + 7 (n - 1) under its own N, so two 2-party presignings).
   */
  readonly own?: number;
  /** Entries kept ready for a peer's modulus (default 8: one presigning takes 4 per peer). */
  readonly peer?: number;
  /** Moduli that keep a pool, the least recently used dropped first (default 16). */
  readonly moduli?: number;
  /** Randomness of the precomputed entries (default Web Crypto). */
  readonly rng?: RandomSource;
}

/**
 * The randomizer pools of one thread, by modulus: a {@link RandomizerSource} that hands out
 * precomputed entries when it has them and computes on demand when not. A modulus gets a pool
 * the first time a randomizer is taken for it (so only the moduli in use are filled), with the
 * owner's key when it was taken with one; `refill` precomputes, a few entries at a time, what
 * the pools miss of their targets: its caller runs it when the thread is idle (the compute
 * workers do, `platform/_compute_jobs.ts`). Kept in memory only: nothing here is serialised.
 */
export class RandomizerRegistry implements RandomizerSource {
  readonly #pools = new Map<bigint, RandomizerPool>();
  readonly #own: number;
  readonly #peer: number;
  readonly #moduli: number;
  readonly #rng: RandomSource;
  /** Counters of the pools dropped (least recently used). */
  #dropped = { made: 0, fromPool: 0, inline: 0 };

  /**
   * @param options targets per modulus, number of moduli, randomness.
   * @throws {RangeError} for a size that is not an integer >= 0 (>= 1 for `moduli`).
   */
  constructor(options: RandomizerRegistryOptions = {}) {
    const count = (v: number | undefined, fallback: number, min: number, what: string) => {
      const x = v ?? fallback;
      if (!Number.isSafeInteger(x) || x < min) {
        throw new RangeError(`randomizers: expected ${what} >= ${min}, got ${String(x)}`);
      }
      return x;
    };
    this.#own = count(options.own, 18, 0, "own");
    this.#peer = count(options.peer, 8, 0, "peer");
    this.#moduli = count(options.moduli, 16, 1, "moduli");
    this.#rng = options.rng ?? webCryptoRandom;
  }

  #target(pool: RandomizerPool): number {
    return pool.owned ? this.#own : this.#peer;
  }

  /** A randomizer for `key`'s N: precomputed when one is ready (module doc). */
  take(key: RandomizerKey, rng: RandomSource): Randomizer {
    const N = key.N;
    let pool = this.#pools.get(N);
    if (pool) {
      this.#pools.delete(N); // most recently used last
    } else {
      pool = new RandomizerPool(key, this.#rng);
      if (this.#pools.size >= this.#moduli) {
        const [oldN, old] = this.#pools.entries().next().value as [bigint, RandomizerPool];
        this.#drop(oldN, old);
      }
    }
    if (key instanceof PaillierSecretKey && !pool.owned) pool.useOwnerKey(key);
    this.#pools.set(N, pool);
    return pool.take(rng);
  }

  #drop(N: bigint, pool: RandomizerPool): void {
    const s = pool.stats();
    this.#dropped = {
      made: this.#dropped.made + s.made,
      fromPool: this.#dropped.fromPool + s.fromPool,
      inline: this.#dropped.inline + s.inline,
    };
    pool.clear();
    this.#pools.delete(N);
  }

  /** Entries the pools miss of their targets. */
  get missing(): number {
    let m = 0;
    for (const pool of this.#pools.values()) m += Math.max(0, this.#target(pool) - pool.size);
    return m;
  }

  /**
   * Precomputes up to `max` entries, each for the pool furthest below its target (the most
   * recently used first among equals).
   * @param max entries to make at most (default 1: about one exponentiation modulo N^2).
   * @returns the entries made (0 when every pool is at its target).
   */
  refill(max = 1): number {
    let made = 0;
    while (made < max) {
      let best: RandomizerPool | undefined;
      let need = 0;
      for (const pool of this.#pools.values()) {
        const n = this.#target(pool) - pool.size;
        if (n > 0 && n >= need) {
          best = pool;
          need = n;
        }
      }
      if (!best) break;
      best.fill(1);
      made++;
    }
    return made;
  }

  /** The counters of every pool, dropped ones included, and the moduli kept. */
  stats(): RandomizerStats & { readonly moduli: number; readonly missing: number } {
    let { made, fromPool, inline } = this.#dropped;
    let ready = 0;
    for (const pool of this.#pools.values()) {
      const s = pool.stats();
      ready += s.ready;
      made += s.made;
      fromPool += s.fromPool;
      inline += s.inline;
    }
    return { moduli: this.#pools.size, ready, made, fromPool, inline, missing: this.missing };
  }

  /** Drops every pool and its entries (the counters stay). */
  clear(): void {
    for (const [N, pool] of [...this.#pools]) this.#drop(N, pool);
  }
}

let installedSource: RandomizerSource | null = null;

/**
 * Installs the randomizer source of this thread, which presigning takes its randomizers from
 * (`core/protocols/presign.ts`; the compute workers install a {@link RandomizerRegistry}).
 * Like the exponentiation backends, a per-thread accelerator: the randomizers it hands out are
 * distributed as those computed on the spot, so no protocol output depends on it.
 * @param source the source, or null for none (randomizers computed on the spot).
 * @returns the previous source.
 * @example
 * ```ts
 * import { RandomizerRegistry, setRandomizerSource } from "./paillier.ts";
 * const previous = setRandomizerSource(new RandomizerRegistry({ own: 18, peer: 8 }));
 * setRandomizerSource(previous);
 * ```
 */
export function setRandomizerSource(source: RandomizerSource | null): RandomizerSource | null {
  const prev = installedSource;
  installedSource = source;
  return prev;
}

/** The installed randomizer source of this thread, or {@link inlineRandomizers}. */
export function getRandomizerSource(): RandomizerSource {
  return installedSource ?? inlineRandomizers;
}

/** Whether c is in Z*_{N^2} (a ciphertext a verifier may accept). */
export function isValidCiphertext(c: bigint, N: bigint): boolean {
  return c > 0n && c < N * N && gcd(c, N) === 1n;
}

/**
 * Checks a Paillier / ring-Pedersen modulus received from another party before anything else is
 * done with it: odd, 3071 or 3072 bits, no prime factor below 2^16, and not prime (one base-2
 * Fermat test). Pi-mod and Pi-fac then prove the rest.
 * @param N the received modulus.
 * @throws {RangeError} naming the first check that fails.
 * @example
 * ```ts
 * import { assertPaillierModulus } from "./paillier.ts";
 * let refused = false;
 * try {
 *   assertPaillierModulus(3233n);
 * } catch {
 *   refused = true; // 12 bits
 * }
 * console.assert(refused);
 * ```
 */
export function assertPaillierModulus(N: bigint): void {
  const bits = bitLength(N);
  if (bits < MODULUS_MIN_BITS || bits > MODULUS_MAX_BITS) {
    throw new RangeError(`expected N of ${MODULUS_MIN_BITS}-${MODULUS_MAX_BITS} bits, got ${bits}`);
  }
  if ((N & 1n) === 0n) throw new RangeError("N is even");
  if (hasSmallFactor(N)) throw new RangeError("N has a small prime factor");
  if (!isDefinitelyComposite(N)) throw new RangeError("N is prime");
}
