import "../../testing/setup.ts";
import { SLOW } from "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { fixturePaillier } from "../../testing/fixtures/keys.ts";
import { platformSafePrime } from "../../platform/mod.ts";
import { ProofError, type ProofErrorCode } from "../errors.ts";
import { bitLength, mod, randomBelow, randomSigned, randomUnit } from "../math/mod.ts";
import { PaillierSecretKey } from "../paillier.ts";
import { ELL, EPSILON, Point, Q } from "../params.ts";
import { generateRingPedersen } from "../ring_pedersen.ts";
import * as piLog from "./pi_log_star.ts";
import { HUGE, publicRp, rejects } from "../../testing/zk_helpers.ts";
import { CHALLENGE_Q, maskBound } from "./_common.ts";
import {
  agreeBothPaths,
  bothPaths,
  expCounts,
  recordingRandomizers,
} from "../../testing/zk_paths.ts";

const utf8 = new TextEncoder();
const ctx = { sid: utf8.encode("pi-log* test session"), prover: 1 };
const proverKey = fixturePaillier(1);
const N0 = proverKey.N;
const verifierKey = fixturePaillier(0);

const aux = publicRp(0);
const Nhat = aux.N;

/**
 * piLog.verify by the public path and, with the verifier's key (the owner of N-hat),
 * by CRT: both must agree (testing/zk_paths.ts); throws what the public path throws.
 */
function verify(c: typeof ctx, st: piLog.Statement, pr: piLog.Proof): void {
  bothPaths(() => piLog.verify(c, st, pr), () => piLog.verify(c, st, pr, { verifierKey }));
}
/** A generic base point, as Gamma in presigning round 3. */
const Gamma = Point.BASE.multiply(randomBelow(Q - 1n) + 1n);

function instance(x: bigint = randomSigned(ELL), B: Point = Gamma) {
  const [C, rho] = proverKey.encrypt(x);
  const statement: piLog.Statement = { N0, C, X: B.multiply(mod(x, Q)), B, aux };
  return { statement, witness: { x, rho, sk: proverKey } };
}

const honest = instance();
const statement = honest.statement;
const proof = piLog.prove(ctx, statement, honest.witness);
const INT_FIELDS = ["S", "A", "D", "z1", "z2", "z3"] as const;
const label = (v: bigint) => `${v < 0n ? "-" : ""}${bitLength(v)}-bit`;
/** Compressed encodings that are not points: x^3 + 7 a non-square (x = 5), and x >= p. */
const OFF_CURVE_HEX = ["02" + "05".padStart(64, "0"), "03" + "ff".repeat(32)];
/** An in-memory point object that is not on the curve. */
const OFF_CURVE = new Point(1n, 1n, 1n);

test("pi-log* proves and verifies honest statements for base G and a generic base", () => {
  verify(ctx, statement, proof);
  const edge = 1n << BigInt(ELL);
  for (
    const [x, B] of [[randomSigned(ELL), Point.BASE], [edge, Gamma], [-edge, Point.BASE]] as const
  ) {
    const { statement: st, witness } = instance(x, B);
    verify(ctx, st, piLog.prove(ctx, st, witness));
  }
  const noCrt = piLog.prove(ctx, statement, { x: honest.witness.x, rho: honest.witness.rho });
  verify(ctx, statement, noCrt);
});

test("pi-log* prover refuses a secret key that is not the key of N0", () => {
  assert.throws(
    () => piLog.prove(ctx, statement, { ...honest.witness, sk: verifierKey }),
    RangeError,
  );
});

test("pi-log* encode/decode round trip through JSON is exact and canonical", () => {
  const wire = JSON.parse(JSON.stringify(piLog.encode(proof)));
  for (const f of INT_FIELDS) assert.match(wire[f], /^-?([0-9a-f]{2})+$/, f);
  assert.match(wire.Y, /^0[23][0-9a-f]{64}$/);
  const back = piLog.decode(wire);
  assert.equal(back.Y.equals(proof.Y), true);
  assert.deepEqual({ ...back, Y: null }, { ...proof, Y: null });
  verify(ctx, statement, back);
});

test("pi-log* rejects a proof with any single field tampered", () => {
  for (const f of INT_FIELDS) {
    rejects(`${f}+1`, () => verify(ctx, statement, { ...proof, [f]: proof[f] + 1n }));
  }
  rejects("Y+G", () => verify(ctx, statement, { ...proof, Y: proof.Y.add(Point.BASE) }));
  rejects("Y-neg", () => verify(ctx, statement, { ...proof, Y: proof.Y.negate() }));
});

test("pi-log* binds the proof to the session id and the prover index", () => {
  const otherSid = { sid: utf8.encode("another session"), prover: 1 };
  rejects("sid", () => verify(otherSid, statement, proof), "verification-failed");
  rejects(
    "prover",
    () => verify({ ...ctx, prover: 0 }, statement, proof),
    "verification-failed",
  );
});

test("pi-log* rejects the proof for another ciphertext, point, base or parameters", () => {
  const [C2] = proverKey.encrypt(honest.witness.x);
  const VF = "verification-failed";
  rejects("other C", () => verify(ctx, { ...statement, C: C2 }, proof), VF);
  rejects(
    "other X",
    () => verify(ctx, { ...statement, X: statement.X.add(Point.BASE) }, proof),
    VF,
  );
  rejects("other B", () => verify(ctx, { ...statement, B: Point.BASE }, proof), VF);
  // X = x G claimed with the base Gamma: the same x, the wrong base.
  const XG = Point.BASE.multiply(mod(honest.witness.x, Q));
  rejects("X of G", () => verify(ctx, { ...statement, X: XG }, proof), VF);
  rejects("other N0", () => verify(ctx, { ...statement, N0: fixturePaillier(2).N }, proof));
  rejects("other aux", () => verify(ctx, { ...statement, aux: publicRp(2) }, proof));
});

test("pi-log* challenge depends on the context, every statement value and the first message", () => {
  const e = piLog.challenge(ctx, statement, proof);
  const G = Point.BASE;
  const variants: Array<[string, bigint]> = [
    ["sid", piLog.challenge({ ...ctx, sid: utf8.encode("x") }, statement, proof)],
    ["prover", piLog.challenge({ ...ctx, prover: 2 }, statement, proof)],
    ["N0", piLog.challenge(ctx, { ...statement, N0: N0 + 2n }, proof)],
    ["C", piLog.challenge(ctx, { ...statement, C: statement.C + 1n }, proof)],
    ["X", piLog.challenge(ctx, { ...statement, X: statement.X.add(G) }, proof)],
    ["B", piLog.challenge(ctx, { ...statement, B: G }, proof)],
    ["N-hat", piLog.challenge(ctx, { ...statement, aux: { ...aux, N: Nhat + 2n } }, proof)],
    ["s", piLog.challenge(ctx, { ...statement, aux: { ...aux, s: aux.s + 1n } }, proof)],
    ["t", piLog.challenge(ctx, { ...statement, aux: { ...aux, t: aux.t + 1n } }, proof)],
    ["S", piLog.challenge(ctx, statement, { ...proof, S: proof.S + 1n })],
    ["A", piLog.challenge(ctx, statement, { ...proof, A: proof.A + 1n })],
    ["Y", piLog.challenge(ctx, statement, { ...proof, Y: proof.Y.add(G) })],
    ["D", piLog.challenge(ctx, statement, { ...proof, D: proof.D + 1n })],
  ];
  for (const [what, e2] of variants) assert.notEqual(e2, e, what);
  assert.ok(e >= -CHALLENGE_Q && e <= CHALLENGE_Q);
});

test("pi-log* z1 range is exact: +-2^(l+eps) passes, 2^(l+eps) + 1 is out of range", () => {
  const B = 1n << BigInt(ELL + EPSILON);
  for (const z1 of [B, -B]) piLog.validate(statement, { ...proof, z1 });
  for (const z1 of [B + 1n, -B - 1n]) {
    rejects("validate z1", () => piLog.validate(statement, { ...proof, z1 }), "out-of-range");
    rejects("verify z1", () => verify(ctx, statement, { ...proof, z1 }), "out-of-range");
  }
});

test("pi-log* z3 cap is the honest bound exactly: bound passes, bound + 1 is out of range", () => {
  const B = maskBound(Nhat);
  for (const z3 of [B, -B]) piLog.validate(statement, { ...proof, z3 });
  for (const z3 of [B + 1n, -B - 1n]) {
    rejects("z3", () => verify(ctx, statement, { ...proof, z3 }), "out-of-range");
  }
});

test("pi-log* rejects degenerate values in every proof field, in bounded time", () => {
  const p0 = proverKey.p;
  const pHat = verifierKey.p;
  const N0sq = N0 * N0;
  const VF = "verification-failed";
  const OUT = "out-of-range";
  const modNhat: Array<[bigint, ProofErrorCode]> = [
    [0n, OUT],
    [1n, VF],
    [Nhat - 1n, VF],
    [Nhat, OUT],
    [Nhat + 1n, OUT],
    [pHat, OUT],
    [-1n, OUT],
    [HUGE, OUT],
  ];
  const cases: Record<(typeof INT_FIELDS)[number], Array<[bigint, ProofErrorCode]>> = {
    S: modNhat,
    D: modNhat,
    A: [
      [0n, OUT],
      [1n, VF],
      [N0 - 1n, VF],
      [N0, OUT],
      [N0 + 1n, VF],
      [N0sq, OUT],
      [N0sq + 1n, OUT],
      [p0, OUT],
      [HUGE, OUT],
    ],
    z1: [[0n, VF], [1n, VF], [-1n, VF], [N0 - 1n, OUT], [N0, OUT], [N0 + 1n, OUT], [HUGE, OUT], [
      -HUGE,
      OUT,
    ]],
    z2: [[0n, OUT], [1n, VF], [N0 - 1n, VF], [N0, OUT], [N0 + 1n, OUT], [p0, OUT], [-1n, OUT], [
      HUGE,
      OUT,
    ]],
    z3: [[0n, VF], [1n, VF], [Nhat, VF], [HUGE, OUT], [-HUGE, OUT]],
  };
  for (const f of INT_FIELDS) {
    for (const [v, code] of cases[f]) {
      rejects(`${f}=${label(v)}`, () => verify(ctx, statement, { ...proof, [f]: v }), code);
    }
  }
  for (const P of [Point.ZERO, OFF_CURVE]) {
    rejects("Y", () => verify(ctx, statement, { ...proof, Y: P }), OUT);
  }
  rejects("Y=G", () => verify(ctx, statement, { ...proof, Y: Point.BASE }), VF);
});

test("pi-log* rejects degenerate statements: identity or off-curve points, non-units, bad moduli", () => {
  const OUT = "out-of-range";
  for (const P of [Point.ZERO, OFF_CURVE]) {
    rejects("X", () => verify(ctx, { ...statement, X: P }, proof), OUT);
    rejects("B", () => verify(ctx, { ...statement, B: P }, proof), OUT);
  }
  const N0sq = N0 * N0;
  for (const C of [0n, N0, N0sq, proverKey.p, -1n, HUGE]) {
    rejects("C", () => verify(ctx, { ...statement, C }, proof), OUT);
  }
  for (const a of [{ ...aux, s: 1n }, { ...aux, t: aux.s }, { ...aux, t: verifierKey.q }]) {
    rejects("aux", () => verify(ctx, { ...statement, aux: a }, proof), OUT);
  }
  for (const N of [N0 + 1n, N0 >> 2n, 0n, HUGE]) {
    rejects("N0", () => verify(ctx, { ...statement, N0: N }, proof), "bad-modulus");
    rejects(
      "N-hat",
      () => verify(ctx, { ...statement, aux: { ...aux, N } }, proof),
      "bad-modulus",
    );
  }
});

test("pi-log* decode refuses 1 MB integers, the identity, off-curve points and malformed data", () => {
  const wire = piLog.encode(proof);
  const megabyte = "ab".repeat(1 << 20);
  const malformed = (v: unknown, what: string) =>
    assert.throws(
      () => piLog.decode(v),
      (e: unknown) => e instanceof ProofError && e.code === "malformed",
      what,
    );
  for (const f of INT_FIELDS) {
    assert.throws(
      () => piLog.decode({ ...wire, [f]: megabyte }),
      (e: unknown) =>
        e instanceof ProofError && e.code === "malformed" && /at most/.test(e.message),
      f,
    );
  }
  for (
    const Y of ["00", "", ...OFF_CURVE_HEX, "04" + "00".repeat(64), megabyte, wire.Y.toUpperCase()]
  ) {
    malformed({ ...wire, Y }, `Y=${Y.slice(0, 8)}`);
  }
  assert.throws(() => piLog.decode({ ...wire, z1: "01" + "00".repeat(61) }), ProofError);
  const { D: _D, ...missing } = wire;
  for (const v of [null, 7, "x", [], missing, { ...wire, more: "01" }, { ...wire, Y: 2 }]) {
    malformed(v, JSON.stringify(v)?.slice(0, 30) ?? "undefined");
  }
});

test("pi-log* rejects a prover whose x lies outside +-2^(l+eps) or does not match X", () => {
  const big = 1n << BigInt(ELL + EPSILON + 2);
  for (const x of [big, -big]) {
    const { statement: st, witness } = instance(x);
    const bad = piLog.prove(ctx, st, witness);
    rejects("x out of range", () => verify(ctx, st, bad), "out-of-range");
  }
  // C encrypts x but X = (x + 1) B: the group equation fails.
  const st = { ...statement, X: statement.X.add(Gamma) };
  rejects(
    "X mismatch",
    () => verify(ctx, st, piLog.prove(ctx, st, honest.witness)),
    "verification-failed",
  );
});

test("pi-log* by CRT: the verifier's own N-hat (and N0) without public exponentiations, counted", () => {
  const plain = expCounts(() => piLog.verify(ctx, statement, proof));
  const crt = expCounts(() => piLog.verify(ctx, statement, proof, { verifierKey }));
  assert.equal(plain.get("public:3072"), 3, "s^z1, t^z3, S^e modulo N-hat");
  assert.equal(crt.get("public:3072"), undefined, "none modulo N-hat by CRT");
  assert.equal(crt.get("secret:1536"), 6, "the same three modulo p and modulo q");
  assert.equal(crt.get("public:6144"), plain.get("public:6144"), "N0 is the prover's: public");
  const own0 = expCounts(() => piLog.verify(ctx, statement, proof, { verifierKey: proverKey }));
  assert.equal(own0.get("public:6144"), undefined);
  assert.equal(own0.get("secret:3072"), 4, "z2^N0 and C^e modulo p^2 and q^2");
});

test("pi-log* by CRT agrees with the public path on random and edge inputs", () => {
  const N2 = N0 * N0;
  const agree = (pr: piLog.Proof) => {
    for (const sk of [verifierKey, proverKey]) {
      agreeBothPaths((o) => piLog.verify(ctx, statement, pr, o), sk);
    }
  };
  for (let k = 0; k < 2; k++) {
    const r = {
      S: randomUnit(Nhat),
      A: randomUnit(N2),
      D: randomUnit(Nhat),
      z1: randomSigned(ELL + EPSILON),
      z2: randomUnit(N0),
      z3: randomSigned(bitLength(maskBound(Nhat)) - 1),
    };
    for (const f of INT_FIELDS) agree({ ...proof, [f]: r[f] });
  }
  const B = maskBound(Nhat);
  const edges: Partial<piLog.Proof>[] = [{ z1: 0n }, { z3: 0n }, { S: 1n }, { S: Nhat - 1n }];
  edges.push({ D: Nhat - 1n }, { z2: 1n }, { z2: N0 - 1n }, { A: N2 - 1n }, { z3: B }, { z3: -B });
  for (const e of edges) agree({ ...proof, ...e });
  for (const x of [1n, -1n, 1n << BigInt(ELL), -(1n << BigInt(ELL))]) {
    const { statement: st, witness } = instance(x);
    const pr = piLog.prove(ctx, st, witness);
    piLog.verify(ctx, st, pr, { verifierKey });
    piLog.verify(ctx, st, pr, { verifierKey: proverKey });
  }
});

test("pi-log* prover takes the randomizer of A from the source it is given, once", () => {
  const { source, taken } = recordingRandomizers();
  const pr = piLog.prove(ctx, statement, honest.witness, undefined, { randomizers: source });
  assert.deepEqual(taken.map((t) => [t.N, t.own]), [[N0, true]], "the prover's own key: CRT");
  verify(ctx, statement, pr);
});

test(
  "pi-log* at real size with fresh 1536-bit safe primes (slow tier)",
  { skip: !SLOW },
  async () => {
    const [p1, q1, p2, q2] = await Promise.all([1, 2, 3, 4].map(() => platformSafePrime(1536)));
    const key = new PaillierSecretKey(p1, q1);
    const { N, s, t } = generateRingPedersen(p2, q2);
    const x = randomSigned(ELL);
    const [C, rho] = key.encrypt(x);
    const st: piLog.Statement = {
      N0: key.N,
      C,
      X: Gamma.multiply(mod(x, Q)),
      B: Gamma,
      aux: { N, s, t },
    };
    const pr = piLog.decode(
      JSON.parse(JSON.stringify(piLog.encode(piLog.prove(ctx, st, { x, rho, sk: key })))),
    );
    verify(ctx, st, pr);
    rejects(
      "tampered",
      () => verify(ctx, st, { ...pr, z1: pr.z1 + 1n }),
      "verification-failed",
    );
  },
);
