/**
 * End-to-end pipelines over the real driver and the in-memory network: dealerless key
 * generation, aux info (fixture safe primes in the fast tier, fresh ones in the slow tier),
 * refresh, full signing (`signDigest`), the presignature fast path and HD derivation. Every
 * signature is checked by @noble/curves (verify with the digest as is, and key recovery).
 * @module
 */
import "../../testing/setup.ts";
import { SLOW } from "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromHex } from "../../core/bytes.ts";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { platformSafePrime } from "../../platform/mod.ts";
import { epochDigest } from "../../core/account_records.ts";
import { deriveShift } from "../../core/hd.ts";
import { Point, Q } from "../../core/params.ts";
import { MemoryPresignatureStore } from "../../core/presignature_store.ts";
import { auxInfo, type PaillierPrimes } from "../../core/protocols/aux_info.ts";
import { keygen } from "../../core/protocols/keygen.ts";
import { createMemoryNetwork } from "../../core/protocols/memory_transport.ts";
import { generatePresignature } from "../../core/protocols/presign.ts";
import { refresh } from "../../core/protocols/refresh.ts";
import { signDigest, signMessageWithPresignature } from "../../core/protocols/sign.ts";
import type { AuxInfo, KeyShare, KeyShareCore } from "../../core/protocols/types.ts";
import { type EcdsaSignature, hashMessage } from "../../core/signature.ts";
import { fixturePaillier } from "../../testing/fixtures/keys.ts";
import { outputs, runAll } from "../../testing/adversary.ts";

const utf8 = new TextEncoder();
const KEY = "pipeline-key";
const sid = () => crypto.getRandomValues(new Uint8Array(32));

/** Fixture primes of fixture key `k` as aux-info input. */
function fixturePrimes(k: number): PaillierPrimes {
  const key = fixturePaillier(k);
  return { p: key.p, q: key.q };
}

/** Dealerless keygen for n parties over the driver. */
async function runKeygen(n: number): Promise<KeyShareCore[]> {
  const s = sid();
  const inputs = Array.from({ length: n }, (_, i) => ({ sid: s, i, n }));
  return outputs(await runAll(inputs.map(() => keygen), inputs));
}

/** Aux info for n parties with the given primes over the driver. */
async function runAux(primes: readonly PaillierPrimes[]): Promise<AuxInfo[]> {
  const s = sid();
  const n = primes.length;
  const inputs = primes.map((p, i) => ({ sid: s, i, n, primes: p }));
  return outputs(await runAll(inputs.map(() => auxInfo), inputs));
}

/** keygen -> aux info: complete key shares. */
async function keyShares(primes: readonly PaillierPrimes[]): Promise<KeyShare[]> {
  const cores = await runKeygen(primes.length);
  const aux = await runAux(primes);
  return cores.map((c, i) => ({ ...c, aux: aux[i] }));
}

/** Checks that the shares agree and sum to the secret key of the public key. */
function assertReconstructs(shares: readonly KeyShareCore[]): bigint {
  const x = shares.reduce((a, s) => a + s.x, 0n) % Q;
  for (const s of shares) assert.ok(s.publicKey.equals(shares[0].publicKey));
  assert.ok(Point.BASE.multiply(x).equals(shares[0].publicKey), "x * G == public key");
  return x;
}

/** noble: verify (the digest as is) and recover the public key with the recovery id. */
function assertNobleAccepts(sig: EcdsaSignature, digest: Uint8Array, publicKey: Point): void {
  const compact = fromHex(sig.compact);
  assert.ok(secp256k1.verify(compact, digest, publicKey.toBytes(true), { prehash: false }));
  const recovered = secp256k1.Signature.fromBytes(compact).addRecoveryBit(sig.recoveryId)
    .recoverPublicKey(digest);
  assert.ok(recovered.equals(publicKey), "public-key recovery gives the key back");
  assert.ok(sig.s <= Q >> 1n, "low-S");
}

/** Full signing (signDigest) of every party over one memory network; all signatures equal. */
async function fullSign(
  shares: readonly KeyShare[],
  digest: Uint8Array,
  hd: { hdPath?: readonly number[]; shift?: bigint } = {},
): Promise<EcdsaSignature> {
  const s = sid();
  const net = createMemoryNetwork(shares.length);
  const sigs = await Promise.all(
    shares.map((share, i) =>
      signDigest({ share, sid: s, keyId: KEY, digest, ...hd }, net[i], {
        store: new MemoryPresignatureStore(),
      })
    ),
  );
  for (const sig of sigs) assert.deepEqual(sig, sigs[0]);
  return sigs[0];
}

// The 2-of-2 key of the fast tier, shared by the tests below (fixture keys 0 and 1).
let shared2: Promise<KeyShare[]> | undefined;
const twoParty = () => (shared2 ??= keyShares([fixturePrimes(0), fixturePrimes(1)]));

test("2-of-2 pipeline: keygen -> aux info -> presign -> sign over the in-memory network", async () => {
  const shares = await twoParty();
  assertReconstructs(shares);
  const X = shares[0].publicKey;
  for (const s of shares) {
    assert.equal(s.aux.parties.length, 2);
    assert.equal(s.aux.parties[s.i].N, s.aux.p * s.aux.q);
  }
  assert.equal(shares[0].aux.parties[1].N, shares[1].aux.parties[1].N);

  // Full signing of a raw digest.
  const digest = hashMessage("sha256", utf8.encode("pipeline: full signing"));
  assertNobleAccepts(await fullSign(shares, digest), digest, X);

  // Presignature fast path: presign into the stores, then sign a message with it.
  const stores = [new MemoryPresignatureStore(), new MemoryPresignatureStore()];
  const ps = sid();
  let net = createMemoryNetwork(2);
  const ids = await Promise.all(
    shares.map((share, i) =>
      generatePresignature(
        { share, sid: ps, keyId: KEY, epoch: epochDigest(share), hash: "sha256" },
        net[i],
        { store: stores[i] },
      )
    ),
  );
  assert.equal(ids[0], ids[1]);
  const message = utf8.encode("pipeline: presignature fast path");
  const epoch = epochDigest(shares[0]);
  const req = {
    presignatureId: ids[0],
    keyId: KEY,
    epoch,
    hdPath: [],
    hash: "sha256" as const,
    message,
  };
  net = createMemoryNetwork(2);
  const sigs = await Promise.all(
    [0, 1].map((i) => signMessageWithPresignature(req, net[i], { store: stores[i] })),
  );
  assert.deepEqual(sigs[0], sigs[1]);
  assertNobleAccepts(sigs[0], hashMessage("sha256", message), X);
  assert.equal(stores[0].size, 0, "the presignature was consumed");
});

test("2-of-2 pipeline: keygen -> refresh -> sign keeps the public key; presignatures made before the refresh are refused and purged", async () => {
  const before = await twoParty();
  const x = assertReconstructs(before);
  // A presignature made before the refresh, bound to the old epoch.
  const stores = [new MemoryPresignatureStore(), new MemoryPresignatureStore()];
  const oldEpoch = epochDigest(before[0]);
  const ps = sid();
  const presNet = createMemoryNetwork(2);
  const [preId] = await Promise.all(
    before.map((share, i) =>
      generatePresignature(
        { share, sid: ps, keyId: KEY, epoch: oldEpoch, hash: "sha256" },
        presNet[i],
        { store: stores[i] },
      )
    ),
  );
  const s = sid();
  const inputs = before.map((keyShare, i) => ({
    sid: s,
    keyShare,
    primes: fixturePrimes(2 + i),
  }));
  const after = outputs(await runAll(inputs.map(() => refresh), inputs));
  assert.equal(assertReconstructs(after), x, "the secret is unchanged");
  assert.ok(after[0].publicKey.equals(before[0].publicKey));
  for (const [i, s] of after.entries()) {
    assert.notEqual(s.x, before[i].x, "every share changed");
    assert.equal(s.aux.p, fixturePrimes(2 + i).p, "new aux info from the new primes");
  }
  const digest = hashMessage("sha256", utf8.encode("pipeline: after refresh"));
  assertNobleAccepts(await fullSign(after, digest), digest, before[0].publicKey);
  // The key's epoch is now the refreshed one: the old presignature is refused before anything
  // is sent, then purged.
  const newEpoch = epochDigest(after[0]);
  assert.notEqual(newEpoch, oldEpoch);
  assert.equal(epochDigest(after[1]), newEpoch, "both parties name the epoch alike");
  const req = {
    presignatureId: preId,
    keyId: KEY,
    epoch: newEpoch,
    hdPath: [],
    hash: "sha256" as const,
    message: utf8.encode("pipeline: old presignature after refresh"),
  };
  const net = createMemoryNetwork(2);
  const results = await Promise.allSettled(
    [0, 1].map((i) => signMessageWithPresignature(req, net[i], { store: stores[i] })),
  );
  for (const r of results) {
    assert.equal(r.status, "rejected");
    assert.match(String((r as PromiseRejectedResult).reason), /another key epoch/);
  }
  for (const store of stores) {
    assert.equal(await store.isUsed(preId), false);
    assert.equal(await store.purgeOtherEpochs(KEY, newEpoch), 1);
    assert.equal(store.size, 0);
  }
});

test("2-of-2 pipeline with an HD path m/0/7", async () => {
  const shares = await twoParty();
  const X = shares[0].publicKey;
  const hd = deriveShift(X, shares[0].chainCode, "m/0/7");
  assert.ok(hd.childPublicKey.equals(X.add(Point.BASE.multiply(hd.shift))));
  assert.ok(!hd.childPublicKey.equals(X));
  const digest = hashMessage("keccak256", utf8.encode("pipeline: HD child m/0/7"));
  const sig = await fullSign(shares, digest, { hdPath: [0, 7], shift: hd.shift });
  assertNobleAccepts(sig, digest, hd.childPublicKey);
  assert.equal(
    secp256k1.verify(fromHex(sig.compact), digest, X.toBytes(true), { prehash: false }),
    false,
    "the parent key does not verify the child's signature",
  );
});

test("3-party pipeline: keygen -> aux info -> full signing", async () => {
  const shares = await keyShares([fixturePrimes(0), fixturePrimes(1), fixturePrimes(2)]);
  assertReconstructs(shares);
  const digest = hashMessage("sha256", utf8.encode("pipeline: three parties"));
  assertNobleAccepts(await fullSign(shares, digest), digest, shares[0].publicKey);
});

test(
  "2-of-2 pipeline at real size with fresh 1536-bit safe primes",
  { skip: !SLOW },
  async () => {
    const raw = await Promise.all([0, 1, 2, 3].map(() => platformSafePrime(1536)));
    const primes = [{ p: raw[0], q: raw[1] }, { p: raw[2], q: raw[3] }];
    const shares = await keyShares(primes);
    assertReconstructs(shares);
    for (const s of shares) assert.equal(s.aux.parties[s.i].N, primes[s.i].p * primes[s.i].q);
    const digest = hashMessage("sha256", utf8.encode("pipeline: real size"));
    assertNobleAccepts(await fullSign(shares, digest), digest, shares[0].publicKey);
  },
);
