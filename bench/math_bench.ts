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
import { Buffer } from "node:buffer";
import { createDiffieHellman } from "node:crypto";
import { createNodeCryptoBackend, opensslSafePrime } from "../platform/node_crypto.ts";
import { openSslFfiBackends } from "../platform/openssl_ffi.ts";
import { detectRuntime } from "../platform/mod.ts";
import { FIXTURE_SAFE_PRIMES } from "../testing/fixtures/keys.ts";
import { measure, type Row } from "./_harness.ts";

/** Every backend available in this runtime, with a note on its timing behaviour. */
function runtimeBackends(): Array<[ModPowBackend, string]> {
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
  if (rt === "deno") {
    const ffi = openSslFfiBackends();
    if ("secret" in ffi) {
      backends.push([ffi.secret, `BN_mod_exp_mont_consttime, FFI (${ffi.version})`]);
      backends.push([ffi.public, "BN_mod_exp_mont, FFI, variable-time"]);
    }
  }
  return backends;
}

/**
 * exp mod N^2 (3072-bit exponent) and mod p^2 (1536-bit exponent: a CRT half) for every backend
 * of this runtime; mod N and N^2 with a 486-bit exponent (the median public exponent of a
 * signing) for the OpenSSL ones; and, in Node, the first use of a modulus (a DH context and its
 * `DH_check`) for a 1536-bit prime p, for 3p (what the backend builds for p) and for N^2.
 */
export async function benchModPow(runs: number): Promise<Row[]> {
  const N = FIXTURE_SAFE_PRIMES[0] * FIXTURE_SAFE_PRIMES[1];
  const N2 = N * N;
  const e = randomBits(3072) | (1n << 3071n);
  const b = randomBits(6000);
  const backends = runtimeBackends();
  const rows: Row[] = [];
  for (const [be, note] of backends) {
    rows.push(await measure(`exp mod N^2, ${be.name}`, () => be.modPow(b, e, N2), runs, 1, note));
  }
  const p = FIXTURE_SAFE_PRIMES[0];
  const p2 = p ** 2n;
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
  const e486 = randomBits(486) | (1n << 485n);
  for (const [be, note] of backends.slice(2)) {
    for (const [name, m] of [["N", N], ["N^2", N2]] as const) {
      rows.push(
        await measure(
          `exp mod ${name}, 486-bit exponent, ${be.name}`,
          () => be.modPow(b % m, e486, m),
          runs,
          1,
          note,
        ),
      );
    }
  }
  if (detectRuntime() === "node") {
    const hex = (x: bigint) =>
      x.toString(16).padStart(2 * Math.ceil(x.toString(16).length / 2), "0");
    for (const [name, m] of [["p (1536-bit prime)", p], ["3p", 3n * p], ["N^2", N2]] as const) {
      rows.push(
        await measure(
          `new DH context (DH_check), ${name}`,
          () => createDiffieHellman(hex(m), "hex", Buffer.from([2])),
          Math.min(runs, 5),
          0,
          "paid once per modulus and cache",
        ),
      );
    }
    // What working modulo 3p costs per exponentiation (25 words miss OpenSSL's 24-word path).
    for (const [name, m] of [["p", p], ["3p", 3n * p]] as const) {
      const dh = createDiffieHellman(hex(m), "hex", Buffer.from([2]));
      const x = Buffer.from(hex(b % p), "hex");
      rows.push(
        await measure(`exp mod ${name}, 1536-bit exponent, one DH context`, () => {
          dh.setPrivateKey(Buffer.from(hex(ep), "hex"));
          return dh.computeSecret(x);
        }, runs),
      );
    }
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
