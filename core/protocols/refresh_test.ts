import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { encodePoint, fromHex, toHex, toHexInt } from "../bytes.ts";
import { fixturePaillier } from "../../testing/fixtures/keys.ts";
import { mod, randomBytes } from "../math/mod.ts";
import { PaillierPublicKey } from "../paillier.ts";
import { KAPPA_BYTES, Point, Q } from "../params.ts";
import * as piFac from "../zk/pi_fac.ts";
import * as piMod from "../zk/pi_mod.ts";
import * as piPrm from "../zk/pi_prm.ts";
import type { AuxPublic } from "./aux_info.ts";
import { commitmentHash } from "./commitment.ts";
import { keygen } from "./keygen.ts";
import {
  refresh,
  refreshCommitmentItems,
  type RefreshInput,
  type RefreshRound2,
  type RefreshRound3,
  type RefreshState,
} from "./refresh.ts";
import type { KeyShare, KeyShareCore, Message } from "./types.ts";
import {
  expectAbort,
  outputs,
  record,
  type Recording,
  runAll,
  runLockstepFrom,
  sentIn,
  stateAt,
  testSid,
} from "../../testing/adversary.ts";

const rng = (b: Uint8Array) => void crypto.getRandomValues(b);
const primesOf = (k: number) => {
  const key = fixturePaillier(k);
  return { p: key.p, q: key.q };
};

let run:
  | {
    sid: Uint8Array;
    before: KeyShareCore[];
    after: KeyShare[];
    logs: Recording<RefreshState, KeyShare>[];
  }
  | undefined;

/** keygen then one honest refresh (n = 2) through the driver, recorded. */
async function honestRun() {
  if (!run) {
    const kid = testSid(30);
    const before = outputs(
      runLockstepFrom([keygen, keygen], [0, 1].map((i) => ({ sid: kid, i, n: 2 }))),
    );
    const sid = testSid(31);
    const recs = [0, 1].map(() => record(refresh));
    const inputs: RefreshInput[] = before.map((keyShare, i) => ({
      sid,
      keyShare,
      primes: primesOf(i + 3),
    }));
    const after = outputs(await runAll(recs.map((r) => r.protocol), inputs));
    run = { sid, before, after, logs: recs.map((r) => r.log) };
  }
  return run;
}

test("refresh for n = 2 keeps the public key, changes every share, and the new shares sum to the secret", async () => {
  const { before, after } = await honestRun();
  const sum = (xs: readonly { x: bigint }[]) => mod(xs.reduce((a, s) => a + s.x, 0n), Q);
  assert.equal(sum(after), sum(before));
  for (const [i, s] of after.entries()) {
    assert.ok(s.publicKey.equals(before[i].publicKey));
    assert.notEqual(s.x, before[i].x);
    assert.ok(Point.BASE.multiply(s.x).equals(s.publicShares[i]));
    s.publicShares.forEach((P, k) => {
      assert.ok(P.equals(after[0].publicShares[k]));
      assert.ok(!P.equals(before[0].publicShares[k]));
    });
    assert.equal(toHex(s.chainCode), toHex(before[i].chainCode));
    assert.equal(toHex(s.rid), toHex(before[i].rid));
    // New aux info: own primes behind N_i, the same public parameters everywhere.
    assert.equal(s.aux.p * s.aux.q, s.aux.parties[i].N);
    assert.equal(s.aux.p, primesOf(i + 3).p);
    s.aux.parties.forEach((P, j) => assert.equal(P.N, after[0].aux.parties[j].N));
  }
  assert.ok(Point.BASE.multiply(sum(after)).equals(after[0].publicKey));
});

test("refresh start refuses an inconsistent key share", async () => {
  const { before } = await honestRun();
  const sid = testSid(32);
  const k = before[0];
  const bad: KeyShareCore[] = [
    { ...k, x: mod(k.x + 1n, Q) },
    { ...k, x: 0n },
    { ...k, publicShares: k.publicShares.slice(1) },
    { ...k, publicKey: k.publicKey.add(Point.BASE) },
    { ...k, i: 2 },
  ];
  for (const keyShare of bad) {
    assert.throws(
      () => refresh.start({ sid, keyShare, primes: primesOf(3) }, rng),
      (e: unknown) => e instanceof RangeError || e instanceof TypeError,
    );
  }
});

test("refresh round 1 rejects a party that refreshes another key (blames it)", async () => {
  const { logs } = await honestRun();
  const s0 = stateAt(logs[0], 1);
  const [m1] = sentIn(logs[1], 1);
  const payload = { ...(m1.payload as object), key: "00".repeat(32) };
  expectAbort(() => refresh.step(s0, [{ ...m1, payload }], rng), {
    code: "invalid-value",
    round: 1,
    culprits: [1],
  });
});

/** Party 1's public round-2 data from its recorded message. */
async function party1Opening() {
  const { logs } = await honestRun();
  const [m2] = sentIn(logs[1], 2);
  const o = m2.payload as Record<string, unknown>;
  const pub: AuxPublic = {
    N: BigInt("0x" + o.N),
    s: BigInt("0x" + o.s),
    t: BigInt("0x" + o.t),
    prm: piPrm.decode(o.prm),
    rho: fromHex(o.rho as string),
  };
  const X = (o.X as string[]).map((h) => Point.fromHex(h));
  const A = (o.A as string[]).map((h) => Point.fromHex(h));
  return { o, pub, X, A };
}

test("refresh round 2 rejects a committed re-sharing that does not sum to zero", async () => {
  // Party 1 commits (honestly, so the opening checks pass) to X_1^k whose sum is G, not 0: it
  // would shift the public key.
  const { sid, logs } = await honestRun();
  const s0 = stateAt(logs[0], 1);
  const [m1] = sentIn(logs[1], 1);
  const [m2] = sentIn(logs[1], 2);
  const { o, pub, X, A } = await party1Opening();
  const X2 = [X[0].add(Point.BASE), X[1]];
  const u = randomBytes(KAPPA_BYTES);
  const key = fromHex((m1.payload as { key: string }).key);
  const V = commitmentHash("refresh", sid, 1, refreshCommitmentItems(2, key, X2, A, pub), u);
  const t = refresh.step(s0, [{ ...m1, payload: { V: toHex(V), key: toHex(key) } }], rng);
  const s2 = t.state as RefreshRound2;
  const payload = { ...o, X: X2.map(encodePoint), u: toHex(u), echo: [...s2.echo] };
  expectAbort(() => refresh.step(s2, [{ ...m2, payload }], rng), {
    code: "invalid-value",
    round: 2,
    culprits: [1],
    message: /sum to zero/,
  });
});

test("refresh round 2 rejects a decommitment that does not open (X_1 changed after the fact)", async () => {
  const { logs } = await honestRun();
  const s0 = stateAt(logs[0], 2);
  const [m2] = sentIn(logs[1], 2);
  const { o, X } = await party1Opening();
  const payload = { ...o, X: [X[0].add(Point.BASE), X[1].subtract(Point.BASE)].map(encodePoint) };
  expectAbort(() => refresh.step(s0, [{ ...m2, payload }], rng), {
    code: "bad-commitment",
    round: 2,
    culprits: [1],
  });
});

/** Party 0's round-3 state and party 1's round-3 message to it. */
async function round3() {
  const { logs } = await honestRun();
  const s0 = stateAt(logs[0], 3);
  const [m3] = sentIn(logs[1], 3);
  return { s0, m3, o: m3.payload as Record<string, unknown> };
}

const step3 = (s0: RefreshRound3, m3: Message, payload: unknown) => () =>
  refresh.step(s0, [{ ...m3, payload }], rng);

test("refresh round 3 rejects an encrypted share that does not match X_1^0, or is not a ciphertext", async () => {
  const { s0, m3, o } = await round3();
  const N0 = new PaillierPublicKey(s0.parties[0].N);
  // Party 1 knows x_1^0 only through X_1^0 here; any other plaintext is caught.
  const [C] = N0.encrypt(12345n);
  const [zero] = N0.encrypt(0n);
  const cases = [C, zero, N0.N, 1n, N0.N * 2n].map(toHexInt);
  for (const c of cases) {
    expectAbort(step3(s0, m3, { ...o, C: c }), {
      code: "invalid-value",
      round: 3,
      culprits: [1],
    });
  }
  expectAbort(step3(s0, m3, { ...o, C: "ff".repeat(800) }), {
    code: "malformed-message",
    round: 3,
    culprits: [1],
  });
});

test("refresh round 3 rejects a tampered Schnorr proof of the re-sharing", async () => {
  const { s0, m3, o } = await round3();
  const psi = o.psi as { A: string; z: string }[];
  for (const k of [0, 1]) {
    const bad = psi.map((p, kk) =>
      kk === k ? { ...p, z: toHexInt(mod(BigInt("0x" + p.z) + 1n, Q)) } : p
    );
    expectAbort(step3(s0, m3, { ...o, psi: bad }), {
      code: "proof-failed",
      round: 3,
      culprits: [1],
      message: /pi-sch/,
    });
  }
  // Proofs swapped between k = 0 and 1: each is bound to its own X_1^k, A_1^k and k.
  expectAbort(step3(s0, m3, { ...o, psi: [psi[1], psi[0]] }), {
    code: "proof-failed",
    round: 3,
    culprits: [1],
  });
  expectAbort(step3(s0, m3, { ...o, psi: [psi[0]] }), {
    code: "malformed-message",
    round: 3,
    culprits: [1],
  });
});

test("refresh round 3 rejects a tampered Pi-fac or Pi-mod", async () => {
  const { s0, m3, o } = await round3();
  const fac = piFac.decode(o.fac);
  const modProof = piMod.decode(o.mod);
  const cases = [
    { ...o, fac: piFac.encode({ ...fac, w1: fac.w1 + 1n }) },
    { ...o, mod: piMod.encode({ ...modProof, z: [modProof.z[1], ...modProof.z.slice(1)] }) },
  ];
  for (const payload of cases) {
    expectAbort(step3(s0, m3, payload), { code: "proof-failed", round: 3, culprits: [1] });
  }
});

test("refresh round 3 rejects shares and proofs replayed into a run with another rho", async () => {
  const { s0, m3 } = await round3();
  const other: RefreshRound3 = { ...s0, rho: s0.rho.map((b) => b ^ 0x80) };
  expectAbort(() => refresh.step(other, [m3], rng), {
    code: "proof-failed",
    round: 3,
    culprits: [1],
  });
});

/** refresh.ts without its comments (so that prose naming `multiplyUnsafe` does not count). */
function refreshSource(): string {
  const src = readFileSync(new URL("./refresh.ts", import.meta.url), "utf8");
  return src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

test("refresh multiplies its secret scalars onto G only through the constant-time helper (source check)", () => {
  // Every scalar refresh multiplies onto a point is secret (x_i, x_i^k, the decrypted x_j^i, the
  // new x_i*). Timing cannot be asserted in a test, so the structure is: no variable-time
  // multiplyUnsafe at all, and exactly one scalar multiplication, inside secretTimesG, which is
  // noble's constant-time `multiply`; the decrypted share and the new share go through it.
  const src = refreshSource();
  assert.doesNotMatch(src, /multiplyUnsafe/, "variable-time multiplication in refresh.ts");
  const muls = [...src.matchAll(/\.multiply\w*\s*\(/g)];
  assert.equal(muls.length, 1, "scalar multiplications outside secretTimesG");
  assert.match(
    src,
    /function secretTimesG\(x: bigint\): Point \{\s*return Point\.BASE\.multiply\(x\);\s*\}/,
  );
  assert.match(
    src,
    /const x = sk\.decrypt\(d\.C\);[\s\S]{0,200}secretTimesG\(x\)\.equals\(s\.X\[j\]\[s\.i\]\)/,
  );
  assert.match(src, /secretTimesG\(x\)\.equals\(publicShares\[s\.i\]\)/);
});
