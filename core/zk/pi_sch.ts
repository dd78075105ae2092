/**
 * Pi-sch: Schnorr proof of knowledge of a discrete log (CGGMP21, ePrint 2021/060, Appendix C.1,
 * Figure 22; the Rust reference's `spec/main.tex`, "Pi-sch: Schnorr Proof of Knowledge").
 *
 * Statement: X = x * G. The commitment A = alpha * G is made before the statement is fixed:
 * in key generation the prover commits to A in round 1 and proves in round 3 with a challenge
 * bound to the session, the prover and the joint rid. So the proof is split into
 * `commit` (returns the secret nonce and A) and `prove` (uses that nonce, once).
 *
 * @example
 * ```ts
 * import { commit, prove, verify } from "./pi_sch.ts";
 * import { Point } from "../params.ts";
 * const ctx = { sid: new Uint8Array([1, 2, 3]), prover: 0 };
 * const x = 12345n;
 * const statement = { X: Point.BASE.multiply(x), rid: new Uint8Array(48) };
 * const nonce = commit();
 * verify(ctx, statement, prove(ctx, statement, nonce, { x }));
 * ```
 * @module
 */
import { decodeNonZeroPoint, encodePoint, expectFields, parseHexInt, toHexInt } from "../bytes.ts";
import { ProofError } from "../errors.ts";
import { mod, randomBelow, type RandomSource, webCryptoRandom } from "../math/mod.ts";
import { Point, Q } from "../params.ts";
import { assertValidPoint, decodeProof, type ProofContext, transcriptFor } from "./_common.ts";

const PROOF = "pi-sch";

/** Common input of Pi-sch (Figure 22: X; plus the public value the challenge is bound to). */
export interface Statement {
  /** X = x * G. */
  readonly X: Point;
  /** Public bytes bound into the challenge: rid in key generation, rho in key refresh. */
  readonly rid: Uint8Array;
}

/** Secret input of Pi-sch: x with X = x * G. */
export interface Witness {
  /** x in Z_q. */
  readonly x: bigint;
}

/** The prover's first step (Figure 22, step 1): secret alpha and public A = alpha * G. Use once. */
export interface Nonce {
  /** alpha <- Z_q (secret; never sent). */
  readonly alpha: bigint;
  /** A = alpha * G (sent, or committed to, before the proof). */
  readonly A: Point;
}

/** A Pi-sch proof: A and z = alpha + e x mod q (Figure 22, steps 1 and 3). */
export interface Proof {
  /** A = alpha * G. */
  readonly A: Point;
  /** z = alpha + e x mod q, in [0, q). */
  readonly z: bigint;
}

/** Wire form: compressed point and lowercase hex. */
export type EncodedProof = { readonly [F in keyof Proof]: string };

const FIELDS = ["A", "z"] as const;

// Nonces already consumed by `prove`: a second response with one nonce reveals x.
const usedNonces = new WeakSet<Nonce>();

/**
 * Figure 22, step 1: alpha <- Z_q \ {0}, A = alpha * G.
 * @param rng random source (default Web Crypto).
 * @returns the nonce; keep it secret and pass it to `prove` once.
 */
export function commit(rng: RandomSource = webCryptoRandom): Nonce {
  const alpha = randomBelow(Q - 1n, rng) + 1n;
  return { alpha, A: Point.BASE.multiply(alpha) };
}

/**
 * The Fiat-Shamir challenge e in Z_q (spec: e <- Z_q), bound to the context, the generator,
 * X, rid and A.
 */
export function challenge(ctx: ProofContext, statement: Statement, A: Point): bigint {
  const tr = transcriptFor(PROOF, ctx);
  tr.appendString("curve", "secp256k1");
  tr.appendBytes("G", Point.BASE.toBytes(true));
  tr.appendBytes("X", statement.X.toBytes(true));
  tr.appendBytes("rid", statement.rid);
  tr.appendBytes("A", A.toBytes(true));
  return tr.challengeBelow("e", Q);
}

/**
 * Figure 22, step 3: z = alpha + e x mod q. The witness is not checked against X: a wrong x
 * yields a proof the verifier rejects.
 * @param ctx session id and prover index the proof is bound to.
 * @param statement X and the bytes the challenge is bound to.
 * @param nonce the output of `commit`, never used before.
 * @param witness x.
 * @returns the proof (A, z).
 * @throws {TypeError} when the nonce was already used.
 */
export function prove(
  ctx: ProofContext,
  statement: Statement,
  nonce: Nonce,
  witness: Witness,
): Proof {
  if (usedNonces.has(nonce)) throw new TypeError("pi-sch: this nonce was already used");
  usedNonces.add(nonce);
  const e = challenge(ctx, statement, nonce.A);
  return { A: nonce.A, z: mod(nonce.alpha + e * witness.x, Q) };
}

/**
 * Checks every value before any arithmetic: X and A valid non-identity points, z in [0, q).
 * @throws {ProofError} "out-of-range".
 */
export function validate(statement: Statement, proof: Proof): void {
  assertValidPoint(PROOF, "X", statement.X);
  if (!(statement.rid instanceof Uint8Array)) {
    throw new ProofError(PROOF, "malformed", 'field "rid" is not bytes');
  }
  assertValidPoint(PROOF, "A", proof.A);
  if (proof.z < 0n || proof.z >= Q) {
    throw new ProofError(PROOF, "out-of-range", 'field "z" is not in [0, q)');
  }
}

/**
 * Verifies a Pi-sch proof (Figure 22, step 4): z * G = A + e * X.
 * @throws {ProofError} "out-of-range" or "verification-failed".
 */
export function verify(ctx: ProofContext, statement: Statement, proof: Proof): void {
  validate(statement, proof);
  const e = challenge(ctx, statement, proof.A);
  if (!Point.BASE.multiplyUnsafe(proof.z).equals(proof.A.add(statement.X.multiplyUnsafe(e)))) {
    throw new ProofError(PROOF, "verification-failed", "equation z G = A + e X does not hold");
  }
}

/** Wire form of a proof (JSON-safe). */
export function encode(proof: Proof): EncodedProof {
  return { A: encodePoint(proof.A), z: toHexInt(proof.z) };
}

/**
 * Decodes a received proof: exactly { A, z }, A a compressed point (identity and off-curve
 * refused), z canonical hex of at most 32 bytes.
 * @throws {ProofError} "malformed".
 */
export function decode(json: unknown): Proof {
  return decodeProof(PROOF, () => {
    const o = expectFields<EncodedProof>(json, FIELDS);
    return { A: decodeNonZeroPoint(o.A, 'field "A"'), z: parseHexInt(o.z, 32, 'field "z"') };
  });
}
