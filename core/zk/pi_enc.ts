/**
 * Pi-enc: Paillier encryption in range (CGGMP21, ePrint 2021/060, Section 6.1, Figure 14; the
 * Rust reference's `spec/main.tex`, "Pi-enc: Paillier Encryption in Range").
 *
 * Statement: K = Enc_N0(k; rho) with k in +-2^l. The proof convinces the verifier that
 * k lies in +-2^(l+eps). It is made under the VERIFIER's ring-Pedersen parameters
 * (N-hat, s, t), which the statement carries (`aux`). Used in presigning round 1.
 *
 * @example
 * ```ts
 * import * as piEnc from "./pi_enc.ts";
 * import { randomSigned } from "../math/mod.ts";
 * import type { PaillierSecretKey } from "../paillier.ts";
 * import { ELL } from "../params.ts";
 * import type { RingPedersenParams } from "../ring_pedersen.ts";
 * // The prover's Paillier key and the verifier's ring-Pedersen parameters (from aux info).
 * export function proveAndVerify(sk: PaillierSecretKey, aux: RingPedersenParams) {
 *   const ctx = { sid: new Uint8Array(32).fill(7), prover: 1 };
 *   const k = randomSigned(ELL);
 *   const [K, rho] = sk.encrypt(k);
 *   const statement = { N0: sk.N, K, aux };
 *   const proof = piEnc.prove(ctx, statement, { k, rho, sk });
 *   const wire = JSON.parse(JSON.stringify(piEnc.encode(proof)));
 *   piEnc.verify(ctx, statement, piEnc.decode(wire)); // throws ProofError when it fails
 * }
 * ```
 * @module
 */
import { expectFields, parseHexInt, parseHexSigned, toHexInt, toHexSigned } from "../bytes.ts";
import { randomSigned, type RandomSource, webCryptoRandom } from "../math/mod.ts";
import type { PaillierSecretKey } from "../paillier.ts";
import { CIPHERTEXT_BYTES, ELL, EPSILON, MODULUS_BYTES } from "../params.ts";
import { commitSecret, type RingPedersenParams } from "../ring_pedersen.ts";
import {
  appendRingPedersen,
  assertAbsAtMost,
  assertBits,
  assertModulusShape,
  assertRingPedersen,
  assertUnit,
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

// ---------------------------------------------------------------------------------------------
// Pieces shared with pi_aff_g.ts and pi_log_star.ts.

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
  const { N0, aux } = statement;
  const { k, rho, sk } = witness;
  if (sk && sk.N !== N0) throw new RangeError("pi-enc: the secret key is not the key of N0");
  // Step 1: alpha <- +-2^(l+eps), mu <- +-2^l N-hat, r <- Z*_N0, gamma <- +-2^(l+eps) N-hat.
  // (r comes with r^N0 from the randomizer source: A = Enc_N0(alpha; r) = (1 + alpha N0) r^N0.)
  const alpha = randomSigned(Z1_BITS, rng);
  const mu = sampleSigned(aux.N << BigInt(ELL), rng);
  const [A, r] = encryptFresh(N0, alpha, sk, randomizersOf(options), rng);
  const gamma = sampleSigned(aux.N << BigInt(Z1_BITS), rng);
  // Step 1: S = s^k t^mu, A = Enc_N0(alpha; r), C = s^alpha t^gamma.
  const S = commitSecret(aux, k, mu);
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
  const { N0, K, aux } = statement;
  const { S, A, C, z1, z2, z3 } = proof;
  const e = challenge(ctx, statement, proof);
  // Step 4: A (+) (e (.) K) = Enc_N0(z1; z2) mod N0^2.
  if (!paillierEquationHolds(N0, z1, z2, A, K, e, options)) {
    throw equationFailed(PROOF, "equation 1");
  }
  // Step 4: s^z1 t^z3 = C S^e mod N-hat.
  if (!commitmentEquationHolds(aux, z1, z3, C, S, e, options)) {
    throw equationFailed(PROOF, "equation 2");
  }
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
