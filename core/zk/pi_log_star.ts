/**
 * Pi-log*: knowledge of exponent vs Paillier encryption, in range (CGGMP21, ePrint 2021/060,
 * Appendix C.2, Figure 25; the Rust reference's `spec/main.tex`, "Pi-log*: Group Element vs.
 * Paillier Encryption in Range").
 *
 * Statement: C = Enc_N0(x; rho) and X = x * B for a public base point B, with x in +-2^l. The
 * proof convinces the verifier that x lies in +-2^(l+eps). It is made under the VERIFIER's
 * ring-Pedersen parameters (N-hat, s, t) (`aux`). Used in presigning round 2 (B = G, Gamma_i)
 * and round 3 (B = Gamma, Delta_i = k_i * Gamma).
 *
 * @example
 * ```ts
 * import * as piLogStar from "./pi_log_star.ts";
 * import { randomBelow } from "../math/mod.ts";
 * import type { PaillierSecretKey } from "../paillier.ts";
 * import { Point, Q } from "../params.ts";
 * import type { RingPedersenParams } from "../ring_pedersen.ts";
 * // The prover's Paillier key and the verifier's ring-Pedersen parameters (from aux info).
 * export function proveAndVerify(sk: PaillierSecretKey, aux: RingPedersenParams) {
 *   const ctx = { sid: new Uint8Array(32).fill(7), prover: 1 };
 *   const x = randomBelow(Q);
 *   const [C, rho] = sk.encrypt(x);
 *   const B = Point.BASE;
 *   const statement = { N0: sk.N, C, X: B.multiply(x), B, aux };
 *   const proof = piLogStar.prove(ctx, statement, { x, rho, sk });
 *   piLogStar.verify(ctx, statement, piLogStar.decode(piLogStar.encode(proof)));
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
import { mod, randomSigned, type RandomSource, webCryptoRandom } from "../math/mod.ts";
import type { PaillierSecretKey } from "../paillier.ts";
import { CIPHERTEXT_BYTES, ELL, EPSILON, MODULUS_BYTES, type Point, Q } from "../params.ts";
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
  equationFailed,
  MASK_MAX_BYTES,
  maskBound,
  maskNonce,
  paillierEquationHolds,
  type ProofContext,
  type ProveOptions,
  randomizersOf,
  sampleSigned,
  transcriptFor,
  type VerifyOptions,
  Z1_BITS,
} from "./_common.ts";

export type { ProveOptions, VerifyOptions } from "./_common.ts";

const PROOF = "pi-log*";

/** Common input of Pi-log* (Figure 25: N0, C, X, g; spec: N_i, C, X, B, R_j). */
export interface Statement {
  /** N0: the prover's Paillier modulus. */
  readonly N0: bigint;
  /** C = Enc_N0(x; rho), in Z*_{N0^2}. */
  readonly C: bigint;
  /** X = x * B. */
  readonly X: Point;
  /** The base point B (the paper's g): G, or Gamma in presigning round 3. */
  readonly B: Point;
  /** The VERIFIER's ring-Pedersen parameters (N-hat, s, t) (spec: auxiliary data R_j). */
  readonly aux: RingPedersenParams;
}

/** Secret input of Pi-log* (Figure 25: x, rho). */
export interface Witness {
  /** x in +-2^l. */
  readonly x: bigint;
  /** rho in Z*_N0 with C = Enc_N0(x; rho). */
  readonly rho: bigint;
  /** The prover's Paillier secret key of N0, when held: encryption by CRT (spec: enc^crt). */
  readonly sk?: PaillierSecretKey;
}

/** A Pi-log* proof: first message (S, A, Y, D), response (z1, z2, z3) (Figure 25, steps 1, 3). */
export interface Proof {
  /** S = s^x t^mu mod N-hat (step 1). */
  readonly S: bigint;
  /** A = Enc_N0(alpha; r) (step 1). */
  readonly A: bigint;
  /** Y = alpha * B (step 1). */
  readonly Y: Point;
  /** D = s^alpha t^gamma mod N-hat (step 1). */
  readonly D: bigint;
  /** z1 = alpha + e x (step 3), in +-2^(l+eps). */
  readonly z1: bigint;
  /** z2 = r rho^e mod N0 (step 3). */
  readonly z2: bigint;
  /** z3 = gamma + e mu (step 3). */
  readonly z3: bigint;
}

/** Wire form: lowercase hex, "-" for negatives, points compressed. */
export type EncodedProof = { readonly [F in keyof Proof]: string };

const FIELDS = ["S", "A", "Y", "D", "z1", "z2", "z3"] as const;

/**
 * The Fiat-Shamir challenge e in +-Q, bound to the context, the whole statement and the first
 * message (spec: e = challenge^{E,L}(state, R_j, (N_i, C, X, B), (S, A, Y, D))).
 */
export function challenge(
  ctx: ProofContext,
  statement: Statement,
  first: Pick<Proof, "S" | "A" | "Y" | "D">,
): bigint {
  const tr = transcriptFor(PROOF, ctx);
  tr.appendString("curve", "secp256k1");
  tr.appendUint("ell", BigInt(ELL)).appendUint("epsilon", BigInt(EPSILON));
  tr.appendUint("Q", CHALLENGE_Q);
  tr.appendUint("N0", statement.N0).appendUint("C", statement.C);
  appendPoint(tr, "X", statement.X);
  appendPoint(tr, "B", statement.B);
  appendRingPedersen(tr, statement.aux);
  tr.appendUint("S", first.S).appendUint("A", first.A);
  appendPoint(tr, "Y", first.Y);
  tr.appendUint("D", first.D);
  return tr.challengeSigned("e", CHALLENGE_Q);
}

/**
 * Proves that C encrypts the discrete log of X to the base B, in range (Figure 25 with the
 * Fiat-Shamir challenge). The witness is not range-checked: an x outside +-2^l yields a proof
 * the verifier rejects.
 * @param ctx session id and prover index the proof is bound to.
 * @param statement (N0, C, X, B) and the verifier's ring-Pedersen parameters.
 * @param witness (x, rho), optionally the secret key of N0 for CRT.
 * @param rng random source (default Web Crypto).
 * @param options where the randomizer of A comes from (default: drawn from `rng`).
 * @returns the proof.
 * @throws {RangeError} when `witness.sk` is not the key of N0.
 */
export function prove(
  ctx: ProofContext,
  statement: Statement,
  witness: Witness,
  rng: RandomSource = webCryptoRandom,
  options?: ProveOptions,
): Proof {
  const { N0, B, aux } = statement;
  const { x, rho, sk } = witness;
  if (sk && sk.N !== N0) throw new RangeError("pi-log*: the secret key is not the key of N0");
  // Step 1: alpha <- +-2^(l+eps) (alpha = 0 mod q has probability 2^-256 and is redrawn so that
  // Y is a point with an encoding), mu <- +-2^l N-hat, r <- Z*_N0, gamma <- +-2^(l+eps) N-hat.
  let alpha = randomSigned(Z1_BITS, rng);
  while (mod(alpha, Q) === 0n) alpha = randomSigned(Z1_BITS, rng);
  // (r comes with r^N0 from the randomizer source: A = Enc_N0(alpha; r) = (1 + alpha N0) r^N0.)
  const mu = sampleSigned(aux.N << BigInt(ELL), rng);
  const [A, r] = encryptFresh(N0, alpha, sk, randomizersOf(options), rng);
  const gamma = sampleSigned(aux.N << BigInt(Z1_BITS), rng);
  // Step 1: S = s^x t^mu, A = Enc_N0(alpha; r), Y = alpha * B, D = s^alpha t^gamma.
  const S = commitSecret(aux, x, mu);
  const Y = B.multiply(mod(alpha, Q));
  const D = commitSecret(aux, alpha, gamma);
  // Step 2: e from the transcript.
  const e = challenge(ctx, statement, { S, A, Y, D });
  // Step 3: z1 = alpha + e x, z2 = r rho^e mod N0, z3 = gamma + e mu.
  return { S, A, Y, D, z1: alpha + e * x, z2: maskNonce(r, rho, e, N0, rng), z3: gamma + e * mu };
}

/**
 * Checks every value of the statement and the proof before any arithmetic: moduli shape,
 * ring-Pedersen parameters, C and A units mod N0^2, S and D units mod N-hat, X, B, Y valid
 * non-identity points, z1 in +-2^(l+eps) (Figure 25 step 4), z2 in Z*_N0, |z3| within
 * `maskBound`.
 * @throws {ProofError} "bad-modulus" or "out-of-range".
 */
export function validate(statement: Statement, proof: Proof): void {
  const { N0, C, X, B, aux } = statement;
  assertModulusShape(PROOF, "N0", N0);
  assertRingPedersen(PROOF, aux);
  const N2 = N0 * N0;
  assertUnit(PROOF, "C", C, N2, N0);
  assertValidPoint(PROOF, "X", X);
  assertValidPoint(PROOF, "B", B);
  assertBits(PROOF, "z1", proof.z1, Z1_BITS);
  assertAbsAtMost(PROOF, "z3", proof.z3, maskBound(aux.N));
  assertUnit(PROOF, "S", proof.S, aux.N, aux.N);
  assertUnit(PROOF, "A", proof.A, N2, N0);
  assertValidPoint(PROOF, "Y", proof.Y);
  assertUnit(PROOF, "D", proof.D, aux.N, aux.N);
  assertUnit(PROOF, "z2", proof.z2, N0, N0);
}

/**
 * Verifies a Pi-log* proof (Figure 25, step 4).
 * @param options the verifier's own key: the equation modulo its N-hat (and N0^2, were N0 its
 *   own) is then computed by CRT (`VerifyOptions`).
 * @throws {ProofError} on any failure: "bad-modulus", "out-of-range" or "verification-failed".
 */
export function verify(
  ctx: ProofContext,
  statement: Statement,
  proof: Proof,
  options?: VerifyOptions,
): void {
  validate(statement, proof);
  const { N0, C, X, B, aux } = statement;
  const { S, A, Y, D, z1, z2, z3 } = proof;
  const e = challenge(ctx, statement, proof);
  // Step 4: Enc_N0(z1; z2) = A (+) (e (.) C) mod N0^2.
  if (!paillierEquationHolds(N0, z1, z2, A, C, e, options)) {
    throw equationFailed(PROOF, "equation 1");
  }
  // Step 4: z1 * B = Y + e * X.
  if (!B.multiplyUnsafe(mod(z1, Q)).equals(Y.add(X.multiplyUnsafe(mod(e, Q))))) {
    throw equationFailed(PROOF, "equation 2");
  }
  // Step 4: s^z1 t^z3 = D S^e mod N-hat.
  if (!commitmentEquationHolds(aux, z1, z3, D, S, e, options)) {
    throw equationFailed(PROOF, "equation 3");
  }
}

/** Wire form of a proof (JSON-safe). */
export function encode(proof: Proof): EncodedProof {
  return {
    S: toHexInt(proof.S),
    A: toHexInt(proof.A),
    Y: encodePoint(proof.Y),
    D: toHexInt(proof.D),
    z1: toHexSigned(proof.z1),
    z2: toHexInt(proof.z2),
    z3: toHexSigned(proof.z3),
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
      S: parseHexInt(o.S, MODULUS_BYTES, 'field "S"'),
      A: parseHexInt(o.A, CIPHERTEXT_BYTES, 'field "A"'),
      Y: decodeNonZeroPoint(o.Y, 'field "Y"'),
      D: parseHexInt(o.D, MODULUS_BYTES, 'field "D"'),
      z1: parseHexSigned(o.z1, bitsCapBytes(Z1_BITS), 'field "z1"'),
      z2: parseHexInt(o.z2, MODULUS_BYTES, 'field "z2"'),
      z3: parseHexSigned(o.z3, MASK_MAX_BYTES, 'field "z3"'),
    };
  });
}
