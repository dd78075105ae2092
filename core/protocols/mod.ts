/**
 * The CGGMP21 protocols as pure state machines, the async driver and the in-memory network.
 *
 * | protocol | module | output |
 * |---|---|---|
 * | key generation (no dealer) | `keygen.ts` `keygen` | `KeyShareCore` |
 * | aux info (Paillier + ring-Pedersen, Pi-prm / Pi-mod / Pi-fac) | `aux_info.ts` `auxInfo` | `AuxInfo` |
 * | key refresh | `refresh.ts` `refresh` | `KeyShare` |
 * | presigning (3 rounds + echo) | `presign.ts` `presignProtocol` | `Presignature` |
 * | signing | `sign.ts` `fullSignProtocol`; with a stored presignature only through `signMessageWithPresignature` | `EcdsaSignature` |
 *
 * @example
 * ```ts
 * import { createMemoryNetwork, keygen, runProtocol } from "./mod.ts";
 * const sid = new Uint8Array(32).fill(1);
 * const net = createMemoryNetwork(2);
 * const [a, b] = await Promise.all([0, 1].map((i) => runProtocol(keygen, { sid, i, n: 2 }, net[i])));
 * console.assert(a.publicKey.equals(b.publicKey));
 * ```
 * @module
 */
export * from "./types.ts";
export { type ProgressEvent, type RunOptions, runProtocol, type Transport } from "./driver.ts";
export { createMemoryNetwork, type Tamper } from "./memory_transport.ts";
export { keygen } from "./keygen.ts";
export { auxInfo, generatePaillierPrimes, type PaillierPrimes } from "./aux_info.ts";
export { refresh } from "./refresh.ts";
export { generatePresignature, presignProtocol } from "./presign.ts";
export { fullSignProtocol, signDigest, signMessageWithPresignature } from "./sign.ts";
