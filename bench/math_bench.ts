/**
 * Big-integer benchmarks: exp mod N^2 (3072-bit N, 3072-bit exponent) per backend, and
 * 1536-bit safe-prime generation per generator.
 * @module
 */
import {
  bigintBackend,
  bigintUniformBackend,
  generateSafePrimeSync,
  type ModPowBackend,
  randomBits,
} from "../core/math/mod.ts";
import { createNodeCryptoBackend, opensslSafePrime } from "../platform/node_crypto.ts";
import { detectRuntime } from "../platform/mod.ts";
import { FIXTURE_SAFE_PRIMES } from "../testing/fixtures/keys.ts";
import { measure, type Row } from "./_harness.ts";

/** exp mod N^2 for every backend available in this runtime. */
export async function benchModPow(runs: number): Promise<Row[]> {
  const N = FIXTURE_SAFE_PRIMES[0] * FIXTURE_SAFE_PRIMES[1];
  const N2 = N * N;
  const e = randomBits(3072) | (1n << 3071n);
  const b = randomBits(6000);
  const rt = detectRuntime();
  const backends: Array<[ModPowBackend, string]> = [
    [bigintBackend, "variable-time"],
    [bigintUniformBackend, "uniform op sequence, not CT"],
    [
      createNodeCryptoBackend(
        rt === "node" ? "openssl (node:crypto DH)" : "deno node:crypto DH",
        rt === "node",
      ),
      rt === "node" ? "BN_mod_exp_mont_consttime" : "Rust polyfill, variable-time",
    ],
  ];
  const rows: Row[] = [];
  for (const [be, note] of backends) {
    rows.push(await measure(`exp mod N^2, ${be.name}`, () => be.modPow(b, e, N2), runs, 1, note));
  }
  const p2 = FIXTURE_SAFE_PRIMES[0] ** 2n;
  const ep = randomBits(1536);
  for (const [be, note] of backends) {
    rows.push(
      await measure(
        `exp mod p^2 (CRT half), ${be.name}`,
        () => be.modPow(b % p2, ep, p2),
        runs,
        1,
        note,
      ),
    );
  }
  return rows;
}

/** Median of several 1536-bit safe primes per generator of this runtime. */
export async function benchSafePrime(runs: number): Promise<Row[]> {
  const rows: Row[] = [];
  if (detectRuntime() === "node") {
    rows.push(
      await measure(
        "safe prime 1536, OpenSSL generatePrime",
        () => opensslSafePrime(1536),
        runs,
        0,
      ),
    );
  }
  rows.push(
    await measure(
      "safe prime 1536, core sieve + Fermat/MR",
      () => generateSafePrimeSync(1536),
      runs,
      0,
    ),
  );
  return rows;
}
