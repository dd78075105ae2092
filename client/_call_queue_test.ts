/**
 * The client's allowance: calls beyond it wait in order in a bounded queue, leave it on their
 * signal or deadline, and a refusal for load is tried again when its hint fits the deadline.
 * No timing is asserted: deadlines are waited for as events.
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { createCallQueue, retryHintMs } from "./_call_queue.ts";

/** A call that runs until `finish()`. */
function held() {
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  let started = false;
  return {
    call: async () => {
      started = true;
      await done;
    },
    finish,
    started: () => started,
  };
}

/** Waits (a macrotask at a time) until `cond` holds. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 0));
}

const refused = (hintMs: number) =>
  new ConnectError("busy", Code.ResourceExhausted, { "retry-after-ms": String(hintMs) });

test("calls beyond the allowance wait, then run in their order", async () => {
  const q = createCallQueue({ maxConcurrent: 2, maxQueued: 8 });
  const calls = [held(), held(), held(), held()];
  const runs = calls.map((c) => q.run({}, c.call));
  await until(() => calls[0].started() && calls[1].started());
  assert.deepEqual(calls.map((c) => c.started()), [true, true, false, false]);
  assert.equal(q.queued(), 2);
  calls[1].finish();
  await runs[1];
  await until(() => calls[2].started());
  assert.ok(!calls[3].started(), "the fourth call still waits");
  calls[0].finish();
  await runs[0];
  await until(() => calls[3].started());
  calls[2].finish();
  calls[3].finish();
  await Promise.all(runs);
  assert.equal(q.active(), 0);
});

test("a call beyond the queue's bound is refused at once with RESOURCE_EXHAUSTED", async () => {
  const q = createCallQueue({ maxConcurrent: 1, maxQueued: 1 });
  const a = held();
  const b = held();
  const runA = q.run({}, a.call);
  const runB = q.run({}, b.call);
  const e = await q.run({}, () => Promise.resolve()).then(() => undefined, (e: unknown) => e);
  assert.ok(e instanceof ConnectError && e.code === Code.ResourceExhausted, String(e));
  assert.match(e.message, /queue is full: 1 calls wait/);
  a.finish();
  b.finish();
  await Promise.all([runA, runB]);
});

test("a queued call leaves the queue on its signal (CANCELED) or its deadline (DEADLINE_EXCEEDED)", async () => {
  const q = createCallQueue({ maxConcurrent: 1, maxQueued: 4 });
  const a = held();
  const runA = q.run({}, a.call);
  const ac = new AbortController();
  const cancelled = q.run({ signal: ac.signal }, () => Promise.resolve("never"));
  const late = q.run({ timeoutMs: 20 }, () => Promise.resolve("never"));
  const after = held();
  const runAfter = q.run({}, after.call);
  ac.abort();
  await assert.rejects(
    cancelled,
    (e: unknown) => e instanceof ConnectError && e.code === Code.Canceled,
  );
  await assert.rejects(
    late,
    (e: unknown) =>
      e instanceof ConnectError && e.code === Code.DeadlineExceeded &&
      /while it waited in the client's queue/.test(e.message),
  );
  assert.equal(q.queued(), 1, "both left the queue");
  a.finish();
  await runA;
  await until(() => after.started());
  after.finish();
  await runAfter;
});

test("a refusal for load is tried again after its hint when the hint fits the deadline", async () => {
  const q = createCallQueue({ maxConcurrent: 1 });
  let tries = 0;
  const ok = await q.run({ timeoutMs: 60_000 }, () => {
    tries++;
    return tries < 3 ? Promise.reject(refused(5)) : Promise.resolve("signed");
  });
  assert.equal(ok, "signed");
  assert.equal(tries, 3);

  // A hint past the deadline: the service's refusal comes back at once, not after a wait.
  let once = 0;
  const e = await q.run({ timeoutMs: 10_000 }, () => {
    once++;
    return Promise.reject(refused(30_000));
  }).then(() => undefined, (e: unknown) => e);
  assert.ok(e instanceof ConnectError && e.code === Code.ResourceExhausted);
  assert.equal(once, 1);
  assert.equal(retryHintMs(e), 30_000);
  assert.equal(
    retryHintMs(new ConnectError("x", Code.ResourceExhausted, { "retry-after": "2" })),
    2000,
  );
  assert.equal(retryHintMs(new ConnectError("x", Code.Unavailable)), undefined);
});

test("a try gets the time left as whole milliseconds (Connect's timeout header takes an integer)", async () => {
  const q = createCallQueue();
  const left = await q.run({ timeoutMs: 10_000.7 }, (t) => Promise.resolve(t.timeoutMs));
  assert.ok(Number.isInteger(left) && left! > 0 && left! <= 10_000, String(left));
  assert.equal(await q.run({}, (t) => Promise.resolve(t.timeoutMs)), undefined);
});
