/**
 * Pi-fac: no small factor, N0 = p q with both factors at most 2^(l+eps) sqrt(N0), hence both
 * at least sqrt(N0) / 2^(l+eps) (CGGMP21, ePrint 2021/060, Figure 28 in the 2021 revisions;
 * the Rust reference's `spec/main.tex`, "Pi-fac: No Small Factor Proof").
 *
 * Statement: N0 (the prover's modulus) and the VERIFIER's ring-Pedersen parameters
 * (N-hat, s, t), never the prover's own: whoever knows the trapdoor of (s, t) can forge the
 * proof. Witness: p, q. Used in auxiliary-info generation and key refresh, sent peer to peer.
 *
 * sqrt(N0) is taken as floor(sqrt(N0)) (as the reference does). The challenge e is in +-q, as
 * in the project's other range proofs.
 *
 * @example
 * ```ts
 * import * as piFac from "./pi_fac.ts";
 * import type { PaillierSecretKey } from "../paillier.ts";
 * import type { RingPedersenParams } from "../ring_pedersen.ts";
 * // The prover's Paillier key; the VERIFIER's ring-Pedersen parameters, never the prover's own.
 * export function proveAndVerify(sk: PaillierSecretKey, aux: RingPedersenParams) {
 *   const ctx = { sid: new Uint8Array(32).fill(7), prover: 1 };
 *   const statement = { N0: sk.N, aux };
 *   const proof = piFac.prove(ctx, statement, { p: sk.p, q: sk.q });
 *   const wire = JSON.parse(JSON.stringify(piFac.encode(proof)));
 *   piFac.verify(ctx, statement, piFac.decode(wire)); // throws ProofError when it fails
 * }
 * ```
 * @module
 */
import { expectFields, parseHexInt, parseHexSigned, toHexInt, toHexSigned } from "../bytes.ts";
import {
  bitLength,
  isqrt,
  modPow,
  modPow2,
  modPow2Secret,
  randomInRange,
  type RandomSource,
  webCryptoRandom,
} from "../math/mod.ts";
import {
  ELL,
  EPSILON,
  MODULUS_BYTES,
  MODULUS_MAX_BITS,
  MODULUS_MIN_BITS,
  Q as CURVE_Q,
} from "../params.ts";
import {
  checkRingPedersenShape,
  commit,
  commitSecret,
  type RingPedersenParams,
} from "../ring_pedersen.ts";
import {
  assertAbsAtMost,
  assertElement,
  assertModulus,
  capBytes,
  decodeProof,
  equationFailed,
  type ProofContext,
  transcriptFor,
} from "./_common.ts";

const PROOF = "pi-fac";

/** Common input of Pi-fac (Figure 28: N0 and the verifier's (N-hat, s, t); spec: N_i, R_j). */
export interface Statement {
  /** N0: the prover's modulus. */
  readonly N0: bigint;
  /** The VERIFIER's ring-Pedersen parameters (N-hat, s, t) (spec: auxiliary data R_j). */
  readonly aux: RingPedersenParams;
}

/** Secret input of Pi-fac (Figure 28: p, q with N0 = p q). */
export interface Witness {
  readonly p: bigint;
  readonly q: bigint;
}

/** A Pi-fac proof: first message (P, Q, A, B, T, sigma) and response (z1, z2, w1, w2, v). */
export interface Proof {
  /** P = s^p t^mu mod N-hat (step 1). */
  readonly P: bigint;
  /** Q = s^q t^nu mod N-hat (step 1). */
  readonly Q: bigint;
  /** A = s^alpha t^x mod N-hat (step 1). */
  readonly A: bigint;
  /** B = s^beta t^y mod N-hat (step 1). */
  readonly B: bigint;
  /** T = Q^alpha t^r mod N-hat (step 1). */
  readonly T: bigint;
  /** sigma in +-2^l N0 N-hat (step 1). */
  readonly sigma: bigint;
  /** z1 = alpha + e p, in +-2^(l+eps) sqrt(N0) (steps 3, 4). */
  readonly z1: bigint;
  /** z2 = beta + e q, in +-2^(l+eps) sqrt(N0) (steps 3, 4). */
  readonly z2: bigint;
  /** w1 = x + e mu (step 3). */
  readonly w1: bigint;
  /** w2 = y + e nu (step 3). */
  readonly w2: bigint;
  /** v = r + e (sigma - nu p) (step 3). */
  readonly v: bigint;
}

/** Wire form: lowercase hex, "-" for negatives. */
export type EncodedProof = { readonly [F in keyof Proof]: string };

const ELEMENTS = ["P", "Q", "A", "B", "T"] as const;
const INTEGERS = ["sigma", "z1", "z2", "w1", "w2", "v"] as const;

/** The ranges of Figure 28 for one (N0, N-hat). */
export interface Bounds {
  /** 2^(l+eps) sqrt(N0): alpha, beta are sampled in, and z1, z2 checked against, +- this. */
  readonly z: bigint;
  /** 2^l N-hat: range of mu, nu. */
  readonly mu: bigint;
  /** 2^l N0 N-hat: range of sigma (checked exactly by the verifier). */
  readonly sigma: bigint;
  /** 2^(l+eps) N0 N-hat: range of r. */
  readonly r: bigint;
  /** 2^(l+eps) N-hat: range of x, y. */
  readonly x: bigint;
  /**
   * 2^l N-hat (2^eps + q): the largest |w1|, |w2| an honest prover makes (x + e mu with e in
   * +-q). Not a check of the paper; it keeps a hostile exponent from slowing verification.
   */
  readonly w: bigint;
  /**
   * 2^l N0 N-hat (2^eps + 2q): the largest |v| an honest prover makes (r + e (sigma - nu p)
   * with p < N0). Not a check of the paper; same purpose as `w`.
   */
  readonly v: bigint;
}

/** The bounds of Figure 28 for the given N0 and N-hat, with sqrt(N0) = floor(sqrt(N0)). */
export function bounds(N0: bigint, Nhat: bigint): Bounds {
  const l = BigInt(ELL);
  const le = BigInt(ELL + EPSILON);
  const slack = (1n << BigInt(EPSILON)) + CURVE_Q;
  return {
    z: isqrt(N0) << le,
    mu: Nhat << l,
    sigma: (N0 * Nhat) << l,
    r: (N0 * Nhat) << le,
    x: Nhat << le,
    w: (Nhat * slack) << l,
    v: (N0 * Nhat * (slack + CURVE_Q)) << l,
  };
}

/** Wire caps (bytes) for the largest accepted N0 and N-hat. */
const CAPS: Readonly<Record<(typeof INTEGERS)[number], number>> = (() => {
  const big = (1n << BigInt(MODULUS_MAX_BITS)) - 1n;
  const b = bounds(big, big);
  return {
    sigma: capBytes(b.sigma),
    z1: capBytes(b.z),
    z2: capBytes(b.z),
    w1: capBytes(b.w),
    w2: capBytes(b.w),
    v: capBytes(b.v),
  };
})();

/**
 * The challenge e in +-q, bound to the context, the verifier's (N-hat, s, t), N0 and the first
 * message (spec: e = challenge^L(state, R_j, N_i, (P, Q, A, B, T, sigma))).
 */
export function challenge(
  ctx: ProofContext,
  statement: Statement,
  first: Pick<Proof, "P" | "Q" | "A" | "B" | "T" | "sigma">,
): bigint {
  const tr = transcriptFor(PROOF, ctx);
  tr.appendUint("ell", BigInt(ELL)).appendUint("epsilon", BigInt(EPSILON));
  const { aux } = statement;
  tr.appendUint("Nhat", aux.N).appendUint("s", aux.s).appendUint("t", aux.t);
  tr.appendUint("N0", statement.N0);
  for (const f of ELEMENTS) tr.appendUint(f, first[f]);
  tr.appendInt("sigma", first.sigma);
  return tr.challengeSigned("e", CURVE_Q);
}

function assertVerifierAux(aux: RingPedersenParams): void {
  const bits = bitLength(aux.N);
  if ((aux.N & 1n) === 0n || bits < MODULUS_MIN_BITS || bits > MODULUS_MAX_BITS) {
    throw new RangeError("pi-fac: the verifier's N-hat must be odd of 3071-3072 bits");
  }
  if (!checkRingPedersenShape(aux)) {
    throw new RangeError("pi-fac: the verifier's s, t must be distinct units mod N-hat, neither 1");
  }
}

/**
 * Proves that N0 has no small factor, under the verifier's ring-Pedersen parameters
 * (Figure 28 with Fiat-Shamir). In the negligible case that a commitment is +-1 the prover
 * starts again with fresh randomness. The sizes of p and q are not checked: a factor above
 * about 2^l sqrt(N0) yields a proof whose z1 or z2 the verifier refuses.
 * @param ctx session id and prover index the proof is bound to.
 * @param statement N0 and the VERIFIER's (N-hat, s, t).
 * @param witness p, q with N0 = p q.
 * @param rng random source (default Web Crypto).
 * @returns the proof.
 * @throws {RangeError} when p q != N0 or the verifier's parameters are malformed.
 */
export function prove(
  ctx: ProofContext,
  statement: Statement,
  witness: Witness,
  rng: RandomSource = webCryptoRandom,
): Proof {
  const { N0, aux } = statement;
  const { p, q } = witness;
  if (p <= 1n || q <= 1n || p * q !== N0) throw new RangeError("pi-fac: p q != N0");
  assertVerifierAux(aux);
  const bd = bounds(N0, aux.N);
  const pm = (bound: bigint) => randomInRange(-bound, bound, rng);
  for (;;) {
    // Step 1: alpha, beta <- +-2^(l+eps) sqrt(N0); mu, nu <- +-2^l N-hat;
    // sigma <- +-2^l N0 N-hat; r <- +-2^(l+eps) N0 N-hat; x, y <- +-2^(l+eps) N-hat.
    const alpha = pm(bd.z), beta = pm(bd.z);
    const mu = pm(bd.mu), nu = pm(bd.mu);
    const sigma = pm(bd.sigma), r = pm(bd.r);
    const x = pm(bd.x), y = pm(bd.x);
    // Step 1: P = s^p t^mu, Q = s^q t^nu, A = s^alpha t^x, B = s^beta t^y, T = Q^alpha t^r.
    const P = commitSecret(aux, p, mu);
    const Q = commitSecret(aux, q, nu);
    const A = commitSecret(aux, alpha, x);
    const B = commitSecret(aux, beta, y);
    const T = modPow2Secret(Q, alpha, aux.t, r, aux.N);
    if ([P, Q, A, B, T].some((g) => g === 1n || g === aux.N - 1n)) continue;
    // Step 2: e in +-q from the transcript.
    const e = challenge(ctx, statement, { P, Q, A, B, T, sigma });
    // Step 3: z1 = alpha + e p, z2 = beta + e q, w1 = x + e mu, w2 = y + e nu,
    // v = r + e (sigma - nu p).
    const z1 = alpha + e * p;
    const z2 = beta + e * q;
    return {
      P,
      Q,
      A,
      B,
      T,
      sigma,
      z1,
      z2,
      w1: x + e * mu,
      w2: y + e * nu,
      v: r + e * (sigma - nu * p),
    };
  }
}

/**
 * Checks the statement and every value of the proof before any proof arithmetic: N0 odd, of
 * 3071-3072 bits, no factor below 2^16, not prime; P, Q, A, B, T in Z*_N-hat other than +-1;
 * |sigma| <= 2^l N0 N-hat; |z1|, |z2| <= 2^(l+eps) sqrt(N0) (Figure 28, step 4); |w1|, |w2|,
 * |v| within the honest maxima of `Bounds`.
 * @throws {ProofError} "bad-modulus" or "out-of-range"; {RangeError} when the verifier's own
 * parameters are malformed.
 */
export function validate(statement: Statement, proof: Proof): void {
  const { N0, aux } = statement;
  assertVerifierAux(aux);
  assertModulus(PROOF, N0);
  const bd = bounds(N0, aux.N);
  assertAbsAtMost(PROOF, "sigma", proof.sigma, bd.sigma);
  assertAbsAtMost(PROOF, "z1", proof.z1, bd.z);
  assertAbsAtMost(PROOF, "z2", proof.z2, bd.z);
  assertAbsAtMost(PROOF, "w1", proof.w1, bd.w);
  assertAbsAtMost(PROOF, "w2", proof.w2, bd.w);
  assertAbsAtMost(PROOF, "v", proof.v, bd.v);
  for (const f of ELEMENTS) assertElement(PROOF, f, proof[f], aux.N);
}

/**
 * Verifies a Pi-fac proof under the verifier's own ring-Pedersen parameters (Figure 28,
 * step 4, with the Fiat-Shamir challenge).
 * @param ctx session id and the PROVER's index.
 * @param statement N0 and the VERIFIER's own (N-hat, s, t).
 * @param proof the decoded proof.
 * @throws {ProofError} on any failure: "bad-modulus", "out-of-range" or "verification-failed".
 */
export function verify(ctx: ProofContext, statement: Statement, proof: Proof): void {
  validate(statement, proof);
  const { N0, aux } = statement;
  const N = aux.N;
  const e = challenge(ctx, statement, proof);
  // Step 4: s^z1 t^w1 = A P^e mod N-hat.
  if (commit(aux, proof.z1, proof.w1) !== (proof.A * modPow(proof.P, e, N)) % N) {
    throw equationFailed(PROOF, "equation 1");
  }
  // Step 4: s^z2 t^w2 = B Q^e mod N-hat.
  if (commit(aux, proof.z2, proof.w2) !== (proof.B * modPow(proof.Q, e, N)) % N) {
    throw equationFailed(PROOF, "equation 2");
  }
  // Step 4: Q^z1 t^v = T R^e mod N-hat with R = s^N0 t^sigma.
  const R = commit(aux, N0, proof.sigma);
  if (modPow2(proof.Q, proof.z1, aux.t, proof.v, N) !== (proof.T * modPow(R, e, N)) % N) {
    throw equationFailed(PROOF, "equation 3");
  }
}

/** Wire form of a proof (JSON-safe). */
export function encode(proof: Proof): EncodedProof {
  return {
    P: toHexInt(proof.P),
    Q: toHexInt(proof.Q),
    A: toHexInt(proof.A),
    B: toHexInt(proof.B),
    T: toHexInt(proof.T),
    sigma: toHexSigned(proof.sigma),
    z1: toHexSigned(proof.z1),
    z2: toHexSigned(proof.z2),
    w1: toHexSigned(proof.w1),
    w2: toHexSigned(proof.w2),
    v: toHexSigned(proof.v),
  };
}

/**
 * Decodes a received proof: exactly the fields of `Proof`, canonical hex, each integer capped
 * by length (from the bounds at the largest moduli) before it is parsed. Ranges are checked
 * by `verify`.
 * @throws {ProofError} "malformed".
 */
export function decode(json: unknown): Proof {
  return decodeProof(PROOF, () => {
    const o = expectFields<EncodedProof>(json, [...ELEMENTS, ...INTEGERS]);
    const el = (f: (typeof ELEMENTS)[number]) => parseHexInt(o[f], MODULUS_BYTES, `field "${f}"`);
    const int = (f: (typeof INTEGERS)[number]) => parseHexSigned(o[f], CAPS[f], `field "${f}"`);
    return {
      P: el("P"),
      Q: el("Q"),
      A: el("A"),
      B: el("B"),
      T: el("T"),
      sigma: int("sigma"),
      z1: int("z1"),
      z2: int("z2"),
      w1: int("w1"),
      w2: int("w2"),
      v: int("v"),
    };
  });
}
