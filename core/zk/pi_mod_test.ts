import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { SLOW } from "../../testing/setup.ts";
import { fixturePaillier } from "../../testing/fixtures/keys.ts";
import { platformSafePrime } from "../../platform/mod.ts";
import {
  bigintBackend,
  bitLength,
  crt2,
  gcd,
  jacobi,
  mod,
  modInv,
  modPow,
  randomBelow,
  randomBits,
  randomUnit,
} from "../math/mod.ts";
import { M_REPS } from "../params.ts";
import {
  challenge,
  decode,
  encode,
  type Proof,
  prove,
  respond,
  type Statement,
  verify,
  verifyWithChallenge,
} from "./pi_mod.ts";
import {
  expectProofError,
  randomPrime,
  rejectsCheaply,
  replaced,
} from "../../testing/zk_helpers.ts";
import { assertModulus } from "./_common.ts";

const ctx = { sid: new Uint8Array([9, 9, 1]), prover: 0 };
const key = fixturePaillier(2);
const N = key.N;
const statement: Statement = { N };
const witness = { p: key.p, q: key.q };

let cached: Proof | undefined;
/** One honest proof shared by the tests that tamper with it. */
function honest(): Proof {
  cached ??= prove(ctx, statement, witness);
  return cached;
}

/** b^e mod m for any odd m (small moduli go to the plain BigInt path). */
function pow(b: bigint, e: bigint, m: bigint): bigint {
  return m < 1n << 64n ? bigintBackend.modPow(mod(b, m), e, m) : modPow(b, e, m);
}

/** Legendre symbol of u modulo an odd prime r (the Jacobi symbol, by reciprocity). */
function legendre(u: bigint, r: bigint): -1 | 0 | 1 {
  return jacobi(u, r);
}

/**
 * The principal fourth root of a quadratic residue u modulo a prime r = 3 mod 4: u^((r+1)/4)
 * is the square root that is itself a residue, so applying it twice gives u^(((r+1)/4)^2),
 * with the exponent reduced modulo the order (r - 1) / 2 of the residues.
 */
function fourthRootMod(u: bigint, r: bigint): bigint {
  const k = (r + 1n) >> 2n;
  return pow(u, (k * k) % ((r - 1n) >> 1n), r);
}

/** x mod prod(moduli) from its residues (pairwise coprime moduli). */
function crtAll(residues: readonly bigint[], moduli: readonly bigint[]): bigint {
  let x = mod(residues[0], moduli[0]);
  let M = moduli[0];
  for (let i = 1; i < moduli.length; i++) {
    x = crt2(x, M, mod(residues[i], moduli[i]), moduli[i], modInv(M % moduli[i], moduli[i]));
    M *= moduli[i];
  }
  return x;
}

test("pi-mod proves and verifies a real-size Paillier-Blum modulus (3072-bit N)", () => {
  const proof = honest();
  assert.equal(bitLength(N), 3072);
  assert.equal(jacobi(proof.w, N), -1);
  verify(ctx, statement, proof);
});

test("pi-mod encode/decode round-trips through JSON", () => {
  const proof = honest();
  const wire = JSON.parse(JSON.stringify(encode(proof)));
  assert.deepEqual(decode(wire), proof);
  assert.ok(wire.a.every((v: unknown) => v === 0 || v === 1));
});

test("pi-mod rejects each field tampered (w, and x, a, b, z of a repetition)", () => {
  const proof = honest();
  // w * 4 keeps a unit of Jacobi symbol -1, so only the challenges change.
  expectProofError(
    () => verify(ctx, statement, { ...proof, w: (proof.w * 4n) % N }),
    "verification-failed",
  );
  const flip = (v: 0 | 1): 0 | 1 => (v === 1 ? 0 : 1);
  for (const i of [0, M_REPS - 1]) {
    const at = new RegExp(`repetition ${i}\\b`);
    const x = { ...proof, x: replaced(proof.x, i, (proof.x[i] * 2n) % N) };
    expectProofError(() => verify(ctx, statement, x), "verification-failed", at);
    const z = { ...proof, z: replaced(proof.z, i, (proof.z[i] * 2n) % N) };
    expectProofError(() => verify(ctx, statement, z), "verification-failed", at);
    if (i !== 0) continue;
    const a = { ...proof, a: replaced(proof.a, i, flip(proof.a[i])) };
    expectProofError(() => verify(ctx, statement, a), "verification-failed", at);
    const b = { ...proof, b: replaced(proof.b, i, flip(proof.b[i])) };
    expectProofError(() => verify(ctx, statement, b), "verification-failed", at);
  }
});

test("pi-mod rejects a proof checked under another session id or another prover index", () => {
  const proof = honest();
  expectProofError(
    () => verify({ ...ctx, sid: new Uint8Array([9, 9, 2]) }, statement, proof),
    "verification-failed",
  );
  expectProofError(() => verify({ ...ctx, prover: 1 }, statement, proof), "verification-failed");
});

test("pi-mod rejects proof arrays of length 0, 1, m-1 and m+1 (decode and verify)", () => {
  const proof = honest();
  const wire = encode(proof);
  for (const len of [0, 1, M_REPS - 1, M_REPS + 1]) {
    const cut = (a: readonly unknown[]) => Array.from({ length: len }, (_, k) => a[k % a.length]);
    for (const f of ["x", "a", "b", "z"] as const) {
      rejectsCheaply(() => decode({ ...wire, [f]: cut(wire[f]) }), "malformed", 0);
      rejectsCheaply(
        () => verify(ctx, statement, { ...proof, [f]: cut(proof[f]) } as Proof),
        "malformed",
        1,
      );
    }
  }
});

test("pi-mod rejects malformed wire data", () => {
  const wire = encode(honest());
  const bad: unknown[] = [
    null,
    [],
    { ...wire, extra: 1 },
    { x: wire.x, a: wire.a, b: wire.b, z: wire.z },
    { ...wire, w: 5 },
    { ...wire, w: wire.w.toUpperCase() },
    { ...wire, w: "00" + wire.w },
    { ...wire, a: replaced(wire.a, 0, 2 as 0) },
    { ...wire, a: replaced(wire.a, 0, -1 as 0) },
    { ...wire, b: replaced(wire.b, 0, true as unknown as 0) },
    { ...wire, b: replaced(wire.b, 0, "1" as unknown as 0) },
    { ...wire, b: replaced(wire.b, 0, null as unknown as 0) },
    { ...wire, x: replaced(wire.x, 5, "-" + wire.x[5]) },
  ];
  for (const b of bad) rejectsCheaply(() => decode(b), "malformed", 0);
  // The same bit values in an in-memory proof are refused by verify.
  const proof = honest();
  rejectsCheaply(
    () => verify(ctx, statement, { ...proof, a: replaced(proof.a, 3, 2 as 0) }),
    "malformed",
    1,
  );
});

test("pi-mod rejects degenerate w, x_i, z_i (0, 1, N-1, N, N+1, non-unit, 1 MB) in bounded time", () => {
  const proof = honest();
  const wire = encode(proof);
  const huge = "f".repeat(2 * 1024 * 1024);
  rejectsCheaply(() => decode({ ...wire, w: huge }), "malformed", 0);
  for (const v of [0n, 1n, N - 1n, N, N + 1n, key.p, 3n * key.q, -5n]) {
    // The only exponentiation allowed is assertModulus's Fermat test. 1 and N-1 are units of
    // Jacobi symbol +1; the others are out of range or not units.
    rejectsCheaply(() => verify(ctx, statement, { ...proof, w: v }), null, 1);
  }
  for (const i of [0, M_REPS - 1]) {
    for (const f of ["x", "z"] as const) {
      rejectsCheaply(() => decode({ ...wire, [f]: replaced(wire[f], i, huge) }), "malformed", 0);
      for (const v of [0n, 1n, N - 1n, N, N + 1n, key.p, 3n * key.q, -5n]) {
        rejectsCheaply(
          () => verify(ctx, statement, { ...proof, [f]: replaced(proof[f], i, v) }),
          "out-of-range",
          1,
        );
      }
    }
  }
});

test("pi-mod rejects N of 2047, 2049, 3070, 3073 bits, a prime N and an even N before proof work", () => {
  const proof = honest();
  for (const bits of [2047, 2049, 3070, 3073]) {
    const n = (1n << BigInt(bits - 1)) | randomBits(bits - 1) | 1n;
    rejectsCheaply(() => verify(ctx, { N: n }, proof), "bad-modulus", 0);
  }
  rejectsCheaply(() => verify(ctx, { N: N + 1n }, proof), "bad-modulus", 0);
  rejectsCheaply(() => verify(ctx, { N: N * 3n }, proof), "bad-modulus", 0);
  const prime = randomPrime(3072);
  rejectsCheaply(() => verify(ctx, { N: prime }, proof), "bad-modulus", 1);
});

/**
 * CVE-2025-66016: the attacker sends w = p, a factor of N. For each y_i it answers with b_i = 0
 * when +-y_i is a residue, else with b_i = 1, where (-1)^a p y_i = 0 mod p has the fourth root 0
 * mod p and a real one mod q. Every equation x^4 = (-1)^a w^b y, z^N = y holds.
 */
function forgeWithFactorAsW(): Proof {
  const { p, q, phi } = key;
  const w = p;
  const ys = challenge(ctx, statement, w);
  const d = modInv(N, phi);
  const x: bigint[] = [];
  const a: (0 | 1)[] = [];
  const b: (0 | 1)[] = [];
  const z: bigint[] = [];
  for (const y of ys) {
    const lp = legendre(y, p);
    const lq = legendre(y, q);
    if (lp === lq) {
      const ai = lp === 1 ? 0 : 1;
      const u = ai === 1 ? N - y : y;
      x.push(crtAll([fourthRootMod(u, p), fourthRootMod(u, q)], [p, q]));
      a.push(ai);
      b.push(0);
    } else {
      const pu = (p * y) % N;
      const ai = legendre(pu, q) === 1 ? 0 : 1;
      const u = ai === 1 ? N - pu : pu;
      x.push(crtAll([0n, fourthRootMod(u, q)], [p, q]));
      a.push(ai);
      b.push(1);
    }
    z.push(crtAll([pow(y, d % (p - 1n), p), pow(y, d % (q - 1n), q)], [p, q]));
  }
  return { w, x, a, b, z };
}

test("pi-mod rejects w sharing a factor with N by the gcd(w, N) = 1 check (CVE-2025-66016)", () => {
  const forged = forgeWithFactorAsW();
  const ys = challenge(ctx, statement, forged.w);
  // The forgery satisfies the equations of step 4 (checked here on a few repetitions).
  for (let i = 0; i < 4; i++) {
    let t = forged.b[i] === 1 ? (ys[i] * forged.w) % N : ys[i];
    if (forged.a[i] === 1) t = N - t;
    assert.equal(modPow(forged.x[i], 4n, N), t);
    assert.equal(modPow(forged.z[i], N, N), ys[i]);
  }
  // It is refused at w, by the gcd check itself (not by the later Jacobi or x_i checks: the
  // Jacobi symbol of a non-unit is 0 and the b_i = 1 answers are non-units, so those layers
  // would refuse it too, with other codes and messages).
  rejectsCheaply(() => verify(ctx, statement, forged), "out-of-range", 1);
  expectProofError(
    () => verify(ctx, statement, forged),
    "out-of-range",
    /"w" is not a unit modulo N/,
  );
  expectProofError(
    () => verifyWithChallenge(statement, forged, ys),
    "out-of-range",
    /"w" is not a unit/,
  );
});

test("pi-mod rejects a unit w of Jacobi symbol +1", () => {
  const proof = honest();
  const w = (proof.w * proof.w) % N;
  assert.equal(gcd(w, N), 1n);
  rejectsCheaply(() => verify(ctx, statement, { ...proof, w }), "verification-failed", 1);
  expectProofError(() => verify(ctx, statement, { ...proof, w }), "verification-failed", /Jacobi/);
});

test("pi-mod requires the challenges y_i to be pairwise distinct", () => {
  const w = honest().w;
  const ys = Array.from({ length: M_REPS }, () => randomBelow(N));
  ys[M_REPS - 1] = ys[0];
  const proof = respond(statement, witness, w, ys);
  // Each answer is valid on its own (repetitions 0 and m-1 answer the same y) ...
  for (const i of [0, M_REPS - 1]) assert.equal(modPow(proof.z[i], N, N), ys[i]);
  // ... but a repeated challenge is refused before any equation is checked.
  rejectsCheaply(() => verifyWithChallenge(statement, proof, ys), "verification-failed", 1);
  expectProofError(
    () => verifyWithChallenge(statement, proof, ys),
    "verification-failed",
    /pairwise distinct/,
  );
  // The Fiat-Shamir challenges of a real proof are distinct, each from its own counter.
  const real = challenge(ctx, statement, w);
  assert.equal(new Set(real).size, M_REPS);
});

/** BitForge: 16 primes = 3 mod 4 in [2^19, 2^20) (above trial division) times one large prime. */
function bitforgeModulus(): { N: bigint; primes: bigint[] } {
  const isSmallPrime = (n: number) => {
    for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
    return true;
  };
  for (;;) {
    const small: bigint[] = [];
    for (let c = (1 << 19) + (Number(randomBits(17)) & ~3) + 3; small.length < 16; c += 4) {
      if (isSmallPrime(c)) small.push(BigInt(c));
    }
    const S = small.reduce((x, y) => x * y, 1n);
    const P = randomPrime(3072 - bitLength(S));
    const n = S * P;
    const primes = [...small, P];
    const phi = primes.reduce((x, r) => x * (r - 1n), 1n);
    if (bitLength(n) >= 3071 && gcd(n, phi) === 1n) return { N: n, primes };
  }
}

/**
 * The attacker's best Pi-mod for a BitForge N: it knows every prime, so it computes every N-th
 * root z_i, and for the fourth roots picks the (a, b) that makes (-1)^a w^b y_i a residue
 * modulo as many primes as possible (all of them only with probability ~ 4 / 2^17).
 */
function forgeBitforgeMod(bf: { N: bigint; primes: bigint[] }): { proof: Proof; valid: number } {
  const { primes } = bf;
  const st = { N: bf.N };
  // The attacker grinds w until every challenge y_i is a unit: a y_i sharing one of the ~20-bit
  // primes (about 0.1% of the challenge sets) would make its z_i a non-unit, refused earlier and
  // for another reason than the fourth roots this test is about.
  let w: bigint;
  let ys: bigint[];
  do {
    do w = randomUnit(bf.N); while (jacobi(w, bf.N) !== -1);
    ys = challenge(ctx, st, w);
  } while (ys.some((y) => gcd(y, bf.N) !== 1n));
  const phi = primes.reduce((x, r) => x * (r - 1n), 1n);
  const d = modInv(bf.N, phi);
  const symW = primes.map((r) => legendre(w, r));
  const x: bigint[] = [];
  const a: (0 | 1)[] = [];
  const b: (0 | 1)[] = [];
  const z: bigint[] = [];
  let valid = 0;
  for (const y of ys) {
    const symY = primes.map((r) => legendre(y, r));
    let best = { a: 0 as 0 | 1, b: 0 as 0 | 1, count: -1 };
    for (const ai of [0, 1] as const) {
      for (const bi of [0, 1] as const) {
        // -1 is a non-residue modulo every prime = 3 mod 4.
        const count = primes.filter((_, k) =>
          (ai ? -1 : 1) * (bi ? symW[k] : 1) * symY[k] === 1
        ).length;
        if (count > best.count) best = { a: ai, b: bi, count };
      }
    }
    if (best.count === primes.length) valid++;
    let u = best.b === 1 ? (y * w) % bf.N : y;
    if (best.a === 1) u = bf.N - u;
    const sym = (k: number) => (best.a ? -1 : 1) * (best.b ? symW[k] : 1) * symY[k];
    const roots = primes.map((r, k) => (sym(k) === 1 ? fourthRootMod(u, r) : 1n));
    x.push(crtAll(roots, primes));
    a.push(best.a);
    b.push(best.b);
    z.push(crtAll(primes.map((r) => pow(y, d % (r - 1n), r)), primes));
  }
  return { proof: { w, x, a, b, z }, valid };
}

let bitforge: { N: bigint; primes: bigint[] } | undefined;
function bitforgeN(): { N: bigint; primes: bigint[] } {
  bitforge ??= bitforgeModulus();
  return bitforge;
}

test("pi-mod rejects a BitForge modulus (16 ~20-bit primes times a large prime)", () => {
  const bf = bitforgeN();
  // The cheap modulus checks pass: size, odd, no factor below 2^16, composite.
  assertModulus("pi-mod", bf.N);
  const { proof, valid } = forgeBitforgeMod(bf);
  assert.ok(valid < 8, `repetitions with a real fourth root: ${valid}`);
  const ys = challenge(ctx, { N: bf.N }, proof.w);
  for (let i = 0; i < 4; i++) assert.equal(modPow(proof.z[i], bf.N, bf.N), ys[i]);
  expectProofError(() => verify(ctx, { N: bf.N }, proof), "verification-failed", /fourth root/);
  // The honest prover refuses such a witness outright.
  assert.throws(
    () => prove(ctx, { N: bf.N }, { p: bf.primes[0], q: bf.N / bf.primes[0] }),
    RangeError,
  );
});

/**
 * CVE-2025-66016 on a BitForge modulus N = S P (S the product of the 16 small primes, P the
 * large prime): with w = S, every repetition is answered with b_i = 1. Modulo S the target
 * (-1)^a S y_i is 0, whose fourth root is 0; modulo the Blum prime P one sign makes it a residue
 * with a fourth root; z_i is a real N-th root (gcd(N, phi(N)) = 1). So without the w checks the
 * proof "shows" that a 17-prime N is Paillier-Blum.
 */
function forgeBitforgeWithSharedW(bf: { N: bigint; primes: bigint[] }): Proof {
  const P = bf.primes[bf.primes.length - 1];
  const S = bf.N / P;
  const w = S;
  const ys = challenge(ctx, { N: bf.N }, w);
  const phi = bf.primes.reduce((x, r) => x * (r - 1n), 1n);
  const d = modInv(bf.N, phi);
  const x: bigint[] = [];
  const a: (0 | 1)[] = [];
  const z: bigint[] = [];
  for (const y of ys) {
    const u = (S * y) % P;
    const ai = legendre(u, P) === 1 ? 0 : 1;
    x.push(crtAll([0n, fourthRootMod(ai === 1 ? P - u : u, P)], [S, P]));
    a.push(ai);
    z.push(crtAll(bf.primes.map((r) => pow(y, d % (r - 1n), r)), bf.primes));
  }
  return { w, x, a, b: new Array(M_REPS).fill(1), z };
}

test("pi-mod rejects the CVE-2025-66016 forgery: BitForge N with w sharing its small factors", () => {
  const bf = bitforgeN();
  const st = { N: bf.N };
  const forged = forgeBitforgeWithSharedW(bf);
  const ys = challenge(ctx, st, forged.w);
  // Every repetition satisfies both equations of step 4 (checked here on a few of them).
  for (let i = 0; i < 4; i++) {
    const wy = (ys[i] * forged.w) % bf.N;
    assert.equal(modPow(forged.x[i], 4n, bf.N), forged.a[i] === 1 ? bf.N - wy : wy);
    assert.equal(modPow(forged.z[i], bf.N, bf.N), ys[i]);
  }
  // Refused at w by the gcd check, before any proof arithmetic (the Jacobi symbol of w is 0 and
  // the x_i are not units, so the later layers would refuse it too, with other messages).
  rejectsCheaply(() => verify(ctx, st, forged), "out-of-range", 1);
  expectProofError(() => verify(ctx, st, forged), "out-of-range", /"w" is not a unit modulo N/);
});

test(
  "pi-mod slow tier: fresh 1536-bit safe primes, proof at real size",
  { skip: !SLOW },
  async () => {
    const [p, q] = await Promise.all([platformSafePrime(1536), platformSafePrime(1536)]);
    const proof = prove(ctx, { N: p * q }, { p, q });
    verify(ctx, { N: p * q }, decode(JSON.parse(JSON.stringify(encode(proof)))));
  },
);
