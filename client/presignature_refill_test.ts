import { test } from "node:test";
import assert from "node:assert/strict";
import type { PoolTarget } from "../session/presignature_pool.ts";
import { createPresignatureRefiller, type RefillDeps } from "./presignature_refill.ts";

const A: PoolTarget = { accountId: "alice", path: [], hash: "keccak256" };
const B: PoolTarget = { accountId: "bob", path: [0, 1], hash: "sha256" };

/** A fake client: counts per account, sessions recorded; sleeps resolve at once (recorded). */
function fake(over: Partial<RefillDeps> = {}) {
  const counts = new Map<string, number>();
  const sessions: [string, number][] = [];
  const sleeps: number[] = [];
  let clock = 0;
  const deps: RefillDeps = {
    count: (t) => Promise.resolve(counts.get(t.accountId) ?? 0),
    presign: (t, n) => {
      sessions.push([t.accountId, n]);
      clock += 100; // each session "takes" 100 ms
      counts.set(t.accountId, (counts.get(t.accountId) ?? 0) + n);
      return Promise.resolve();
    },
    sleep: (ms) => {
      sleeps.push(ms);
      clock += ms; // the fake clock moves with the waits
      return new Promise((r) => setTimeout(r, 0)); // a macrotask: the test's waits run too
    },
    now: () => clock,
    ...over,
  };
  return { counts, sessions, sleeps, deps };
}

test("fills each target to its size in batches, then only below the low-water mark", async () => {
  const f = fake();
  const r = createPresignatureRefiller(f.deps, { size: 5, lowWater: 2, batch: 2, cpuShare: 1 });
  r.add(A);
  r.add(B);
  await r.idle();
  assert.deepEqual(f.sessions, [["alice", 2], ["alice", 2], ["alice", 1], ["bob", 2], ["bob", 2], [
    "bob",
    1,
  ]]);
  f.sessions.length = 0;
  f.counts.set("alice", 2); // at the low-water mark: nothing
  r.kick();
  await r.idle();
  assert.deepEqual(f.sessions, []);
  f.counts.set("alice", 1); // below: filled to the size again
  r.kick();
  await r.idle();
  assert.deepEqual(f.sessions, [["alice", 2], ["alice", 2]]);
  assert.equal(r.stats().made, 14);
  await r.close();
});

test("a signing call aborts the running session and holds the next until it ends", async () => {
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  let sessions = 0;
  const f = fake({
    presign: (_t, _n, signal) => {
      sessions++;
      started();
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason), { once: true })
      );
    },
  });
  const r = createPresignatureRefiller(f.deps, { size: 2, lowWater: 1, batch: 2 });
  r.add(A);
  await running;
  const release = r.yieldToSigning();
  // While the call holds, no other session starts (the loop is given many turns).
  for (let k = 0; k < 20; k++) await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(sessions, 1);
  assert.equal(r.stats().yielded, 1);
  assert.equal(r.stats().failures, 0, "a yield is not a failure");
  release();
  release(); // twice is harmless
  while (sessions < 2) await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(sessions, 2, "resumes once the signing call ended");
  await r.close();
});

test("a key change pauses: the running session is aborted and has ended when pause resolves", async () => {
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  let sessions = 0;
  let ended = false;
  let finish!: () => void;
  const f = fake({
    presign: (_t, _n, signal) => {
      sessions++;
      started();
      // The session ends only when the test says so, after its abort (a session winding down).
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => {
          finish = () => {
            ended = true;
            reject(signal.reason);
          };
        }, { once: true })
      );
    },
  });
  const r = createPresignatureRefiller(f.deps, { size: 2, lowWater: 1, batch: 2 });
  r.add(A);
  await running;
  let paused = false;
  const pausing = r.pause().then((release) => {
    paused = true;
    return release;
  });
  for (let k = 0; k < 20; k++) await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(paused, false, "not before the running session has ended");
  finish();
  const release = await pausing;
  assert.ok(ended);
  for (let k = 0; k < 20; k++) await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(sessions, 1, "nothing starts while paused");
  release();
  while (sessions < 2) await new Promise((resolve) => setTimeout(resolve, 0));
  // The next session is aborted in the same way (the abort reaches it synchronously).
  const second = r.pause();
  finish();
  (await second)();
  await r.close();
});

test("presigning keeps to its CPU share", async () => {
  const f = fake();
  const r = createPresignatureRefiller(f.deps, { size: 2, lowWater: 1, batch: 1, cpuShare: 0.25 });
  r.add(A);
  await r.idle();
  assert.deepEqual(f.sleeps, [300], "100 ms of work, 300 ms of pause before the next only");
  await r.close();
});

test("failures back off (doubling, or the refusal's hint) and are reported", async () => {
  const errors: unknown[] = [];
  let calls = 0;
  const f = fake({
    presign: () => {
      calls++;
      return Promise.reject(calls === 3 ? new Error("busy") : new Error("down"));
    },
    retryHintMs: (e) => ((e as Error).message === "busy" ? 7_000 : undefined),
    onError: (e) => errors.push(e),
  });
  const r = createPresignatureRefiller(f.deps, { size: 1, lowWater: 1 });
  r.add(A);
  while (calls < 5) await new Promise((resolve) => setTimeout(resolve, 0));
  await r.close();
  assert.deepEqual(f.sleeps.slice(0, 4), [1_000, 2_000, 7_000, 4_000]);
  assert.ok(errors.length >= 4);
});

test("bad settings are refused", () => {
  const f = fake();
  for (
    const o of [{ size: 0 }, { size: 4, lowWater: 5 }, { batch: 9 }, { cpuShare: 0 }, {
      cpuShare: 1.5,
    }, { maxTargets: 0 }]
  ) {
    assert.throws(() => createPresignatureRefiller(f.deps, o), RangeError, JSON.stringify(o));
  }
});

test("a target whose count cannot be read is skipped; the others are filled", async () => {
  const errors: unknown[] = [];
  const f = fake({ onError: (e) => errors.push(e) });
  const count = f.deps.count;
  f.deps.count = (t) =>
    t.accountId === "alice" ? Promise.reject(new Error("no such account")) : count(t);
  const r = createPresignatureRefiller(f.deps, { size: 2, lowWater: 1, batch: 2 });
  r.add(A);
  r.add(B);
  await r.idle();
  assert.deepEqual(f.sessions, [["bob", 2]]);
  assert.ok(errors.length >= 1);
  await r.close();
});
