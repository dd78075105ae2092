/**
 * Admission control: the expected start of a session is the backlog over the workers; a
 * request that would not finish before its deadline behind it is refused with a hint of when it
 * would; the costs follow what sessions measure.
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createAdmission } from "./admission.ts";
import { RateLimited } from "./errors.ts";

const refusal = (f: () => unknown): RateLimited => {
  try {
    f();
  } catch (e) {
    if (e instanceof RateLimited) return e;
    throw e;
  }
  throw new Error("expected a refusal");
};

test("the expected start is the admitted sessions' remaining work over the workers", () => {
  const a = createAdmission({ workers: 2, costMs: { sign: 1000, keygen: 8000 } });
  assert.equal(a.expectedStartMs(), 0);
  const s1 = a.admit("sign");
  const k1 = a.admit("keygen");
  assert.equal(a.backlogMs(), 9000);
  assert.equal(a.expectedStartMs(), 4500);
  s1.charge(400);
  assert.equal(a.backlogMs(), 8600, "work done leaves the backlog");
  s1.charge(5000);
  assert.equal(a.backlogMs(), 8000, "a session over its estimate adds nothing");
  s1.finish("ok");
  k1.finish("failed");
  assert.equal(a.active(), 0);
  assert.equal(a.backlogMs(), 0);
});

test("a request that could not finish before its deadline is refused with the wait that would make it fit", () => {
  const a = createAdmission({ workers: 2, costMs: { sign: 2000 }, initialLimit: 16 });
  for (let k = 0; k < 10; k++) a.admit("sign"); // 20 s of work: a new one starts in 10 s
  const e = refusal(() => a.admit("sign", 11_000));
  assert.equal(e.code, "overloaded");
  assert.equal(e.retryAfterMs, 1000, "10 s + 2 s of its own, 1 s past the deadline");
  assert.match(e.message, /start in about 10\.0 s and take 2\.0 s/);
  assert.equal(a.active(), 10, "nothing admitted");
  a.admit("sign", 12_000); // fits exactly
  assert.equal(a.active(), 11);
});

test("the round timeout bounds the wait of a request without a deadline or with a later one", () => {
  const a = createAdmission({
    workers: 1,
    costMs: { sign: 1000 },
    maxWaitMs: 5000,
    initialLimit: 16,
  });
  for (let k = 0; k < 4; k++) a.admit("sign");
  a.admit("sign"); // 4 s + 1 s: fits 5 s
  assert.equal(refusal(() => a.admit("sign")).code, "overloaded");
  assert.equal(refusal(() => a.admit("sign", 3_600_000)).code, "overloaded");
});

test("an empty queue admits whatever the deadline", () => {
  const a = createAdmission({ workers: 1, costMs: { keygen: 60_000 } });
  a.admit("keygen", 1);
  assert.equal(a.active(), 1);
});

test("costs follow measured sessions: a running average of the good ones, raised by a failed one that used more", () => {
  const a = createAdmission({ workers: 1, costMs: { sign: 1000 }, learningRate: 0.5 });
  const s = a.admit("sign");
  s.charge(3000);
  s.finish("ok");
  assert.equal(a.cost("sign"), 2000);
  const cheap = a.admit("sign");
  cheap.charge(100);
  cheap.finish("failed");
  assert.equal(a.cost("sign"), 2000, "a failure that used less teaches nothing");
  const slow = a.admit("sign");
  slow.charge(6000);
  slow.finish("failed");
  assert.equal(a.cost("sign"), 4000, "a failure that used more raises the estimate");
  slow.finish("ok");
  assert.equal(a.cost("sign"), 4000, "finish is idempotent");
});

test("bad options are refused", () => {
  assert.throws(() => createAdmission({ workers: 0 }), RangeError);
  assert.throws(() => createAdmission({ workers: 1, costMs: { sign: -1 } }), RangeError);
  assert.throws(() => createAdmission({ workers: 1, learningRate: 0 }), RangeError);
  assert.throws(() => createAdmission({ workers: 1 }).admit("x" as "sign"), TypeError);
});

test("the concurrency limit follows the deadlines: refusals beyond it, up when sessions end early, down when late", () => {
  let now = 0;
  const a = createAdmission({
    workers: 2,
    costMs: { sign: 100 },
    initialLimit: 2,
    maxConcurrent: 4,
    maxWaitMs: 10_000,
    clock: () => now,
  });
  const s1 = a.admit("sign");
  const s2 = a.admit("sign");
  const e = refusal(() => a.admit("sign"));
  assert.equal(e.code, "overloaded");
  assert.match(e.message, /2 sessions run, as many as finish in time now/);
  now += 1000; // 10% of the budget: early
  s1.finish("ok");
  assert.equal(a.limit(), 2.5);
  s2.finish("ok");
  assert.equal(a.limit(), 2.9);
  const s3 = a.admit("sign");
  const s4 = a.admit("sign");
  now += 9000; // 90% of the budget: late for comfort
  s3.finish("ok");
  assert.ok(Math.abs(a.limit() - 2.61) < 1e-9, String(a.limit()));
  const s5 = a.admit("sign");
  s5.finish("late");
  assert.ok(a.limit() < 2, "a missed deadline lowers it by a quarter");
  s4.finish("failed");
  assert.ok(a.limit() < 2, "a failure for another cause does not move it");
  for (let k = 0; k < 100; k++) {
    const t = a.admit("sign");
    t.finish("ok"); // instant: early
  }
  assert.equal(a.limit(), 4, "never above the ceiling");
});

test("background work (presigning) runs only when no foreground session does, on its share of the workers, after them", () => {
  const a = createAdmission({
    workers: 4,
    costMs: { sign: 1000, presign: 2000 },
    backgroundShare: 0.5,
  });
  const p1 = a.admit("presign");
  const p2 = a.admit("presign");
  const full = refusal(() => a.admit("presign"));
  assert.equal(full.code, "overloaded", "two of four workers at most");
  assert.match(full.message, /at most 2 of its workers/);
  assert.equal(a.backlogMs(), 0, "background work is not in the foreground's backlog");
  const s = a.admit("sign");
  assert.ok(s.priority < p1.priority && s.priority < p2.priority, "a signature's jobs go first");
  p1.finish("ok");
  const busy = refusal(() => a.admit("presign"));
  assert.match(busy.message, /only when idle/);
  assert.equal(busy.retryAfterMs, 1000 / 4, "the foreground backlog over the workers");
  s.finish("ok");
  a.admit("presign").finish("ok");
  p2.finish("failed");
  assert.equal(a.active(), 0);
});

test("background sessions do not take the foreground's concurrency slots", () => {
  const a = createAdmission({ workers: 2, initialLimit: 1, maxConcurrent: 1, backgroundShare: 1 });
  const p = a.admit("presign");
  const s = a.admit("sign"); // admitted although one (background) session runs at the limit of 1
  assert.throws(() => a.admit("sign"), RateLimited);
  s.finish("ok");
  p.finish("ok");
  assert.throws(() => createAdmission({ workers: 2, backgroundShare: 0 }), RangeError);
});

test("probe refuses what admit would refuse, and admits nothing", () => {
  const a = createAdmission({
    workers: 1,
    costMs: { sign: 2000, presign: 1000 },
    initialLimit: 16,
  });
  a.probe("sign", 1000); // empty: admitted whatever the deadline
  assert.equal(a.active(), 0, "a probe admits nothing");
  const s = a.admit("sign");
  const e = refusal(() => a.probe("sign", 3000));
  assert.equal(e.code, "overloaded");
  assert.ok(e.retryAfterMs >= 1000);
  assert.throws(() => a.probe("presign"), RateLimited, "background work waits for the idle");
  a.probe("sign", 10_000);
  assert.equal(a.active(), 1);
  s.finish("ok");
});
