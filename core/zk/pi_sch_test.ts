import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { ProofError, type ProofErrorCode } from "../errors.ts";
import { mod, randomBelow } from "../math/mod.ts";
import { Point, Q } from "../params.ts";
import * as piSch from "./pi_sch.ts";
import { HUGE, rejects } from "../../testing/zk_helpers.ts";

const utf8 = new TextEncoder();
const ctx = { sid: utf8.encode("pi-sch test session"), prover: 0 };
const x = randomBelow(Q - 1n) + 1n;
const rid = utf8.encode("rid: 48 bytes of joint randomness, xor of all..");
const statement: piSch.Statement = { X: Point.BASE.multiply(x), rid };
const proof = piSch.prove(ctx, statement, piSch.commit(), { x });
/** Compressed encodings that are not points: x^3 + 7 a non-square (x = 5), and x >= p. */
const OFF_CURVE_HEX = ["02" + "05".padStart(64, "0"), "03" + "ff".repeat(32)];
/** An in-memory point object that is not on the curve. */
const OFF_CURVE = new Point(1n, 1n, 1n);

test("pi-sch proves and verifies with a commitment made in advance", () => {
  piSch.verify(ctx, statement, proof);
  for (const w of [1n, Q - 1n, randomBelow(Q - 1n) + 1n]) {
    const nonce = piSch.commit();
    const st = { X: Point.BASE.multiply(w), rid: new Uint8Array(0) };
    const pr = piSch.prove(ctx, st, nonce, { x: w });
    assert.equal(pr.A.equals(nonce.A), true);
    piSch.verify(ctx, st, pr);
  }
});

test("pi-sch refuses to answer twice with one nonce", () => {
  const nonce = piSch.commit();
  piSch.prove(ctx, statement, nonce, { x });
  assert.throws(
    () => piSch.prove(ctx, { ...statement, rid: new Uint8Array(1) }, nonce, { x }),
    TypeError,
  );
});

test("pi-sch encode/decode round trip through JSON is exact and canonical", () => {
  const wire = JSON.parse(JSON.stringify(piSch.encode(proof)));
  assert.match(wire.A, /^0[23][0-9a-f]{64}$/);
  assert.match(wire.z, /^([0-9a-f]{2})+$/);
  const back = piSch.decode(wire);
  assert.equal(back.A.equals(proof.A), true);
  assert.equal(back.z, proof.z);
  piSch.verify(ctx, statement, back);
});

test("pi-sch rejects a tampered A or z", () => {
  const VF = "verification-failed";
  rejects("A+G", () => piSch.verify(ctx, statement, { ...proof, A: proof.A.add(Point.BASE) }), VF);
  rejects("-A", () => piSch.verify(ctx, statement, { ...proof, A: proof.A.negate() }), VF);
  rejects("z+1", () => piSch.verify(ctx, statement, { ...proof, z: mod(proof.z + 1n, Q) }), VF);
  rejects("q-z", () => piSch.verify(ctx, statement, { ...proof, z: mod(-proof.z, Q) }), VF);
});

test("pi-sch binds the proof to the session id, the prover index, X and rid", () => {
  const VF = "verification-failed";
  rejects("sid", () => piSch.verify({ ...ctx, sid: utf8.encode("other") }, statement, proof), VF);
  rejects("prover", () => piSch.verify({ ...ctx, prover: 1 }, statement, proof), VF);
  rejects(
    "X",
    () => piSch.verify(ctx, { ...statement, X: statement.X.add(Point.BASE) }, proof),
    VF,
  );
  const rid2 = rid.slice();
  rid2[0] ^= 1;
  rejects("rid", () => piSch.verify(ctx, { ...statement, rid: rid2 }, proof), VF);
  rejects(
    "rid+",
    () => piSch.verify(ctx, { ...statement, rid: new Uint8Array([...rid, 0]) }, proof),
    VF,
  );
});

test("pi-sch challenge depends on the context, X, rid and A", () => {
  const e = piSch.challenge(ctx, statement, proof.A);
  const G = Point.BASE;
  const variants: Array<[string, bigint]> = [
    ["sid", piSch.challenge({ ...ctx, sid: utf8.encode("x") }, statement, proof.A)],
    ["prover", piSch.challenge({ ...ctx, prover: 2 }, statement, proof.A)],
    ["X", piSch.challenge(ctx, { ...statement, X: statement.X.add(G) }, proof.A)],
    ["rid", piSch.challenge(ctx, { ...statement, rid: rid.slice(1) }, proof.A)],
    ["A", piSch.challenge(ctx, statement, proof.A.add(G))],
  ];
  for (const [what, e2] of variants) assert.notEqual(e2, e, what);
  assert.ok(e >= 0n && e < Q);
});

test("pi-sch z range is exact: q - 1 passes the range check, q is out of range", () => {
  piSch.validate(statement, { ...proof, z: Q - 1n });
  piSch.validate(statement, { ...proof, z: 0n });
  for (const z of [Q, Q + proof.z, -1n]) {
    rejects("validate z", () => piSch.validate(statement, { ...proof, z }), "out-of-range");
    rejects("verify z", () => piSch.verify(ctx, statement, { ...proof, z }), "out-of-range");
  }
});

test("pi-sch rejects degenerate values, the identity and off-curve points, in bounded time", () => {
  const VF = "verification-failed";
  const OUT = "out-of-range";
  const zs: Array<[bigint, ProofErrorCode]> = [
    [0n, VF],
    [1n, VF],
    [Q - 1n, VF],
    [Q, OUT],
    [Q + 1n, OUT],
    [-1n, OUT],
    [HUGE, OUT],
    [-HUGE, OUT],
  ];
  for (const [z, code] of zs) {
    rejects(`z=${z % 1000n}`, () => piSch.verify(ctx, statement, { ...proof, z }), code);
  }
  for (const P of [Point.ZERO, OFF_CURVE]) {
    rejects("A", () => piSch.verify(ctx, statement, { ...proof, A: P }), OUT);
    rejects("X", () => piSch.verify(ctx, { ...statement, X: P }, proof), OUT);
  }
  rejects("A=G", () => piSch.verify(ctx, statement, { ...proof, A: Point.BASE }), VF);
  rejects("A=X", () => piSch.verify(ctx, statement, { ...proof, A: statement.X }), VF);
});

test("pi-sch decode refuses 1 MB integers, the identity, off-curve points and malformed data", () => {
  const wire = piSch.encode(proof);
  const malformed = (v: unknown, what: string) =>
    assert.throws(
      () => piSch.decode(v),
      (e: unknown) => e instanceof ProofError && e.code === "malformed",
      what,
    );
  const megabyte = "ab".repeat(1 << 20);
  for (const z of [megabyte, "01" + "00".repeat(32), "-01", "", "0x01", "AB", "00ab"]) {
    malformed({ ...wire, z }, `z=${z.slice(0, 8)}`);
  }
  assert.equal(piSch.decode({ ...wire, z: "ff".repeat(32) }).z, (1n << 256n) - 1n);
  for (
    const A of ["00", "", ...OFF_CURVE_HEX, "04" + "00".repeat(64), megabyte, wire.A.toUpperCase()]
  ) {
    malformed({ ...wire, A }, `A=${A.slice(0, 8)}`);
  }
  for (const v of [null, 7, "x", [], { A: wire.A }, { ...wire, e: "01" }, { ...wire, z: 1 }]) {
    malformed(v, JSON.stringify(v) ?? "undefined");
  }
});

test("pi-sch: a prover with the wrong witness produces a proof the verifier rejects", () => {
  for (const w of [x + 1n, Q - x, x + Q + 1n]) {
    const pr = piSch.prove(ctx, statement, piSch.commit(), { x: w });
    rejects("wrong x", () => piSch.verify(ctx, statement, pr), "verification-failed");
  }
  // The witness x + q is the same scalar: still a valid proof.
  piSch.verify(ctx, statement, piSch.prove(ctx, statement, piSch.commit(), { x: x + Q }));
});
