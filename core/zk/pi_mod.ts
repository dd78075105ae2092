/**
 * Pi-mod: N is a Paillier-Blum modulus, N = p q with p, q = 3 mod 4 and gcd(N, phi(N)) = 1
 * (CGGMP21, ePrint 2021/060, Figure 16 in the 2021 revisions; the Rust reference's
 * `spec/main.tex`, "Pi-mod: Paillier-Blum Modulus"; the check gcd(w, N) = 1 of the 2024
 * revision, whose absence was CVE-2025-66016).
 *
 * Statement: N. Witness: p, q. m = 128 repetitions; challenge y_i comes from its own
 * transcript counter. For each y_i the prover shows a fourth root x_i of (-1)^a_i w^b_i y_i and
 * an N-th root z_i of y_i. Used in auxiliary-info generation and key refresh.
 *
 * @example
 * ```ts
 * import * as piMod from "./pi_mod.ts";
 * import type { ProofContext } from "./mod.ts";
 * import type { PaillierSecretKey } from "../paillier.ts";
 * // 128 repetitions over a 3072-bit modulus take seconds: functions, type-checked, not run here.
 * export function proveBlum(ctx: ProofContext, sk: PaillierSecretKey): piMod.EncodedProof {
 *   return piMod.encode(piMod.prove(ctx, { N: sk.N }, { p: sk.p, q: sk.q }));
 * }
 * export function checkBlum(ctx: ProofContext, N: bigint, received: unknown): void {
 *   piMod.verify(ctx, { N }, piMod.decode(received)); // throws a ProofError when it fails
 * }
 * ```
 * @module
 */
import { expectFields, parseHexInt, toHexInt } from "../bytes.ts";
import { ProofError } from "../errors.ts";
import {
  gcd,
  inverseOfFour,
  invertModSafePrimeOrder,
  jacobi,
  mod,
  modPow,
  modPowSecret,
  type RandomSource,
  randomUnit,
  webCryptoRandom,
} from "../math/mod.ts";
import { M_REPS, MODULUS_BYTES } from "../params.ts";
import {
  assertElement,
  assertLength,
  assertModulus,
  decodeBitArray,
  decodeProof,
  decodeUintArray,
  equationFailed,
  type ProofContext,
  transcriptFor,
} from "./_common.ts";
import { CrtPow } from "./_crt_pow.ts";

const PROOF = "pi-mod";

/** Common input of Pi-mod (Figure 16: N). */
export interface Statement {
  /** The modulus claimed to be Paillier-Blum. */
  readonly N: bigint;
}

/** Secret input of Pi-mod (Figure 16: p, q, primes = 3 mod 4 with N = p q). */
export interface Witness {
  readonly p: bigint;
  readonly q: bigint;
}

/** A Pi-mod proof: w (step 1) and (x_i, a_i, b_i, z_i) for i = 1..m (step 3). */
export interface Proof {
  /** w in Z*_N with Jacobi symbol (w / N) = -1 (step 1). */
  readonly w: bigint;
  /** x_i: the principal fourth root of (-1)^a_i w^b_i y_i mod N (step 3b). m entries. */
  readonly x: readonly bigint[];
  /** a_i in {0, 1} (step 3a). m entries. */
  readonly a: readonly (0 | 1)[];
  /** b_i in {0, 1} (step 3a). m entries. */
  readonly b: readonly (0 | 1)[];
  /** z_i = y_i^(N^-1 mod phi(N)) mod N (step 3c). m entries. */
  readonly z: readonly bigint[];
}

/** Wire form: lowercase hex strings, bits as the JSON numbers 0 and 1. */
export interface EncodedProof {
  readonly w: string;
  readonly x: readonly string[];
  readonly a: readonly (0 | 1)[];
  readonly b: readonly (0 | 1)[];
  readonly z: readonly string[];
}

/**
 * The challenges y_1..y_m in [0, N), the i-th from transcript counter i, bound to the
 * context, N and w (spec: (y_1..y_m) = challenge^L(state, N, w)).
 */
export function challenge(ctx: ProofContext, statement: Statement, w: bigint): bigint[] {
  const tr = transcriptFor(PROOF, ctx);
  tr.appendUint("m", BigInt(M_REPS)).appendUint("N", statement.N).appendUint("w", w);
  const ys: bigint[] = [];
  for (let i = 0; i < M_REPS; i++) ys.push(tr.challengeBelow("y", statement.N, i));
  return ys;
}

/**
 * One Blum prime's share of the prover's work. With p' = (p - 1) / 2 odd, c = 4^-1 mod p'
 * maps a quadratic residue g to its principal fourth root g^c, and for any unit y,
 * (y^c)^4 = y when y is a residue and -y otherwise: one exponentiation gives both the Legendre
 * symbol and the root.
 */
class BlumPrime {
  readonly p: bigint;
  /** 4^-1 mod (p - 1) / 2. */
  readonly c: bigint;
  /** N^-1 mod (p - 1), the exponent of the N-th root modulo p. */
  readonly d: bigint;
  constructor(p: bigint, N: bigint) {
    this.p = p;
    // Neither runs Euclid on the secret p (core/math/modpow.ts).
    this.c = inverseOfFour((p - 1n) >> 1n);
    this.d = invertModSafePrimeOrder(N % (p - 1n), p);
  }
  /** [y^c mod p, Legendre symbol of y mod p]. */
  rootAndSymbol(y: bigint): [bigint, 1 | -1] {
    const { p } = this;
    const yp = mod(y, p);
    const r = modPowSecret(yp, this.c, p);
    const r2 = (r * r) % p;
    return [r, (r2 * r2) % p === yp ? 1 : -1];
  }
}

/**
 * The prover's step 3 for given w and challenges: for each y_i, a_i, b_i such that
 * (-1)^a_i w^b_i y_i is a quadratic residue mod N, its principal fourth root x_i, and
 * z_i = y_i^(N^-1 mod phi(N)) mod N, all by CRT. `prove` calls it with the Fiat-Shamir
 * challenges; tests call it with challenges of their choosing.
 * @throws {RangeError} when (p, q) is not a Blum factorisation of N or w has Jacobi != -1.
 */
export function respond(
  statement: Statement,
  witness: Witness,
  w: bigint,
  ys: readonly bigint[],
): Proof {
  const { N } = statement;
  const { p, q } = witness;
  if (p * q !== N || p === q || (p & 3n) !== 3n || (q & 3n) !== 3n) {
    throw new RangeError("pi-mod: witness is not a Blum factorisation of N");
  }
  // Jacobi symbol -1 implies w in Z*_N (a non-unit has symbol 0).
  if (jacobi(w, N) !== -1) throw new RangeError("pi-mod: expected w with Jacobi symbol -1");
  const crt = new CrtPow(p, q);
  const P = new BlumPrime(p, N);
  const Q = new BlumPrime(q, N);
  const [wp, wSymP] = P.rootAndSymbol(w);
  const [wq] = Q.rootAndSymbol(w);

  const x: bigint[] = [];
  const a: (0 | 1)[] = [];
  const b: (0 | 1)[] = [];
  const z: bigint[] = [];
  for (const y of ys) {
    const [rp, symP] = P.rootAndSymbol(y);
    const [rq, symQ] = Q.rootAndSymbol(y);
    // Step 3a: (w/p)(w/q) = -1, so b = 1 exactly when y's symbols differ; then a fixes the sign.
    const bi = symP * symQ === -1 ? 1 : 0;
    const ai = (bi === 1 ? wSymP : 1) * symP === -1 ? 1 : 0;
    // Step 3b: x = ((-1)^a w^b y)^c mod each prime = (-1)^(a c) (w^c)^b y^c.
    const xp = fourthRoot(rp, wp, ai, bi, P);
    const xq = fourthRoot(rq, wq, ai, bi, Q);
    x.push(crt.combine(xp, xq));
    a.push(ai);
    b.push(bi);
    // Step 3c: z = y^(N^-1 mod phi(N)) mod N.
    z.push(crt.combine(modPowSecret(mod(y, p), P.d, p), modPowSecret(mod(y, q), Q.d, q)));
  }
  return { w, x, a, b, z };
}

function fourthRoot(r: bigint, wr: bigint, a: 0 | 1, b: 0 | 1, P: BlumPrime): bigint {
  let x = b === 1 ? (r * wr) % P.p : r;
  if (a === 1 && (P.c & 1n) === 1n) x = mod(-x, P.p);
  return x;
}

/**
 * Proves that N is a Paillier-Blum modulus (Figure 16 with Fiat-Shamir).
 * @param ctx session id and prover index the proof is bound to.
 * @param statement N.
 * @param witness p, q with N = p q, both = 3 mod 4.
 * @param rng random source (default Web Crypto).
 * @returns the proof.
 * @throws {RangeError} when the witness does not factor N into two Blum primes.
 */
export function prove(
  ctx: ProofContext,
  statement: Statement,
  witness: Witness,
  rng: RandomSource = webCryptoRandom,
): Proof {
  const { N } = statement;
  // Step 1: w uniform in Z*_N with Jacobi symbol -1.
  let w: bigint;
  do w = randomUnit(N, rng); while (jacobi(w, N) !== -1);
  // Step 2: y_i from the transcript; step 3: the responses.
  return respond(statement, witness, w, challenge(ctx, statement, w));
}

/**
 * Checks the statement and every value of the proof before any proof arithmetic: N odd, of
 * 3071-3072 bits, no factor below 2^16, not prime; exactly m entries of each array; a_i, b_i
 * bits; w in Z*_N (gcd(w, N) = 1, the CVE-2025-66016 check) with Jacobi symbol -1; every x_i
 * and z_i in Z*_N other than +-1.
 * @throws {ProofError} "bad-modulus", "malformed", "out-of-range" or "verification-failed".
 */
export function validate(statement: Statement, proof: Proof): void {
  const { N } = statement;
  assertModulus(PROOF, N);
  for (const f of ["x", "a", "b", "z"] as const) assertLength(PROOF, f, proof[f], M_REPS);
  for (let i = 0; i < M_REPS; i++) {
    if ((proof.a[i] !== 0 && proof.a[i] !== 1) || (proof.b[i] !== 0 && proof.b[i] !== 1)) {
      throw new ProofError(PROOF, "malformed", `repetition ${i}: a_i and b_i must be bits`);
    }
  }
  const { w } = proof;
  if (w <= 0n || w >= N) throw new ProofError(PROOF, "out-of-range", `field "w" is not in (0, N)`);
  if (gcd(w, N) !== 1n) {
    throw new ProofError(
      PROOF,
      "out-of-range",
      `field "w" is not a unit modulo N (gcd(w, N) != 1)`,
    );
  }
  if (jacobi(w, N) !== -1) {
    throw new ProofError(PROOF, "verification-failed", `field "w" must have Jacobi symbol -1`);
  }
  for (let i = 0; i < M_REPS; i++) {
    assertElement(PROOF, `x[${i}]`, proof.x[i], N);
    assertElement(PROOF, `z[${i}]`, proof.z[i], N);
  }
}

/**
 * The interactive verifier (Figure 16, step 4) for challenges chosen by the caller: validates
 * as `verify` does, requires the y_i pairwise distinct, then checks x_i^4 = (-1)^a_i w^b_i y_i
 * and z_i^N = y_i mod N for every i. `verify` is this with the Fiat-Shamir challenges.
 * @throws {ProofError} on any failure.
 */
export function verifyWithChallenge(
  statement: Statement,
  proof: Proof,
  ys: readonly bigint[],
): void {
  validate(statement, proof);
  checkEquations(statement.N, proof, ys);
}

function checkEquations(N: bigint, proof: Proof, ys: readonly bigint[]): void {
  if (ys.length !== M_REPS) throw new RangeError("pi-mod: expected m challenges");
  // Each y_i must be its own challenge: a repeated y_i would let one answer count twice.
  if (new Set(ys).size !== ys.length) {
    throw new ProofError(PROOF, "verification-failed", "challenges y_i are not pairwise distinct");
  }
  const { w } = proof;
  for (let i = 0; i < M_REPS; i++) {
    const y = ys[i];
    // Step 4: x_i^4 = (-1)^a_i w^b_i y_i mod N.
    let target = proof.b[i] === 1 ? (y * w) % N : y;
    if (proof.a[i] === 1) target = mod(-target, N);
    const x2 = (proof.x[i] * proof.x[i]) % N;
    if ((x2 * x2) % N !== target) throw equationFailed(PROOF, `fourth root of repetition ${i}`);
    // Step 4: z_i^N = y_i mod N.
    if (modPow(proof.z[i], N, N) !== y) throw equationFailed(PROOF, `N-th root of repetition ${i}`);
  }
}

/**
 * Verifies a Pi-mod proof (Figure 16, step 4, with the Fiat-Shamir challenges).
 * @throws {ProofError} on any failure: "bad-modulus", "malformed", "out-of-range" or
 * "verification-failed".
 */
export function verify(ctx: ProofContext, statement: Statement, proof: Proof): void {
  validate(statement, proof);
  checkEquations(statement.N, proof, challenge(ctx, statement, proof.w));
}

/** Wire form of a proof (JSON-safe). */
export function encode(proof: Proof): EncodedProof {
  return {
    w: toHexInt(proof.w),
    x: proof.x.map(toHexInt),
    a: [...proof.a],
    b: [...proof.b],
    z: proof.z.map(toHexInt),
  };
}

/**
 * Decodes a received proof: exactly the fields w, x, a, b, z; arrays of exactly m entries;
 * integers canonical hex capped by length before parsing; a_i, b_i the numbers 0 or 1.
 * Ranges are checked by `verify`.
 * @throws {ProofError} "malformed".
 */
export function decode(json: unknown): Proof {
  return decodeProof(PROOF, () => {
    const o = expectFields<EncodedProof>(json, ["w", "x", "a", "b", "z"]);
    return {
      w: parseHexInt(o.w, MODULUS_BYTES, 'field "w"'),
      x: decodeUintArray(o.x, "x", M_REPS, MODULUS_BYTES),
      a: decodeBitArray(o.a, "a", M_REPS),
      b: decodeBitArray(o.b, "b", M_REPS),
      z: decodeUintArray(o.z, "z", M_REPS, MODULUS_BYTES),
    };
  });
}
