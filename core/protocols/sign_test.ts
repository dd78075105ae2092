import "../../testing/setup.ts";
import { SLOW } from "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromHex } from "../bytes.ts";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import {
  dealKeyShares,
  dealPresignatures,
  DEALT_EPOCH,
  freshSid,
  recording,
} from "../../testing/fixtures/protocol_fixtures.ts";
import { platformSafePrime } from "../../platform/mod.ts";
import { type AbortCode, ProtocolAbort } from "../errors.ts";
import { deriveShift } from "../hd.ts";
import { generateRingPedersen } from "../ring_pedersen.ts";
import { type Point, Q } from "../params.ts";
import { MemoryPresignatureStore, type PresignatureStore } from "../presignature_store.ts";
import { digestToScalar, type EcdsaSignature, hashMessage, recoveryIdFromR } from "../signature.ts";
import { runProtocol, type Transport } from "./driver.ts";
import { createMemoryNetwork } from "./memory_transport.ts";
import type { Presignature } from "./presign.ts";
import {
  type FullSignInput,
  fullSignProtocol,
  type FullSignState,
  type PresignatureSignRequest,
  signDigest,
  signMessageWithPresignature,
} from "./sign.ts";
import type { KeyShare, Message } from "./types.ts";

const utf8 = new TextEncoder();
const rng = crypto.getRandomValues.bind(crypto);

// ---- helpers -------------------------------------------------------------------------------

function assertAbort(
  f: () => unknown,
  expected: { code: AbortCode; culprits: number[]; round?: number },
): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ProtocolAbort, `expected a ProtocolAbort, got ${e}`);
    assert.equal(e.code, expected.code, e.message);
    assert.deepEqual(e.culprits, expected.culprits, e.message);
    if (expected.round !== undefined) assert.equal(e.round, expected.round);
    return true;
  });
}

function tamper(
  inbox: readonly Message[],
  from: number,
  edit: (p: Record<string, unknown>) => void,
): Message[] {
  return inbox.map((m) => {
    if (m.from !== from) return structuredClone(m);
    const payload = structuredClone(m.payload) as Record<string, unknown>;
    edit(payload);
    return { ...m, payload };
  });
}

const bumpScalar = (h: unknown) => ((BigInt("0x" + h) + 1n) % Q).toString(16).padStart(64, "0");

/** noble: verify (prehash off) and recover the public key with the recovery id. */
function assertNobleAccepts(sig: EcdsaSignature, digest: Uint8Array, publicKey: Point): void {
  const compact = fromHex(sig.compact);
  assert.equal(compact.length, 64);
  assert.ok(secp256k1.verify(compact, digest, publicKey.toBytes(true), { prehash: false }));
  assert.ok(secp256k1.verify(fromHex(sig.der), digest, publicKey.toBytes(false), {
    prehash: false,
    format: "der",
  }));
  const recovered = secp256k1.Signature.fromBytes(compact).addRecoveryBit(sig.recoveryId)
    .recoverPublicKey(digest);
  assert.ok(recovered.equals(publicKey), "public-key recovery gives the key back");
  assert.ok(sig.s <= Q >> 1n, "low-S");
}

/** SubjectPublicKeyInfo (id-ecPublicKey, secp256k1) of an uncompressed point, as PEM. */
function spkiPem(P: Point): string {
  const der = "3056301006072a8648ce3d020106052b8104000a034200" + P.toHex(false);
  const b64 = btoa(String.fromCharCode(...fromHex(der)));
  return `-----BEGIN PUBLIC KEY-----\n${
    b64.match(/.{1,64}/g)!.join("\n")
  }\n-----END PUBLIC KEY-----\n`;
}

const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;

/** `openssl pkeyutl -verify` of the DER signature on the prehashed digest. */
function opensslVerifies(sig: EcdsaSignature, digest: Uint8Array, publicKey: Point): boolean {
  const dir = mkdtempSync(join(tmpdir(), "wallet-mpc-sig-"));
  try {
    writeFileSync(join(dir, "pub.pem"), spkiPem(publicKey));
    writeFileSync(join(dir, "digest.bin"), digest);
    writeFileSync(join(dir, "sig.der"), fromHex(sig.der));
    const res = spawnSync("openssl", [
      "pkeyutl",
      "-verify",
      "-pubin",
      "-inkey",
      join(dir, "pub.pem"),
      "-in",
      join(dir, "digest.bin"),
      "-sigfile",
      join(dir, "sig.der"),
    ]);
    return res.status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `f` for every party over one memory network; returns the settled results. */
function overNetwork<T>(
  n: number,
  f: (i: number, t: Transport) => Promise<T>,
  tamperHook?: (m: Message, to: number) => Message[],
): Promise<PromiseSettledResult<T>[]> {
  const net = createMemoryNetwork(n, tamperHook);
  return Promise.allSettled(Array.from({ length: n }, (_, i) => f(i, net[i])));
}

function fulfilled<T>(r: PromiseSettledResult<T>): T {
  if (r.status === "rejected") throw r.reason;
  return r.value;
}

// ---- the runs shared by the tests (each full 2-party run costs seconds in Deno) --------------

const KEY = "account-sign";
const shares2 = dealKeyShares(2);
const HD_PATH = [0, 7];
const hd = deriveShift(shares2[0].publicKey, shares2[0].chainCode, HD_PATH);
const digest2 = hashMessage("keccak256", utf8.encode("ethereum transaction"));

/** A store holding a presignature for KEY, whose `take` must never be called by signDigest. */
function spyStore(): { store: PresignatureStore; inner: MemoryPresignatureStore; takes: number[] } {
  const inner = new MemoryPresignatureStore();
  const takes: number[] = [];
  void inner.put(dealPresignatures(2, { keyId: KEY })[0]);
  const store: PresignatureStore = {
    put: (p) => inner.put(p),
    take: (id, e) => (takes.push(1), inner.take(id, e)),
    purgeOtherEpochs: (k, e) => inner.purgeOtherEpochs(k, e),
    isUsed: (id) => inner.isUsed(id),
    lockKey: (l) => inner.lockKey(l),
    keyLock: (k) => inner.keyLock(k),
    unlockKey: (k) => inner.unlockKey(k),
  };
  return { store, inner, takes };
}

const spies = [spyStore(), spyStore()];
const sid2 = freshSid();
/** 2-party full signing with an HD path, through signDigest and the memory network. */
const full2 = overNetwork(2, (i, t) =>
  signDigest(
    { share: shares2[i], sid: sid2, keyId: KEY, digest: digest2, hdPath: HD_PATH, shift: hd.shift },
    t,
    { store: spies[i].store },
  ));

const shares3 = dealKeyShares(3);
const digest3 = hashMessage("sha256", utf8.encode("three parties"));
const rec3 = recording(fullSignProtocol);
const sid3 = freshSid();
const full3 = overNetwork(
  3,
  (i, t) =>
    runProtocol(rec3.protocol, { share: shares3[i], sid: sid3, keyId: KEY, digest: digest3 }, t),
);

async function victim3(
  party: number,
  round: number,
): Promise<{ state: FullSignState; inbox: Message[] }> {
  await full3;
  const entry = rec3.log.get(party)?.get(round);
  assert.ok(entry, `no recorded step of party ${party} in round ${round}`);
  return { state: entry.state, inbox: entry.inbox };
}

// ---- full signing ---------------------------------------------------------------------------

test("full signing for 2 parties with an HD path gives one signature noble verifies and recovers", async () => {
  const [a, b] = (await full2).map(fulfilled);
  assert.deepEqual(a, b);
  assertNobleAccepts(a, digest2, hd.childPublicKey);
  assert.ok(!hd.childPublicKey.equals(shares2[0].publicKey));
  assert.equal(a.der.length <= 144, true);
  assert.equal(a.compact.length, 128);
});

test("full signing for 2 parties: openssl verifies the DER signature with the PEM key", async (t) => {
  if (!hasOpenssl) return t.skip("openssl CLI not found on PATH");
  const [a] = (await full2).map(fulfilled);
  assert.ok(opensslVerifies(a, digest2, hd.childPublicKey));
  // The control: openssl refuses it for another digest and under the parent key.
  assert.equal(opensslVerifies(a, digest3, hd.childPublicKey), false);
  assert.equal(opensslVerifies(a, digest2, shares2[0].publicKey), false);
});

test("signDigest (raw digest) runs the full protocol and never takes a stored presignature", async () => {
  await full2;
  for (const s of spies) {
    assert.deepEqual(s.takes, []);
    assert.equal(s.inner.size, 1, "the stored presignature is untouched");
  }
});

test("full signing for 3 parties over the memory network: noble and openssl verify it", async (t) => {
  const sigs = (await full3).map(fulfilled);
  assert.deepEqual(sigs[0], sigs[1]);
  assert.deepEqual(sigs[1], sigs[2]);
  assertNobleAccepts(sigs[0], digest3, shares3[0].publicKey);
  if (!hasOpenssl) return t.skip("openssl CLI not found on PATH");
  assert.ok(opensslVerifies(sigs[0], digest3, shares3[0].publicKey));
});

// ---- blame at the last round and before ------------------------------------------------------

test("3 parties: a wrong sigma_2 at the last round is blamed on party 2 by both others", async () => {
  for (const victim of [0, 1]) {
    const { state, inbox } = await victim3(victim, 5);
    const bad = tamper(inbox, 2, (p) => (p.sigma = bumpScalar(p.sigma)));
    assertAbort(() => fullSignProtocol.step(state, bad, rng), {
      code: "bad-signature-share",
      culprits: [2],
      round: 5,
    });
  }
});

test("3 parties: wrong sigma from parties 1 and 2 names both", async () => {
  const { state, inbox } = await victim3(0, 5);
  let bad = tamper(inbox, 2, (p) => (p.sigma = bumpScalar(p.sigma)));
  bad = tamper(bad, 1, (p) => (p.sigma = bumpScalar(p.sigma)));
  assertAbort(() => fullSignProtocol.step(state, bad, rng), {
    code: "bad-signature-share",
    culprits: [1, 2],
  });
});

test("3 parties: a wrong delta_2 aborts round 4 without blaming an honest party", async () => {
  const { state, inbox } = await victim3(0, 4);
  const bad = tamper(inbox, 2, (p) => (p.delta = bumpScalar(p.delta)));
  // With n >= 3 the paper identifies this with Pi-mul / Pi-dec, not implemented: no culprit.
  assertAbort(() => fullSignProtocol.step(state, bad, rng), {
    code: "invalid-value",
    culprits: [],
    round: 4,
  });
});

test("3 parties: a tampered pi-aff-g from party 2 in round 3 is blamed on party 2", async () => {
  const { state, inbox } = await victim3(0, 3);
  const bad = tamper(inbox, 2, (p) => {
    const psi = p.psi as Record<string, string>;
    psi.z2 = psi.z2.startsWith("-") ? psi.z2.slice(1) : "-" + psi.z2;
  });
  assertAbort(() => fullSignProtocol.step(state, bad, rng), {
    code: "proof-failed",
    culprits: [2],
    round: 3,
  });
});

test("3 parties: echo disputes blame the self-contradicting party, not a third one", async () => {
  const { state, inbox } = await victim3(0, 2);
  // Party 2 echoes another K_2, G_2 than it sent to party 0: party 2 is blamed.
  const own = tamper(inbox, 2, (p) => ((p.echo as string[])[2] = "44".repeat(32)));
  assertAbort(() => fullSignProtocol.step(state, own, rng), {
    code: "inconsistent-broadcast",
    culprits: [2],
    round: 2,
  });
  // Party 1 saw another K_2 than party 0: party 2 equivocated or party 1 lies; nobody is named.
  const third = tamper(inbox, 1, (p) => ((p.echo as string[])[2] = "55".repeat(32)));
  assertAbort(() => fullSignProtocol.step(state, third, rng), {
    code: "inconsistent-broadcast",
    culprits: [],
  });
});

test("3 parties: the signing round refuses a party whose view of round 4 differs", async () => {
  const { state, inbox } = await victim3(0, 5);
  const bad = tamper(inbox, 1, (p) => ((p.echo as string[])[1] = "66".repeat(32)));
  assertAbort(() => fullSignProtocol.step(state, bad, rng), {
    code: "inconsistent-broadcast",
    culprits: [1],
  });
  const otherDigest = tamper(inbox, 2, (p) => (p.digest = "77".repeat(32)));
  assertAbort(() => fullSignProtocol.step(state, otherDigest, rng), {
    code: "invalid-value",
    culprits: [2],
  });
});

test("2 parties: a wrong sigma_1 at the last round: no signature, key locked, blame recorded", async () => {
  const stores = [new MemoryPresignatureStore(), new MemoryPresignatureStore()];
  const sid = freshSid();
  const digest = hashMessage("sha256", utf8.encode("lock me"));
  const input = (i: number): FullSignInput => ({ share: shares2[i], sid, keyId: KEY, digest });
  const results = await overNetwork(
    2,
    (i, t) => signDigest(input(i), t, { store: stores[i], clock: () => 1234 }),
    (m, to) => {
      if (m.round === 5 && m.from === 1 && to === 0) {
        const p = m.payload as Record<string, unknown>;
        p.sigma = bumpScalar(p.sigma);
      }
      return [m];
    },
  );
  assert.equal(results[0].status, "rejected");
  const e = (results[0] as PromiseRejectedResult).reason;
  assert.ok(e instanceof ProtocolAbort);
  assert.equal(e.code, "bad-signature-share");
  assert.deepEqual(e.culprits, [1]);
  const lock = await stores[0].keyLock(KEY);
  assert.ok(lock);
  assert.deepEqual(lock.culprits, [1]);
  assert.equal(lock.round, 5);
  assert.equal(lock.at, 1234);
  // Party 1 received honest messages: its signature is valid (it did the tampering).
  assertNobleAccepts(fulfilled(results[1]), digest, shares2[0].publicKey);
  // Locked: the next signing is refused before anything is sent, full or fast path.
  const sent: Message[] = [];
  const spy: Transport = {
    send: (m) => (sent.push(m), Promise.resolve()),
    receive: () => Promise.reject(new Error("nothing to receive")),
  };
  await assert.rejects(
    signDigest({ ...input(0), sid: freshSid() }, spy, { store: stores[0] }),
    (err: unknown) => err instanceof ProtocolAbort && err.code === "key-locked",
  );
  const [p0] = dealPresignatures(2, { keyId: KEY });
  await stores[0].put(p0);
  await assert.rejects(
    signMessageWithPresignature(
      {
        presignatureId: p0.id,
        keyId: KEY,
        epoch: DEALT_EPOCH,
        hdPath: [],
        hash: "sha256",
        message: utf8.encode("m"),
      },
      spy,
      { store: stores[0] },
    ),
    (err: unknown) => err instanceof ProtocolAbort && err.code === "key-locked",
  );
  assert.equal(sent.length, 0);
  assert.equal(await stores[0].isUsed(p0.id), false, "a locked key does not burn presignatures");
  await stores[0].unlockKey(KEY);
  assert.equal(await stores[0].keyLock(KEY), undefined);
});

// ---- the signing round on dealt presignatures (no Paillier work) ------------------------------

/** The fast-path request that matches the binding of `p`. */
function requestFor(p: Presignature, message: Uint8Array): PresignatureSignRequest {
  const { keyId, epoch, hdPath, hash } = p.binding;
  assert.ok(epoch !== null && hash !== null);
  return { presignatureId: p.id, keyId, epoch, hdPath, hash, message };
}

/**
 * Signs `message` with dealt presignatures through the only exported path (a store per party,
 * `signMessageWithPresignature`), adding `sigmaEdit.get(j)` to party j's sigma on the wire.
 */
async function signDealt(
  pres: Presignature[],
  message: Uint8Array,
  sigmaEdit?: Map<number, bigint>,
): Promise<{ outputs: (EcdsaSignature | undefined)[]; errors: unknown[] }> {
  const stores = pres.map(() => new MemoryPresignatureStore());
  await Promise.all(pres.map((p, i) => stores[i].put(p)));
  const results = await overNetwork(
    pres.length,
    (i, t) => signMessageWithPresignature(requestFor(pres[i], message), t, { store: stores[i] }),
    (m) => {
      const delta = sigmaEdit?.get(m.from);
      if (delta === undefined) return [m];
      const p = m.payload as Record<string, string>;
      p.sigma = ((BigInt("0x" + p.sigma) + delta) % Q).toString(16).padStart(64, "0");
      return [m];
    },
  );
  return {
    outputs: results.map((r) => r.status === "fulfilled" ? r.value : undefined),
    errors: results.map((r) => r.status === "rejected" ? r.reason : undefined),
  };
}

test("the signing round identifies every wrong sigma_j (n = 2 and 3, dealt presignatures)", async () => {
  const message = utf8.encode("identify");
  for (const n of [2, 3]) {
    const pres = dealPresignatures(n);
    const ok = await signDealt(pres, message);
    assert.ok(ok.outputs.every((o) => o !== undefined));
    for (let cheat = 0; cheat < n; cheat++) {
      const run = await signDealt(pres, message, new Map([[cheat, 1n]]));
      for (let j = 0; j < n; j++) {
        if (j === cheat) continue;
        const e = run.errors[j];
        assert.ok(e instanceof ProtocolAbort, `party ${j}: ${e}`);
        assert.equal(e.code, "bad-signature-share");
        assert.deepEqual(e.culprits, [cheat]);
        assert.equal(run.outputs[j], undefined, "no signature out");
      }
    }
  }
});

test("a high-S combination is normalised: low s, recovery id flipped, recovery gives the key", async () => {
  const pres = dealPresignatures(2);
  const R = pres[0].R;
  const r = R.toAffine().x % Q;
  // Deterministic search: the first message (by counter) whose raw s = k (m + r x) is high.
  let message = new Uint8Array(0);
  let raw = 0n;
  for (let t = 0; raw <= Q >> 1n; t++) {
    assert.ok(t < 256);
    message = utf8.encode(`high-s ${t}`);
    const m = digestToScalar(hashMessage("sha256", message));
    raw = pres.reduce((s, p) => (s + p.k * m + r * p.chi) % Q, 0n);
  }
  const run = await signDealt(pres, message);
  const sig = run.outputs[0];
  assert.ok(sig);
  assert.equal(sig.s, Q - raw);
  assert.equal(sig.recoveryId, recoveryIdFromR(R) ^ 1);
  assertNobleAccepts(sig, hashMessage("sha256", message), pres[0].publicKey);
});

test("the fast path signs the message hashed with the bound hash; a swapped digest is not signed", async () => {
  const pres = dealPresignatures(2, { keyId: KEY, hash: "keccak256" });
  const stores = pres.map(() => new MemoryPresignatureStore());
  await Promise.all(pres.map((p, i) => stores[i].put(p)));
  // The attacker wants a signature on a raw digest d chosen after presigning; the fast path only
  // takes a message, so d is hashed again and the signature is on keccak256(d), not on d.
  const d = hashMessage("sha256", utf8.encode("a different transaction"));
  const request = {
    presignatureId: pres[0].id,
    keyId: KEY,
    epoch: DEALT_EPOCH,
    hdPath: [],
    hash: "keccak256" as const,
  };
  const sigs = (await overNetwork(
    2,
    (i, t) => signMessageWithPresignature({ ...request, message: d }, t, { store: stores[i] }),
  )).map(fulfilled);
  assertNobleAccepts(sigs[0], hashMessage("keccak256", d), pres[0].publicKey);
  const compact = fromHex(sigs[0].compact);
  assert.equal(
    secp256k1.verify(compact, d, pres[0].publicKey.toBytes(true), { prehash: false }),
    false,
  );
  // A presignature of full signing (no hash bound) cannot enter the fast path at all: the store
  // refuses it, and so does the signer when a faulty store hands it out anyway.
  const raw = { ...pres[1], binding: { ...pres[1].binding, hash: null } };
  await assert.rejects(new MemoryPresignatureStore().put(raw), TypeError);
  const sent: Message[] = [];
  await assert.rejects(
    signMessageWithPresignature({ ...request, presignatureId: raw.id, message: d }, {
      send: (m) => (sent.push(m), Promise.resolve()),
      receive: () => Promise.reject(new Error("nothing to receive")),
    }, { store: handingOut(raw) }),
    RangeError,
  );
  assert.equal(sent.length, 0);
  await assert.rejects(
    signMessageWithPresignature(
      { ...request, hash: "sha256", message: d },
      createMemoryNetwork(1)[0],
      {
        store: new MemoryPresignatureStore(),
      },
    ),
    RangeError,
  );
});

test("a presignature offered twice: the second use is refused, nothing is sent", async () => {
  const pres = dealPresignatures(2, { keyId: KEY });
  const journal = new Set<string>();
  const stores = pres.map((_, i) =>
    new MemoryPresignatureStore(i === 0 ? { usedLog: journal } : {})
  );
  await Promise.all(pres.map((p, i) => stores[i].put(p)));
  const backup = stores[0].snapshot();
  const req = {
    presignatureId: pres[0].id,
    keyId: KEY,
    epoch: DEALT_EPOCH,
    hdPath: [],
    hash: "sha256" as const,
  };
  const first = await overNetwork(
    2,
    (i, t) =>
      signMessageWithPresignature({ ...req, message: utf8.encode("first") }, t, {
        store: stores[i],
      }),
  );
  first.map(fulfilled);
  const sent: Message[] = [];
  const spy: Transport = {
    send: (m) => (sent.push(m), Promise.resolve()),
    receive: () => Promise.reject(new Error("nothing to receive")),
  };
  const again = () =>
    signMessageWithPresignature({ ...req, message: utf8.encode("second") }, spy, {
      store: stores[0],
    });
  await assert.rejects(
    again(),
    (e: unknown) => e instanceof ProtocolAbort && e.code === "presignature-used",
  );
  // A backup taken before the first use, restored over the live journal, refuses it too.
  const restored = MemoryPresignatureStore.restore(structuredClone(backup), { usedLog: journal });
  await assert.rejects(
    signMessageWithPresignature({ ...req, message: utf8.encode("third") }, spy, {
      store: restored,
    }),
    (e: unknown) => e instanceof ProtocolAbort && e.code === "presignature-used",
  );
  assert.equal(sent.length, 0);
});

/** A faulty store whose `take` hands out `p` whatever it is asked for. */
function handingOut(p: Presignature): PresignatureStore {
  const inner = new MemoryPresignatureStore();
  return {
    put: (x) => inner.put(x),
    take: () => Promise.resolve(p),
    purgeOtherEpochs: (k, e) => inner.purgeOtherEpochs(k, e),
    isUsed: (id) => inner.isUsed(id),
    lockKey: (l) => inner.lockKey(l),
    keyLock: (k) => inner.keyLock(k),
    unlockKey: (k) => inner.unlockKey(k),
  };
}

test("after a refresh, a presignature of the old epoch is refused, even by a faulty store", async () => {
  const pres = dealPresignatures(2, { keyId: KEY, epoch: DEALT_EPOCH });
  const newEpoch = "1e".repeat(32);
  const store = new MemoryPresignatureStore();
  await store.put(pres[0]);
  const sent: Message[] = [];
  const spy: Transport = {
    send: (m) => (sent.push(m), Promise.resolve()),
    receive: () => Promise.reject(new Error("nothing to receive")),
  };
  const request = { ...requestFor(pres[0], utf8.encode("after refresh")), epoch: newEpoch };
  await assert.rejects(signMessageWithPresignature(request, spy, { store }), /another key epoch/);
  assert.equal(await store.isUsed(pres[0].id), false, "refused without being consumed");
  assert.equal(await store.purgeOtherEpochs(KEY, newEpoch), 1);
  await assert.rejects(signMessageWithPresignature(request, spy, { store }), /unknown id/);
  // The signer checks the binding itself: a store that hands out the old presignature anyway
  // (no epoch check) does not get it signed.
  await assert.rejects(
    signMessageWithPresignature(request, spy, { store: handingOut(pres[1]) }),
    /another key epoch/,
  );
  await assert.rejects(
    signMessageWithPresignature({ ...request, presignatureId: "ab".repeat(32) }, spy, {
      store: handingOut(pres[1]),
    }),
    /another presignature/,
  );
  assert.equal(sent.length, 0);
});

test("no exported path signs with a presignature without the store (the one-round machine is private)", async () => {
  const isOneRoundSigner = (v: unknown) =>
    typeof v === "object" && v !== null && (v as { name?: unknown }).name === "sign" &&
    (v as { rounds?: unknown[] }).rounds?.length === 1;
  const modules: [string, Record<string, unknown>][] = [
    ["core/protocols/sign.ts", await import("./sign.ts")],
    ["core/protocols/mod.ts", await import("./mod.ts")],
    ["mod.ts", await import("../../mod.ts")],
  ];
  // Every entry of the package's "exports" map (deno.json) too.
  const root = new URL("../../", import.meta.url);
  const exportsMap = JSON.parse(readFileSync(new URL("deno.json", root), "utf8")).exports;
  for (const [entry, file] of Object.entries(exportsMap as Record<string, string>)) {
    modules.push([`exports "${entry}"`, await import(new URL(file, root).href)]);
  }
  assert.ok(modules.length > 5);
  for (const [name, m] of modules) {
    assert.equal("signWithPresignatureProtocol" in m, false, name);
    for (const [key, v] of Object.entries(m)) {
      assert.equal(isOneRoundSigner(v), false, `${name} exports a one-round signer as ${key}`);
    }
  }
  // The full-signing machine stays public: it makes its own nonce in the same session.
  assert.equal((modules[1][1].fullSignProtocol as { rounds: unknown[] }).rounds.length, 5);
});

test("signDigest refuses a digest that is not 32 bytes before sending anything", async () => {
  const sent: Message[] = [];
  const spy: Transport = {
    send: (m) => (sent.push(m), Promise.resolve()),
    receive: () => Promise.reject(new Error("x")),
  };
  for (const digest of [new Uint8Array(31), new Uint8Array(33), utf8.encode("not a digest")]) {
    await assert.rejects(
      signDigest({ share: shares2[0], sid: freshSid(), keyId: KEY, digest }, spy, {
        store: new MemoryPresignatureStore(),
      }),
      TypeError,
    );
  }
  assert.equal(sent.length, 0);
});

// ---- slow tier ------------------------------------------------------------------------------

test("slow: 2-party full signing with fresh 1536-bit safe primes", { skip: !SLOW }, async () => {
  const primes = await Promise.all([0, 1, 2, 3].map(() => platformSafePrime(1536)));
  const base = dealKeyShares(2);
  const parties = [0, 1].map((j) => {
    const { N, s, t } = generateRingPedersen(primes[2 * j], primes[2 * j + 1]);
    return { N, s, t };
  });
  const shares: KeyShare[] = base.map((s, i) => ({
    ...s,
    aux: { i, n: 2, p: primes[2 * i], q: primes[2 * i + 1], parties },
  }));
  const digest = hashMessage("sha256", utf8.encode("slow tier"));
  const sid = freshSid();
  const sigs = (await overNetwork(2, (i, t) =>
    signDigest({ share: shares[i], sid, keyId: KEY, digest }, t, {
      store: new MemoryPresignatureStore(),
    }))).map(fulfilled);
  assert.deepEqual(sigs[0], sigs[1]);
  assertNobleAccepts(sigs[0], digest, shares[0].publicKey);
  if (hasOpenssl) {
    assert.ok(opensslVerifies(sigs[0], digest, shares[0].publicKey));
  }
});
