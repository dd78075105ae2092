import { test } from "node:test";
import assert from "node:assert/strict";
import { dealPresignatures, DEALT_EPOCH } from "../testing/fixtures/protocol_fixtures.ts";
import { type AbortCode, ProtocolAbort } from "./errors.ts";
import { Point, Q } from "./params.ts";
import {
  assertConsistent,
  decodePresignature,
  encodePresignature,
  type KeyLock,
  MemoryPresignatureStore,
  type PresignatureRequest,
} from "./presignature_store.ts";

const KEY = "account-1";
const EPOCH = DEALT_EPOCH;
const NEW_EPOCH = "0f".repeat(32);
const request: PresignatureRequest = { keyId: KEY, epoch: EPOCH, hdPath: [], hash: "sha256" };

async function rejectsWith(p: Promise<unknown>, code: AbortCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ProtocolAbort, `expected a ProtocolAbort, got ${e}`);
    assert.equal(e.code, code);
    return true;
  });
}

test("take consumes a presignature; a second take is refused with presignature-used", async () => {
  const [p] = dealPresignatures(2, { keyId: KEY });
  const store = new MemoryPresignatureStore();
  await store.put(p);
  assert.equal(store.size, 1);
  assert.equal(await store.isUsed(p.id), false);
  const got = await store.take(p.id, request);
  assert.equal(got.id, p.id);
  assert.equal(store.size, 0);
  assert.equal(await store.isUsed(p.id), true);
  await rejectsWith(store.take(p.id, request), "presignature-used");
  await rejectsWith(store.put(p), "presignature-used");
});

test("two concurrent takes of one presignature: exactly one succeeds", async () => {
  const [p] = dealPresignatures(2, { keyId: KEY });
  const store = new MemoryPresignatureStore();
  await store.put(p);
  const results = await Promise.allSettled([store.take(p.id, request), store.take(p.id, request)]);
  assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
  const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
  assert.equal((rejected.reason as ProtocolAbort).code, "presignature-used");
});

test("take refuses another key, epoch, HD path or hash without consuming the presignature", async () => {
  const [p] = dealPresignatures(2, { keyId: KEY, hdPath: [0, 5], hash: "keccak256" });
  const store = new MemoryPresignatureStore();
  await store.put(p);
  const right: PresignatureRequest = {
    keyId: KEY,
    epoch: EPOCH,
    hdPath: [0, 5],
    hash: "keccak256",
  };
  const wrong: PresignatureRequest[] = [
    { ...right, keyId: "account-2" },
    { ...right, epoch: NEW_EPOCH },
    { ...right, hdPath: [0, 6] },
    { ...right, hdPath: [0] },
    { ...right, hdPath: [] },
    { ...right, hash: "sha256" },
  ];
  for (const w of wrong) await assert.rejects(store.take(p.id, w), RangeError);
  await assert.rejects(store.take(p.id, { ...right, hash: "md5" as never }), TypeError);
  for (const epoch of ["", "EE".repeat(32), "ee".repeat(31), null, 1]) {
    await assert.rejects(store.take(p.id, { ...right, epoch: epoch as never }), TypeError);
  }
  assert.equal(await store.isUsed(p.id), false);
  assert.equal((await store.take(p.id, right)).id, p.id);
});

test("put refuses a duplicate id and a raw-digest presignature; take refuses an unknown id", async () => {
  const [p] = dealPresignatures(2, { keyId: KEY });
  const store = new MemoryPresignatureStore();
  await store.put(p);
  await assert.rejects(store.put(p), RangeError);
  const raw = { ...p, id: "ab".repeat(32), binding: { ...p.binding, hash: null } };
  await assert.rejects(store.put(raw), TypeError);
  const noEpoch = { ...p, id: "ac".repeat(32), binding: { ...p.binding, epoch: null } };
  await assert.rejects(store.put(noEpoch), TypeError);
  await assert.rejects(store.take("cd".repeat(32), request), RangeError);
});

test("a restored snapshot of a used store refuses the used presignature", async () => {
  const [p, q] = [dealPresignatures(2, { keyId: KEY })[0], dealPresignatures(2, { keyId: KEY })[0]];
  const journal = new Set<string>();
  const live = new MemoryPresignatureStore({ usedLog: journal });
  await live.put(p);
  await live.put(q);
  const before = JSON.parse(JSON.stringify(live.snapshot()));
  await live.take(p.id, request);
  const after = JSON.parse(JSON.stringify(live.snapshot()));
  // A backup taken after the use carries the used id (even over an empty journal).
  const restoredAfter = MemoryPresignatureStore.restore(after, { usedLog: new Set() });
  await rejectsWith(restoredAfter.take(p.id, request), "presignature-used");
  // A backup taken BEFORE the use, restored over the live journal: still refused.
  const restoredBefore = MemoryPresignatureStore.restore(before, { usedLog: journal });
  await rejectsWith(restoredBefore.take(p.id, request), "presignature-used");
  // The other presignature survives the restore and is usable once.
  assert.equal((await restoredBefore.take(q.id, request)).id, q.id);
  await rejectsWith(restoredBefore.take(q.id, request), "presignature-used");
});

test("restore refuses a snapshot without its used journal", () => {
  const store = new MemoryPresignatureStore();
  const snap = store.snapshot();
  const missing: unknown[] = [undefined, {}, { usedLog: undefined }, { usedLog: ["id"] }, null];
  for (const options of missing) {
    assert.throws(
      () => MemoryPresignatureStore.restore(snap, options as never),
      (e: unknown) => e instanceof TypeError && /used journal/.test(e.message),
      JSON.stringify(options),
    );
  }
  assert.throws(() => new MemoryPresignatureStore({ usedLog: [] as never }), TypeError);
});

test("after a refresh, a presignature of the old epoch is refused by take, then purged", async () => {
  const [old] = dealPresignatures(2, { keyId: KEY, epoch: EPOCH });
  const [fresh] = dealPresignatures(2, { keyId: KEY, epoch: NEW_EPOCH });
  const [otherKey] = dealPresignatures(2, { keyId: "account-2", epoch: EPOCH });
  const store = new MemoryPresignatureStore();
  for (const p of [old, fresh, otherKey]) await store.put(p);
  // The key's epoch is now NEW_EPOCH: the old presignature is refused and not consumed.
  const now = { ...request, epoch: NEW_EPOCH };
  await assert.rejects(store.take(old.id, now), /another key epoch/);
  assert.equal(await store.isUsed(old.id), false);
  // The purge drops it (only it: other epochs of other keys stay).
  assert.equal(await store.purgeOtherEpochs(KEY, NEW_EPOCH), 1);
  assert.equal(store.size, 2);
  await assert.rejects(store.take(old.id, request), /unknown id/);
  // A presignature of the old epoch that finishes after the purge is refused by put.
  const [late] = dealPresignatures(2, { keyId: KEY, epoch: EPOCH });
  await assert.rejects(store.put(late), /another key epoch/);
  assert.equal((await store.take(fresh.id, now)).id, fresh.id);
  assert.equal((await store.take(otherKey.id, { ...request, keyId: "account-2" })).id, otherKey.id);
  await assert.rejects(store.purgeOtherEpochs(KEY, "not an epoch"), TypeError);
});

test("a locked key refuses take until an operator unlocks it; the first lock is kept", async () => {
  const [p] = dealPresignatures(2, { keyId: KEY });
  const store = new MemoryPresignatureStore();
  await store.put(p);
  const lock: KeyLock = {
    keyId: KEY,
    protocol: "sign",
    round: 1,
    culprits: [1],
    sid: "00".repeat(16),
    reason: "bad partial signature",
    at: 1,
  };
  await store.lockKey(lock);
  await store.lockKey({ ...lock, culprits: [0], at: 2 });
  assert.deepEqual(await store.keyLock(KEY), lock);
  await rejectsWith(store.take(p.id, request), "key-locked");
  assert.equal(await store.isUsed(p.id), false);
  assert.equal(await store.keyLock("account-2"), undefined);
  await store.unlockKey(KEY);
  assert.equal((await store.take(p.id, request)).id, p.id);
});

test("encodePresignature / decodePresignature round trip through JSON exactly", () => {
  for (const n of [2, 3]) {
    for (const p of dealPresignatures(n, { keyId: KEY, hdPath: [1, 2], shift: 5n })) {
      const back = decodePresignature(JSON.parse(JSON.stringify(encodePresignature(p))));
      assert.deepEqual(encodePresignature(back), encodePresignature(p));
      assert.ok(back.R.equals(p.R));
    }
  }
});

test("decodePresignature refuses malformed and inconsistent records (hostile table)", () => {
  const [p] = dealPresignatures(2, { keyId: KEY });
  const good = encodePresignature(p) as unknown as Record<string, unknown>;
  const other = encodePresignature(dealPresignatures(2)[0]) as unknown as Record<string, unknown>;
  const G = Point.BASE.toHex(true);
  const table: [string, Record<string, unknown> | unknown][] = [
    ["not an object", "presignature"],
    ["array", []],
    ["extra field", { ...good, extra: 1 }],
    ["missing field", { ...good, chi: undefined }],
    ["version 1 (no epoch)", { ...good, v: 1 }],
    ["version 3", { ...good, v: 3 }],
    ["missing epoch", { ...good, epoch: undefined }],
    ["short epoch", { ...good, epoch: "ee" }],
    ["uppercase epoch", { ...good, epoch: "EE".repeat(32) }],
    ["epoch not a string", { ...good, epoch: 7 }],
    ["n = 1", { ...good, n: 1 }],
    ["i = n", { ...good, i: 2 }],
    ["bad id", { ...good, id: "xyz" }],
    ["empty key id", { ...good, keyId: "" }],
    ["hardened index", { ...good, hdPath: [0x80000000] }],
    ["unknown hash", { ...good, hash: "sha1" }],
    ["k = q", { ...good, k: Q.toString(16) }],
    ["short scalar", { ...good, chi: "01" }],
    ["huge scalar", { ...good, k: "ff".repeat(1_000_000) }],
    ["off-curve R", { ...good, R: "02" + "05".padStart(64, "0") }],
    ["Delta of wrong length", { ...good, Delta: [G] }],
    ["bad view digest", { ...good, view: ["00", "11"] }],
    ["k of another presignature", { ...good, k: other.k }],
    ["chi of another presignature", { ...good, chi: other.chi }],
    ["R of another presignature", { ...good, R: other.R }],
    ["delta of another presignature", { ...good, delta: other.delta }],
    ["public key of another presignature", { ...good, publicKey: other.publicKey }],
    ["S of another presignature", { ...good, S: other.S }],
  ];
  for (const [what, v] of table) {
    const o = typeof v === "object" && v && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined))
      : v;
    const t0 = performance.now();
    assert.throws(
      () => decodePresignature(o),
      (e: unknown) => e instanceof TypeError || e instanceof SyntaxError || e instanceof RangeError,
      what,
    );
    assert.ok(performance.now() - t0 < 20_000, `${what}: refused without unbounded work`);
  }
});

test("assertConsistent accepts dealt presignatures and refuses an edited k", () => {
  const ps = dealPresignatures(3);
  for (const p of ps) assertConsistent(p);
  assert.throws(() => assertConsistent({ ...ps[0], k: ps[0].k + 1n }), RangeError);
});
