/**
 * Test helpers shared by the zero-knowledge proof tests (core/zk/*_test.ts): expected-rejection
 * assertions with bounded work, hostile values, and small random primes for forged moduli.
 * @module
 */
import assert from "node:assert/strict";
import { ProofError, type ProofErrorCode } from "../core/errors.ts";
import {
  bitLength,
  gcd,
  millerRabin,
  modPow,
  randomBits,
  setModPowCounter,
  SMALL_PRIMES,
} from "../core/math/mod.ts";
import type { RingPedersenParams } from "../core/ring_pedersen.ts";
import { fixtureRingPedersen } from "./fixtures/keys.ts";

/** A 1 MB integer. */
export const HUGE: bigint = 1n << 8_388_608n;

/** The public part (N, s, t) of the i-th fixture ring-Pedersen parameters. */
export function publicRp(i: number): RingPedersenParams {
  const { N, s, t } = fixtureRingPedersen(i);
  return { N, s, t };
}

/**
 * Expects `f` to throw a ProofError (with `code` when given). Bounded work on hostile values is
 * checked by counting exponentiations (`rejectsCheaply`), never by the clock: a loaded machine
 * makes any time limit fail sometimes.
 */
export function rejects(what: string, f: () => void, code?: ProofErrorCode): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ProofError, `${what}: expected a ProofError, got ${e}`);
    if (code) assert.equal(e.code, code, `${what}: expected "${code}", got ${e.message}`);
    return true;
  });
}

/** Expects `f` to throw a ProofError with `code` (any code when null); returns it. */
export function expectProofError(
  f: () => unknown,
  code: ProofErrorCode | null,
  message?: RegExp,
): ProofError {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ProofError, `expected a ProofError, got ${String(caught)}`);
  if (code) {
    assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  }
  if (message) assert.match(caught.message, message);
  return caught;
}

/** Expects rejection with at most `maxExps` modular exponentiations (counted, not timed). */
export function rejectsCheaply(
  f: () => unknown,
  code: ProofErrorCode | null,
  maxExps: number,
): void {
  const counter = { counts: new Map<string, number>() };
  setModPowCounter(counter);
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  } finally {
    setModPowCounter(null);
  }
  assert.ok(caught instanceof ProofError, `expected a ProofError, got ${String(caught)}`);
  if (code) assert.equal(caught.code, code, caught.message);
  const exps = [...counter.counts.values()].reduce((a, b) => a + b, 0);
  assert.ok(
    exps <= maxExps,
    `expected <= ${maxExps} exponentiations before rejection, got ${exps}`,
  );
}

/** A copy of `arr` with entry i replaced by v. */
export function replaced<T>(arr: readonly T[], i: number, v: T): T[] {
  return arr.map((x, k) => (k === i ? v : x));
}

/**
 * A random prime of exactly `bits` bits, top two bits set, = 3 mod 4: a sieve over
 * n0 + 4k by the odd primes below 2^16, then a base-2 Fermat test and Miller-Rabin.
 */
export function randomPrime(bits: number): bigint {
  for (;;) {
    const n0 = ((randomBits(bits) | (3n << BigInt(bits - 2))) >> 2n << 2n) | 3n;
    const rems = SMALL_PRIMES.map((r) => Number(n0 % BigInt(r)));
    for (let step = 0; step < 1 << 16; step += 4) {
      if (rems.some((m, j) => (m + step) % SMALL_PRIMES[j] === 0)) continue;
      const n = n0 + BigInt(step);
      if (bitLength(n) !== bits) break;
      if (modPow(2n, n - 1n, n) === 1n && millerRabin(n, 4)) return n;
    }
  }
}

/** BitForge: 16 primes = 3 mod 4 in [2^19, 2^20) (above trial division) times one large prime. */
export function bitforgeModulus(): { N: bigint; small: bigint; large: bigint; phi: bigint } {
  const isSmallPrime = (n: number) => {
    for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
    return true;
  };
  for (;;) {
    const primes: bigint[] = [];
    for (let c = (1 << 19) + (Number(randomBits(17)) & ~3) + 3; primes.length < 16; c += 4) {
      if (isSmallPrime(c)) primes.push(BigInt(c));
    }
    const small = primes.reduce((x, y) => x * y, 1n);
    const large = randomPrime(3072 - bitLength(small));
    const N = small * large;
    const phi = primes.reduce((x, r) => x * (r - 1n), large - 1n);
    if (bitLength(N) >= 3071 && gcd(N, phi) === 1n) return { N, small, large, phi };
  }
}
