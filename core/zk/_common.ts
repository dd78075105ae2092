/**
 * The pieces the zero-knowledge proofs share (one home; nothing here is exported from the
 * package, `mod.ts` exports the proofs): the proof context and transcript helpers, the
 * parameters and wire caps of the range proofs, the typed errors of wire decoding, the
 * validation of moduli, group elements and ranges that every verifier performs before any
 * arithmetic, and the prover's Paillier arithmetic. Exponentiation by the owner of a
 * factorisation is in `_crt_pow.ts`.
 * @module
 */
import { assertPoint, decodeArray, parseHexInt } from "../bytes.ts";
import { ProofError } from "../errors.ts";
import {
  bitLength,
  gcd,
  mod,
  modInv,
  modPow,
  modPowSecret,
  randomInRange,
  type RandomSource,
  randomUnit,
} from "../math/mod.ts";
import {
  assertPaillierModulus,
  inlineRandomizers,
  PaillierPublicKey,
  type PaillierSecretKey,
  type RandomizerSource,
} from "../paillier.ts";
import { ELL, EPSILON, MODULUS_MAX_BITS, MODULUS_MIN_BITS, type Point } from "../params.ts";
import { checkRingPedersenShape, commit, type RingPedersenParams } from "../ring_pedersen.ts";
import { Transcript } from "../transcript.ts";
import { equalByCrt } from "./_crt_pow.ts";

// ---------------------------------------------------------------------------------------------
// Context and transcript

/** What binds a proof to its use: the session id and the prover's party index. */
export interface ProofContext {
  /** Session id agreed by all parties (non-empty). */
  readonly sid: Uint8Array;
  /** Index of the prover. */
  readonly prover: number;
}

/** Options of the provers of Pi-enc, Pi-aff-g and Pi-log*. */
export interface ProveOptions {
  /**
   * Where the randomizers of the proof's Paillier encryptions come from (presigning gives the
   * thread's pools, `core/paillier.ts`); default: drawn from the prover's rng and computed now.
   */
  readonly randomizers?: RandomizerSource;
}

/** The randomizer source of a prover's options. */
export function randomizersOf(options: ProveOptions | undefined): RandomizerSource {
  return options?.randomizers ?? inlineRandomizers;
}

/** Options of the verifiers of Pi-enc, Pi-aff-g and Pi-log*. */
export interface VerifyOptions {
  /**
   * The verifier's own Paillier key. The equations modulo its N or N^2 (the ring-Pedersen
   * N-hat is the verifier's N in this project) are then computed by CRT with its primes
   * (`_crt_pow.ts` `equalByCrt`): the same accept / reject, fewer and smaller exponentiations.
   * A key of another modulus is not used.
   */
  readonly verifierKey?: PaillierSecretKey;
}

/** The verifier's key when its modulus is N, else undefined (the public path). */
export function ownKeyOf(
  options: VerifyOptions | undefined,
  N: bigint,
): PaillierSecretKey | undefined {
  const sk = options?.verifierKey;
  return sk !== undefined && sk.N === N ? sk : undefined;
}

/** Starts the transcript of `proof` for this context. */
export function transcriptFor(proof: string, ctx: ProofContext): Transcript {
  return Transcript.create(`zk/${proof}`, ctx.sid, ctx.prover);
}

/** Absorbs the ring-Pedersen parameters (N-hat, s, t). */
export function appendRingPedersen(tr: Transcript, aux: RingPedersenParams): void {
  tr.appendUint("Nhat", aux.N).appendUint("s", aux.s).appendUint("t", aux.t);
}

/** Absorbs a point in its 33-byte compressed form. */
export function appendPoint(tr: Transcript, label: string, P: Point): void {
  tr.appendBytes(label, P.toBytes(true));
}

// ---------------------------------------------------------------------------------------------
// Parameters and wire caps of the range proofs (Pi-enc, Pi-aff-g, Pi-log*, Pi-fac)

/**
 * Q: the challenge space +-Q of Pi-enc, Pi-aff-g and Pi-log* (spec "Security Parameters": the
 * level L = (kappa, eps, l, l', m, Q) with Q = 2^m = 2^128, as the reference's SecurityLevel128).
 * Not the curve order q: completeness needs eps >= 8 + log2 Q, and eps = 230 < 8 + 256, so with
 * e in +-q an honest z1 = alpha + e k (|e k| up to 2^512) would overflow +-2^(l+eps).
 */
export const CHALLENGE_Q: bigint = 1n << 128n;

/** l + eps: bound in bits of z1 (Figure 14 step 4, Figure 15 step 4, Figure 25 step 4). */
export const Z1_BITS: number = ELL + EPSILON;
/** Wire cap of a signed integer whose magnitude is at most `bound` (bytes). */
export function capBytes(bound: bigint): number {
  return Math.ceil(bound.toString(16).length / 2);
}

/** Wire cap of a signed integer in +-2^bits: the bytes of 2^bits itself. */
export function bitsCapBytes(bits: number): number {
  return capBytes(1n << BigInt(bits));
}

/**
 * Honest bound on a ring-Pedersen mask response z = gamma + e * mu, with gamma in
 * +-2^(l+eps) * N-hat, mu in +-2^l * N-hat and e in +-Q: |z| <= 2^l * N-hat * (2^eps + Q).
 * The paper does not range-check these responses; this cap (which every honest proof meets)
 * keeps a hostile exponent from making verification slow.
 */
export function maskBound(Nhat: bigint): bigint {
  return (((1n << BigInt(EPSILON)) + CHALLENGE_Q) << BigInt(ELL)) * Nhat;
}
/** Wire cap of a mask response (z3, z4) in bytes, from `maskBound` at the largest N-hat. */
export const MASK_MAX_BYTES: number = Math.ceil(
  (ELL + bitLength((1n << BigInt(EPSILON)) + CHALLENGE_Q) + MODULUS_MAX_BITS) / 8,
);

// ---------------------------------------------------------------------------------------------
// Wire decoding

/**
 * Runs the decoder of a proof's wire form, written with the shared decoders of `core/bytes.ts`
 * (which cap every length before parsing): any error it throws becomes a "malformed" ProofError
 * of `proof`, with the decoder's message (which names the field).
 * @param proof the proof's name.
 * @param decode the decoder.
 * @returns what `decode` returns.
 * @throws {ProofError} "malformed".
 */
export function decodeProof<T>(proof: string, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof ProofError) throw e;
    throw new ProofError(proof, "malformed", e instanceof Error ? e.message : String(e));
  }
}

/**
 * Decodes an array of exactly `length` unsigned hex integers, each capped at `maxBytes`.
 * @throws {TypeError} / {SyntaxError} / {RangeError} (inside `decodeProof`: "malformed").
 */
export function decodeUintArray(
  v: unknown,
  field: string,
  length: number,
  maxBytes: number,
): bigint[] {
  return decodeArray(
    v,
    `field "${field}"`,
    length,
    (x, k) => parseHexInt(x, maxBytes, `field "${field}[${k}]"`),
  );
}

/**
 * Decodes an array of exactly `length` bits, each the JSON number 0 or 1.
 * @throws {TypeError} / {RangeError} (inside `decodeProof`: "malformed").
 */
export function decodeBitArray(v: unknown, field: string, length: number): (0 | 1)[] {
  return decodeArray(v, `field "${field}"`, length, (x, k) => {
    if (x !== 0 && x !== 1) throw new TypeError(`field "${field}[${k}]": expected 0 or 1`);
    return x;
  });
}

// ---------------------------------------------------------------------------------------------
// Validation before any arithmetic

/**
 * A point of a statement or proof: on the curve and not the identity.
 * @throws {ProofError} "out-of-range".
 */
export function assertValidPoint(proof: string, field: string, P: Point): void {
  try {
    assertPoint(P, field);
  } catch {
    throw new ProofError(proof, "out-of-range", `field "${field}" is not a valid point`);
  }
}

/** |x| <= 2^bits, else an out-of-range ProofError naming the field. */
export function assertBits(proof: string, field: string, x: bigint, bits: number): void {
  const bound = 1n << BigInt(bits);
  if (x > bound || x < -bound) {
    throw new ProofError(proof, "out-of-range", `field "${field}" is outside +-2^${bits}`);
  }
}

/** |x| <= bound, else an out-of-range ProofError naming the field. */
export function assertAbsAtMost(proof: string, field: string, x: bigint, bound: bigint): void {
  if (x > bound || x < -bound) {
    throw new ProofError(proof, "out-of-range", `field "${field}" exceeds its bound`);
  }
}

/** 0 < x < m and gcd(x, N) = 1 (membership in Z*_m for m = N or N^2). */
export function assertUnit(proof: string, field: string, x: bigint, m: bigint, N: bigint): void {
  if (x <= 0n || x >= m || gcd(x, N) !== 1n) {
    throw new ProofError(proof, "out-of-range", `field "${field}" is not a unit modulo N`);
  }
}

/** 0 <= x < m. */
export function assertResidue(proof: string, field: string, x: bigint, m: bigint): void {
  if (x < 0n || x >= m) {
    throw new ProofError(proof, "out-of-range", `field "${field}" is not reduced`);
  }
}

/**
 * A received group element: 1 < x < N - 1 and gcd(x, N) = 1 (a unit other than +-1; the
 * values +-1 are degenerate and an honest prover makes them with negligible probability).
 * @throws {ProofError} "out-of-range".
 */
export function assertElement(proof: string, field: string, x: bigint, N: bigint): void {
  if (x <= 1n || x >= N - 1n) {
    throw new ProofError(proof, "out-of-range", `field "${field}" is not in (1, N-1)`);
  }
  if (gcd(x, N) !== 1n) {
    throw new ProofError(proof, "out-of-range", `field "${field}" is not a unit modulo N`);
  }
}

/** An in-memory proof array of exactly `length` entries. */
export function assertLength(
  proof: string,
  field: string,
  v: readonly unknown[],
  length: number,
): void {
  if (!Array.isArray(v) || v.length !== length) {
    const got = Array.isArray(v) ? v.length : typeof v;
    throw new ProofError(
      proof,
      "malformed",
      `field "${field}": expected ${length} entries, got ${got}`,
    );
  }
}

/**
 * `assertPaillierModulus` (paillier.ts) of a modulus in a proof's statement.
 * @throws {ProofError} "bad-modulus".
 */
export function assertModulus(proof: string, N: bigint): void {
  try {
    assertPaillierModulus(N);
  } catch (e) {
    throw new ProofError(proof, "bad-modulus", (e as Error).message);
  }
}

/**
 * Shape of a modulus in a statement: odd and of 3071-3072 bits. The rest (no small factor,
 * Paillier-Blum, Pi-mod / Pi-fac) was established when the auxiliary info was accepted.
 */
export function assertModulusShape(proof: string, field: string, N: bigint): void {
  const bits = bitLength(N);
  if (N <= 0n || (N & 1n) === 0n || bits < MODULUS_MIN_BITS || bits > MODULUS_MAX_BITS) {
    throw new ProofError(
      proof,
      "bad-modulus",
      `expected ${field} odd of ${MODULUS_MIN_BITS}-${MODULUS_MAX_BITS} bits, got ${bits} bits`,
    );
  }
}

/** Ring-Pedersen (N-hat, s, t): N-hat well-shaped; s, t in Z*_N-hat, neither 1, s != t. */
export function assertRingPedersen(proof: string, aux: RingPedersenParams): void {
  assertModulusShape(proof, "N-hat", aux.N);
  if (!checkRingPedersenShape(aux)) {
    throw new ProofError(proof, "out-of-range", "ring-Pedersen s, t are not distinct units != 1");
  }
}

/** The ProofError of an equation that does not hold (no secret is named). */
export function equationFailed(proof: string, which: string): ProofError {
  return new ProofError(proof, "verification-failed", `${which} does not hold`);
}

// ---------------------------------------------------------------------------------------------
// The prover's Paillier arithmetic

/** Enc_N(m; rho) = (1 + (m mod N) N) rho^N mod N^2 for public m and rho (verifier side). */
export function encryptPublic(N: bigint, m: bigint, rho: bigint): bigint {
  const N2 = N * N;
  return ((1n + mod(m, N) * N) * modPow(rho, N, N2)) % N2;
}

/**
 * Enc_N(m; rho) by the prover for a fresh randomizer rho taken from `source` (precomputed, or
 * drawn from `rng` and computed now; by CRT when the prover holds the key of N).
 * @returns [ciphertext, rho]: rho for the proof's response.
 */
export function encryptFresh(
  N: bigint,
  m: bigint,
  sk: PaillierSecretKey | undefined,
  source: RandomizerSource,
  rng: RandomSource,
): [bigint, bigint] {
  const key = sk ?? new PaillierPublicKey(N);
  const [rho, rhoN] = source.take(key, rng);
  return [(sk ? sk.publicKey : key as PaillierPublicKey).encryptWithRandomizer(m, rhoN), rho];
}

// ---------------------------------------------------------------------------------------------
// The verifier's equations, by CRT when the verifier owns the modulus

/**
 * The Paillier equation of the range proofs, Enc_N(z; w) = (1 + z N) w^N = A (+) (e (.) C)
 * mod N^2 (Figure 14 step 4; Figure 15 step 4 under N1; Figure 25 step 4): by CRT when the
 * verifier owns N (`VerifyOptions`), by public exponentiations otherwise.
 * @returns whether it holds (every value already validated: units, ranges).
 */
export function paillierEquationHolds(
  N: bigint,
  z: bigint,
  w: bigint,
  A: bigint,
  C: bigint,
  e: bigint,
  options: VerifyOptions | undefined,
): boolean {
  const sk = ownKeyOf(options, N);
  if (sk) return equalByCrt(sk, "N2", [[1n + mod(z, N) * N, 1n], [w, N]], [[A, 1n], [C, e]]);
  const N2 = N * N;
  return encryptPublic(N, z, w) === (A * modPow(C, e, N2)) % N2;
}

/**
 * The ring-Pedersen equation of the range proofs, s^z t^z' = A B^e mod N-hat (Figure 14, 15,
 * 25, step 4): by CRT when the verifier owns N-hat (`VerifyOptions`), publicly otherwise.
 * @returns whether it holds (every value already validated: units, ranges).
 */
export function commitmentEquationHolds(
  aux: RingPedersenParams,
  z: bigint,
  zPrime: bigint,
  A: bigint,
  B: bigint,
  e: bigint,
  options: VerifyOptions | undefined,
): boolean {
  const sk = ownKeyOf(options, aux.N);
  if (sk) return equalByCrt(sk, "N", [[aux.s, z], [aux.t, zPrime]], [[A, 1n], [B, e]]);
  return commit(aux, z, zPrime) === (A * modPow(B, e, aux.N)) % aux.N;
}

/**
 * r * rho^e mod N for secret r, rho and a public challenge e (the responses z2 of Figures 14
 * and 25, w and w_y of Figure 15). For e < 0 the inverse of rho is taken through a random mask
 * u, (rho u)^-1 u, so the variable-time inversion only sees a uniform unit.
 */
export function maskNonce(r: bigint, rho: bigint, e: bigint, N: bigint, rng: RandomSource): bigint {
  let base = rho;
  if (e < 0n) {
    const u = randomUnit(N, rng);
    base = (modInv((rho * u) % N, N) * u) % N;
  }
  return (r * modPowSecret(base, e < 0n ? -e : e, N)) % N;
}

/** A uniform integer in the symmetric interval [-bound, bound]. */
export function sampleSigned(bound: bigint, rng: RandomSource): bigint {
  return randomInRange(-bound, bound, rng);
}
