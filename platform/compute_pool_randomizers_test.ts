/**
 * The compute pool's idle work and configuration: each worker precomputes the Paillier
 * randomizers of presigning for the moduli its jobs used, when it has no job, and the next
 * presigning takes them (read on the counters the worker reports, never timed); that work is no
 * job's (the work counter does not move); `accounts` sizes the workers' per-modulus caches.
 * @module
 */
import "../testing/setup.ts";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { runProtocol } from "../core/protocols/driver.ts";
import { createMemoryNetwork } from "../core/protocols/memory_transport.ts";
import { type Presignature, presignProtocol } from "../core/protocols/presign.ts";
import { dealKeyShares, freshSid } from "../testing/fixtures/protocol_fixtures.ts";
import { watchedPool } from "../testing/compute.ts";
import { fixturePaillier } from "../testing/fixtures/keys.ts";
import { signAndVerify } from "../testing/presignatures.ts";
import type { ComputePool, ComputePoolEvent } from "./compute_pool.ts";

const pools: ComputePool[] = [];
after(async () => {
  for (const p of pools) await p.close();
});

const KEY = "randomizers";
const EPOCH = "ab".repeat(32);
const shares = dealKeyShares(2);

/** Both parties presign with their steps on `pool`'s workers. */
function presign(pool: ComputePool): Promise<Presignature[]> {
  const sid = freshSid();
  const net = createMemoryNetwork(2);
  return Promise.all(shares.map((share, i) =>
    runProtocol(
      presignProtocol,
      { share, sid, keyId: KEY, epoch: EPOCH, hash: "sha256" },
      net[i],
      { compute: pool.stepper({ label: "presign" }) },
    )
  ));
}

/** Signs `text` with the presignatures; @noble/curves checks the signature. */
async function signsAndVerifies(pres: readonly Presignature[], text: string) {
  const message = new TextEncoder().encode(text);
  await signAndVerify(pres, { keyId: KEY, epoch: EPOCH }, message, shares[0].publicKey);
}

type Refilled = Extract<ComputePoolEvent, { type: "randomizers" }>;

describe("compute pool: randomizers made when idle", () => {
  test("a worker refills its pools when it has no job, a job takes from them, and the idle work is no job's", async () => {
    const { pool, events, next } = await watchedPool(1, { randomizers: { own: 4, peer: 0 } });
    pools.push(pool);
    const { p, q } = fixturePaillier(0);
    const take = (n: number) => pool.run({ kind: "take-randomizers", p, q, n });
    let since = events.length;
    await take(2); // the modulus is new: both computed on the spot, then its pool is filled
    const first = await next("refilled", (e) => e.type === "randomizers", since) as Refilled;
    assert.deepEqual(first.stats, {
      moduli: 1,
      ready: 4,
      made: 4,
      fromPool: 0,
      inline: 2,
      missing: 0,
    });
    const work = pool.stats().work;
    since = events.length;
    await take(3);
    assert.equal(pool.stats().work, work, "taken from the pool: no exponentiation in the job");
    const second = await next("refilled", (e) => e.type === "randomizers", since) as Refilled;
    assert.deepEqual(second.stats, {
      moduli: 1,
      ready: 4,
      made: 7,
      fromPool: 3,
      inline: 2,
      missing: 0,
    });
    assert.equal(pool.stats().work, work, "the 3 made when idle passed no checkpoint");
    assert.deepEqual(pool.stats().randomizers, { ready: 4, made: 7, fromPool: 3, inline: 2 });
  });

  test("presigning on the workers takes its randomizers from the pools once they are filled; noble verifies both signatures", async () => {
    const { pool, events, next } = await watchedPool(1);
    pools.push(pool);
    // One worker runs both parties: N_0 and N_1 are each some party's own (CRT, target 18).
    // Each party takes 2 + 7 = 9 under its own N and 4 under its peer's: 26 in all.
    const filledAfter = (total: number) => (e: ComputePoolEvent) =>
      e.type === "randomizers" && e.stats.missing === 0 &&
      e.stats.fromPool + e.stats.inline === total;
    let since = events.length;
    const first = await presign(pool);
    await signsAndVerifies(first, "first");
    const filled = await next("pools filled", filledAfter(26), since) as Refilled;
    assert.equal(filled.stats.moduli, 2);
    assert.ok(filled.stats.inline > 0, "the first steps found nothing ready");
    assert.equal(filled.stats.ready, 2 * 18);
    since = events.length;
    const second = await presign(pool);
    await signsAndVerifies(second, "second");
    const again = await next("pools filled again", filledAfter(52), since) as Refilled;
    assert.equal(again.stats.fromPool - filled.stats.fromPool, 26, "all ready for the second");
    assert.equal(again.stats.inline, filled.stats.inline, "none computed on the spot");
  });

  test("randomizers: false keeps no pools: randomizers are computed on the spot", async () => {
    const { pool } = await watchedPool(1, { randomizers: false });
    pools.push(pool);
    const { p, q } = fixturePaillier(0);
    assert.equal(await pool.run({ kind: "take-randomizers", p, q, n: 1 }), "none");
    const on = await watchedPool(1);
    pools.push(on.pool);
    assert.equal(await on.pool.run({ kind: "take-randomizers", p, q, n: 1 }), "registry");
  });
});

describe("compute pool: caches sized to the accounts", () => {
  test("accounts sizes every worker's per-modulus caches, and setAccounts resizes them", async () => {
    const { pool } = await watchedPool(2, { accounts: 100 });
    pools.push(pool);
    const sizing = () =>
      Promise.all([0, 1].map(() => pool.run({ kind: "cache-sizing" }))) as Promise<
        { accounts: number; capacity: number }[]
      >;
    for (const s of await sizing()) assert.deepEqual(s, { accounts: 100, capacity: 1216 });
    pool.setAccounts(3);
    for (const s of await sizing()) assert.deepEqual(s, { accounts: 3, capacity: 64 });
    assert.throws(() => pool.setAccounts(-1), RangeError);
  });
});
