import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { SLOW } from "../../testing/setup.ts";
import { fixturePaillier, fixtureRingPedersen } from "../../testing/fixtures/keys.ts";
import { platformSafePrime } from "../../platform/mod.ts";
import { modInv, modPow, randomBelow, randomBits } from "../math/mod.ts";
import { M_REPS } from "../params.ts";
import { generateRingPedersen } from "../ring_pedersen.ts";
import {
  challenge,
  decode,
  encode,
  type Proof,
  prove,
  type Statement,
  verify,
  verifyWithChallenge,
} from "./pi_prm.ts";
import {
  expectProofError,
  randomPrime,
  rejectsCheaply,
  replaced,
} from "../../testing/zk_helpers.ts";
import { CrtPow } from "./_crt_pow.ts";

const ctx = { sid: new Uint8Array([7, 7, 7, 1]), prover: 1 };
const rp = fixtureRingPedersen(1);
const key = fixturePaillier(1);
const statement: Statement = { N: rp.N, s: rp.s, t: rp.t };
const N = rp.N;

let cached: Proof | undefined;
/** One honest proof shared by the tests that tamper with it. */
function honest(): Proof {
  cached ??= prove(ctx, statement, rp);
  return cached;
}

test("pi-prm proves and verifies real-size ring-Pedersen parameters (3072-bit N)", () => {
  const proof = honest();
  assert.equal(proof.A.length, M_REPS);
  verify(ctx, statement, proof);
});

test("pi-prm encode/decode round-trips through JSON", () => {
  const proof = honest();
  const wire = JSON.parse(JSON.stringify(encode(proof)));
  assert.deepEqual(decode(wire), proof);
  assert.ok(wire.A.every((h: string) => /^[0-9a-f]+$/.test(h)));
});

test("pi-prm rejects each field tampered in the first and the last repetition", () => {
  const proof = honest();
  for (const i of [0, M_REPS - 1]) {
    const A = { ...proof, A: replaced(proof.A, i, (proof.A[i] * rp.t) % N) };
    expectProofError(() => verify(ctx, statement, A), "verification-failed");
    const z = { ...proof, z: replaced(proof.z, i, proof.z[i] + 1n) };
    expectProofError(() => verify(ctx, statement, z), "verification-failed", new RegExp(`${i}`));
  }
});

test("pi-prm rejects a proof checked under another session id or another prover index", () => {
  const proof = honest();
  expectProofError(
    () => verify({ ...ctx, sid: new Uint8Array([7, 7, 7, 2]) }, statement, proof),
    "verification-failed",
  );
  expectProofError(() => verify({ ...ctx, prover: 0 }, statement, proof), "verification-failed");
  // The statement is bound too: the same proof for (N, t, s) swapped is refused.
  expectProofError(() => verify(ctx, { N, s: rp.t, t: rp.s }, proof), "verification-failed");
});

test("pi-prm rejects proof arrays of length 0, 1, m-1 and m+1 (decode and verify)", () => {
  const proof = honest();
  const wire = encode(proof);
  for (const len of [0, 1, M_REPS - 1, M_REPS + 1]) {
    const cut = <T>(a: readonly T[]) => Array.from({ length: len }, (_, k) => a[k % a.length]);
    for (const f of ["A", "z"] as const) {
      rejectsCheaply(() => decode({ ...wire, [f]: cut(wire[f]) }), "malformed", 0);
      rejectsCheaply(
        () => verify(ctx, statement, { ...proof, [f]: cut(proof[f]) }),
        "malformed",
        1,
      );
    }
  }
});

test("pi-prm rejects malformed wire data", () => {
  const wire = encode(honest());
  const bad: unknown[] = [
    null,
    [],
    "A",
    { A: wire.A },
    { ...wire, extra: 1 },
    { ...wire, A: "00" },
    { ...wire, A: replaced(wire.A, 3, wire.A[3].toUpperCase()) },
    { ...wire, A: replaced(wire.A, 3, "00" + wire.A[3]) },
    { ...wire, A: replaced(wire.A, 3, "-" + wire.A[3]) },
    { ...wire, z: replaced(wire.z, 3, 12 as unknown as string) },
    { ...wire, z: replaced(wire.z, 3, "") },
    { ...wire, z: replaced(wire.z, 3, "0x12") },
  ];
  for (const b of bad) rejectsCheaply(() => decode(b), "malformed", 0);
});

test("pi-prm rejects degenerate A_i and z_i (0, 1, N-1, N, N+1, non-unit, 1 MB) in bounded time", () => {
  const proof = honest();
  const wire = encode(proof);
  const huge = "f".repeat(2 * 1024 * 1024);
  for (const i of [0, M_REPS - 1]) {
    rejectsCheaply(() => decode({ ...wire, A: replaced(wire.A, i, huge) }), "malformed", 0);
    rejectsCheaply(() => decode({ ...wire, z: replaced(wire.z, i, huge) }), "malformed", 0);
    for (const v of [0n, 1n, N - 1n, N, N + 1n, key.p, key.q * 5n, -1n]) {
      // The only exponentiation allowed is assertModulus's Fermat test.
      rejectsCheaply(
        () => verify(ctx, statement, { ...proof, A: replaced(proof.A, i, v) }),
        "out-of-range",
        1,
      );
    }
    for (const v of [-1n, N, N + 1n, N << 10n]) {
      rejectsCheaply(
        () => verify(ctx, statement, { ...proof, z: replaced(proof.z, i, v) }),
        "out-of-range",
        1,
      );
    }
  }
  // z_0 in [0, N) but wrong: refused by the first equation.
  for (const v of [0n, 1n, N - 1n]) {
    rejectsCheaply(
      () => verify(ctx, statement, { ...proof, z: replaced(proof.z, 0, v) }),
      "verification-failed",
      2,
    );
  }
});

test("pi-prm rejects s, t that are not distinct units other than 1, before any proof work", () => {
  const proof = honest();
  const cases: Statement[] = [
    { N, s: rp.t, t: rp.t },
    { N, s: 1n, t: rp.t },
    { N, s: rp.s, t: 1n },
    { N, s: 0n, t: rp.t },
    { N, s: rp.s, t: N },
    { N, s: N + rp.s, t: rp.t },
    { N, s: (key.p * rp.s) % N, t: rp.t },
    { N, s: rp.s, t: key.q },
  ];
  for (const st of cases) rejectsCheaply(() => verify(ctx, st, proof), "out-of-range", 1);
});

test("pi-prm rejects N of 2047, 2049, 3070, 3073 bits, a prime N and an even N before proof work", () => {
  const proof = honest();
  for (const bits of [2047, 2049, 3070, 3073]) {
    const n = (1n << BigInt(bits - 1)) | randomBits(bits - 1) | 1n;
    rejectsCheaply(() => verify(ctx, { N: n, s: rp.s, t: rp.t }, proof), "bad-modulus", 0);
  }
  rejectsCheaply(() => verify(ctx, { N: N + 1n, s: rp.s, t: rp.t }, proof), "bad-modulus", 0);
  const prime = randomPrime(3072);
  rejectsCheaply(
    () => verify(ctx, { N: prime, s: rp.s % prime, t: rp.t }, proof),
    "bad-modulus",
    1,
  );
});

/**
 * c-guess: the owner of N (it knows p, q) publishes s = -t^3, which is not in <t> (t is a
 * square, -1 is not), so no lambda exists. Its best proof guesses each challenge bit g_i and
 * sets A_i = t^(z_i) s^(-g_i): repetition i verifies exactly when e_i = g_i.
 */
function forgeByGuessing(st: Statement, guesses: Uint8Array): Proof {
  const crt = new CrtPow(key.p, key.q);
  const sInv = modInv(st.s, st.N);
  const A: bigint[] = [];
  const z: bigint[] = [];
  for (let i = 0; i < M_REPS; i++) {
    const zi = randomBelow(st.N);
    const ti = crt.pow(st.t, zi);
    A.push(guesses[i] === 1 ? (ti * sInv) % st.N : ti);
    z.push(zi);
  }
  return { A, z };
}

test("pi-prm rejects a c-guess forgery for s = -t^3 outside <t> (challenge bits guessed)", () => {
  const s = N - modPow(rp.t, 3n, N);
  const st: Statement = { N, s, t: rp.t };
  const guesses = Uint8Array.from({ length: M_REPS }, () => Number(randomBits(1)));
  const forged = forgeByGuessing(st, guesses);
  expectProofError(() => verify(ctx, st, forged), "verification-failed");
  // What the guess buys: the interactive verifier with exactly the guessed bits accepts, so only
  // the independence of the m Fiat-Shamir bits stands between the forger and acceptance.
  verifyWithChallenge(st, forged, guesses);
  const e = challenge(ctx, st, forged.A);
  const right = e.reduce((n, b, i) => n + (b === guesses[i] ? 1 : 0), 0);
  assert.ok(right > 20 && right < M_REPS - 20, `about half the bits guessed right, got ${right}`);
});

test("pi-prm rejects a c-split proof that repeats one answer for every repetition", () => {
  const s = N - modPow(rp.t, 5n, N);
  const st: Statement = { N, s, t: rp.t };
  // One (A, z) pair made for the guess e = 0, copied m times: needs all m bits to be 0.
  const z0 = randomBelow(N);
  const A0 = modPow(rp.t, z0, N);
  const copied: Proof = { A: new Array(M_REPS).fill(A0), z: new Array(M_REPS).fill(z0) };
  expectProofError(() => verify(ctx, st, copied), "verification-failed");
  // The same single answer sent as a one-repetition proof is refused as malformed.
  rejectsCheaply(() => decode({ A: [A0.toString(16)], z: [z0.toString(16)] }), "malformed", 0);
  // The m bits of one transcript are not all equal (each comes from its own derivation).
  const e = challenge(ctx, st, copied.A);
  assert.ok(e.some((b) => b === 0) && e.some((b) => b === 1));
});

test("pi-prm derives each of the m challenge bits independently (none reused, none fixed)", () => {
  // Over 40 transcripts every position takes both values, and bits 32..m-1 never simply repeat
  // bits 0..31 (a reference version drew only 32 bits).
  const seen = Array.from({ length: M_REPS }, () => new Set<number>());
  for (let k = 0; k < 40; k++) {
    const A = [...honest().A];
    A[0] = (A[0] * BigInt(k + 2)) % N;
    const e = challenge(ctx, statement, A);
    e.forEach((b, i) => seen[i].add(b));
    assert.ok(e.slice(32).some((b, i) => b !== e[i % 32]), "bits repeat with period 32");
  }
  assert.ok(seen.every((s) => s.size === 2), "some challenge position never changes");
});

test("pi-prm rejects a proof that answers one flipped challenge bit, at any position", () => {
  const proof = honest();
  const e = challenge(ctx, statement, proof.A);
  for (const j of [0, 31, 32, M_REPS - 1]) {
    // The prover answers repetition j for the other bit: z_j = a_j +- lambda mod phi.
    const zj = e[j] === 1
      ? (proof.z[j] - rp.lambda + rp.phi) % rp.phi
      : (proof.z[j] + rp.lambda) % rp.phi;
    const tampered = { ...proof, z: replaced(proof.z, j, zj) };
    expectProofError(
      () => verify(ctx, statement, tampered),
      "verification-failed",
      new RegExp(`repetition ${j}\\b`),
    );
    // And the honest proof fails the interactive verifier when only bit j is flipped.
    const flipped = Uint8Array.from(e, (b, k) => (k === j ? 1 - b : b));
    if (j === 0) {
      expectProofError(
        () => verifyWithChallenge(statement, proof, flipped),
        "verification-failed",
        /repetition 0\b/,
      );
    }
  }
});

test("pi-prm binds each A_i to its position (swapped repetitions are refused)", () => {
  const proof = honest();
  const swap = <T>(a: readonly T[]) => a.map((x, k) => (k === 0 ? a[1] : k === 1 ? a[0] : x));
  expectProofError(
    () => verify(ctx, statement, { A: swap(proof.A), z: swap(proof.z) }),
    "verification-failed",
  );
});

test("pi-prm refuses a witness that does not match the statement", () => {
  assert.throws(() => prove(ctx, statement, { lambda: rp.lambda + 1n, phi: rp.phi }), RangeError);
  assert.throws(() => prove(ctx, statement, { lambda: rp.lambda, phi: rp.phi + 2n }), RangeError);
});

test(
  "pi-prm slow tier: fresh 1536-bit safe primes, proof at real size",
  { skip: !SLOW },
  async () => {
    const [p, q] = await Promise.all([platformSafePrime(1536), platformSafePrime(1536)]);
    const fresh = generateRingPedersen(p, q);
    const proof = prove(ctx, fresh, fresh);
    verify(
      ctx,
      { N: fresh.N, s: fresh.s, t: fresh.t },
      decode(JSON.parse(JSON.stringify(encode(proof)))),
    );
  },
);
