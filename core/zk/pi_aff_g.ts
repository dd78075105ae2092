/**
 * Pi-aff-g: Paillier affine operation with group commitment, in range (CGGMP21, ePrint
 * 2021/060, Section 6.2, Figure 15; the Rust reference's `spec/main.tex`, "Pi-aff-g: Paillier
 * Affine Operation with Group Commitment in Range").
 *
 * Statement: D = (x (.) C) (+) Enc_N0(y; rho), Y = Enc_N1(y; rho_y) and X = x * G, with x in
 * +-2^l and y in +-2^l'. N0 is the verifier's Paillier modulus (C is its ciphertext, K_j in
 * presigning), N1 the prover's. The proof convinces the verifier that x lies in +-2^(l+eps) and
 * y in +-2^(l'+eps). It is made under the VERIFIER's ring-Pedersen parameters (N-hat, s, t)
 * (`aux`). Used in presigning round 2 (MtA of gamma_i k_j and x_i k_j).
 *
 * @example
 * ```ts
 * import * as piAffG from "./pi_aff_g.ts";
 * import { randomBelow, randomSigned, randomUnit } from "../math/mod.ts";
 * import type { PaillierSecretKey } from "../paillier.ts";
 * import { ELL_PRIME, Point, Q } from "../params.ts";
 * import type { RingPedersenParams } from "../ring_pedersen.ts";
 * // The verifier's Paillier key (N0) and ring-Pedersen parameters, the prover's key (N1).
 * export function proveAndVerify(
 *   verifierKey: PaillierSecretKey,
 *   aux: RingPedersenParams,
 *   sk: PaillierSecretKey,
 * ) {
 *   const ctx = { sid: new Uint8Array(32).fill(7), prover: 1 };
 *   const [C] = verifierKey.encrypt(randomBelow(Q)); // the verifier's K_j
 *   // The prover: D = x (.) C (+) Enc_N0(y; rho), Y = Enc_N1(y; rho_y), X = x G.
 *   const pk0 = verifierKey.publicKey;
 *   const [x, y, rho] = [randomBelow(Q), randomSigned(ELL_PRIME), randomUnit(pk0.N)];
 *   const D = pk0.add(pk0.mul(C, x), pk0.encryptWithNonce(y, rho));
 *   const [Y, rhoY] = sk.encrypt(y);
 *   const X = Point.BASE.multiply(x);
 *   const statement = { N0: pk0.N, N1: sk.N, C, D, Y, X, aux };
 *   const proof = piAffG.prove(ctx, statement, { x, y, rho, rhoY, sk });
 *   // The verifier, by CRT with its own key (the public path gives the same answer):
 *   piAffG.verify(ctx, statement, piAffG.decode(piAffG.encode(proof)), { verifierKey });
 * }
 * ```
 * @module
 */
import {
  decodeNonZeroPoint,
  encodePoint,
  expectFields,
  parseHexInt,
  parseHexSigned,
  toHexInt,
  toHexSigned,
} from "../bytes.ts";
import {
  mod,
  modPow,
  modPowSecret,
  randomSigned,
  type RandomSource,
  webCryptoRandom,
} from "../math/mod.ts";
import type { PaillierSecretKey } from "../paillier.ts";
import { CIPHERTEXT_BYTES, ELL, ELL_PRIME, EPSILON, MODULUS_BYTES, Point, Q } from "../params.ts";
import { commitSecret, type RingPedersenParams } from "../ring_pedersen.ts";
import {
  appendPoint,
  appendRingPedersen,
  assertAbsAtMost,
  assertBits,
  assertModulusShape,
  assertRingPedersen,
  assertUnit,
  assertValidPoint,
  bitsCapBytes,
  CHALLENGE_Q,
  commitmentEquationHolds,
  decodeProof,
  encryptFresh,
  encryptPublic,
  equationFailed,
  MASK_MAX_BYTES,
  maskBound,
  maskNonce,
  ownKeyOf,
  paillierEquationHolds,
  type ProofContext,
  type ProveOptions,
  randomizersOf,
  sampleSigned,
  transcriptFor,
  type VerifyOptions,
  Z1_BITS,
} from "./_common.ts";
import { equalByCrt } from "./_crt_pow.ts";

export type { ProveOptions, VerifyOptions } from "./_common.ts";

const PROOF = "pi-aff-g";

/** l' + eps: bound in bits of z2 (Figure 15 step 4, "z2 in +-2^(l'+eps)"). */
export const Z2_BITS: number = ELL_PRIME + EPSILON;

/** Common input of Pi-aff-g (Figure 15: N0, N1, C, D, Y, X; spec: N_j, N_i, ..., R_j). */
export interface Statement {
  /** N0: the verifier's Paillier modulus, of C and D. */
  readonly N0: bigint;
  /** N1: the prover's Paillier modulus, of Y. */
  readonly N1: bigint;
  /** C in Z*_{N0^2}: the verifier's ciphertext (K_j in presigning). */
  readonly C: bigint;
  /** D = (x (.) C) (+) Enc_N0(y; rho), in Z*_{N0^2}. */
  readonly D: bigint;
  /** Y = Enc_N1(y; rho_y), in Z*_{N1^2}. */
  readonly Y: bigint;
  /** X = x * G. */
  readonly X: Point;
  /** The VERIFIER's ring-Pedersen parameters (N-hat, s, t) (spec: auxiliary data R_j). */
  readonly aux: RingPedersenParams;
}

/** Secret input of Pi-aff-g (Figure 15: x, y, rho, rho_y). */
export interface Witness {
  /** x in +-2^l. */
  readonly x: bigint;
  /** y in +-2^l'. */
  readonly y: bigint;
  /** rho in Z*_N0, the nonce of Enc_N0(y; rho) inside D. */
  readonly rho: bigint;
  /** rho_y in Z*_N1 with Y = Enc_N1(y; rho_y). */
  readonly rhoY: bigint;
  /** The prover's Paillier secret key of N1, when held: encryption by CRT (spec: enc^crt). */
  readonly sk?: PaillierSecretKey;
}

/**
 * A Pi-aff-g proof: first message (A, B_x, B_y, E, S, F, T) and response
 * (z1, z2, z3, z4, w, w_y) (Figure 15, steps 1 and 3).
 */
export interface Proof {
  /** A = (alpha (.) C) (+) Enc_N0(beta; r) (step 1). */
  readonly A: bigint;
  /** B_x = alpha * G (step 1). */
  readonly Bx: Point;
  /** B_y = Enc_N1(beta; r_y) (step 1). */
  readonly By: bigint;
  /** E = s^alpha t^gamma mod N-hat (step 1). */
  readonly E: bigint;
  /** S = s^x t^m mod N-hat (step 1). */
  readonly S: bigint;
  /** F = s^beta t^delta mod N-hat (step 1). */
  readonly F: bigint;
  /** T = s^y t^mu mod N-hat (step 1). */
  readonly T: bigint;
  /** z1 = alpha + e x (step 3), in +-2^(l+eps). */
  readonly z1: bigint;
  /** z2 = beta + e y (step 3), in +-2^(l'+eps). */
  readonly z2: bigint;
  /** z3 = gamma + e m (step 3). */
  readonly z3: bigint;
  /** z4 = delta + e mu (step 3). */
  readonly z4: bigint;
  /** w = r rho^e mod N0 (step 3). */
  readonly w: bigint;
  /** w_y = r_y rho_y^e mod N1 (step 3). */
  readonly wy: bigint;
}

/** Wire form: lowercase hex, "-" for negatives, points compressed. */
export type EncodedProof = { readonly [F in keyof Proof]: string };

const FIELDS = [
  "A",
  "Bx",
  "By",
  "E",
  "S",
  "F",
  "T",
  "z1",
  "z2",
  "z3",
  "z4",
  "w",
  "wy",
] as const;

/**
 * The Fiat-Shamir challenge e in +-Q, bound to the context, the whole statement (with the
 * generator G) and the first message (spec: e = challenge^L(state, R_j, (N_j, N_i, C, D, Y, X),
 * (A, B_x, B_y, E, S, F, T))).
 */
export function challenge(
  ctx: ProofContext,
  statement: Statement,
  first: Pick<Proof, "A" | "Bx" | "By" | "E" | "S" | "F" | "T">,
): bigint {
  const tr = transcriptFor(PROOF, ctx);
  tr.appendString("curve", "secp256k1");
  appendPoint(tr, "G", Point.BASE);
  tr.appendUint("ell", BigInt(ELL)).appendUint("ell'", BigInt(ELL_PRIME));
  tr.appendUint("epsilon", BigInt(EPSILON)).appendUint("Q", CHALLENGE_Q);
  tr.appendUint("N0", statement.N0).appendUint("N1", statement.N1);
  tr.appendUint("C", statement.C).appendUint("D", statement.D).appendUint("Y", statement.Y);
  appendPoint(tr, "X", statement.X);
  appendRingPedersen(tr, statement.aux);
  tr.appendUint("A", first.A);
  appendPoint(tr, "Bx", first.Bx);
  tr.appendUint("By", first.By).appendUint("E", first.E).appendUint("S", first.S);
  tr.appendUint("F", first.F).appendUint("T", first.T);
  return tr.challengeSigned("e", CHALLENGE_Q);
}

/**
 * Proves the affine operation D = x (.) C (+) Enc_N0(y), with Y = Enc_N1(y) and X = x * G, in
 * range (Figure 15 with the Fiat-Shamir challenge). The witness is not range-checked: an x or
 * y outside its range yields a proof the verifier rejects.
 * @param ctx session id and prover index the proof is bound to.
 * @param statement (N0, N1, C, D, Y, X) and the verifier's ring-Pedersen parameters.
 * @param witness (x, y, rho, rho_y), optionally the secret key of N1 for CRT.
 * @param rng random source (default Web Crypto).
 * @param options where the randomizers of A (under N0) and B_y (under N1) come from (default:
 *   drawn from `rng`).
 * @returns the proof.
 * @throws {RangeError} when `witness.sk` is not the key of N1.
 */
export function prove(
  ctx: ProofContext,
  statement: Statement,
  witness: Witness,
  rng: RandomSource = webCryptoRandom,
  options?: ProveOptions,
): Proof {
  const { N0, N1, C, aux } = statement;
  const { x, y, rho, rhoY, sk } = witness;
  if (sk && sk.N !== N1) throw new RangeError("pi-aff-g: the secret key is not the key of N1");
  const N0sq = N0 * N0;
  // Step 1: alpha <- +-2^(l+eps) (alpha = 0 mod q, probability 2^-256, is redrawn so that B_x
  // has an encoding), beta <- +-2^(l'+eps), r <- Z*_N0, r_y <- Z*_N1,
  // gamma, delta <- +-2^(l+eps) N-hat, m, mu <- +-2^l N-hat.
  let alpha = randomSigned(Z1_BITS, rng);
  while (mod(alpha, Q) === 0n) alpha = randomSigned(Z1_BITS, rng);
  // (r and r_y come with their N-th powers from the randomizer source.)
  const beta = randomSigned(Z2_BITS, rng);
  const source = randomizersOf(options);
  const [encBeta, r] = encryptFresh(N0, beta, undefined, source, rng);
  const [By, rY] = encryptFresh(N1, beta, sk, source, rng);
  const gamma = sampleSigned(aux.N << BigInt(Z1_BITS), rng);
  const delta = sampleSigned(aux.N << BigInt(Z1_BITS), rng);
  const m = sampleSigned(aux.N << BigInt(ELL), rng);
  const mu = sampleSigned(aux.N << BigInt(ELL), rng);
  // Step 1: A = (alpha (.) C) (+) Enc_N0(beta; r), B_x = alpha G, B_y = Enc_N1(beta; r_y),
  // E = s^alpha t^gamma, S = s^x t^m, F = s^beta t^delta, T = s^y t^mu.
  const A = (modPowSecret(C, alpha, N0sq) * encBeta) % N0sq;
  const Bx = Point.BASE.multiply(mod(alpha, Q));
  const E = commitSecret(aux, alpha, gamma);
  const S = commitSecret(aux, x, m);
  const F = commitSecret(aux, beta, delta);
  const T = commitSecret(aux, y, mu);
  // Step 2: e from the transcript.
  const e = challenge(ctx, statement, { A, Bx, By, E, S, F, T });
  // Step 3: z1 = alpha + e x, z2 = beta + e y, z3 = gamma + e m, z4 = delta + e mu,
  // w = r rho^e mod N0, w_y = r_y rho_y^e mod N1.
  return {
    A,
    Bx,
    By,
    E,
    S,
    F,
    T,
    z1: alpha + e * x,
    z2: beta + e * y,
    z3: gamma + e * m,
    z4: delta + e * mu,
    w: maskNonce(r, rho, e, N0, rng),
    wy: maskNonce(rY, rhoY, e, N1, rng),
  };
}

/**
 * Checks every value of the statement and the proof before any arithmetic: moduli shape,
 * ring-Pedersen parameters, C, D, A units mod N0^2, Y, B_y units mod N1^2, E, S, F, T units mod
 * N-hat, X and B_x valid non-identity points, z1 in +-2^(l+eps) and z2 in +-2^(l'+eps)
 * (Figure 15 step 4), |z3|, |z4| within `maskBound`, w in Z*_N0, w_y in Z*_N1.
 * @throws {ProofError} "bad-modulus" or "out-of-range".
 */
export function validate(statement: Statement, proof: Proof): void {
  const { N0, N1, C, D, Y, X, aux } = statement;
  assertModulusShape(PROOF, "N0", N0);
  assertModulusShape(PROOF, "N1", N1);
  assertRingPedersen(PROOF, aux);
  const N0sq = N0 * N0;
  const N1sq = N1 * N1;
  assertUnit(PROOF, "C", C, N0sq, N0);
  assertUnit(PROOF, "D", D, N0sq, N0);
  assertUnit(PROOF, "Y", Y, N1sq, N1);
  assertValidPoint(PROOF, "X", X);
  assertBits(PROOF, "z1", proof.z1, Z1_BITS);
  assertBits(PROOF, "z2", proof.z2, Z2_BITS);
  const bound = maskBound(aux.N);
  assertAbsAtMost(PROOF, "z3", proof.z3, bound);
  assertAbsAtMost(PROOF, "z4", proof.z4, bound);
  assertUnit(PROOF, "A", proof.A, N0sq, N0);
  assertValidPoint(PROOF, "Bx", proof.Bx);
  assertUnit(PROOF, "By", proof.By, N1sq, N1);
  for (const f of ["E", "S", "F", "T"] as const) assertUnit(PROOF, f, proof[f], aux.N, aux.N);
  assertUnit(PROOF, "w", proof.w, N0, N0);
  assertUnit(PROOF, "wy", proof.wy, N1, N1);
}

/**
 * Verifies a Pi-aff-g proof (Figure 15, step 4).
 * @param options the verifier's own key: the equations modulo its N0^2 (C and D are its
 *   ciphertexts) and its N-hat are then computed by CRT (`VerifyOptions`).
 * @throws {ProofError} on any failure: "bad-modulus", "out-of-range" or "verification-failed".
 */
export function verify(
  ctx: ProofContext,
  statement: Statement,
  proof: Proof,
  options?: VerifyOptions,
): void {
  validate(statement, proof);
  const { N0, N1, C, D, Y, X, aux } = statement;
  const { A, Bx, By, E, S, F, T, z1, z2, z3, z4, w, wy } = proof;
  const N0sq = N0 * N0;
  const e = challenge(ctx, statement, proof);
  // Step 4: (z1 (.) C) (+) Enc_N0(z2; w) = C^z1 (1 + z2 N0) w^N0 = A (+) (e (.) D) mod N0^2.
  const own0 = ownKeyOf(options, N0);
  const ok1 = own0
    ? equalByCrt(own0, "N2", [[C, z1], [1n + mod(z2, N0) * N0, 1n], [w, N0]], [[A, 1n], [D, e]])
    : (modPow(C, z1, N0sq) * encryptPublic(N0, z2, w)) % N0sq === (A * modPow(D, e, N0sq)) % N0sq;
  if (!ok1) throw equationFailed(PROOF, "equation 1");
  // Step 4: z1 * G = B_x + e * X.
  if (!Point.BASE.multiplyUnsafe(mod(z1, Q)).equals(Bx.add(X.multiplyUnsafe(mod(e, Q))))) {
    throw equationFailed(PROOF, "equation 2");
  }
  // Step 4: Enc_N1(z2; w_y) = B_y (+) (e (.) Y) mod N1^2.
  if (!paillierEquationHolds(N1, z2, wy, By, Y, e, options)) {
    throw equationFailed(PROOF, "equation 3");
  }
  // Step 4: s^z1 t^z3 = E S^e mod N-hat, s^z2 t^z4 = F T^e mod N-hat.
  if (!commitmentEquationHolds(aux, z1, z3, E, S, e, options)) {
    throw equationFailed(PROOF, "equation 4");
  }
  if (!commitmentEquationHolds(aux, z2, z4, F, T, e, options)) {
    throw equationFailed(PROOF, "equation 5");
  }
}

/** Wire form of a proof (JSON-safe). */
export function encode(proof: Proof): EncodedProof {
  return {
    A: toHexInt(proof.A),
    Bx: encodePoint(proof.Bx),
    By: toHexInt(proof.By),
    E: toHexInt(proof.E),
    S: toHexInt(proof.S),
    F: toHexInt(proof.F),
    T: toHexInt(proof.T),
    z1: toHexSigned(proof.z1),
    z2: toHexSigned(proof.z2),
    z3: toHexSigned(proof.z3),
    z4: toHexSigned(proof.z4),
    w: toHexInt(proof.w),
    wy: toHexInt(proof.wy),
  };
}

/**
 * Decodes a received proof: exactly the fields of `Proof`, canonical hex, compressed points
 * (identity and off-curve refused), each integer capped by length before it is parsed.
 * @throws {ProofError} "malformed".
 */
export function decode(json: unknown): Proof {
  return decodeProof(PROOF, () => {
    const o = expectFields<EncodedProof>(json, FIELDS);
    return {
      A: parseHexInt(o.A, CIPHERTEXT_BYTES, 'field "A"'),
      Bx: decodeNonZeroPoint(o.Bx, 'field "Bx"'),
      By: parseHexInt(o.By, CIPHERTEXT_BYTES, 'field "By"'),
      E: parseHexInt(o.E, MODULUS_BYTES, 'field "E"'),
      S: parseHexInt(o.S, MODULUS_BYTES, 'field "S"'),
      F: parseHexInt(o.F, MODULUS_BYTES, 'field "F"'),
      T: parseHexInt(o.T, MODULUS_BYTES, 'field "T"'),
      z1: parseHexSigned(o.z1, bitsCapBytes(Z1_BITS), 'field "z1"'),
      z2: parseHexSigned(o.z2, bitsCapBytes(Z2_BITS), 'field "z2"'),
      z3: parseHexSigned(o.z3, MASK_MAX_BYTES, 'field "z3"'),
      z4: parseHexSigned(o.z4, MASK_MAX_BYTES, 'field "z4"'),
      w: parseHexInt(o.w, MODULUS_BYTES, 'field "w"'),
      wy: parseHexInt(o.wy, MODULUS_BYTES, 'field "wy"'),
    };
  });
}
