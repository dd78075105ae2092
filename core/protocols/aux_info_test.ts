import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { toHex, toHexInt } from "../bytes.ts";
import { SLOW } from "../../testing/setup.ts";
import { bitforgeModulus } from "../../testing/zk_helpers.ts";
import { platformSafePrime } from "../../platform/mod.ts";
import {
  bitLength,
  gcd,
  jacobi,
  modPow,
  randomBelow,
  randomBits,
  randomBytes,
  randomUnit,
  setModPowCounter,
} from "../math/mod.ts";
import { ProofError, ProtocolAbort } from "../errors.ts";
import { KAPPA_BYTES } from "../params.ts";
import * as piFac from "../zk/pi_fac.ts";
import * as piMod from "../zk/pi_mod.ts";
import * as piPrm from "../zk/pi_prm.ts";
import { commitmentHash } from "./commitment.ts";
import {
  auxCommitmentItems,
  auxInfo,
  type AuxInfoInput,
  type AuxInfoState,
  type AuxPublic,
  auxPublic,
  type AuxRound1,
  type AuxRound2,
  type AuxRound3,
  checkAuxValues,
  checkDistinctModuli,
  encodeAuxProofs,
  encodeAuxPublic,
  generatePaillierPrimes,
  prmContext,
  rhoContext,
} from "./aux_info.ts";
import { RoundFaults } from "./echo.ts";
import { envelope } from "./inbox.ts";
import { fixturePaillier, fixtureRingPedersen } from "../../testing/fixtures/keys.ts";
import type { AuxInfo, Message } from "./types.ts";
import {
  expectAbort,
  outputs,
  record,
  type Recording,
  runAll,
  sentIn,
  stateAt,
  testSid,
} from "../../testing/adversary.ts";

const rng = (b: Uint8Array) => void crypto.getRandomValues(b);
const primesOf = (k: number) => {
  const key = fixturePaillier(k);
  return { p: key.p, q: key.q };
};
const inputs = (sid: Uint8Array, n: number, offset = 0): AuxInfoInput[] =>
  Array.from({ length: n }, (_, i) => ({ sid, i, n, primes: primesOf(i + offset) }));

/** Checks the outputs of one run: same public parameters everywhere, own primes behind N_i. */
function checkAux(out: readonly AuxInfo[]): void {
  const n = out.length;
  for (const [i, a] of out.entries()) {
    assert.equal(a.i, i);
    assert.equal(a.n, n);
    assert.equal(a.parties.length, n);
    assert.equal(a.p * a.q, a.parties[i].N);
    for (const [j, P] of a.parties.entries()) {
      assert.equal(P.N, out[0].parties[j].N);
      assert.equal(P.s, out[0].parties[j].s);
      assert.equal(P.t, out[0].parties[j].t);
      assert.equal(gcd(P.s, P.N), 1n);
    }
  }
}

type Logs = Recording<AuxInfoState, AuxInfo>[];
let honest: { sid: Uint8Array; logs: Logs; out: AuxInfo[] } | undefined;
/** One honest n = 2 run through the driver, recorded; hostile tests reuse its states. */
async function honestRun() {
  if (!honest) {
    const sid = testSid(20);
    const recs = [0, 1].map(() => record(auxInfo));
    const out = outputs(await runAll(recs.map((r) => r.protocol), inputs(sid, 2)));
    honest = { sid, logs: recs.map((r) => r.log), out };
  }
  return honest;
}

test("aux info for n = 2 over the memory network with fixture primes", async () => {
  const { out } = await honestRun();
  checkAux(out);
});

/**
 * Feeds party 0 (from its recorded round-1 state) a party 1 that commits to `pub` in round 1
 * and opens it in round 2 with a fitting echo; returns the round-2 step to run and the state.
 */
async function asParty1(pub: AuxPublic) {
  const { sid, logs } = await honestRun();
  const s0 = stateAt(logs[0], 1);
  const [m1] = sentIn(logs[1], 1);
  const [m2] = sentIn(logs[1], 2);
  const u = randomBytes(KAPPA_BYTES);
  const V = commitmentHash("aux-info", sid, 1, auxCommitmentItems(2, pub), u);
  const t = auxInfo.step(s0, [{ ...m1, payload: { V: toHex(V) } }], rng);
  const s2 = t.state as AuxRound2;
  // An honest party 1 would echo exactly what party 0 saw.
  const payload = { ...encodeAuxPublic(pub), u: toHex(u), echo: [...s2.echo] };
  const round2: Message = { ...m2, payload };
  return { state: s2, round2, step: () => auxInfo.step(s2, [round2], rng) };
}

/** Party 1's honest public aux data, decoded from its recorded round-2 message. */
async function party1Public(): Promise<AuxPublic> {
  const { logs } = await honestRun();
  const [m2] = sentIn(logs[1], 2);
  const o = m2.payload as Record<string, string>;
  return {
    N: BigInt("0x" + o.N),
    s: BigInt("0x" + o.s),
    t: BigInt("0x" + o.t),
    prm: piPrm.decode(o.prm),
    rho: Uint8Array.from((o.rho.match(/../g) ?? []).map((h) => parseInt(h, 16))),
  };
}

test("aux info round 2 rejects a decommitment that does not open V_1 (N altered)", async () => {
  const { logs } = await honestRun();
  const s0 = stateAt(logs[0], 2);
  const [m2] = sentIn(logs[1], 2);
  const o = m2.payload as Record<string, string>;
  const N = toHexInt(BigInt("0x" + o.N) + 2n);
  expectAbort(() => auxInfo.step(s0, [{ ...m2, payload: { ...o, N } }], rng), {
    code: "bad-commitment",
    round: 2,
    culprits: [1],
  });
});

test("aux info round 2 rejects a committed tampered Pi-prm and blames the prover", async () => {
  const pub = await party1Public();
  const z = [...pub.prm.z];
  z[0] = z[0] + 1n;
  const { step } = await asParty1({ ...pub, prm: { ...pub.prm, z } });
  expectAbort(step, { code: "proof-failed", round: 2, culprits: [1], message: /pi-prm/ });
});

test("aux info round 2 rejects a wrong-size, even or small-factor N before any proof is checked", async () => {
  const pub = await party1Public();
  const N0 = pub.N;
  const cases: [string, bigint][] = [
    ["2047 bits", (N0 >> BigInt(bitLength(N0) - 2047)) | 1n],
    ["2049 bits", (N0 >> BigInt(bitLength(N0) - 2049)) | 1n],
    ["3070 bits", (N0 >> BigInt(bitLength(N0) - 3070)) | 1n],
    ["3073 bits", (N0 << 1n) | 1n],
    ["even", N0 + 1n],
    ["factor 3", (N0 / 3n) * 3n],
  ];
  for (const [what, N] of cases) {
    const bad = { ...pub, N, s: pub.s % N, t: pub.t % N };
    const { step } = await asParty1(bad);
    const counter = { counts: new Map<string, number>() };
    setModPowCounter(counter);
    try {
      expectAbort(step, { code: "invalid-value", round: 2, culprits: [1] });
    } finally {
      setModPowCounter(null);
    }
    const exps = [...counter.counts.values()].reduce((a, b) => a + b, 0);
    assert.ok(exps <= 1, `${what}: ${exps} exponentiations before the rejection`);
  }
});

test("aux info round 2 rejects degenerate s_j, t_j and a copied modulus", async () => {
  const pub = await party1Public();
  const { logs } = await honestRun();
  const own = stateAt(logs[0], 1).own.rp;
  const cases: [string, AuxPublic][] = [
    ["s = 0", { ...pub, s: 0n }],
    ["s = 1", { ...pub, s: 1n }],
    ["t = N", { ...pub, t: pub.N }],
    ["s = t", { ...pub, s: pub.t }],
    ["t >= N", { ...pub, t: pub.N + 5n }],
    ["party 0's N", { ...pub, N: own.N, s: own.s, t: own.t }],
  ];
  for (const [what, bad] of cases) {
    const { step } = await asParty1(bad);
    const e = expectAbort(step, { code: "invalid-value", round: 2, culprits: [1] });
    assert.ok(e.message.length < 300, what);
  }
});

/** The culprits `f` records into a fresh RoundFaults (empty when it records none). */
function culpritsOf(f: (faults: RoundFaults) => void): number[] {
  const faults = new RoundFaults("aux-info", 2);
  f(faults);
  try {
    faults.throwIfAny();
  } catch (e) {
    if (e instanceof ProtocolAbort) return [...e.culprits].sort();
    throw e;
  }
  return [];
}

test("aux info with n = 3: a copy of party 0's N by party 2 never blames party 0 (value checks)", () => {
  // Public parameters of fixture moduli 0 and 1; party 2 presents party 0's (N, s, t).
  const pub = (k: number): AuxPublic => {
    const { N, s, t } = fixtureRingPedersen(k);
    return { N, s, t, prm: { A: [], z: [] }, rho: randomBytes(KAPPA_BYTES) };
  };
  const [p0, p1] = [pub(0), pub(1)];
  const copy: AuxPublic = { ...p0, rho: randomBytes(KAPPA_BYTES) };
  // Party 0 knows N_0 is its own: the copier alone is blamed.
  assert.deepEqual(culpritsOf((f) => checkAuxValues(f, 0, p0, new Map([[1, p1], [2, copy]]))), [2]);
  // Party 1 cannot tell owner from copier by the values: nobody is blamed here (the proofs decide).
  assert.deepEqual(culpritsOf((f) => checkAuxValues(f, 1, p1, new Map([[0, p0], [2, copy]]))), []);
  // After the proofs: the copier failed one (it lacks the factors), the owner alone is left.
  const parties = [p0, p1, copy].map(({ N, s, t }) => ({ N, s, t }));
  const afterProofs = (failed: number[]) => (f: RoundFaults) => {
    for (const j of failed) f.add(j, "proof-failed", "pi-mod");
    checkDistinctModuli(f, 1, parties);
  };
  assert.deepEqual(culpritsOf(afterProofs([2])), [2]);
  // Both proved knowledge of one N's factors (an honest party never shares its primes): both.
  assert.deepEqual(culpritsOf(afterProofs([])), [0, 2]);
  // Distinct moduli pass.
  const distinct = [p0, p1, pub(2)].map(({ N, s, t }) => ({ N, s, t }));
  assert.deepEqual(culpritsOf((f) => checkDistinctModuli(f, 1, distinct)), []);
});

/**
 * An n = 3 session built on the recorded n = 2 run: parties 0 and 1 reuse their recorded round-1
 * material (its Pi-prm is bound to (sid, i), not to n) and run honestly; party 2 commits to
 * `pub2` in round 1 and opens it in round 2 with the echo an honest party would send.
 * @returns each honest party's round-2 step on the broadcasts of the other two.
 */
async function threeParties(pub2: AuxPublic) {
  const { sid, logs } = await honestRun();
  const owns = [0, 1].map((i) => stateAt(logs[i], 1).own);
  const pubs = [auxPublic(owns[0]), auxPublic(owns[1]), pub2];
  const us = pubs.map(() => randomBytes(KAPPA_BYTES));
  const V = pubs.map((pub, j) =>
    commitmentHash("aux-info", sid, j, auxCommitmentItems(3, pub), us[j])
  );
  const as = (i: number, round: number) => ({ sid, i, n: 3, round });
  const round1 = V.map((v, j) => envelope("aux-info", as(j, 1), 1, null, { V: toHex(v) }));
  const r1 = [0, 1].map((i) => {
    const s1: AuxRound1 = {
      ...as(i, 1),
      round: 1,
      own: owns[i],
      u: us[i],
      sent: { V: toHex(V[i]) },
    };
    return auxInfo.step(s1, round1.filter((m) => m.from !== i), rng);
  });
  const s2 = r1.map((t) => t.state as AuxRound2);
  assert.deepEqual(s2[0].echo, s2[1].echo);
  const open2 = { ...encodeAuxPublic(pub2), u: toHex(us[2]), echo: [...s2[0].echo] };
  const round2 = [...r1.map((t) => t.outgoing[0]), envelope("aux-info", as(2, 2), 2, null, open2)];
  return {
    sid,
    owns,
    step: (i: number) => auxInfo.step(s2[i], round2.filter((m) => m.from !== i), rng),
  };
}

test("aux info with n = 3 blames only party 2 when it copies party 0's N, s, t and Pi-prm", async () => {
  const { logs } = await honestRun();
  const pub0 = auxPublic(stateAt(logs[0], 1).own);
  const { step } = await threeParties({ ...pub0, rho: randomBytes(KAPPA_BYTES) });
  // Party 0 sees its own modulus; party 1 sees two equal moduli and lets the proofs decide: the
  // copied Pi-prm is bound to prover 0, so it fails for prover 2.
  expectAbort(() => step(0), { code: "invalid-value", round: 2, culprits: [2] });
  expectAbort(() => step(1), { code: "proof-failed", round: 2, culprits: [2], message: /pi-prm/ });
});

test(
  "aux info with n = 3 blames only party 2 when it copies party 0's N with its own s, t and a valid Pi-prm",
  // Slow tier: party 1 proves and verifies round 3 at real size (about 12 s under Deno).
  { skip: !SLOW },
  async () => {
    const { sid, logs } = await honestRun();
    const N = auxPublic(stateAt(logs[0], 1).own).N;
    // Without the factors of N, party 2 can still prove s in <t>: z_i = a_i + e_i lambda unreduced.
    let t: bigint, s: bigint, lambda: bigint;
    do {
      const r = randomUnit(N);
      t = (r * r) % N;
      lambda = randomBits(256);
      s = modPow(t, lambda, N);
    } while (t === 1n || s === 1n || s === t);
    const a = Array.from({ length: 128 }, () => randomBits(256));
    const A = a.map((ai) => modPow(t, ai, N));
    const e = piPrm.challenge(prmContext("aux-info", sid, 2), { N, s, t }, A);
    const prm = { A, z: a.map((ai, k) => (e[k] === 1 ? ai + lambda : ai)) };
    piPrm.verify(prmContext("aux-info", sid, 2), { N, s, t }, prm);
    const { step, owns } = await threeParties({ N, s, t, prm, rho: randomBytes(KAPPA_BYTES) });
    expectAbort(() => step(0), { code: "invalid-value", round: 2, culprits: [2] });
    // Party 1 blames nobody in round 2 and goes on to round 3 ...
    const t1 = step(1);
    const s3 = t1.state as AuxRound3;
    assert.equal(s3.round, 3);
    // ... where party 0's proofs verify and party 2, lacking the factors, can at best replay them.
    const ctx0 = rhoContext("aux-info", sid, 0, s3.rho);
    const payload = encodeAuxProofs({
      mod: piMod.prove(ctx0, { N }, owns[0]),
      fac: piFac.prove(ctx0, { N0: N, aux: s3.parties[1] }, owns[0]),
    });
    const from0 = envelope("aux-info", { sid, i: 0, n: 3, round: 3 }, 3, 1, payload);
    const from2 = envelope("aux-info", { sid, i: 2, n: 3, round: 3 }, 3, 1, payload);
    expectAbort(() => auxInfo.step(s3, [from0, from2], rng), {
      code: "proof-failed",
      round: 3,
      culprits: [2],
    });
  },
);

test("aux info round 2 refuses malformed wire data", async () => {
  const { logs } = await honestRun();
  const s0 = stateAt(logs[0], 2);
  const [m2] = sentIn(logs[1], 2);
  const o = m2.payload as Record<string, unknown>;
  const prm = o.prm as { A: string[]; z: string[] };
  const bad: unknown[] = [
    { ...o, N: "ff".repeat(1 << 20) },
    { ...o, N: "00" + (o.N as string) },
    { ...o, N: 5 },
    { ...o, s: "-01" },
    { ...o, rho: (o.rho as string).slice(2) },
    { ...o, prm: { ...prm, A: prm.A.slice(1) } },
    { ...o, prm: { ...prm, z: [...prm.z, prm.z[0]] } },
    { ...o, prm: { ...prm, A: [] } },
    { ...o, prm: { A: prm.A } },
    { ...o, echo: ["00"] },
    { ...o, extra: 1 },
  ];
  for (const payload of bad) {
    expectAbort(() => auxInfo.step(s0, [{ ...m2, payload }], rng), {
      code: "malformed-message",
      round: 2,
      culprits: [1],
    });
  }
});

test("aux info round 3 rejects a tampered Pi-mod and a tampered Pi-fac, blaming the prover", async () => {
  const { logs } = await honestRun();
  const s0 = stateAt(logs[0], 3);
  const [m3] = sentIn(logs[1], 3);
  const o = m3.payload as { mod: piMod.EncodedProof; fac: piFac.EncodedProof };
  const x = [...o.mod.x];
  x[0] = x[1];
  const z1 = piFac.encode({ ...piFac.decode(o.fac), z1: piFac.decode(o.fac).z1 + 1n }).z1;
  for (const payload of [{ ...o, mod: { ...o.mod, x } }, { ...o, fac: { ...o.fac, z1 } }]) {
    expectAbort(() => auxInfo.step(s0, [{ ...m3, payload }], rng), {
      code: "proof-failed",
      round: 3,
      culprits: [1],
    });
  }
});

test("aux info round 3 rejects Pi-fac made under the prover's own ring-Pedersen parameters", async () => {
  const { logs } = await honestRun();
  const s0 = stateAt(logs[0], 3);
  const [m3] = sentIn(logs[1], 3);
  const own1 = s0.parties[1];
  const ctx = rhoContext("aux-info", s0.sid, 1, s0.rho);
  const fac = piFac.prove(ctx, { N0: own1.N, aux: own1 }, primesOf(1));
  const payload = { ...(m3.payload as object), fac: piFac.encode(fac) };
  expectAbort(() => auxInfo.step(s0, [{ ...m3, payload }], rng), {
    code: "proof-failed",
    round: 3,
    culprits: [1],
    message: /pi-fac/,
  });
});

test("aux info round 3 rejects proofs replayed from another session with the same moduli", async () => {
  // Session B has the same parties and moduli (same primes) as the recorded session A; party 1
  // replays its round-3 proofs of session A, relabelled for B. They are bound to (sid, rho).
  const { logs } = await honestRun();
  const a = stateAt(logs[0], 3);
  const sidB = testSid(21);
  const sB: AuxRound3 = { ...a, sid: sidB };
  const [m3] = sentIn(logs[1], 3);
  expectAbort(() => auxInfo.step(sB, [{ ...m3, sid: toHex(sidB) }], rng), {
    code: "proof-failed",
    round: 3,
    culprits: [1],
  });
  // Same session id but another rho (another run's joint randomness): refused as well.
  const sC: AuxRound3 = { ...a, rho: a.rho.map((b) => b ^ 1) };
  expectAbort(() => auxInfo.step(sC, [m3], rng), {
    code: "proof-failed",
    round: 3,
    culprits: [1],
  });
});

test("aux info round 3 rejects a reflection of party 0's own proofs as party 1's", async () => {
  const { logs } = await honestRun();
  const s0 = stateAt(logs[0], 3);
  const [own] = sentIn(logs[0], 3);
  // As an envelope from party 0 itself: refused, nobody named.
  expectAbort(() => auxInfo.step(s0, [{ ...own, to: 0 }], rng), {
    code: "unexpected-message",
    round: 3,
    culprits: [],
  });
  // As party 1's content: the proofs are about N_0 and bound to prover 0.
  expectAbort(() => auxInfo.step(s0, [{ ...own, from: 1, to: 0 }], rng), {
    code: "proof-failed",
    round: 3,
    culprits: [1],
  });
});

test("aux info round 3 refuses malformed proofs", async () => {
  const { logs } = await honestRun();
  const s0 = stateAt(logs[0], 3);
  const [m3] = sentIn(logs[1], 3);
  const o = m3.payload as { mod: piMod.EncodedProof; fac: piFac.EncodedProof };
  const bad: unknown[] = [
    { mod: o.mod },
    { ...o, mod: { ...o.mod, a: o.mod.a.slice(1) } },
    { ...o, mod: { ...o.mod, b: o.mod.b.map(() => 2) } },
    { ...o, fac: { ...o.fac, v: "ff".repeat(1 << 16) } },
    { ...o, fac: null },
    "x",
  ];
  for (const payload of bad) {
    expectAbort(() => auxInfo.step(s0, [{ ...m3, payload }], rng), {
      code: "malformed-message",
      round: 3,
      culprits: [1],
    });
  }
});

test("aux info rejects a BitForge modulus with valid Pi-prm (made from phi(N)) and blames the sender", async () => {
  const { sid, logs } = await honestRun();
  const bf = bitforgeModulus();
  // Party 1's ring-Pedersen parameters over the BitForge N, and a true Pi-prm from phi(N).
  const r = randomUnit(bf.N);
  const t = (r * r) % bf.N;
  const lambda = randomBelow(bf.phi);
  const s = modPow(t, lambda, bf.N);
  // (The attacker may take its a_i small: only z_i = a_i + e_i lambda mod phi(N) is checked.)
  const a = Array.from({ length: 128 }, () => randomBits(256));
  const A = a.map((ai) => modPow(t, ai, bf.N));
  const e = piPrm.challenge(prmContext("aux-info", sid, 1), { N: bf.N, s, t }, A);
  const z = a.map((ai, k) => (e[k] === 1 ? (ai + lambda) % bf.phi : ai));
  const prm = { A, z };
  piPrm.verify(prmContext("aux-info", sid, 1), { N: bf.N, s, t }, prm);
  const pub = await party1Public();
  // Round 2 accepts it (size, small factors below 2^16, primality, Pi-prm all pass) ...
  const { step } = await asParty1({ ...pub, N: bf.N, s, t, prm });
  const t3 = step();
  const s3 = t3.state as AuxRound3;
  assert.equal(s3.round, 3);
  // ... and round 3 refuses the attacker's best proofs: Pi-fac from the factors it knows,
  // with every small prime in one factor, and a Pi-mod with true N-th roots but no fourth roots.
  const ctx = rhoContext("aux-info", sid, 1, s3.rho);
  const fac = piFac.prove(ctx, { N0: bf.N, aux: s3.parties[0] }, { p: bf.small, q: bf.large });
  let w: bigint;
  do w = randomUnit(bf.N); while (jacobi(w, bf.N) !== -1);
  const ys = piMod.challenge(ctx, { N: bf.N }, w);
  const mod: piMod.Proof = {
    w,
    x: ys.map(() => randomUnit(bf.N)),
    a: ys.map(() => 0 as const),
    b: ys.map(() => 0 as const),
    z: ys.map(() => randomUnit(bf.N)),
  };
  const [m3] = sentIn(logs[1], 3);
  const payload = { mod: piMod.encode(mod), fac: piFac.encode(fac) };
  // Pi-fac's z for the large factor exceeds 2^(l+eps) sqrt(N): refused already by the wire
  // cap derived from that bound, or by the range check.
  expectAbort(() => auxInfo.step(s3, [{ ...m3, payload }], rng), {
    code: ["malformed-message", "proof-failed"],
    round: 3,
    culprits: [1],
    message: /pi-fac: field "z[12]"/,
  });
  // Pi-mod refuses it as well (the attacker cannot take fourth roots modulo 16 small primes).
  assert.throws(() => piMod.verify(ctx, { N: bf.N }, mod), ProofError);
});

test("aux info start rejects primes that are not two distinct 1536-bit Blum safe primes", () => {
  const sid = testSid(22);
  const { p, q } = primesOf(0);
  const bad = [{ p, q: p }, { p, q: q + 2n }, { p: p >> 1n, q }, { p: 7n, q: 11n }, { p: 1, q }];
  for (const primes of bad) {
    assert.throws(
      () => auxInfo.start({ sid, i: 0, n: 2, primes } as unknown as AuxInfoInput, rng),
      (e: unknown) => e instanceof RangeError || e instanceof TypeError,
    );
  }
});

test(
  "aux info for n = 3 over the memory network with fixture primes",
  { skip: !SLOW },
  async () => {
    const out = outputs(await runAll([auxInfo, auxInfo, auxInfo], inputs(testSid(23), 3, 2)));
    checkAux(out);
  },
);

test(
  "aux info slow tier: n = 2 with fresh 1536-bit safe primes",
  { skip: !SLOW },
  async () => {
    const sid = testSid(24);
    const primes = await Promise.all([0, 1].map(() => generatePaillierPrimes(platformSafePrime)));
    const ins = primes.map((pr, i) => ({ sid, i, n: 2, primes: pr }));
    checkAux(outputs(await runAll([auxInfo, auxInfo], ins)));
  },
);
