/**
 * The compute pool: machines run on worker threads with the same results as inline, jobs are
 * served by priority, a departed caller's job stops (read on the worker's own work counter, not
 * timed), and a worker that dies fails its job and is replaced. Aux info and refresh through
 * the workers are in the slow tier.
 * @module
 */
import { SLOW } from "../testing/setup.ts";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { TransportError } from "../core/errors.ts";
import { runProtocol } from "../core/protocols/driver.ts";
import { auxInfo } from "../core/protocols/aux_info.ts";
import { keygen } from "../core/protocols/keygen.ts";
import { createMemoryNetwork } from "../core/protocols/memory_transport.ts";
import { refresh } from "../core/protocols/refresh.ts";
import { fullSignProtocol } from "../core/protocols/sign.ts";
import { verifySignature } from "../core/signature.ts";
import { dealKeyShares, freshSid } from "../testing/fixtures/protocol_fixtures.ts";
import { fixturePaillier } from "../testing/fixtures/keys.ts";
import { TEST_WORKER, watchedPool } from "../testing/compute.ts";
import { bounded, WAIT_MS } from "../testing/waits.ts";
import {
  type ComputePool,
  type ComputePoolEvent,
  ComputeWorkerError,
  createComputePool,
} from "./compute_pool.ts";

/** A pool of the test worker (testing/compute.ts). */
const testPool = (workers: number) => watchedPool(workers);

/** A shared work counter: slot 0 and 1 count, slot 2 stops the spinning jobs. */
function counter() {
  const sab = new SharedArrayBuffer(16);
  return {
    sab,
    view: new Int32Array(sab),
    release: () => Atomics.store(new Int32Array(sab), 2, 1),
  };
}

/** Resolves once slot 0 of the counter has counted (bounded by WAIT_MS). */
function counting(view: Int32Array, what: string): Promise<void> {
  return bounded(
    WAIT_MS,
    `${what} to count`,
    (async () => {
      while (Atomics.load(view, 0) === 0) await new Promise((r) => setTimeout(r, 1));
    })(),
  );
}

const pools: ComputePool[] = [];
after(async () => {
  for (const p of pools) await p.close();
});

type TestPool = Awaited<ReturnType<typeof testPool>> & { c: ReturnType<typeof counter> };

/** Runs `body` with a test pool and a work counter; the spinning jobs are released after. */
async function withCounter(workers: number, body: (t: TestPool) => Promise<void>) {
  const t = await testPool(workers);
  pools.push(t.pool);
  const c = counter();
  try {
    await body({ ...t, c });
  } finally {
    c.release();
  }
}

describe("compute pool", () => {
  test("two parties' key generation and full signing run on the workers, as inline", async () => {
    const { pool } = await testPool(2);
    pools.push(pool);
    const sid = freshSid();
    const net = createMemoryNetwork(2);
    const cores = await Promise.all(
      [0, 1].map((i) =>
        runProtocol(keygen, { sid, i, n: 2 }, net[i], { compute: pool.stepper({ label: "t" }) })
      ),
    );
    assert.ok(cores[0].publicKey.equals(cores[1].publicKey));
    assert.ok(cores[0].publicKey.equals(cores[0].publicShares[0].add(cores[1].publicShares[1])));

    const shares = dealKeyShares(2);
    const digest = crypto.getRandomValues(new Uint8Array(32));
    const signNet = createMemoryNetwork(2);
    const signSid = freshSid();
    const before = pool.stats().completed;
    const sigs = await Promise.all(
      shares.map((share, i) =>
        runProtocol(fullSignProtocol, { share, sid: signSid, keyId: "k", digest }, signNet[i], {
          compute: pool.stepper({ label: "sign" }),
        })
      ),
    );
    assert.equal(sigs[0].der, sigs[1].der);
    assert.ok(verifySignature(shares[0].publicKey, digest, sigs[0].r, sigs[0].s));
    // start + 5 rounds per party, every one on a worker
    assert.equal(pool.stats().completed - before, 12);
  });

  test("jobs run by priority, then in arrival order", async () => {
    await withCounter(1, async ({ pool, events, next, c }) => {
      const since = events.length;
      const blocker = pool.run({ kind: "spin", counter: c.sab, slot: 0, stop: 2 }, {
        label: "blocker",
      });
      await next("an event", (e) => e.type === "started" && e.label === "blocker", since);
      const order: string[] = [];
      const jobs = ([[3, "c"], [1, "a"], [2, "b1"], [2, "b2"]] as const).map(([priority, label]) =>
        pool.run({ kind: "count", counter: c.sab, slot: 1, n: 1 }, { priority, label })
          .then(() => void order.push(label))
      );
      c.release();
      await blocker;
      await Promise.all(jobs);
      assert.deepEqual(order, ["a", "b1", "b2", "c"]);
    });
  });

  test("a cancelled running job stops at its next checkpoint: the worker's work counter stops, the worker stays", async () => {
    await withCounter(2, async ({ pool, events, next, c }) => {
      const ac = new AbortController();
      const since = events.length;
      const running = pool.run({ kind: "spin", counter: c.sab, slot: 0, stop: 2 }, {
        signal: ac.signal,
        label: "departed",
      });
      await next("an event", (e) => e.type === "started" && e.label === "departed", since);
      await pool.run({ kind: "count", counter: c.sab, slot: 1, n: 1 }, { label: "other" });
      // Started is posted before the spinning begins: a loaded machine may not have run it yet.
      await counting(c.view, "the spinning job");
      ac.abort(new Error("client gone"));
      const e = await running.then(() => undefined, (e: unknown) => e);
      assert.ok(e instanceof TransportError && e.code === "aborted", String(e));
      await next("an event", (e) => e.type === "stopped" && e.label === "departed", since);
      const stopped = Atomics.load(c.view, 0);
      // Two more jobs on the two workers (the one that ran the departed job included): the
      // departed job's counter stays where it stopped.
      await Promise.all(
        [1, 2].map(() =>
          pool.run({ kind: "count", counter: c.sab, slot: 1, n: 1e5 }, { label: "after" })
        ),
      );
      assert.equal(Atomics.load(c.view, 0), stopped, "no work for the departed caller");
      const st = pool.stats();
      assert.equal(st.cancelledRunning, 1);
      assert.equal(st.spawned, 2, "no worker was restarted");
    });
  });

  test("a cancelled machine step stops before its end (fewer exponentiations than a whole step)", async () => {
    const { pool, events, next } = await testPool(1);
    pools.push(pool);
    const share = dealKeyShares(2)[0];
    const input = { share, sid: freshSid(), keyId: "k", digest: new Uint8Array(32).fill(7) };
    const net = createMemoryNetwork(2);
    // A whole start step of full signing: Paillier encryptions and range proofs.
    let whole = 0;
    const w0 = pool.stats().work;
    await runProtocol(fullSignProtocol, input, net[0], {
      compute: pool.stepper({ label: "whole" }),
      roundTimeoutMs: 1,
    }).catch(() => {});
    whole = pool.stats().work - w0;
    assert.ok(whole > 10, `a start step takes exponentiations (${whole})`);
    const ac = new AbortController();
    const since = events.length;
    const run = runProtocol(fullSignProtocol, input, createMemoryNetwork(2)[0], {
      compute: pool.stepper({ label: "departed" }),
      signal: ac.signal,
    });
    await next("an event", (e) => e.type === "started" && e.label.startsWith("departed"), since);
    ac.abort();
    await assert.rejects(run, (e: unknown) => e instanceof TransportError && e.code === "aborted");
    await next("an event", (e) => e.type === "stopped", since);
    const stopped = events.find((e) => e.type === "stopped" && e.label.startsWith("departed"));
    assert.ok(stopped?.type === "stopped" && stopped.ops < whole, JSON.stringify(stopped));
    const w1 = pool.stats().work;
    const c = counter();
    await pool.run({ kind: "count", counter: c.sab, slot: 0, n: 10 });
    assert.equal(pool.stats().work, w1, "nothing ran for the departed run after it stopped");
  });

  test("a cancelled job still queued never runs", async () => {
    await withCounter(2, async ({ pool, events, next, c }) => {
      const ac = new AbortController();
      const since = events.length;
      const spin1 = pool.run({ kind: "spin", counter: c.sab, slot: 0, stop: 2 }, { label: "s1" });
      const spin2 = pool.run({ kind: "spin", counter: c.sab, slot: 0, stop: 2 }, { label: "s2" });
      await next("an event", (e) => e.type === "started" && e.label === "s1", since);
      await next("an event", (e) => e.type === "started" && e.label === "s2", since);
      const queued = pool.run({ kind: "count", counter: c.sab, slot: 1, n: 1 }, {
        signal: ac.signal,
        label: "queued",
      });
      assert.equal(pool.stats().queued, 1);
      ac.abort();
      await assert.rejects(
        bounded(60_000, "the cancelled job's answer", queued),
        (e: unknown) => e instanceof TransportError,
      );
      c.release();
      await Promise.all([spin1, spin2]);
      assert.equal(Atomics.load(c.view, 1), 0, "the queued job never ran");
      assert.equal(pool.stats().cancelledQueued, 1);
    });
  });

  test("a cancelled job that passes no checkpoint has its worker terminated after the grace time, and replaced", async () => {
    const events: ComputePoolEvent[] = [];
    let stoppedWorker!: () => void;
    const gone = new Promise<void>((r) => (stoppedWorker = r));
    const pool = createComputePool({
      workers: 1,
      workerUrl: TEST_WORKER,
      cancelGraceMs: 50,
      onEvent: (e) => {
        events.push(e);
        if (e.type === "worker-stopped") stoppedWorker();
      },
    });
    pools.push(pool);
    await pool.ready();
    const c = counter();
    try {
      const ac = new AbortController();
      const stuck = pool.run(
        { kind: "spin", counter: c.sab, slot: 0, stop: 2, checkpoints: false },
        {
          signal: ac.signal,
        },
      );
      await counting(c.view, "the stuck job");
      ac.abort();
      await assert.rejects(stuck, (e: unknown) => e instanceof TransportError);
      await gone;
      assert.deepEqual(events.filter((e) => e.type === "worker-stopped"), [
        { type: "worker-stopped", reason: "cancelled" },
      ]);
      // Node stops the thread; Deno's terminate() may leave it spinning until the flag below.
      c.release();
      assert.equal(await pool.run({ kind: "count", counter: c.sab, slot: 1, n: 2 }), 2);
      assert.equal(pool.stats().spawned, 2, "a replacement was started for the next job");
    } finally {
      c.release();
    }
  });

  test("a worker that dies fails its job with a clear error and is replaced", async () => {
    const { pool } = await testPool(1);
    pools.push(pool);
    const spawned = pool.stats().spawned;
    const e = await bounded(
      60_000,
      "the crashed job's failure",
      pool.run({ kind: "crash" }, { label: "sign (full-sign round 3)" }),
    ).then(() => undefined, (e: unknown) => e);
    assert.ok(e instanceof ComputeWorkerError, String(e));
    assert.equal(e.code, "crashed");
    assert.match(e.message, /compute worker failed running sign \(full-sign round 3\)/);
    const c = counter();
    assert.equal(await pool.run({ kind: "count", counter: c.sab, slot: 0, n: 3 }), 3);
    assert.equal(pool.stats().crashed, 1);
    assert.equal(pool.stats().spawned, spawned + 1, "one replacement");
  });

  test("workers that cannot start make ready() fail, after three tries, instead of hanging", async () => {
    const pool = createComputePool({
      workers: 2,
      workerUrl: new URL("./_no_such_compute_worker.ts", import.meta.url),
    });
    pools.push(pool);
    await assert.rejects(
      pool.ready(),
      (e: unknown) =>
        e instanceof ComputeWorkerError && e.code === "unavailable" &&
        /compute workers fail to start/.test(e.message),
    );
    // Two started, then one more for each of the first two failures: the third gives up.
    assert.equal(pool.stats().spawned, 4);
    await assert.rejects(pool.run({ kind: "count" }), ComputeWorkerError);
  });

  test("a machine's errors come back with their class, code and blame", async () => {
    const { pool } = await testPool(1);
    pools.push(pool);
    const compute = pool.stepper();
    const shares = dealKeyShares(2);
    await assert.rejects(
      runProtocol(
        fullSignProtocol,
        { share: shares[0], sid: freshSid(), keyId: "k", digest: new Uint8Array(31) },
        createMemoryNetwork(2)[0],
        { compute },
      ),
      (e: unknown) => e instanceof RangeError || e instanceof TypeError,
    );
  });
});

describe("compute pool (slow tier: aux info and refresh on the workers)", { skip: !SLOW }, () => {
  test("aux info then refresh of two parties run on the workers", async () => {
    const { pool } = await testPool(2);
    pools.push(pool);
    const net = createMemoryNetwork(2);
    const sid = freshSid();
    const primes = [0, 1].map((k) => fixturePaillier(k));
    const aux = await Promise.all(
      [0, 1].map((i) =>
        runProtocol(auxInfo, { sid, i, n: 2, primes: { p: primes[i].p, q: primes[i].q } }, net[i], {
          compute: pool.stepper(),
        })
      ),
    );
    assert.equal(aux[0].parties[1].N, aux[1].parties[1].N);
    const shares = dealKeyShares(2);
    const next = [2, 3].map((k) => fixturePaillier(k));
    const rnet = createMemoryNetwork(2);
    const rsid = freshSid();
    const refreshed = await Promise.all(shares.map((keyShare, i) =>
      runProtocol(
        refresh,
        {
          sid: rsid,
          keyShare,
          primes: { p: next[i].p, q: next[i].q },
        },
        rnet[i],
        { compute: pool.stepper() },
      )
    ));
    assert.ok(refreshed[0].publicKey.equals(shares[0].publicKey));
    assert.notEqual(refreshed[0].x, shares[0].x);
  });
});
