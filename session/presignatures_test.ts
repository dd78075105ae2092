/**
 * Presignature pools and the one-round fast path, both parties in one process over the real
 * gateway handler (in memory): presigning fills both pools with the same ids, a message signs
 * in one round with them (noble verifies), a presignature is never used twice, a presignature
 * of an old epoch is never served, mismatched presignatures are detected and both discarded,
 * and the pool's bounds evict the oldest.
 * @module
 */
import "../testing/setup.ts";
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { MemoryPresignatureStore } from "../core/presignature_store.ts";
import { ProtocolAbort } from "../core/errors.ts";
import type { Presignature } from "../core/protocols/presign.ts";
import { hashMessage } from "../core/signature.ts";
import { MemoryKeyStore } from "../keystore/memory_key_store.ts";
import { fixtureAccounts, type PartyAccounts } from "../testing/accounts.ts";
import { dealPresignatures } from "../testing/fixtures/protocol_fixtures.ts";
import { recordedSurroundings } from "../testing/service_deps.ts";
import { newRoomId } from "./inputs.ts";
import { presignAsParty, signMessageAsParty, storedCurrentEpoch } from "./party.ts";
import { type PoolTarget, PresignaturePool } from "./presignature_pool.ts";

let accounts: PartyAccounts;

before(async () => {
  accounts = await fixtureAccounts(["alice"]);
});

const TIMEOUTS = { roundTimeoutMs: 30_000, handshakeTimeoutMs: 30_000 };
const LIFE = [{ promoteKeygen: false }, { promoteKeygen: true }] as const;

/** Both parties: key stores, pools over memory stores, one in-memory gateway. */
function parties() {
  const { gateway, clientGateway } = recordedSurroundings();
  const stores = [new MemoryKeyStore(accounts[0]), new MemoryKeyStore(accounts[1])] as const;
  const raw = [new MemoryPresignatureStore(), new MemoryPresignatureStore()] as const;
  const pools = [new PresignaturePool(raw[0]), new PresignaturePool(raw[1])] as const;
  const gateways = [clientGateway, gateway] as const;
  return { stores, raw, pools, gateways };
}

type Parties = ReturnType<typeof parties>;

async function presign(p: Parties, target: PoolTarget, count: number) {
  const room = newRoomId();
  return await Promise.all([0, 1].map((k) =>
    presignAsParty(
      p.stores[k],
      { accountId: target.accountId, path: target.path, hash: target.hash, count },
      { gateway: p.gateways[k], room, ...TIMEOUTS },
      p.pools[k],
      LIFE[k],
    )
  ));
}

async function signMessage(
  p: Parties,
  target: PoolTarget,
  message: Uint8Array,
  ids: readonly [string, string],
) {
  const room = newRoomId();
  return await Promise.allSettled([0, 1].map((k) =>
    signMessageAsParty(
      p.stores[k],
      {
        accountId: target.accountId,
        message,
        hash: target.hash,
        path: target.path,
        presignatureId: ids[k],
      },
      { gateway: p.gateways[k], room, ...TIMEOUTS },
      p.pools[k],
    )
  ));
}

const TARGET: PoolTarget = { accountId: "alice", path: [0, 7], hash: "keccak256" };

describe("presignature pools over a gateway", () => {
  test("presigning fills both pools with the same ids; a message signs in one round", async () => {
    const p = parties();
    const [a, b] = await presign(p, TARGET, 2);
    assert.deepEqual(a.ids, b.ids);
    assert.equal(a.ids.length, 2);
    assert.equal(a.epoch, b.epoch);
    const epoch = await storedCurrentEpoch(p.stores[0], "alice");
    assert.equal(a.epoch, epoch);
    assert.equal(p.pools[0].count(TARGET, epoch), 2);
    assert.equal(p.pools[1].count(TARGET, epoch), 2);

    const id = p.pools[0].pick(TARGET, epoch)!;
    assert.equal(id, a.ids[0], "the oldest first");
    assert.ok(p.pools[1].claim(id, TARGET, epoch));
    const message = new TextEncoder().encode("pay bob 1 wei");
    const [mine, theirs] = await signMessage(p, TARGET, message, [id, id]);
    assert.equal(mine.status, "fulfilled");
    assert.equal(theirs.status, "fulfilled");
    if (mine.status !== "fulfilled" || theirs.status !== "fulfilled") return;
    assert.equal(mine.value.signature.der, theirs.value.signature.der);
    const digest = hashMessage("keccak256", message);
    const pub = mine.value.publicKey.toBytes(true);
    assert.ok(
      secp256k1.verify(
        secp256k1.Signature.fromHex(mine.value.signature.compact).toBytes(),
        digest,
        pub,
        {
          prehash: false,
          format: "compact",
        },
      ),
      "noble verifies the signature under the derived key",
    );
    assert.ok(await p.raw[0].isUsed(id) && await p.raw[1].isUsed(id), "consumed on both sides");
    assert.equal(p.pools[0].count(TARGET, epoch), 1);

    // Used once: a second signing with the same id is refused on both sides, before any
    // partial signature.
    const again = await signMessage(p, TARGET, message, [id, id]);
    for (const r of again) {
      assert.ok(
        r.status === "rejected" && r.reason instanceof ProtocolAbort &&
          r.reason.code === "presignature-used",
        r.status === "rejected" ? String(r.reason) : "signed twice",
      );
    }
  });

  test("parties naming different presignatures fail the handshake; nothing is consumed", async () => {
    const p = parties();
    const [a] = await presign(p, TARGET, 2);
    const message = new TextEncoder().encode("m");
    const r = await signMessage(p, TARGET, message, [a.ids[0], a.ids[1]]);
    assert.ok(r.every((x) => x.status === "rejected"));
    for (const k of [0, 1]) {
      for (const id of a.ids) assert.equal(await p.raw[k].isUsed(id), false);
    }
  });

  test("a presignature differing under the same id is detected by the echo; both discard it", async () => {
    const p = parties();
    const [a] = await presign(p, TARGET, 1);
    const id = a.ids[0];
    const epoch = a.epoch;
    // The service's copy is altered: its view (the echoed public data) differs.
    const expected = { keyId: "alice", epoch, hdPath: TARGET.path, hash: TARGET.hash };
    const original = await p.raw[1].take(id, expected);
    const altered: Presignature = { ...original, view: original.view.map(() => "00".repeat(32)) };
    const other = new MemoryPresignatureStore();
    await other.put(altered);
    const room = newRoomId();
    const r = await Promise.allSettled([0, 1].map((k) =>
      signMessageAsParty(
        p.stores[k],
        {
          accountId: "alice",
          message: new Uint8Array([1]),
          hash: "keccak256",
          path: TARGET.path,
          presignatureId: id,
        },
        { gateway: p.gateways[k], room, ...TIMEOUTS },
        k === 0 ? p.pools[0] : other,
      )
    ));
    assert.ok(r.every((x) => x.status === "rejected"), "neither side gets a signature");
    assert.ok(await p.raw[0].isUsed(id), "the client's copy is consumed");
    assert.ok(await other.isUsed(id), "the service's copy is consumed");
    assert.equal(await p.raw[0].keyLock("alice"), undefined, "a mismatch is not a bad share");
  });

  test("a presignature of another epoch is never served", async () => {
    const p = parties();
    const [a] = await presign(p, TARGET, 1);
    const next = "ab".repeat(32);
    await p.pools[0].purgeOtherEpochs("alice", next);
    assert.equal(p.pools[0].count(TARGET, next), 0);
    assert.equal(p.pools[0].pick(TARGET, a.epoch), undefined, "dropped from the inventory");
    await assert.rejects(
      p.raw[0].take(a.ids[0], {
        keyId: "alice",
        epoch: a.epoch,
        hdPath: TARGET.path,
        hash: "keccak256",
      }),
      /unknown id/,
    );
  });
});

describe("pool bounds", () => {
  const EPOCH = "ee".repeat(32);
  const target = (path: number[]): PoolTarget => ({ accountId: "k", path, hash: "sha256" });
  const deal = (path: number[]) =>
    dealPresignatures(2, { keyId: "k", epoch: EPOCH, hash: "sha256", hdPath: path })[0];

  test("beyond a bound the oldest is evicted and consumed", async () => {
    const raw = new MemoryPresignatureStore();
    const pool = new PresignaturePool(raw, { maxPerTarget: 2, maxPerAccount: 3, maxTotal: 10 });
    const made = [deal([]), deal([]), deal([])];
    for (const x of made) await pool.put(x);
    assert.equal(pool.count(target([]), EPOCH), 2);
    assert.ok(await raw.isUsed(made[0].id), "the oldest was consumed (never served)");
    assert.equal(pool.pick(target([]), EPOCH), made[1].id);
    await pool.put(deal([1]));
    await pool.put(deal([2]));
    await pool.put(deal([3]));
    assert.equal(pool.countAccount("k"), 3, "the account's bound");
    assert.equal(pool.stats().evicted, 2);
  });

  test("claim refuses an id listed for another target or epoch", async () => {
    const pool = new PresignaturePool(new MemoryPresignatureStore());
    const x = deal([5]);
    await pool.put(x);
    assert.equal(pool.claim(x.id, target([6]), EPOCH), false);
    assert.equal(pool.claim(x.id, target([5]), "ab".repeat(32)), false, "another epoch drops it");
    assert.equal(pool.count(), 0);
    const y = deal([5]);
    await pool.put(y);
    assert.equal(pool.claim(y.id, target([5]), EPOCH), true);
    assert.equal(pool.claim(y.id, target([5]), EPOCH), false, "claimed once");
  });

  test("release lists a picked or claimed entry again, unless taken, discarded or purged", async () => {
    const pool = new PresignaturePool(new MemoryPresignatureStore());
    const [a, b, c, d] = [deal([]), deal([]), deal([]), deal([])];
    for (const x of [a, b, c, d]) await pool.put(x);
    const t = target([]);
    // Picked, refused before any session, listed again (as the newest).
    assert.equal(pool.pick(t, EPOCH), a.id);
    assert.equal(await pool.release(a.id), true);
    assert.equal(pool.count(t, EPOCH), 4);
    assert.equal(await pool.release(a.id), false, "released once");
    // Claimed, then taken: never listed again.
    assert.equal(pool.claim(b.id, t, EPOCH), true);
    await pool.take(b.id, { keyId: "k", epoch: EPOCH, hdPath: [], hash: "sha256" });
    assert.equal(await pool.release(b.id), false);
    // Picked, then discarded: never listed again.
    assert.equal(pool.pick(t, EPOCH), c.id);
    await pool.discard(c.id, t, EPOCH);
    assert.equal(await pool.release(c.id), false);
    // Picked, then the key's epoch changed: dropped.
    assert.equal(pool.pick(t, EPOCH), d.id);
    await pool.purgeOtherEpochs("k", "ab".repeat(32));
    assert.equal(await pool.release(d.id), false);
    assert.equal(pool.count(), 0);
    // An id the pool never gave out.
    assert.equal(await pool.release("00".repeat(32)), false);
  });

  test("bad bounds are refused", () => {
    for (const v of [0, -1, 1.5, NaN]) {
      assert.throws(
        () => new PresignaturePool(new MemoryPresignatureStore(), { maxPerTarget: v }),
        RangeError,
      );
    }
  });
});
