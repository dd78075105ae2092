/**
 * The judge's time bounds: an input that stalls once (a loaded machine) is judged by a second
 * run, an input that hangs twice is a hang, and one that is slow twice is slow.
 * @module
 */
import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Harness, judge, type Target } from "./_engine.ts";

const harness: Harness = {
  name: "engine-test",
  oracle: "answers",
  kind: "bytes",
  fast: false,
  seconds: 1,
  timeoutMs: 20,
  setup: () => target(() => Promise.resolve()),
};

/** A target whose k-th run does what `runs(k)` returns. */
function target(runs: (k: number) => unknown): Target {
  let k = 0;
  return { seeds: [], allowed: () => true, run: () => runs(k++) };
}

const never = () => new Promise(() => {});

test("an input that does not settle once, then answers, is judged by its answer", async () => {
  const t = target((k) => (k === 0 ? never() : Promise.resolve("fine")));
  const v = await judge(harness, t, new Uint8Array([1]));
  assert.equal(v.ok, true);
});

test("an input that does not settle twice is a hang; a refusal after a stall is a refusal", async () => {
  const hung = await judge(harness, target(never), new Uint8Array([2]));
  assert.equal(hung.ok, false);
  assert.equal(!hung.ok && hung.failure.kind, "hang");
  const refused = await judge(
    harness,
    target((k) => (k === 0 ? never() : Promise.reject(new TypeError("refused")))),
    new Uint8Array([3]),
  );
  assert.equal(refused.ok, true, "an allowed refusal");
});
