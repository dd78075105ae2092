import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodePoint, fromHex, toHex, toHexInt } from "../bytes.ts";
import { mod } from "../math/mod.ts";
import { Point, Q } from "../params.ts";
import { ProtocolAbort } from "../errors.ts";
import type * as sch from "../zk/pi_sch.ts";
import { commitmentHash } from "./commitment.ts";
import { broadcastDigest } from "./echo.ts";
import { commitmentItems, keygen, type KeygenInput, type KeygenState } from "./keygen.ts";
import type { KeyShareCore, Message, Protocol } from "./types.ts";
import {
  assertAbort,
  assertNoOutput,
  deviate,
  expectAbort,
  outputs,
  record,
  runAll,
  runLockstep,
  runLockstepFrom,
  sentIn,
  stateAt,
  testSid,
} from "../../testing/adversary.ts";

type KG = Protocol<KeygenInput, KeygenState, KeyShareCore>;
const inputs = (sid: Uint8Array, n: number): KeygenInput[] =>
  Array.from({ length: n }, (_, i) => ({ sid, i, n }));
const honest = (n: number): KG[] => new Array(n).fill(keygen);

/** Checks the outputs of one run: consistent public data, and sum x_i G = X. */
function checkShares(shares: readonly KeyShareCore[]): void {
  const n = shares.length;
  const [first] = shares;
  for (const [i, s] of shares.entries()) {
    assert.equal(s.i, i);
    assert.equal(s.n, n);
    assert.equal(s.curve, "secp256k1");
    assert.ok(s.publicKey.equals(first.publicKey));
    assert.equal(toHex(s.rid), toHex(first.rid));
    assert.equal(s.rid.length, 48);
    assert.equal(s.chainCode.length, 32);
    assert.equal(toHex(s.chainCode), toHex(first.chainCode));
    assert.equal(s.publicShares.length, n);
    s.publicShares.forEach((P, j) => assert.ok(P.equals(first.publicShares[j])));
    assert.ok(Point.BASE.multiply(s.x).equals(s.publicShares[i]));
  }
  const x = mod(shares.reduce((acc, s) => acc + s.x, 0n), Q);
  assert.ok(Point.BASE.multiply(x).equals(first.publicKey), "sum x_i G != public key");
}

for (const n of [2, 3]) {
  test(`keygen for n = ${n} over the memory network: the shares sum to the secret of the key`, async () => {
    const results = await runAll(honest(n), inputs(testSid(1), n));
    checkShares(outputs(results));
  });
}

test("keygen runs of two sessions give unrelated keys, rid and chain codes", async () => {
  const a = outputs(await runAll(honest(2), inputs(testSid(2), 2)));
  const b = outputs(await runAll(honest(2), inputs(testSid(2), 2)));
  assert.ok(!a[0].publicKey.equals(b[0].publicKey));
  assert.notEqual(toHex(a[0].rid), toHex(b[0].rid));
  assert.notEqual(toHex(a[0].chainCode), toHex(b[0].chainCode));
});

test("keygen start rejects a bad session id, party index or party count", () => {
  const sid = testSid(3);
  assert.throws(
    () =>
      keygen.start({ sid: new Uint8Array(15), i: 0, n: 2 }, crypto.getRandomValues.bind(crypto)),
    RangeError,
  );
  assert.throws(
    () => keygen.start({ sid: "00" as unknown as Uint8Array, i: 0, n: 2 }, rng),
    TypeError,
  );
  for (const [i, n] of [[2, 2], [-1, 2], [0, 1], [0.5, 2], [0, 256]]) {
    assert.throws(() => keygen.start({ sid, i, n }, rng), RangeError, `i=${i} n=${n}`);
  }
});

const rng = (b: Uint8Array) => void crypto.getRandomValues(b);

/** One honest n-party run in lock step whose transitions are recorded. */
function recordedRun(n: number, sid = testSid(4)) {
  const recs = Array.from({ length: n }, () => record(keygen));
  const results = runLockstepFrom(recs.map((r) => r.protocol), inputs(sid, n));
  return { sid, logs: recs.map((r) => r.log), shares: outputs(results) };
}

test("keygen round 2 rejects a rogue key chosen after seeing the others' X_j (commitment binds X_2)", () => {
  // Party 2 is rushing: it sees X_0 and X_1 in round 2 before sending its own decommitment
  // and sets X_2 = Y - X_0 - X_1 for a Y whose secret it knows. V_2 was fixed in round 1.
  const n = 3;
  const y = 0xc0ffeen;
  const results = runLockstepFrom(honest(n), inputs(testSid(5), n), {
    intercept(m, _to, round) {
      if (m.from !== 2 || m.round !== 2) return [m];
      const X = round.filter((r) => r.from !== 2).map((r) =>
        Point.fromHex((r.payload as { X: string }).X)
      );
      const rogue = Point.BASE.multiply(y).subtract(X[0]).subtract(X[1]);
      return [{ ...m, payload: { ...(m.payload as object), X: encodePoint(rogue) } }];
    },
  });
  for (const j of [0, 1]) {
    assertAbort(results[j], { code: "bad-commitment", round: 2, culprits: [2] });
  }
  assertNoOutput(results);
});

test("keygen round 2 rejects a wrong decommitment (rid, c or u altered) and blames the sender", async () => {
  for (const field of ["rid", "c", "u"]) {
    const bad = deviate<KeygenInput, KeygenState, KeyShareCore>(keygen, {
      round: 2,
      alter: (p) => {
        const o = p as Record<string, string>;
        const bytes = fromHex(o[field]);
        bytes[0] ^= 1;
        return { ...o, [field]: toHex(bytes) };
      },
    });
    const results = await runAll([keygen, bad], inputs(testSid(6), 2));
    assertAbort(results[0], { code: "bad-commitment", round: 2, culprits: [1] });
    assertNoOutput(results);
  }
});

test("keygen round 3 rejects a tampered Schnorr proof (z or A) and blames the prover", async () => {
  const tamperings: ((psi: { A: string; z: string }) => unknown)[] = [
    (psi) => ({ ...psi, z: toHexInt(mod(BigInt("0x" + psi.z) + 1n, Q)) }),
    (psi) => ({ ...psi, A: Point.fromHex(psi.A).add(Point.BASE).toHex(true) }),
  ];
  for (const t of tamperings) {
    const bad = deviate<KeygenInput, KeygenState, KeyShareCore>(keygen, {
      round: 3,
      alter: (p) => ({ psi: t((p as { psi: { A: string; z: string } }).psi) }),
    });
    const results = await runAll([bad, keygen, keygen], inputs(testSid(7), 3));
    for (const j of [1, 2]) {
      assertAbort(results[j], { code: "proof-failed", round: 3, culprits: [0] });
    }
    assertNoOutput(results, [0]);
  }
});

test("keygen rejects X_j = identity committed to in round 1, blaming the sender", () => {
  // Party 1 commits to the identity as X_1 (so the decommitment opens) and fixes its echo.
  const sid = testSid(8);
  const bad = deviate<KeygenInput, KeygenState, KeyShareCore>(
    keygen,
    {
      round: 1,
      alter: (_p, { state, scratch }) => {
        const s = state as Extract<KeygenState, { round: 1 }>;
        const V = commitmentHash(
          "keygen",
          s.sid,
          1,
          commitmentItems(2, { ...s.mine, X: Point.ZERO }),
          s.mine.u,
        );
        scratch.V = { V: toHex(V) };
        return scratch.V;
      },
    },
    {
      round: 2,
      alter: (p, { scratch }) => {
        const o = p as { echo: string[] };
        const echo = [...o.echo];
        echo[1] = broadcastDigest(sid, "keygen", 1, 1, scratch.V);
        return { ...o, X: "00", echo };
      },
    },
  );
  const results = runLockstepFrom([keygen, bad], inputs(sid, 2));
  assertAbort(results[0], { code: "invalid-value", round: 2, culprits: [1], message: /identity/ });
  assertNoOutput(results);
});

/** Hostile encodings of round-2 fields (each must be refused as malformed). */
function hostileRound2(p: Record<string, unknown>): Record<string, unknown>[] {
  const X = p.X as string;
  const big = Point.fromHex(X);
  return [
    { ...p, extra: "00" },
    (({ u: _u, ...rest }) => rest)(p),
    { ...p, rid: (p.rid as string).slice(2) },
    { ...p, rid: (p.rid as string) + "00" },
    { ...p, rid: (p.rid as string).toUpperCase() },
    { ...p, c: 7 },
    { ...p, u: null },
    { ...p, X: big.toHex(false) }, // uncompressed
    { ...p, X: "02" + "05".padStart(64, "0") }, // x^3 + 7 is not a square
    { ...p, X: "03" + "ff".repeat(32) }, // x >= field prime
    { ...p, X: "04" + X.slice(2) },
    { ...p, X: X + "00" },
    { ...p, A: "ff".repeat(1 << 20) }, // 1 MB string
    { ...p, echo: (p.echo as string[]).slice(1) },
    { ...p, echo: [...(p.echo as string[]), (p.echo as string[])[0]] },
    { ...p, echo: (p.echo as string[]).map((d) => d.slice(2)) },
    { ...p, echo: "00" },
    [],
    null,
    "payload",
  ] as Record<string, unknown>[];
}

test("keygen round 2 refuses malformed wire data (types, lengths, encodings, huge values)", () => {
  const { logs } = recordedRun(2);
  const s0 = stateAt(logs[0], 2);
  const [m] = sentIn(logs[1], 2);
  for (const payload of hostileRound2(m.payload as Record<string, unknown>)) {
    const e = expectAbort(() => keygen.step(s0, [{ ...m, payload }], rng), {
      code: "malformed-message",
      round: 2,
      culprits: [1],
    });
    assert.ok(e.message.length < 400, "error messages stay short");
  }
});

test("keygen round 3 refuses malformed proofs and names every culprit of the round", () => {
  const { logs } = recordedRun(3);
  const s0 = stateAt(logs[0], 3);
  const [m1] = sentIn(logs[1], 3);
  const [m2] = sentIn(logs[2], 3);
  const psi = (m1.payload as { psi: { A: string; z: string } }).psi;
  const bad: unknown[] = [
    { psi: { ...psi, z: "00" + psi.z } },
    { psi: { ...psi, z: "f".repeat(66) } },
    { psi: { ...psi, A: "00" } },
    { psi },
  ];
  for (const payload of bad.slice(0, 3)) {
    expectAbort(() => keygen.step(s0, [{ ...m1, payload }, m2], rng), {
      code: "malformed-message",
      round: 3,
      culprits: [1],
    });
  }
  // Party 1 malformed and party 2 a bad proof: both named, the earliest check's code first.
  const badZ = { psi: { ...(m2.payload as { psi: object }).psi, z: "01" } };
  expectAbort(
    () => keygen.step(s0, [{ ...m1, payload: bad[0] }, { ...m2, payload: badZ }], rng),
    { code: "malformed-message", round: 3, culprits: [1, 2], message: /party 2: proof-failed/ },
  );
});

test("keygen: an equivocating party (different round-1 broadcasts) is caught by the echo, n = 3", () => {
  // Party 0 sends party 2 another V_0 than party 1. Its own echo tells the truth about what it
  // sent to party 1, so party 2 can name it; party 1 sees only that party 2 disagrees with it
  // about party 0's broadcast, which party 0 or party 2 may have caused: no culprit, and the
  // message names both suspects.
  const results = runLockstepFrom(honest(3), inputs(testSid(9), 3), {
    intercept(m, to) {
      if (m.from !== 0 || m.round !== 1 || to !== 2) return [m];
      return [{ ...m, payload: { V: "ab".repeat(32) } }];
    },
  });
  assertAbort(results[2], { code: "inconsistent-broadcast", round: 2, culprits: [0] });
  assertAbort(results[1], {
    code: "inconsistent-broadcast",
    round: 2,
    culprits: [],
    message: /party 2 and this party received different broadcasts from party 0/,
  });
  assertNoOutput(results);
});

test("keygen: an equivocator that also tailors its echo is caught, without a nameable culprit", () => {
  // Party 0 commits to two different openings, sends one commitment to each honest party, and
  // in round 2 gives each the opening and the echo that fit what it received.
  const sid = testSid(10);
  const firsts = [0, 1, 2].map((i) => keygen.start({ sid, i, n: 3 }, rng));
  const s0 = firsts[0].state as Extract<KeygenState, { round: 1 }>;
  const rid = s0.mine.rid.map((b) => b ^ 0xff);
  const forged = {
    V: toHex(commitmentHash("keygen", sid, 0, commitmentItems(3, { ...s0.mine, rid }), s0.mine.u)),
  };
  const results = runLockstep(honest(3) as never[], firsts, {
    intercept(m, to) {
      if (m.from !== 0 || to !== 2) return [m];
      if (m.round === 1) return [{ ...m, payload: forged }];
      if (m.round === 2) {
        const o = m.payload as { echo: string[] };
        const echo = [...o.echo];
        echo[0] = broadcastDigest(sid, "keygen", 1, 0, forged);
        return [{ ...m, payload: { ...o, rid: toHex(rid), echo } }];
      }
      return [m];
    },
  });
  for (const [j, k] of [[1, 2], [2, 1]]) {
    assertAbort(results[j], {
      code: "inconsistent-broadcast",
      round: 2,
      culprits: [],
      message: new RegExp(`party ${k} and this party received different broadcasts from party 0`),
    });
  }
  assertNoOutput(results);
});

test("keygen rejects a replay of another session's messages, relabelled for this session", () => {
  // Session A runs honestly; in session B, party 1's messages are replaced by its messages of
  // session A with B's session id on the envelope.
  const a = recordedRun(2);
  const sidB = testSid(11);
  const replay = (fixEcho: boolean) =>
    runLockstepFrom(honest(2), inputs(sidB, 2), {
      intercept(m, _to, round) {
        if (m.from !== 1) return [m];
        const [old] = sentIn(a.logs[1], m.round);
        let payload = structuredClone(old.payload) as Record<string, unknown>;
        if (fixEcho && m.round === 2) {
          // A smarter replayer gives a correct echo of session B, replaying only its opening.
          const mine = round.find((r) => r.from === 0 && r.round === 2)!;
          const echo = [...(mine.payload as { echo: string[] }).echo];
          payload = { ...payload, echo };
        }
        return [{ ...m, payload }];
      },
    });
  // The replayed echo digests session A's broadcasts: party 1 misreports party 0.
  let results = replay(false);
  assertAbort(results[0], { code: "inconsistent-broadcast", round: 2, culprits: [1] });
  assertNoOutput(results);
  // With a fitting echo, the replayed opening does not open: V binds the session id.
  results = replay(true);
  assertAbort(results[0], { code: "bad-commitment", round: 2, culprits: [1] });
  assertNoOutput(results);
});

test("keygen refuses an envelope of another session: the machine blames, the driver drops it", async () => {
  const a = recordedRun(2);
  const { logs } = recordedRun(2);
  const s0 = stateAt(logs[0], 2);
  const [honestMsg] = sentIn(logs[1], 2);
  const [foreign] = sentIn(a.logs[1], 2);
  expectAbort(() => keygen.step(s0, [honestMsg, foreign], rng), {
    code: "unexpected-message",
    round: 2,
    culprits: [1],
  });
  // Through the driver, the foreign envelope is dropped and the run completes.
  const sid = testSid(12);
  const reasons: string[] = [];
  const results = await runAll(honest(2), inputs(sid, 2), {
    onDropped: (r) => reasons.push(r),
    tamper: (m, to) => (to === 0 && m.round === 2 ? [{ ...foreign, round: 2 }, m] : [m]),
  });
  checkShares(outputs(results));
  assert.ok(reasons.includes("other session or protocol"));
});

test("keygen rejects a reflection of a party's own message", () => {
  const { logs } = recordedRun(2);
  const s0 = stateAt(logs[0], 1);
  const [own] = sentIn(logs[0], 1);
  const [other] = sentIn(logs[1], 1);
  // The envelope comes back as from party 0 itself: refused; nobody can be named (whoever
  // relayed it), and nothing is output.
  const e = expectAbort(() => keygen.step(s0, [own, other], rng), {
    code: "unexpected-message",
    round: 1,
    culprits: [],
  });
  assert.match(e.message, /reflection/);
});

test("keygen rejects a copycat that reflects party 0's messages as its own (V binds the index)", () => {
  // A rushing party 1 sends party 0's round-1 and round-2 payloads as its own.
  const results = runLockstepFrom(honest(2), inputs(testSid(13), 2), {
    intercept(m, _to, round) {
      if (m.from !== 1) return [m];
      const theirs = round.find((r) => r.from === 0)!;
      return [{ ...m, payload: structuredClone(theirs.payload) }];
    },
  });
  assertAbort(results[0], { code: "bad-commitment", round: 2, culprits: [1] });
  assertNoOutput(results);
});

test("keygen: a dropped message is reported with the silent party as culprit", () => {
  const results = runLockstepFrom(honest(3), inputs(testSid(14), 3), {
    intercept: (m, to) => (m.from === 2 && m.round === 3 && to === 0 ? [] : [m]),
  });
  assertAbort(results[0], { code: "malformed-message", round: 3, culprits: [2] });
  assert.equal(results[1].status, "output");
});

test("keygen state is not changed by a step, and a replayed round-2 state cannot prove twice", () => {
  const { logs } = recordedRun(2);
  const s0 = stateAt(logs[0], 2);
  const inbox = logs[0].steps.find((s) => s.state.round === 2)!.inbox;
  // The recorded run already answered with this state's Schnorr nonce: a second answer (which
  // with another rid would reveal x_0) is refused.
  assert.throws(() => keygen.step(s0, inbox as Message[], rng), TypeError);
  assert.ok(!(s0 as { nonce: sch.Nonce }).nonce.A.is0());
});

test("keygen aborts through the driver and the error names no secret", async () => {
  const bad = deviate<KeygenInput, KeygenState, KeyShareCore>(keygen, {
    round: 3,
    alter: (p) => ({ psi: { ...(p as { psi: object }).psi, z: "01" } }),
  });
  const results = await runAll([keygen, bad], inputs(testSid(15), 2));
  const e = assertAbort(results[0], { code: "proof-failed", round: 3, culprits: [1] });
  assert.ok(e instanceof ProtocolAbort);
  assert.ok(!/[0-9a-f]{32}/.test(e.message), "no long hex in the message");
});

test("keygen lock-step runner accepts recorded first transitions", () => {
  const sid = testSid(16);
  const firsts = [0, 1].map((i) => keygen.start({ sid, i, n: 2 }, rng));
  checkShares(outputs(runLockstep([keygen, keygen] as never[], firsts)));
});
