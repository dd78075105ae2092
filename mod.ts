/**
 * wallet-mpc: a 2-of-2 threshold-ECDSA wallet on CGGMP21 (secp256k1).
 *
 * This entry re-exports the public API. The cryptographic building blocks have their own
 * subpath exports (`./core/math`, `./core/paillier`, `./core/ring_pedersen`,
 * `./core/transcript`, `./core/zk`); runtime adapters (`platform/`) are never re-exported here.
 *
 * @example
 * ```ts
 * import { ProofError } from "./mod.ts";
 * const e = new ProofError("pi-mod", "bad-modulus", "N is even");
 * console.assert(e.code === "bad-modulus");
 * ```
 * @module
 */
export { InternalError, ProofError, type ProofErrorCode } from "./core/errors.ts";
export {
  ELL,
  ELL_PRIME,
  EPSILON,
  KAPPA_BYTES,
  M_REPS,
  MODULUS_MAX_BITS,
  MODULUS_MIN_BITS,
  PRIME_BITS,
  Q,
} from "./core/params.ts";
