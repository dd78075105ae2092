import "../../testing/setup.ts";
import { SLOW } from "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { fixturePaillier } from "../../testing/fixtures/keys.ts";
import { platformSafePrime } from "../../platform/mod.ts";
import { ProofError, type ProofErrorCode } from "../errors.ts";
import { bitLength, mod, randomBelow, randomSigned, randomUnit } from "../math/mod.ts";
import { PaillierSecretKey } from "../paillier.ts";
import { ELL, ELL_PRIME, EPSILON, Point, Q } from "../params.ts";
import { generateRingPedersen } from "../ring_pedersen.ts";
import * as piAffG from "./pi_aff_g.ts";
import { HUGE, publicRp, rejects } from "../../testing/zk_helpers.ts";
import { CHALLENGE_Q, maskBound } from "./_common.ts";
import {
  agreeBothPaths,
  bothPaths,
  expCounts,
  recordingRandomizers,
} from "../../testing/zk_paths.ts";

const utf8 = new TextEncoder();
const ctx = { sid: utf8.encode("pi-aff-g test session"), prover: 1 };
/** The verifier's Paillier key (N0: C = K_j and D live under it) and ring-Pedersen parameters. */
const verifierKey = fixturePaillier(0);
const N0 = verifierKey.N;
/** The prover's Paillier key (N1: Y lives under it). */
const proverKey = fixturePaillier(1);
const N1 = proverKey.N;

const aux = publicRp(0);
const Nhat = aux.N;

/**
 * piAffG.verify by the public path and, with the verifier's key (the owner of N-hat, and of N0),
 * by CRT: both must agree (testing/zk_paths.ts); throws what the public path throws.
 */
function verify(c: typeof ctx, st: piAffG.Statement, pr: piAffG.Proof): void {
  bothPaths(() => piAffG.verify(c, st, pr), () => piAffG.verify(c, st, pr, { verifierKey }));
}
/** The verifier's ciphertext C = K_j = Enc_N0(k_j). */
const [C] = verifierKey.encrypt(randomBelow(Q));

/** An MtA instance: D = x (.) C (+) Enc_N0(y; rho), Y = Enc_N1(y; rho_y), X = x G. */
function instance(x: bigint = randomBelow(Q), y: bigint = randomSigned(ELL_PRIME)) {
  const pk0 = verifierKey.publicKey;
  const [, rho] = pk0.encrypt(0n);
  const D = pk0.add(pk0.mul(C, x), pk0.encryptWithNonce(y, rho));
  const [Y, rhoY] = proverKey.encrypt(y);
  const statement: piAffG.Statement = { N0, N1, C, D, Y, X: Point.BASE.multiply(mod(x, Q)), aux };
  return { statement, witness: { x, y, rho, rhoY, sk: proverKey } };
}

const honest = instance();
const statement = honest.statement;
const proof = piAffG.prove(ctx, statement, honest.witness);
const INT_FIELDS = ["A", "By", "E", "S", "F", "T", "z1", "z2", "z3", "z4", "w", "wy"] as const;
const label = (v: bigint) => `${v < 0n ? "-" : ""}${bitLength(v)}-bit`;
/** Compressed encodings that are not points: x^3 + 7 a non-square (x = 5), and x >= p. */
const OFF_CURVE_HEX = ["02" + "05".padStart(64, "0"), "03" + "ff".repeat(32)];
/** An in-memory point object that is not on the curve. */
const OFF_CURVE = new Point(1n, 1n, 1n);

test("pi-aff-g proves and verifies honest MtA statements, edges of the ranges included", () => {
  verify(ctx, statement, proof);
  const l = 1n << BigInt(ELL);
  const lp = 1n << BigInt(ELL_PRIME);
  for (const [x, y] of [[l, -lp], [-l, lp], [1n, 0n]] as const) {
    const { statement: st, witness } = instance(x, y);
    verify(ctx, st, piAffG.prove(ctx, st, witness));
  }
  const { sk: _sk, ...noCrt } = honest.witness;
  verify(ctx, statement, piAffG.prove(ctx, statement, noCrt));
});

test("pi-aff-g prover refuses a secret key that is not the key of N1", () => {
  assert.throws(
    () => piAffG.prove(ctx, statement, { ...honest.witness, sk: verifierKey }),
    RangeError,
  );
});

test("pi-aff-g encode/decode round trip through JSON is exact and canonical", () => {
  const wire = JSON.parse(JSON.stringify(piAffG.encode(proof)));
  for (const f of INT_FIELDS) assert.match(wire[f], /^-?([0-9a-f]{2})+$/, f);
  assert.match(wire.Bx, /^0[23][0-9a-f]{64}$/);
  const back = piAffG.decode(wire);
  assert.equal(back.Bx.equals(proof.Bx), true);
  assert.deepEqual({ ...back, Bx: null }, { ...proof, Bx: null });
  verify(ctx, statement, back);
});

test("pi-aff-g rejects a proof with any single field tampered", () => {
  for (const f of INT_FIELDS) {
    rejects(`${f}+1`, () => verify(ctx, statement, { ...proof, [f]: proof[f] + 1n }));
  }
  rejects("Bx+G", () => verify(ctx, statement, { ...proof, Bx: proof.Bx.add(Point.BASE) }));
  rejects("E<->F", () => verify(ctx, statement, { ...proof, E: proof.F, F: proof.E }));
  rejects("w<->wy", () => verify(ctx, statement, { ...proof, w: proof.wy, wy: proof.w }));
});

test("pi-aff-g binds the proof to the session id and the prover index", () => {
  const otherSid = { sid: utf8.encode("another session"), prover: 1 };
  rejects("sid", () => verify(otherSid, statement, proof), "verification-failed");
  rejects(
    "prover",
    () => verify({ ...ctx, prover: 0 }, statement, proof),
    "verification-failed",
  );
});

test("pi-aff-g rejects the proof for another ciphertext, point, modulus or parameters", () => {
  const VF = "verification-failed";
  const [C2] = verifierKey.encrypt(1n);
  const [Y2] = proverKey.encrypt(honest.witness.y);
  const D2 = verifierKey.publicKey.add(statement.D, C);
  rejects("other C", () => verify(ctx, { ...statement, C: C2 }, proof), VF);
  rejects("other D", () => verify(ctx, { ...statement, D: D2 }, proof), VF);
  rejects("other Y", () => verify(ctx, { ...statement, Y: Y2 }, proof), VF);
  rejects(
    "other X",
    () => verify(ctx, { ...statement, X: statement.X.add(Point.BASE) }, proof),
    VF,
  );
  rejects("N0<->N1", () => verify(ctx, { ...statement, N0: N1, N1: N0 }, proof));
  rejects("other N1", () => verify(ctx, { ...statement, N1: fixturePaillier(2).N }, proof));
  rejects("other aux", () => verify(ctx, { ...statement, aux: publicRp(2) }, proof));
  // The prover's own parameters instead of the verifier's.
  rejects("prover's aux", () => verify(ctx, { ...statement, aux: publicRp(1) }, proof));
});

test("pi-aff-g challenge depends on the context, every statement value and the first message", () => {
  const e = piAffG.challenge(ctx, statement, proof);
  const G = Point.BASE;
  const st = statement;
  const variants: Array<[string, bigint]> = [
    ["sid", piAffG.challenge({ ...ctx, sid: utf8.encode("x") }, st, proof)],
    ["prover", piAffG.challenge({ ...ctx, prover: 2 }, st, proof)],
    ["N0", piAffG.challenge(ctx, { ...st, N0: N0 + 2n }, proof)],
    ["N1", piAffG.challenge(ctx, { ...st, N1: N1 + 2n }, proof)],
    ["C", piAffG.challenge(ctx, { ...st, C: st.C + 1n }, proof)],
    ["D", piAffG.challenge(ctx, { ...st, D: st.D + 1n }, proof)],
    ["Y", piAffG.challenge(ctx, { ...st, Y: st.Y + 1n }, proof)],
    ["X", piAffG.challenge(ctx, { ...st, X: st.X.add(G) }, proof)],
    ["N-hat", piAffG.challenge(ctx, { ...st, aux: { ...aux, N: Nhat + 2n } }, proof)],
    ["s", piAffG.challenge(ctx, { ...st, aux: { ...aux, s: aux.s + 1n } }, proof)],
    ["t", piAffG.challenge(ctx, { ...st, aux: { ...aux, t: aux.t + 1n } }, proof)],
    ["Bx", piAffG.challenge(ctx, st, { ...proof, Bx: proof.Bx.add(G) })],
  ];
  for (const f of ["A", "By", "E", "S", "F", "T"] as const) {
    variants.push([f, piAffG.challenge(ctx, st, { ...proof, [f]: proof[f] + 1n })]);
  }
  for (const [what, e2] of variants) assert.notEqual(e2, e, what);
  assert.ok(e >= -CHALLENGE_Q && e <= CHALLENGE_Q);
});

test("pi-aff-g ranges are exact: z1 in +-2^(l+eps), z2 in +-2^(l'+eps), bound + 1 out of range", () => {
  const B1 = 1n << BigInt(ELL + EPSILON);
  const B2 = 1n << BigInt(ELL_PRIME + EPSILON);
  for (const z1 of [B1, -B1]) piAffG.validate(statement, { ...proof, z1 });
  for (const z2 of [B2, -B2]) piAffG.validate(statement, { ...proof, z2 });
  for (const z1 of [B1 + 1n, -B1 - 1n]) {
    rejects("validate z1", () => piAffG.validate(statement, { ...proof, z1 }), "out-of-range");
    rejects("verify z1", () => verify(ctx, statement, { ...proof, z1 }), "out-of-range");
  }
  for (const z2 of [B2 + 1n, -B2 - 1n]) {
    rejects("validate z2", () => piAffG.validate(statement, { ...proof, z2 }), "out-of-range");
    rejects("verify z2", () => verify(ctx, statement, { ...proof, z2 }), "out-of-range");
  }
  // z2 at the z1 bound + 1 is inside its own, wider range.
  piAffG.validate(statement, { ...proof, z2: B1 + 1n });
});

test("pi-aff-g z3, z4 caps are the honest bound exactly: bound passes, bound + 1 is out of range", () => {
  const B = maskBound(Nhat);
  for (const f of ["z3", "z4"] as const) {
    for (const v of [B, -B]) piAffG.validate(statement, { ...proof, [f]: v });
    for (const v of [B + 1n, -B - 1n]) {
      rejects(f, () => verify(ctx, statement, { ...proof, [f]: v }), "out-of-range");
    }
  }
});

test("pi-aff-g rejects degenerate values in every proof field, in bounded time", () => {
  const VF = "verification-failed";
  const OUT = "out-of-range";
  const units = (N: bigint, p: bigint): Array<[bigint, ProofErrorCode]> => [
    [0n, OUT],
    [1n, VF],
    [N - 1n, VF],
    [N, OUT],
    [N + 1n, OUT],
    [p, OUT],
    [-1n, OUT],
    [HUGE, OUT],
  ];
  const ciphertexts = (N: bigint, p: bigint): Array<[bigint, ProofErrorCode]> => [
    [0n, OUT],
    [1n, VF],
    [N - 1n, VF],
    [N, OUT],
    [N + 1n, VF],
    [N * N, OUT],
    [N * N + 1n, OUT],
    [p, OUT],
    [HUGE, OUT],
  ];
  const signed: Array<[bigint, ProofErrorCode]> = [
    [0n, VF],
    [1n, VF],
    [-1n, VF],
    [N0, OUT],
    [N0 + 1n, OUT],
    [HUGE, OUT],
    [-HUGE, OUT],
  ];
  const modNhat = units(Nhat, verifierKey.p);
  const cases: Record<(typeof INT_FIELDS)[number], Array<[bigint, ProofErrorCode]>> = {
    A: ciphertexts(N0, verifierKey.p),
    By: ciphertexts(N1, proverKey.q),
    E: modNhat,
    S: modNhat,
    F: modNhat,
    T: modNhat,
    z1: signed,
    z2: signed,
    z3: [[0n, VF], [1n, VF], [Nhat, VF], [HUGE, OUT], [-HUGE, OUT]],
    z4: [[0n, VF], [-1n, VF], [Nhat + 1n, VF], [HUGE, OUT], [-HUGE, OUT]],
    w: units(N0, verifierKey.q),
    wy: units(N1, proverKey.p),
  };
  for (const f of INT_FIELDS) {
    for (const [v, code] of cases[f]) {
      rejects(`${f}=${label(v)}`, () => verify(ctx, statement, { ...proof, [f]: v }), code);
    }
  }
  for (const P of [Point.ZERO, OFF_CURVE]) {
    rejects("Bx", () => verify(ctx, statement, { ...proof, Bx: P }), OUT);
  }
  rejects("Bx=G", () => verify(ctx, statement, { ...proof, Bx: Point.BASE }), VF);
});

test("pi-aff-g rejects degenerate statements: identity or off-curve X, non-units, bad moduli", () => {
  const OUT = "out-of-range";
  for (const X of [Point.ZERO, OFF_CURVE]) {
    rejects("X", () => verify(ctx, { ...statement, X }, proof), OUT);
  }
  const N0sq = N0 * N0;
  const N1sq = N1 * N1;
  for (const v of [0n, N0, N0sq, verifierKey.p, -1n, HUGE]) {
    rejects("C", () => verify(ctx, { ...statement, C: v }, proof), OUT);
    rejects("D", () => verify(ctx, { ...statement, D: v }, proof), OUT);
  }
  for (const Y of [0n, N1, N1sq, proverKey.p, HUGE]) {
    rejects("Y", () => verify(ctx, { ...statement, Y }, proof), OUT);
  }
  for (const a of [{ ...aux, s: 1n }, { ...aux, t: aux.s }, { ...aux, s: verifierKey.q }]) {
    rejects("aux", () => verify(ctx, { ...statement, aux: a }, proof), OUT);
  }
  for (const N of [N0 + 1n, N0 >> 2n, 0n, HUGE]) {
    rejects("N0", () => verify(ctx, { ...statement, N0: N }, proof), "bad-modulus");
    rejects("N1", () => verify(ctx, { ...statement, N1: N }, proof), "bad-modulus");
    rejects(
      "N-hat",
      () => verify(ctx, { ...statement, aux: { ...aux, N } }, proof),
      "bad-modulus",
    );
  }
});

test("pi-aff-g decode refuses 1 MB integers, the identity, off-curve points and malformed data", () => {
  const wire = piAffG.encode(proof);
  const megabyte = "ab".repeat(1 << 20);
  const malformed = (v: unknown, what: string) =>
    assert.throws(
      () => piAffG.decode(v),
      (e: unknown) => e instanceof ProofError && e.code === "malformed",
      what,
    );
  for (const f of INT_FIELDS) {
    assert.throws(
      () => piAffG.decode({ ...wire, [f]: "-" + megabyte }),
      (e: unknown) =>
        e instanceof ProofError && e.code === "malformed" && /at most/.test(e.message),
      f,
    );
  }
  for (const Bx of ["00", "", ...OFF_CURVE_HEX, "04" + "00".repeat(64), megabyte]) {
    malformed({ ...wire, Bx }, `Bx=${Bx.slice(0, 8)}`);
  }
  // z2 cap: 2^(l'+eps) fits in 135 bytes; one byte more is refused unparsed.
  assert.equal(piAffG.decode({ ...wire, z2: "01" + "00".repeat(134) }).z2, 1n << 1072n);
  malformed({ ...wire, z2: "01" + "00".repeat(135) }, "z2 cap");
  malformed({ ...wire, z1: "01" + "00".repeat(61) }, "z1 cap");
  const { wy: _wy, ...missing } = wire;
  for (const v of [null, 7, "x", [], missing, { ...wire, more: "01" }, { ...wire, Bx: 2 }]) {
    malformed(v, JSON.stringify(v)?.slice(0, 30) ?? "undefined");
  }
});

test("pi-aff-g: a prover whose x or y lies outside its range produces a proof the verifier rejects", () => {
  const bigX = 1n << BigInt(ELL + EPSILON + 2);
  const bigY = 1n << BigInt(ELL_PRIME + EPSILON + 2);
  for (const [x, y] of [[bigX, 5n], [-bigX, 5n], [5n, bigY], [5n, -bigY]] as const) {
    const { statement: st, witness } = instance(x, y);
    const bad = piAffG.prove(ctx, st, witness);
    rejects(`x=${label(x)} y=${label(y)}`, () => verify(ctx, st, bad), "out-of-range");
  }
  // X = x G does not match the x inside D: the group equation fails.
  const st = { ...statement, X: statement.X.add(Point.BASE) };
  rejects(
    "X mismatch",
    () => verify(ctx, st, piAffG.prove(ctx, st, honest.witness)),
    "verification-failed",
  );
  // Y encrypts another y than D: the N1 equation or the commitments fail.
  const [Y2, rhoY2] = proverKey.encrypt(honest.witness.y + 1n);
  const st2 = { ...statement, Y: Y2 };
  const pr2 = piAffG.prove(ctx, st2, { ...honest.witness, rhoY: rhoY2 });
  rejects("Y mismatch", () => verify(ctx, st2, pr2), "verification-failed");
});

test("pi-aff-g by CRT: the verifier's own N0^2 and N-hat without public exponentiations, counted", () => {
  const plain = expCounts(() => piAffG.verify(ctx, statement, proof));
  const crt = expCounts(() => piAffG.verify(ctx, statement, proof, { verifierKey }));
  assert.equal(plain.get("public:3072"), 6, "s^z1, t^z3, S^e, s^z2, t^z4, T^e modulo N-hat");
  assert.equal(plain.get("public:6144"), 5, "C^z1, w^N0, D^e; w_y^N1, Y^e");
  assert.equal(crt.get("public:3072"), undefined, "none modulo N-hat by CRT");
  assert.equal(crt.get("secret:1536"), 12, "the six modulo p and modulo q");
  assert.equal(crt.get("public:6144"), 2, "only the prover's N1^2: w_y^N1, Y^e");
  assert.equal(crt.get("secret:3072"), 6, "C^z1, w^N0, D^e modulo p^2 and q^2");
  // A verifier that is the owner of N1 does that equation by CRT instead.
  const own1 = expCounts(() => piAffG.verify(ctx, statement, proof, { verifierKey: proverKey }));
  assert.equal(own1.get("public:6144"), 3);
  assert.equal(own1.get("secret:3072"), 4);
});

test("pi-aff-g by CRT agrees with the public path on random and edge inputs", () => {
  const both = (st: piAffG.Statement, pr: piAffG.Proof, sk: PaillierSecretKey) =>
    agreeBothPaths((o) => piAffG.verify(ctx, st, pr, o), sk);
  const N0sq = N0 * N0;
  const N1sq = N1 * N1;
  const mask = bitLength(maskBound(Nhat)) - 1;
  const random = () => ({
    A: randomUnit(N0sq),
    By: randomUnit(N1sq),
    E: randomUnit(Nhat),
    S: randomUnit(Nhat),
    F: randomUnit(Nhat),
    T: randomUnit(Nhat),
    z1: randomSigned(ELL + EPSILON),
    z2: randomSigned(ELL_PRIME + EPSILON),
    z3: randomSigned(mask),
    z4: randomSigned(mask),
    w: randomUnit(N0),
    wy: randomUnit(N1),
  });
  // The key that changes the path of a field's equation: N1's owner for B_y, w_y; else N0's.
  const keyFor = (e: object) => "By" in e || "wy" in e ? proverKey : verifierKey;
  const r = random();
  for (const f of INT_FIELDS) both(statement, { ...proof, [f]: r[f] }, keyFor({ [f]: 0 }));
  const edges: Partial<piAffG.Proof>[] = [
    { z1: 0n },
    { z2: 0n },
    { z3: 0n, z4: 0n },
    { S: 1n },
    { T: Nhat - 1n },
    { E: Nhat - 1n },
    { w: 1n },
    { w: N0 - 1n },
    { wy: N1 - 1n },
    { A: N0sq - 1n },
    { By: N1sq - 1n },
    { z3: maskBound(Nhat), z4: -maskBound(Nhat) },
  ];
  for (const e of edges) both(statement, { ...proof, ...e }, keyFor(e));
  const l = 1n << BigInt(ELL);
  const lp = 1n << BigInt(ELL_PRIME);
  for (const [x, y] of [[l, -lp], [-l, lp], [1n, 0n]] as const) {
    const { statement: st, witness } = instance(x, y);
    const pr = piAffG.prove(ctx, st, witness);
    piAffG.verify(ctx, st, pr, { verifierKey });
    piAffG.verify(ctx, st, pr, { verifierKey: proverKey });
  }
});

test("pi-aff-g prover takes the randomizers of A (N0) and B_y (N1, its own) from its source, once each", () => {
  const { source, taken } = recordingRandomizers();
  const pr = piAffG.prove(ctx, statement, honest.witness, undefined, { randomizers: source });
  assert.deepEqual(taken.map((t) => [t.N, t.own]), [[N0, false], [N1, true]]);
  verify(ctx, statement, pr);
});

test(
  "pi-aff-g at real size with fresh 1536-bit safe primes (slow tier)",
  { skip: !SLOW },
  async () => {
    const [p0, q0, p1, q1] = await Promise.all([1, 2, 3, 4].map(() => platformSafePrime(1536)));
    const vKey = new PaillierSecretKey(p0, q0);
    const pKey = new PaillierSecretKey(p1, q1);
    const { N, s, t } = generateRingPedersen(p0, q0);
    const pk0 = vKey.publicKey;
    const [Cj] = vKey.encrypt(randomBelow(Q));
    const x = randomBelow(Q);
    const y = randomSigned(ELL_PRIME);
    const [, rho] = pk0.encrypt(0n);
    const D = pk0.add(pk0.mul(Cj, x), pk0.encryptWithNonce(y, rho));
    const [Y, rhoY] = pKey.encrypt(y);
    const st: piAffG.Statement = {
      N0: vKey.N,
      N1: pKey.N,
      C: Cj,
      D,
      Y,
      X: Point.BASE.multiply(x),
      aux: { N, s, t },
    };
    const made = piAffG.prove(ctx, st, { x, y, rho, rhoY, sk: pKey });
    const pr = piAffG.decode(JSON.parse(JSON.stringify(piAffG.encode(made))));
    verify(ctx, st, pr);
    rejects(
      "tampered",
      () => verify(ctx, st, { ...pr, z2: pr.z2 + 1n }),
      "verification-failed",
    );
  },
);
