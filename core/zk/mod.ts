/**
 * The seven zero-knowledge proofs of CGGMP21, one module each, plus the shared proof context.
 * Each module exports `Statement`, `Witness`, `Proof`, `prove`, `verify` (throws `ProofError`),
 * `encode` and `decode` (validates received JSON).
 *
 * @example
 * ```ts
 * import { sch } from "./mod.ts";
 * import { Point } from "../params.ts";
 * const ctx = { sid: new Uint8Array([1]), prover: 0 };
 * const x = 5n;
 * const statement = { X: Point.BASE.multiply(x), rid: new Uint8Array(32) };
 * const proof = sch.prove(ctx, statement, sch.commit(), { x });
 * sch.verify(ctx, statement, sch.decode(JSON.parse(JSON.stringify(sch.encode(proof)))));
 * ```
 * @module
 */
export type { ProofContext } from "./_common.ts";
export * as sch from "./pi_sch.ts";
export * as prm from "./pi_prm.ts";
export * as mod from "./pi_mod.ts";
export * as fac from "./pi_fac.ts";
export * as enc from "./pi_enc.ts";
export * as affg from "./pi_aff_g.ts";
export * as logstar from "./pi_log_star.ts";
