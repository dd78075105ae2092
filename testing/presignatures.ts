/**
 * TEST-ONLY: signing with real presignatures, every party in this process: each party's
 * presignature goes into its own memory store, `signMessageWithPresignature` takes it from there
 * (the only exported path), and @noble/curves checks the signature.
 * @module
 */
import assert from "node:assert/strict";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { fromHex } from "../core/bytes.ts";
import type { Point } from "../core/params.ts";
import { MemoryPresignatureStore } from "../core/presignature_store.ts";
import { createMemoryNetwork } from "../core/protocols/memory_transport.ts";
import type { Presignature } from "../core/protocols/presign.ts";
import { signMessageWithPresignature } from "../core/protocols/sign.ts";
import { type EcdsaSignature, hashMessage } from "../core/signature.ts";

/**
 * Signs `message` (SHA-256, no HD path) with one presignature per party and asserts that
 * @noble/curves verifies the signature under `publicKey`.
 * @param pres the parties' presignatures of one run.
 * @param binding the key id and key epoch they were made for.
 * @param message the message.
 * @param publicKey the key the signature must verify under.
 * @returns every party's signature.
 */
export async function signAndVerify(
  pres: readonly Presignature[],
  binding: { readonly keyId: string; readonly epoch: string },
  message: Uint8Array,
  publicKey: Point,
): Promise<EcdsaSignature[]> {
  const stores = pres.map(() => new MemoryPresignatureStore());
  await Promise.all(pres.map((p, i) => stores[i].put(p)));
  const net = createMemoryNetwork(pres.length);
  const request = {
    presignatureId: pres[0].id,
    ...binding,
    hdPath: [],
    hash: "sha256" as const,
    message,
  };
  const sigs = await Promise.all(
    pres.map((_, i) => signMessageWithPresignature(request, net[i], { store: stores[i] })),
  );
  const ok = secp256k1.verify(
    fromHex(sigs[0].compact),
    hashMessage("sha256", message),
    publicKey.toBytes(true),
    { prehash: false },
  );
  assert.ok(ok, "@noble/curves verifies the signature");
  return sigs;
}
