/**
 * wallet-mpc: a 2-of-2 threshold-ECDSA wallet on CGGMP21 (secp256k1).
 *
 * This entry re-exports the public API: the client party (`newMpcClient`, `signTx`,
 * `getPublicKey`), which runs in browsers, Deno and Node, and the error and parameter types. The
 * cryptographic building blocks have their own subpath exports (`./core/math`, `./core/paillier`,
 * `./core/ring_pedersen`, `./core/transcript`, `./core/zk`, `./core/protocols`, ...); runtime
 * adapters (`platform/`, the file key store `./client/file_key_store`) are never re-exported here.
 *
 * @example
 * ```ts
 * import { MemoryKeyStore, newMpcClient, ProofError } from "./mod.ts";
 * const client = newMpcClient({
 *   serviceUrl: "http://127.0.0.1:50052",
 *   gatewayUrl: "http://127.0.0.1:8080",
 *   token: "caller-token",
 *   keyStore: new MemoryKeyStore(),
 * });
 * console.assert((await client.listAccounts()).length === 0);
 * const e = new ProofError("pi-mod", "bad-modulus", "N is even");
 * console.assert(e.code === "bad-modulus");
 * ```
 * @module
 */
export {
  InternalError,
  InvalidKeyShare,
  ProofError,
  type ProofErrorCode,
  ProtocolAbort,
  TransportError,
} from "./core/errors.ts";
export {
  type CallOptions,
  type ClientKeyStore,
  MemoryKeyStore,
  type MpcClient,
  type MpcClientConfig,
  MpcClientError,
  newMpcClient,
  type TxSignature,
} from "./client/mpc_client.ts";
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
