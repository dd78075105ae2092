/**
 * `wallet-mpc` in Node and Deno: the public API of `mod.ts`, re-exported whole, with the
 * runtime's fastest big-integer backends installed on first import (`client/native.ts`). The
 * package's `exports` map sends the `node` and `deno` conditions here and `browser` to `mod.ts`.
 *
 * @example
 * ```ts
 * import { newMpcClient } from "./mod_native.ts";
 * console.assert(typeof newMpcClient === "function");
 * ```
 * @module
 */
import "./client/native.ts";

export * from "./mod.ts";
