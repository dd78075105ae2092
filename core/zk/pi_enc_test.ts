import "../../testing/setup.ts";
import { SLOW } from "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { fixturePaillier } from "../../testing/fixtures/keys.ts";
import { platformSafePrime } from "../../platform/mod.ts";
import { ProofError, type ProofErrorCode } from "../errors.ts";
import { bitLength, randomSigned, randomUnit } from "../math/mod.ts";
import { PaillierSecretKey } from "../paillier.ts";
import { ELL, EPSILON } from "../params.ts";
import { generateRingPedersen, type RingPedersenParams } from "../ring_pedersen.ts";
import * as piEnc from "./pi_enc.ts";
import { HUGE, publicRp, rejects } from "../../testing/zk_helpers.ts";
import { CHALLENGE_Q, maskBound } from "./_common.ts";
import {
  agreeBothPaths,
  bothPaths,
  expCounts,
  recordingRandomizers,
} from "../../testing/zk_paths.ts";

const utf8 = new TextEncoder();
const ctx = { sid: utf8.encode("pi-enc test session"), prover: 1 };
const proverKey = fixturePaillier(1);
const N0 = proverKey.N;
const verifierKey = fixturePaillier(0);

const aux = publicRp(0);
const Nhat = aux.N;

/**
 * piEnc.verify by the public path and, with the verifier's key (the owner of N-hat),
 * by CRT: both must agree (testing/zk_paths.ts); throws what the public path throws.
 */
function verify(c: typeof ctx, st: piEnc.Statement, pr: piEnc.Proof): void {
  bothPaths(() => piEnc.verify(c, st, pr), () => piEnc.verify(c, st, pr, { verifierKey }));
}

function instance(k: bigint = randomSigned(ELL)) {
  const [K, rho] = proverKey.encrypt(k);
  const statement: piEnc.Statement = { N0, K, aux };
  return { statement, witness: { k, rho, sk: proverKey } };
}

const honest = instance();
const statement = honest.statement;
const proof = piEnc.prove(ctx, statement, honest.witness);
const FIELDS = ["S", "A", "C", "z1", "z2", "z3"] as const;
const label = (v: bigint) => `${v < 0n ? "-" : ""}${bitLength(v)}-bit`;

test("pi-enc proves and verifies honest statements, with and without the CRT key", () => {
  verify(ctx, statement, proof);
  const noCrt = piEnc.prove(ctx, statement, { k: honest.witness.k, rho: honest.witness.rho });
  verify(ctx, statement, noCrt);
  const edge = 1n << BigInt(ELL);
  for (const k of [0n, edge, -edge]) {
    const { statement: st, witness } = instance(k);
    verify(ctx, st, piEnc.prove(ctx, st, witness));
  }
});

test("pi-enc prover refuses a secret key that is not the key of N0", () => {
  assert.throws(
    () => piEnc.prove(ctx, statement, { ...honest.witness, sk: verifierKey }),
    RangeError,
  );
});

test("pi-enc encode/decode round trip through JSON is exact and canonical", () => {
  const wire = JSON.parse(JSON.stringify(piEnc.encode(proof)));
  for (const f of FIELDS) assert.match(wire[f], /^-?([0-9a-f]{2})+$/, f);
  const back = piEnc.decode(wire);
  assert.deepEqual(back, proof);
  verify(ctx, statement, back);
  const neg = piEnc.encode({ ...proof, z1: -0x1234n, z3: -1n });
  assert.equal(neg.z1, "-1234");
  assert.equal(neg.z3, "-01");
  assert.equal(piEnc.decode(neg).z1, -0x1234n);
});

test("pi-enc rejects a proof with any single field tampered", () => {
  for (const f of FIELDS) {
    rejects(`${f}+1`, () => verify(ctx, statement, { ...proof, [f]: proof[f] + 1n }));
  }
  rejects("S<->C", () => verify(ctx, statement, { ...proof, S: proof.C, C: proof.S }));
});

test("pi-enc binds the proof to the session id and the prover index", () => {
  const otherSid = { sid: utf8.encode("another session"), prover: 1 };
  rejects("sid", () => verify(otherSid, statement, proof), "verification-failed");
  const otherProver = { sid: ctx.sid, prover: 0 };
  rejects("prover", () => verify(otherProver, statement, proof), "verification-failed");
});

test("pi-enc rejects the proof for another ciphertext, modulus or ring-Pedersen parameters", () => {
  const [K2] = proverKey.encrypt(honest.witness.k);
  rejects(
    "other K",
    () => verify(ctx, { ...statement, K: K2 }, proof),
    "verification-failed",
  );
  const N0b = fixturePaillier(2).N;
  rejects("other N0", () => verify(ctx, { ...statement, N0: N0b }, proof));
  rejects("other aux", () => verify(ctx, { ...statement, aux: publicRp(2) }, proof));
  rejects(
    "s<->t",
    () => verify(ctx, { ...statement, aux: { ...aux, s: aux.t, t: aux.s } }, proof),
  );
});

test("pi-enc challenge depends on the context, every statement value and the first message", () => {
  const e = piEnc.challenge(ctx, statement, proof);
  const variants: Array<[string, bigint]> = [
    ["sid", piEnc.challenge({ ...ctx, sid: utf8.encode("x") }, statement, proof)],
    ["prover", piEnc.challenge({ ...ctx, prover: 2 }, statement, proof)],
    ["N0", piEnc.challenge(ctx, { ...statement, N0: N0 + 2n }, proof)],
    ["K", piEnc.challenge(ctx, { ...statement, K: statement.K + 1n }, proof)],
    ["N-hat", piEnc.challenge(ctx, { ...statement, aux: { ...aux, N: Nhat + 2n } }, proof)],
    ["s", piEnc.challenge(ctx, { ...statement, aux: { ...aux, s: aux.s + 1n } }, proof)],
    ["t", piEnc.challenge(ctx, { ...statement, aux: { ...aux, t: aux.t + 1n } }, proof)],
    ["S", piEnc.challenge(ctx, statement, { ...proof, S: proof.S + 1n })],
    ["A", piEnc.challenge(ctx, statement, { ...proof, A: proof.A + 1n })],
    ["C", piEnc.challenge(ctx, statement, { ...proof, C: proof.C + 1n })],
  ];
  for (const [what, e2] of variants) assert.notEqual(e2, e, what);
  const bound = CHALLENGE_Q;
  assert.ok(e >= -bound && e <= bound);
});

test("pi-enc z1 range is exact: +-2^(l+eps) passes, 2^(l+eps) + 1 is out of range", () => {
  const B = 1n << BigInt(ELL + EPSILON);
  for (const z1 of [B, -B]) piEnc.validate(statement, { ...proof, z1 });
  for (const z1 of [B + 1n, -B - 1n]) {
    rejects(
      `validate z1=${z1 > 0n ? "" : "-"}(B+1)`,
      () => piEnc.validate(statement, { ...proof, z1 }),
      "out-of-range",
    );
    rejects("verify z1", () => verify(ctx, statement, { ...proof, z1 }), "out-of-range");
  }
});

test("pi-enc z3 cap is the honest bound exactly: bound passes, bound + 1 is out of range", () => {
  const B = maskBound(Nhat);
  assert.equal(B, ((1n << BigInt(EPSILON)) + CHALLENGE_Q) * (1n << BigInt(ELL)) * Nhat);
  for (const z3 of [B, -B]) piEnc.validate(statement, { ...proof, z3 });
  for (const z3 of [B + 1n, -B - 1n]) {
    rejects("z3", () => verify(ctx, statement, { ...proof, z3 }), "out-of-range");
  }
});

test("pi-enc rejects degenerate values in every proof field, in bounded time", () => {
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
  const cases: Record<(typeof FIELDS)[number], Array<[bigint, ProofErrorCode]>> = {
    S: modNhat,
    C: modNhat,
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
    z3: [[0n, VF], [1n, VF], [Nhat, VF], [N0 + 1n, VF], [HUGE, OUT], [-HUGE, OUT]],
  };
  for (const f of FIELDS) {
    for (const [v, code] of cases[f]) {
      rejects(`${f}=${label(v)}`, () => verify(ctx, statement, { ...proof, [f]: v }), code);
    }
  }
});

test("pi-enc rejects degenerate statements before any arithmetic", () => {
  const N0sq = N0 * N0;
  const p0 = proverKey.p;
  for (const K of [0n, N0, N0sq, N0sq + 1n, p0, -1n, HUGE]) {
    rejects("K", () => verify(ctx, { ...statement, K }, proof), "out-of-range");
  }
  const pHat = verifierKey.p;
  const badAux: RingPedersenParams[] = [
    { ...aux, s: 1n },
    { ...aux, t: 1n },
    { ...aux, s: 0n },
    { ...aux, s: aux.t },
    { ...aux, s: Nhat },
    { ...aux, t: pHat },
    { ...aux, s: HUGE },
  ];
  for (const a of badAux) {
    rejects("aux", () => verify(ctx, { ...statement, aux: a }, proof), "out-of-range");
  }
  const badModuli = [N0 + 1n, N0 >> 2n, (1n << 3072n) + 1n, 0n, -N0, HUGE];
  for (const N of badModuli) {
    rejects("N0", () => verify(ctx, { ...statement, N0: N }, proof), "bad-modulus");
    rejects(
      "N-hat",
      () => verify(ctx, { ...statement, aux: { ...aux, N } }, proof),
      "bad-modulus",
    );
  }
});

test("pi-enc decode caps every integer by length before parsing (1 MB and cap + 1 byte)", () => {
  const wire = piEnc.encode(proof);
  const megabyte = "ab".repeat(1 << 20);
  for (const f of FIELDS) {
    for (const v of [megabyte, "-" + megabyte]) {
      assert.throws(
        () => piEnc.decode({ ...wire, [f]: v }),
        (e: unknown) =>
          e instanceof ProofError && e.code === "malformed" && /at most/.test(e.message),
        f,
      );
    }
  }
  // Field caps: z1 fits in 61 bytes (2^486 itself), one byte more is refused unparsed.
  const z1Max = "01" + "00".repeat(60);
  assert.equal(piEnc.decode({ ...wire, z1: z1Max }).z1, 1n << 480n);
  assert.throws(() => piEnc.decode({ ...wire, z1: "01" + "00".repeat(61) }), ProofError);
  assert.throws(() => piEnc.decode({ ...wire, z2: "01" + "00".repeat(384) }), ProofError);
  assert.throws(() => piEnc.decode({ ...wire, A: "01" + "00".repeat(768) }), ProofError);
});

test("pi-enc decode refuses malformed wire data", () => {
  const wire = piEnc.encode(proof);
  const { z3: _z3, ...missing } = wire;
  const bad: unknown[] = [
    null,
    undefined,
    42,
    "proof",
    [],
    [wire],
    missing,
    { ...wire, extra: "00" },
    { ...wire, S: 5 },
    { ...wire, S: null },
    { ...wire, S: "" },
    { ...wire, S: "ABCD" },
    { ...wire, S: "abc" },
    { ...wire, S: "00ab" },
    { ...wire, S: "0x12" },
    { ...wire, S: "-12" },
    { ...wire, z1: "-00" },
    { ...wire, z1: "--12" },
    { ...wire, z1: " 12" },
  ];
  for (const v of bad) {
    assert.throws(
      () => piEnc.decode(v),
      (e: unknown) => e instanceof ProofError && e.code === "malformed",
      JSON.stringify(v)?.slice(0, 40),
    );
  }
});

test("pi-enc: a prover whose k lies outside +-2^(l+eps) produces a proof the verifier rejects", () => {
  const big = 1n << BigInt(ELL + EPSILON + 2);
  for (const k of [big, -big, N0 - 1n]) {
    const { statement: st, witness } = instance(k);
    const bad = piEnc.prove(ctx, st, witness);
    rejects("k out of range", () => verify(ctx, st, bad), "out-of-range");
  }
  // A wrong nonce (the statement does not hold) fails the Paillier equation.
  const wrongRho = piEnc.prove(ctx, statement, { k: honest.witness.k, rho: 2n });
  rejects("wrong rho", () => verify(ctx, statement, wrongRho), "verification-failed");
});

test("pi-enc by CRT: the verifier's own N-hat (and N0) without public exponentiations, counted", () => {
  const plain = expCounts(() => piEnc.verify(ctx, statement, proof));
  const crt = expCounts(() => piEnc.verify(ctx, statement, proof, { verifierKey }));
  assert.equal(plain.get("public:3072"), 3, "s^z1, t^z3, S^e modulo N-hat");
  assert.equal(crt.get("public:3072"), undefined, "none modulo N-hat by CRT");
  assert.equal(crt.get("secret:1536"), 6, "the same three modulo p and modulo q");
  assert.equal(crt.get("public:6144"), plain.get("public:6144"), "N0 is the prover's: public");
  // A verifier that owns N0 (the prover checking its own proof) does the N0^2 equation by CRT.
  const own0 = expCounts(() => piEnc.verify(ctx, statement, proof, { verifierKey: proverKey }));
  assert.equal(own0.get("public:6144"), undefined);
  assert.equal(own0.get("secret:3072"), 4, "K^e and z2^N0 modulo p^2 and q^2");
});

test("pi-enc by CRT agrees with the public path on random and edge inputs", () => {
  const N2 = N0 * N0;
  const agree = (pr: piEnc.Proof) => {
    for (const sk of [verifierKey, proverKey]) {
      agreeBothPaths((o) => piEnc.verify(ctx, statement, pr, o), sk);
    }
  };
  for (let k = 0; k < 2; k++) {
    const r: piEnc.Proof = {
      S: randomUnit(Nhat),
      A: randomUnit(N2),
      C: randomUnit(Nhat),
      z1: randomSigned(ELL + EPSILON),
      z2: randomUnit(N0),
      z3: randomSigned(bitLength(maskBound(Nhat)) - 1),
    };
    for (const f of FIELDS) agree({ ...proof, [f]: r[f] });
  }
  const B = maskBound(Nhat);
  for (
    const e of [
      { z1: 0n },
      { z3: 0n },
      { z1: 0n, z3: 0n },
      { S: 1n },
      { S: Nhat - 1n },
      { C: Nhat - 1n },
      { z2: 1n },
      { z2: N0 - 1n },
      { A: N2 - 1n },
      { z3: B },
      { z3: -B },
    ]
  ) agree({ ...proof, ...e });
  // Honest proofs of edge plaintexts, both owners.
  for (const kk of [0n, 1n, -1n, 1n << BigInt(ELL), -(1n << BigInt(ELL))]) {
    const { statement: st, witness } = instance(kk);
    const pr = piEnc.prove(ctx, st, witness);
    piEnc.verify(ctx, st, pr, { verifierKey });
    piEnc.verify(ctx, st, pr, { verifierKey: proverKey });
  }
});

test("pi-enc prover takes the randomizer of A from the source it is given, once", () => {
  const { source, taken } = recordingRandomizers();
  const pr = piEnc.prove(ctx, statement, honest.witness, undefined, { randomizers: source });
  assert.deepEqual(taken.map((t) => [t.N, t.own]), [[N0, true]], "the prover's own key: CRT");
  verify(ctx, statement, pr);
});

test(
  "pi-enc at real size with fresh 1536-bit safe primes (slow tier)",
  { skip: !SLOW },
  async () => {
    const [p1, q1, p2, q2] = await Promise.all([1, 2, 3, 4].map(() => platformSafePrime(1536)));
    const key = new PaillierSecretKey(p1, q1);
    const { N, s, t } = generateRingPedersen(p2, q2);
    const k = randomSigned(ELL);
    const [K, rho] = key.encrypt(k);
    const st: piEnc.Statement = { N0: key.N, K, aux: { N, s, t } };
    const pr = piEnc.decode(
      JSON.parse(JSON.stringify(piEnc.encode(piEnc.prove(ctx, st, { k, rho, sk: key })))),
    );
    verify(ctx, st, pr);
    rejects(
      "tampered",
      () => verify(ctx, st, { ...pr, z1: pr.z1 + 1n }),
      "verification-failed",
    );
  },
);
