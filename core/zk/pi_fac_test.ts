import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { SLOW } from "../../testing/setup.ts";
import { fixturePaillier, fixtureRingPedersen } from "../../testing/fixtures/keys.ts";
import { platformSafePrime } from "../../platform/mod.ts";
import { mod, modPow, randomBelow, randomBits, randomInRange, randomUnit } from "../math/mod.ts";
import { ELL, EPSILON } from "../params.ts";
import type { RingPedersenParams, RingPedersenSecret } from "../ring_pedersen.ts";
import {
  bounds,
  challenge,
  decode,
  encode,
  type Proof,
  prove,
  type Statement,
  verify,
} from "./pi_fac.ts";
import {
  bitforgeModulus,
  expectProofError,
  randomPrime,
  rejectsCheaply,
} from "../../testing/zk_helpers.ts";
import { assertModulus } from "./_common.ts";

const ctx = { sid: new Uint8Array([4, 2, 4, 2]), prover: 1 };
/** The prover's Paillier key (N0) and its own ring-Pedersen parameters over N0. */
const proverKey = fixturePaillier(3);
const proverAux = fixtureRingPedersen(3);
/** The verifier's ring-Pedersen parameters (N-hat, s, t) and their primes. */
const verifierKey = fixturePaillier(4);
const verifierSecret = fixtureRingPedersen(4);
const aux: RingPedersenParams = { N: verifierSecret.N, s: verifierSecret.s, t: verifierSecret.t };
const N0 = proverKey.N;
const Nhat = aux.N;
const statement: Statement = { N0, aux };
const witness = { p: proverKey.p, q: proverKey.q };

let cached: Proof | undefined;
/** One honest proof shared by the tests that tamper with it. */
function honest(): Proof {
  cached ??= prove(ctx, statement, witness);
  return cached;
}

const ELEMENTS = ["P", "Q", "A", "B", "T"] as const;
const INTEGERS = ["sigma", "z1", "z2", "w1", "w2", "v"] as const;

let bitforge: ReturnType<typeof bitforgeModulus> | undefined;
function bitforgeN(): ReturnType<typeof bitforgeModulus> {
  bitforge ??= bitforgeModulus();
  return bitforge;
}

test("pi-fac proves and verifies a real-size modulus under the verifier's parameters", () => {
  const proof = honest();
  verify(ctx, statement, proof);
  const b = bounds(N0, Nhat);
  assert.ok(proof.z1 <= b.z && proof.z1 >= -b.z && proof.z2 <= b.z && proof.z2 >= -b.z);
});

test("pi-fac encode/decode round-trips through JSON", () => {
  const proof = honest();
  const wire = JSON.parse(JSON.stringify(encode(proof)));
  assert.deepEqual(decode(wire), proof);
  verify(ctx, statement, decode(wire));
});

test("pi-fac rejects each field tampered in turn", () => {
  const proof = honest();
  for (const f of ELEMENTS) {
    const bad = { ...proof, [f]: (proof[f] * aux.t) % Nhat };
    expectProofError(() => verify(ctx, statement, bad), "verification-failed");
  }
  for (const f of INTEGERS) {
    const bad = { ...proof, [f]: proof[f] + (proof[f] > 0n ? -1n : 1n) };
    expectProofError(() => verify(ctx, statement, bad), "verification-failed");
  }
});

test("pi-fac rejects a proof checked under another session id, prover index, N0 or parameters", () => {
  const proof = honest();
  expectProofError(
    () => verify({ ...ctx, sid: new Uint8Array([4, 2, 4, 3]) }, statement, proof),
    "verification-failed",
  );
  expectProofError(() => verify({ ...ctx, prover: 0 }, statement, proof), "verification-failed");
  // The challenge binds the verifier's (N-hat, s, t) and N0, not only the proof.
  const e = challenge(ctx, statement, proof);
  assert.notEqual(challenge(ctx, { N0, aux: { ...aux, s: aux.t, t: aux.s } }, proof), e);
  assert.notEqual(challenge(ctx, { N0, aux: proverAux }, proof), e);
  assert.notEqual(challenge(ctx, { N0: fixturePaillier(5).N, aux }, proof), e);
  // Another modulus: refused by a range that depends on N0 (sigma) or by the equations.
  const other = fixturePaillier(5).N;
  rejectsCheaply(() => verify(ctx, { N0: other, aux }, proof), null, 12);
});

test("pi-fac rejects malformed wire data", () => {
  const wire = encode(honest());
  const bad: unknown[] = [
    null,
    [],
    { ...wire, extra: "01" },
    { ...wire, P: undefined },
    { ...wire, P: 7 },
    { ...wire, z1: wire.z1.toUpperCase() },
    { ...wire, z1: "-00" },
    { ...wire, z1: "-" },
    { ...wire, w1: "--" + wire.w1 },
    { ...wire, v: "00" + wire.v.replace("-", "") },
    { ...wire, A: "-" + wire.A },
  ];
  for (const b of bad) rejectsCheaply(() => decode(b), "malformed", 0);
});

test("pi-fac rejects degenerate values in each field in bounded time", () => {
  const proof = honest();
  const wire = encode(proof);
  const huge = "f".repeat(2 * 1024 * 1024);
  for (const f of [...ELEMENTS, ...INTEGERS]) {
    rejectsCheaply(() => decode({ ...wire, [f]: huge }), "malformed", 0);
    rejectsCheaply(() => decode({ ...wire, [f]: "-" + huge }), "malformed", 0);
  }
  // Group elements: out of range or not units modulo N-hat, refused before any exponentiation
  // but assertModulus's Fermat test on N0.
  const nonUnit = verifierKey.p;
  for (const f of ELEMENTS) {
    for (const v of [0n, 1n, Nhat - 1n, Nhat, Nhat + 1n, nonUnit, 3n * verifierKey.q, -1n]) {
      rejectsCheaply(() => verify(ctx, statement, { ...proof, [f]: v }), "out-of-range", 1);
    }
  }
  // Integers: too large is out of range at once; small ones fail an equation after at most the
  // eleven exponentiations of step 4 (plus the Fermat test).
  for (const f of INTEGERS) {
    for (const v of [0n, 1n, -1n, Nhat - 1n, Nhat, Nhat + 1n, N0, nonUnit, N0 * Nhat << 700n]) {
      rejectsCheaply(() => verify(ctx, statement, { ...proof, [f]: v }), null, 12);
    }
  }
});

test("pi-fac checks every range exactly: bound passes the range check, bound + 1 does not", () => {
  const proof = honest();
  const b = bounds(N0, Nhat);
  const cases: Array<[(typeof INTEGERS)[number], bigint]> = [
    ["z1", b.z],
    ["z2", b.z],
    ["sigma", b.sigma],
    ["w1", b.w],
    ["w2", b.w],
    ["v", b.v],
  ];
  for (const [f, bound] of cases) {
    for (const sign of [1n, -1n]) {
      // At the bound the range check passes and an equation (or the challenge) fails.
      expectProofError(
        () => verify(ctx, statement, { ...proof, [f]: sign * bound }),
        "verification-failed",
      );
      expectProofError(
        () => verify(ctx, statement, { ...proof, [f]: sign * (bound + 1n) }),
        "out-of-range",
        new RegExp(`"${f}"`),
      );
    }
  }
  // The z bound is 2^(l+eps) floor(sqrt(N0)) exactly.
  const root = b.z >> BigInt(ELL + EPSILON);
  assert.ok(root * root <= N0 && (root + 1n) * (root + 1n) > N0);
});

test("pi-fac rejects N0 of 2047, 2049, 3070, 3073 bits, a prime N0 and an even N0 before proof work", () => {
  const proof = honest();
  for (const bits of [2047, 2049, 3070, 3073]) {
    const n = (1n << BigInt(bits - 1)) | randomBits(bits - 1) | 1n;
    rejectsCheaply(() => verify(ctx, { N0: n, aux }, proof), "bad-modulus", 0);
  }
  rejectsCheaply(() => verify(ctx, { N0: N0 + 1n, aux }, proof), "bad-modulus", 0);
  rejectsCheaply(() => verify(ctx, { N0: N0 * 65537n, aux }, proof), "bad-modulus", 0);
  const prime = randomPrime(3072);
  rejectsCheaply(() => verify(ctx, { N0: prime, aux }, proof), "bad-modulus", 1);
});

test("pi-fac refuses malformed verifier parameters and a witness that does not factor N0", () => {
  const proof = honest();
  const badAux: RingPedersenParams[] = [
    { ...aux, s: aux.t },
    { ...aux, s: 1n },
    { ...aux, t: verifierKey.p },
    { ...aux, N: aux.N >> 2n },
    { ...aux, N: aux.N + 1n },
  ];
  for (const a of badAux) {
    assert.throws(() => verify(ctx, { N0, aux: a }, proof), RangeError);
    assert.throws(() => prove(ctx, { N0, aux: a }, witness), RangeError);
  }
  assert.throws(() => prove(ctx, statement, { p: witness.p, q: witness.q + 2n }), RangeError);
  assert.throws(() => prove(ctx, statement, { p: 1n, q: N0 }), RangeError);
});

test("pi-fac rejects a BitForge N0 (16 ~20-bit primes times a large prime) proved honestly", () => {
  const bf = bitforgeN();
  // Size, parity, trial division below 2^16 and the Fermat test all pass.
  assertModulus("pi-fac", bf.N);
  // The attacker's best split puts all small primes in one factor; the other one is still far
  // above 2^(l+eps) sqrt(N0), so its z lands out of range (either order).
  const st = { N0: bf.N, aux };
  const p1 = prove(ctx, st, { p: bf.small, q: bf.large });
  expectProofError(() => verify(ctx, st, p1), "out-of-range", /"z2"/);
  const p2 = prove(ctx, st, { p: bf.large, q: bf.small });
  expectProofError(() => verify(ctx, st, p2), "out-of-range", /"z1"/);
});

test("pi-fac proved under the prover's own parameters is rejected by the verifier's", () => {
  // An honest modulus, but the proof is made under the prover's (N0, s, t) instead of the
  // verifier's: the verifier, which checks under its own parameters, refuses it.
  // Depending on which of the two moduli is larger, a commitment is out of range modulo N-hat
  // or an equation fails.
  const own = prove(ctx, { N0, aux: proverAux }, witness);
  verify(ctx, { N0, aux: proverAux }, own);
  const err = expectProofError(() => verify(ctx, statement, own), null);
  assert.ok(err.code === "out-of-range" || err.code === "verification-failed", err.message);
});

/**
 * The trapdoor forgery: whoever knows lambda and phi(N-hat) of (s, t) = (t^lambda, t) can answer
 * any challenge. Every commitment is a power of t with a known exponent; after e is known,
 * w1, w2 and v are solved modulo phi(N-hat) for chosen in-range z1, z2.
 */
function forgeWithTrapdoor(st: Statement, trap: RingPedersenSecret): Proof {
  const { N, t } = st.aux;
  const { lambda, phi } = trap;
  const b = bounds(st.N0, N);
  const z1 = randomInRange(-b.z, b.z);
  const z2 = randomInRange(-b.z, b.z);
  const sigma = randomInRange(-(1n << BigInt(ELL)), 1n << BigInt(ELL));
  const [pi, kappa, a, bb, tau] = Array.from({ length: 5 }, () => randomBelow(phi));
  const [P, Q, A, B, T] = [pi, kappa, a, bb, tau].map((x) => modPow(t, x, N));
  const e = challenge(ctx, st, { P, Q, A, B, T, sigma });
  // s^z1 t^w1 = t^(lambda z1 + w1) = A P^e = t^(a + e pi).
  const w1 = mod(a + e * pi - lambda * z1, phi);
  const w2 = mod(bb + e * kappa - lambda * z2, phi);
  // Q^z1 t^v = t^(kappa z1 + v) = T (s^N0 t^sigma)^e = t^(tau + e (lambda N0 + sigma)).
  const v = mod(tau + e * (lambda * st.N0 + sigma) - kappa * z1, phi);
  return { P, Q, A, B, T, sigma, z1, z2, w1, w2, v };
}

test("pi-fac: a BitForge prover forging under its own parameters is rejected by the verifier's", () => {
  const bf = bitforgeN();
  // The attacker's own ring-Pedersen parameters over its BitForge modulus; it knows phi.
  const r = randomUnit(bf.N);
  const t = (r * r) % bf.N;
  const lambda = randomBelow(bf.phi);
  const own: RingPedersenSecret = { N: bf.N, s: modPow(t, lambda, bf.N), t, lambda, phi: bf.phi };
  const ownStatement = { N0: bf.N, aux: { N: own.N, s: own.s, t: own.t } };
  const forged = forgeWithTrapdoor(ownStatement, own);
  // Checked under the attacker's parameters the forgery passes: that is the attack.
  verify(ctx, ownStatement, forged);
  // The verifier checks under its own parameters and refuses it (a commitment out of range
  // modulo its N-hat, or an equation: the forged exponents mean nothing there).
  const err = expectProofError(() => verify(ctx, { N0: bf.N, aux }, forged), null);
  assert.ok(err.code === "out-of-range" || err.code === "verification-failed", err.message);
});

test(
  "pi-fac slow tier: fresh 1536-bit safe primes, proof at real size",
  { skip: !SLOW },
  async () => {
    const [p, q] = await Promise.all([platformSafePrime(1536), platformSafePrime(1536)]);
    const st = { N0: p * q, aux };
    const proof = prove(ctx, st, { p, q });
    verify(ctx, st, decode(JSON.parse(JSON.stringify(encode(proof)))));
  },
);
