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

/**
 * A pool of precomputed randomizers (rho, rho^N mod N^2) for one key, filled off-line
 * (CGGMP21 "r^N can be precomputed"). Each entry is handed out once.
 */
export class RandomizerPool {
  readonly #key: PaillierPublicKey | PaillierSecretKey;
  readonly #rng: RandomSource;
  readonly #items: Array<[bigint, bigint]> = [];
  constructor(key: PaillierPublicKey | PaillierSecretKey, rng: RandomSource = webCryptoRandom) {
    this.#key = key;
    this.#rng = rng;
  }
  /** Number of ready entries. */
  get size(): number {
    return this.#items.length;
  }
  /** Precomputes `count` entries. */
  fill(count: number): void {
    const N = this.#key instanceof PaillierSecretKey ? this.#key.N : this.#key.N;
    for (let i = 0; i < count; i++) {
      const rho = randomUnit(N, this.#rng);
      this.#items.push([rho, this.#key.randomizer(rho)]);
    }
  }
  /** Takes one entry [rho, rho^N mod N^2] (computed now when the pool is empty). */
  take(): [bigint, bigint] {
    const item = this.#items.pop();
    if (item) return item;
    this.fill(1);
    return this.#items.pop()!;
  }
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
