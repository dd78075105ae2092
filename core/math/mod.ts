/**
 * Big-integer arithmetic for CGGMP21: modular helpers, uniform sampling from Web Crypto,
 * exponentiation backends, primality and safe-prime generation.
 *
 * @example
 * ```ts
 * import { modPow, randomUnit } from "./mod.ts";
 * const N = 3233n; // 61 * 53
 * const r = randomUnit(N);
 * console.assert(modPow(r, 0n, N) === 1n);
 * ```
 * @module
 */
export * from "./bigint.ts";
export * from "./random.ts";
export * from "./modpow.ts";
export * from "./prime.ts";
/** The wire form of integers (moved to `core/bytes.ts`), kept in this public module's API. */
export { parseHexInt, parseHexSigned, toHexInt, toHexSigned } from "../bytes.ts";
