/**
 * Pi-enc: Paillier encryption in range (CGGMP21, ePrint 2021/060, Section 6.1, Figure 14; the
 * Rust reference's `spec/main.tex`, "Pi-enc: Paillier Encryption in Range").
 *
 * Statement: K = Enc_N0(k; rho) with k in +-2^l. The proof convinces the verifier that
 * k lies in +-2^(l+eps). It is made under the VERIFIER's ring-Pedersen parameters
 * (N-hat, s, t), which the statement carries (`aux`). Used in presigning round 1.
 *
 * This module also exports the checks and helpers that Pi-aff-g and Pi-log* share with it
 * (ring-Pedersen statement checks, the mask bound, public Paillier encryption, nonce masking).
 *
 * @example
 * ```ts ignore
 * const proof = piEnc.prove(ctx, { N0, K, aux }, { k, rho, sk });
 * piEnc.verify(ctx, { N0, K, aux }, piEnc.decode(JSON.parse(JSON.stringify(piEnc.encode(proof)))));
 * ```
 * @module
 */
import { expectFields, parseHexInt, parseHexSigned, toHexInt, toHexSigned } from "../bytes.ts";
import { ProofError } from "../errors.ts";
import {
  bitLength,
  gcd,
  mod,
  modInv,
  modPow,
  modPowSecret,
  randomInRange,
  randomSigned,
  type RandomSource,
  randomUnit,
  webCryptoRandom,
} from "../math/mod.ts";
import { PaillierPublicKey, type PaillierSecretKey } from "../paillier.ts";
import {
  CIPHERTEXT_BYTES,
  ELL,
  EPSILON,
  MODULUS_BYTES,
  MODULUS_MAX_BITS,
  MODULUS_MIN_BITS,
  type Point,
} from "../params.ts";
import { commit, commitSecret, type RingPedersenParams } from "../ring_pedersen.ts";
import type { Transcript } from "../transcript.ts";
import {
  assertBits,
  assertUnit,
  decodeProof,
  type ProofContext,
  transcriptFor,
} from "./_common.ts";

// ---------------------------------------------------------------------------------------------
// Pieces shared with pi_aff_g.ts and pi_log_star.ts.

/**
 * Q: the challenge space +-Q of Pi-enc, Pi-aff-g and Pi-log* (spec "Security Parameters": the
 * level L = (kappa, eps, l, l', m, Q) with Q = 2^m = 2^128, as the reference's SecurityLevel128).
 * Not the curve order q: completeness needs eps >= 8 + log2 Q, and eps = 230 < 8 + 256, so with
 * e in +-q an honest z1 = alpha + e k (|e k| up to 2^512) would overflow +-2^(l+eps).
 */
export const CHALLENGE_Q: bigint = 1n << 128n;

/** l + eps: bound in bits of z1 (Figure 14 step 4, Figure 15 step 4, Figure 25 step 4). */
export const Z1_BITS: number = ELL + EPSILON;
/** Wire cap of a signed integer in +-2^bits: the bytes of 2^bits itself. */
export function bitsCapBytes(bits: number): number {
  return Math.ceil((bits + 1) / 8);
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

/** |x| <= bound, else an out-of-range ProofError naming the field. */
export function assertAbsAtMost(proof: string, field: string, x: bigint, bound: bigint): void {
  if (x > bound || x < -bound) {
    throw new ProofError(proof, "out-of-range", `field "${field}" exceeds its bound`);
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
  const { N, s, t } = aux;
  if (s <= 1n || t <= 1n || s >= N || t >= N || s === t || gcd(s, N) !== 1n || gcd(t, N) !== 1n) {
    throw new ProofError(proof, "out-of-range", "ring-Pedersen s, t are not distinct units != 1");
  }
}

/** Absorbs the ring-Pedersen parameters (N-hat, s, t). */
export function appendRingPedersen(tr: Transcript, aux: RingPedersenParams): void {
  tr.appendUint("Nhat", aux.N).appendUint("s", aux.s).appendUint("t", aux.t);
}

/** Absorbs a point in its 33-byte compressed form. */
export function appendPoint(tr: Transcript, label: string, P: Point): void {
  tr.appendBytes(label, P.toBytes(true));
}

/** Enc_N(m; rho) = (1 + (m mod N) N) rho^N mod N^2 for public m and rho (verifier side). */
export function encryptPublic(N: bigint, m: bigint, rho: bigint): bigint {
  const N2 = N * N;
  return ((1n + mod(m, N) * N) * modPow(rho, N, N2)) % N2;
}

/** Enc_N(m; rho) by the prover: CRT when it holds the key of N, the public path otherwise. */
export function encryptSecret(
  N: bigint,
  m: bigint,
  rho: bigint,
  sk: PaillierSecretKey | undefined,
): bigint {
  return sk ? sk.encryptWithNonce(m, rho) : new PaillierPublicKey(N).encryptWithNonce(m, rho);
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

/** A verification equation that does not hold, as a `verification-failed` ProofError. */
export function equationFailed(proof: string, which: string): ProofError {
  return new ProofError(proof, "verification-failed", `equation ${which} does not hold`);
}

// ---------------------------------------------------------------------------------------------
// Pi-enc.

const PROOF = "pi-enc";

/** Common input of Pi-enc (Figure 14: N0, K; spec: N_i, K, R_j). */
export interface Statement {
  /** N0: the prover's Paillier modulus. */
  readonly N0: bigint;
  /** K = Enc_N0(k; rho), in Z*_{N0^2}. */
  readonly K: bigint;
  /** The VERIFIER's ring-Pedersen parameters (N-hat, s, t) (spec: auxiliary data R_j). */
  readonly aux: RingPedersenParams;
}

/** Secret input of Pi-enc (Figure 14: k, rho). */
export interface Witness {
  /** k in +-2^l. */
  readonly k: bigint;
  /** rho in Z*_N0 with K = Enc_N0(k; rho). */
  readonly rho: bigint;
  /** The prover's Paillier secret key of N0, when held: encryption by CRT (spec: enc^crt). */
  readonly sk?: PaillierSecretKey;
}

/** A Pi-enc proof: first message (S, A, C) and response (z1, z2, z3) (Figure 14, steps 1, 3). */
export interface Proof {
  /** S = s^k t^mu mod N-hat (step 1). */
  readonly S: bigint;
  /** A = Enc_N0(alpha; r) (step 1). */
  readonly A: bigint;
  /** C = s^alpha t^gamma mod N-hat (step 1). */
  readonly C: bigint;
  /** z1 = alpha + e k (step 3), in +-2^(l+eps). */
  readonly z1: bigint;
  /** z2 = r rho^e mod N0 (step 3). */
  readonly z2: bigint;
  /** z3 = gamma + e mu (step 3). */
  readonly z3: bigint;
}

/** Wire form: lowercase hex, "-" for negatives. */
export type EncodedProof = { readonly [F in keyof Proof]: string };

const FIELDS = ["S", "A", "C", "z1", "z2", "z3"] as const;

/**
 * The Fiat-Shamir challenge e in +-Q, bound to the context, the whole statement and the first
 * message (spec: e = challenge^L(state, R_j, (N_i, K), (S, A, C))).
 */
export function challenge(
  ctx: ProofContext,
  statement: Statement,
  first: Pick<Proof, "S" | "A" | "C">,
): bigint {
  const tr = transcriptFor(PROOF, ctx);
  tr.appendUint("ell", BigInt(ELL)).appendUint("epsilon", BigInt(EPSILON));
  tr.appendUint("Q", CHALLENGE_Q);
  tr.appendUint("N0", statement.N0).appendUint("K", statement.K);
  appendRingPedersen(tr, statement.aux);
  tr.appendUint("S", first.S).appendUint("A", first.A).appendUint("C", first.C);
  return tr.challengeSigned("e", CHALLENGE_Q);
}

/**
 * Proves that K encrypts k in range under N0 (Figure 14 with the Fiat-Shamir challenge).
 * The witness is not range-checked: a k outside +-2^l yields a proof the verifier rejects.
 * @param ctx session id and prover index the proof is bound to.
 * @param statement (N0, K) and the verifier's ring-Pedersen parameters.
 * @param witness (k, rho), optionally the secret key of N0 for CRT.
 * @param rng random source (default Web Crypto).
 * @returns the proof.
 * @throws {RangeError} when `witness.sk` is not the key of N0.
 */
export function prove(
  ctx: ProofContext,
  statement: Statement,
  witness: Witness,
  rng: RandomSource = webCryptoRandom,
): Proof {
  const { N0, aux } = statement;
  const { k, rho, sk } = witness;
  if (sk && sk.N !== N0) throw new RangeError("pi-enc: the secret key is not the key of N0");
  // Step 1: alpha <- +-2^(l+eps), mu <- +-2^l N-hat, r <- Z*_N0, gamma <- +-2^(l+eps) N-hat.
  const alpha = randomSigned(Z1_BITS, rng);
  const mu = sampleSigned(aux.N << BigInt(ELL), rng);
  const r = randomUnit(N0, rng);
  const gamma = sampleSigned(aux.N << BigInt(Z1_BITS), rng);
  // Step 1: S = s^k t^mu, A = Enc_N0(alpha; r), C = s^alpha t^gamma.
  const S = commitSecret(aux, k, mu);
  const A = encryptSecret(N0, alpha, r, sk);
  const C = commitSecret(aux, alpha, gamma);
  // Step 2: e from the transcript.
  const e = challenge(ctx, statement, { S, A, C });
  // Step 3: z1 = alpha + e k, z2 = r rho^e mod N0, z3 = gamma + e mu.
  return { S, A, C, z1: alpha + e * k, z2: maskNonce(r, rho, e, N0, rng), z3: gamma + e * mu };
}

/**
 * Checks every value of the statement and the proof before any arithmetic: moduli shape,
 * ring-Pedersen parameters, K and A units mod N0^2, S and C units mod N-hat, z1 in
 * +-2^(l+eps) (Figure 14 step 4), z2 in Z*_N0, |z3| within `maskBound`.
 * @throws {ProofError} "bad-modulus" or "out-of-range".
 */
export function validate(statement: Statement, proof: Proof): void {
  const { N0, K, aux } = statement;
  assertModulusShape(PROOF, "N0", N0);
  assertRingPedersen(PROOF, aux);
  const N2 = N0 * N0;
  assertUnit(PROOF, "K", K, N2, N0);
  assertBits(PROOF, "z1", proof.z1, Z1_BITS);
  assertAbsAtMost(PROOF, "z3", proof.z3, maskBound(aux.N));
  assertUnit(PROOF, "S", proof.S, aux.N, aux.N);
  assertUnit(PROOF, "A", proof.A, N2, N0);
  assertUnit(PROOF, "C", proof.C, aux.N, aux.N);
  assertUnit(PROOF, "z2", proof.z2, N0, N0);
}

/**
 * Verifies a Pi-enc proof (Figure 14, step 4).
 * @throws {ProofError} on any failure: "bad-modulus", "out-of-range" or "verification-failed".
 */
export function verify(ctx: ProofContext, statement: Statement, proof: Proof): void {
  validate(statement, proof);
  const { N0, K, aux } = statement;
  const { S, A, C, z1, z2, z3 } = proof;
  const N2 = N0 * N0;
  const e = challenge(ctx, statement, proof);
  // Step 4: A (+) (e (.) K) = Enc_N0(z1; z2) mod N0^2.
  if ((A * modPow(K, e, N2)) % N2 !== encryptPublic(N0, z1, z2)) throw equationFailed(PROOF, "1");
  // Step 4: s^z1 t^z3 = C S^e mod N-hat.
  if (commit(aux, z1, z3) !== (C * modPow(S, e, aux.N)) % aux.N) throw equationFailed(PROOF, "2");
}

/** Wire form of a proof (JSON-safe). */
export function encode(proof: Proof): EncodedProof {
  return {
    S: toHexInt(proof.S),
    A: toHexInt(proof.A),
    C: toHexInt(proof.C),
    z1: toHexSigned(proof.z1),
    z2: toHexInt(proof.z2),
    z3: toHexSigned(proof.z3),
  };
}

/**
 * Decodes a received proof: exactly the fields of `Proof`, canonical hex, each integer capped
 * by length before it is parsed. Values are range-checked by `verify`.
 * @throws {ProofError} "malformed".
 */
export function decode(json: unknown): Proof {
  return decodeProof(PROOF, () => {
    const o = expectFields<EncodedProof>(json, FIELDS);
    return {
      S: parseHexInt(o.S, MODULUS_BYTES, 'field "S"'),
      A: parseHexInt(o.A, CIPHERTEXT_BYTES, 'field "A"'),
      C: parseHexInt(o.C, MODULUS_BYTES, 'field "C"'),
      z1: parseHexSigned(o.z1, bitsCapBytes(Z1_BITS), 'field "z1"'),
      z2: parseHexInt(o.z2, MODULUS_BYTES, 'field "z2"'),
      z3: parseHexSigned(o.z3, MASK_MAX_BYTES, 'field "z3"'),
    };
  });
}
