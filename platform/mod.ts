/**
 * Picks the fastest big-integer backends the current runtime offers and installs them into
 * `core/math`. Entry points (`main.ts`, `cli.ts`, tests, benchmarks) call
 * `installPlatformBackends()` once; libraries never do. Browsers keep the pure BigInt defaults.
 *
 * | runtime | public exponents        | secret exponents               | safe primes            |
 * |---------|-------------------------|--------------------------------|------------------------|
 * | Node    | OpenSSL (node:crypto)   | OpenSSL, constant-time         | OpenSSL generatePrime  |
 * | Deno    | node:crypto polyfill    | BigInt fixed window (not CT)   | core sieve + Fermat/MR |
 * | browser | BigInt sliding window   | BigInt fixed window (not CT)   | core sieve + Fermat/MR |
 * @module
 */
import {
  bigintUniformBackend,
  generateSafePrime,
  getModPowBackends,
  type ModPowBackends,
  type PrimeProgress,
  setModPowBackends,
} from "../core/math/mod.ts";
import { createNodeCryptoBackend, opensslSafePrime } from "./node_crypto.ts";

/** The runtime this process runs on. */
export type RuntimeName = "deno" | "node" | "other";

/** Detects Deno or Node (Deno also defines `process`, so it is tested first). */
export function detectRuntime(): RuntimeName {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } } };
  if (typeof g.Deno !== "undefined") return "deno";
  if (g.process?.versions?.node) return "node";
  return "other";
}

/** Installs the backends of the table above and returns what was installed. */
export function installPlatformBackends(runtime: RuntimeName = detectRuntime()): ModPowBackends {
  if (runtime === "node") {
    const ossl = createNodeCryptoBackend("openssl-consttime", true);
    setModPowBackends({ public: ossl, secret: ossl });
  } else if (runtime === "deno") {
    setModPowBackends({
      public: createNodeCryptoBackend("deno-node-crypto", false),
      secret: bigintUniformBackend,
    });
  }
  return getModPowBackends();
}

/** A safe prime of `bits` bits by the fastest generator of this runtime. */
export function platformSafePrime(
  bits: number,
  runtime: RuntimeName = detectRuntime(),
  onProgress?: PrimeProgress,
): Promise<bigint> {
  if (runtime === "node") return opensslSafePrime(bits);
  return generateSafePrime(bits, undefined, onProgress);
}
