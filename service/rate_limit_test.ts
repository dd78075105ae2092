import { test } from "node:test";
import assert from "node:assert/strict";
import { createRateLimiter, createSessionLimiter } from "./rate_limit.ts";
import { RateLimited } from "./errors.ts";

function limited(code: RateLimited["code"], retryAfterMs?: number) {
  return (e: unknown) => {
    assert.ok(e instanceof RateLimited, String(e));
    assert.equal(e.code, code);
    if (retryAfterMs !== undefined) assert.equal(e.retryAfterMs, retryAfterMs);
    return true;
  };
}

test("a caller gets burst requests at once, then one per 60000/rate ms", () => {
  let now = 1000;
  const rate = createRateLimiter({ perMinute: 60, burst: 3, clock: () => now });
  for (let i = 0; i < 3; i++) rate.take("a");
  assert.throws(() => rate.take("a"), limited("rate-limited", 1000));
  now += 400;
  assert.throws(() => rate.take("a"), limited("rate-limited", 600));
  now += 600;
  rate.take("a");
  assert.throws(() => rate.take("a"), limited("rate-limited", 1000));
  // Refill is capped at burst however long the caller was idle.
  now += 3_600_000;
  for (let i = 0; i < 3; i++) rate.take("a");
  assert.throws(() => rate.take("a"), RateLimited);
});

test("buckets are per caller: one caller's flood does not limit another", () => {
  const rate = createRateLimiter({ perMinute: 1, burst: 1, clock: () => 0 });
  rate.take("flooder");
  for (let i = 0; i < 100; i++) assert.throws(() => rate.take("flooder"), RateLimited);
  rate.take("other");
});

test("refused requests take no tokens", () => {
  let now = 0;
  const rate = createRateLimiter({ perMinute: 60, burst: 1, clock: () => now });
  rate.take("a");
  for (let i = 0; i < 50; i++) assert.throws(() => rate.take("a"), RateLimited);
  now += 1000;
  rate.take("a");
});

test("a cost above one waits for that many tokens", () => {
  let now = 0;
  const rate = createRateLimiter({ perMinute: 60, burst: 5, clock: () => now });
  rate.take("a", 4);
  assert.throws(() => rate.take("a", 3), limited("rate-limited", 2000));
  now += 2000;
  rate.take("a", 3);
});

test("a clock that goes backwards refills nothing and breaks nothing", () => {
  let now = 10_000;
  const rate = createRateLimiter({ perMinute: 60, burst: 1, clock: () => now });
  rate.take("a");
  now = 0;
  assert.throws(() => rate.take("a"), RateLimited);
  now = 11_000;
  rate.take("a");
});

test("idle buckets that refilled are forgotten", () => {
  let now = 0;
  const rate = createRateLimiter({ perMinute: 60, burst: 2, clock: () => now });
  for (let i = 0; i < 100; i++) rate.take(`caller-${i}`);
  assert.equal(rate.size(), 100);
  now += 2000; // all refilled
  rate.take("late");
  assert.equal(rate.size(), 1);
});

test("the bucket count is capped; the least recently used is evicted", () => {
  let now = 0;
  const rate = createRateLimiter({ perMinute: 1, burst: 1, clock: () => now, maxBuckets: 10 });
  for (let i = 0; i < 10_000; i++) {
    try {
      rate.take(`caller-${i % 50}`);
    } catch (e) {
      assert.ok(e instanceof RateLimited);
    }
    assert.ok(rate.size() <= 10);
    now += 1;
  }
  // A recently used caller keeps its (empty) bucket.
  assert.throws(() => rate.take("caller-49"), RateLimited);
});

const BAD_OPTIONS: [string, object][] = [
  ["zero rate", { perMinute: 0, burst: 1 }],
  ["negative rate", { perMinute: -1, burst: 1 }],
  ["NaN rate", { perMinute: NaN, burst: 1 }],
  ["infinite rate", { perMinute: Infinity, burst: 1 }],
  ["zero burst", { perMinute: 1, burst: 0 }],
  ["fractional burst", { perMinute: 1, burst: 1.5 }],
  ["string burst", { perMinute: 1, burst: "10" }],
  ["zero cap", { perMinute: 1, burst: 1, maxBuckets: 0 }],
];

for (const [name, options] of BAD_OPTIONS) {
  test(`createRateLimiter refuses ${name}`, () => {
    assert.throws(
      () => createRateLimiter(options as Parameters<typeof createRateLimiter>[0]),
      RangeError,
    );
  });
}

const BAD_TAKES: [string, unknown, unknown, ErrorConstructor][] = [
  ["a zero cost", "a", 0, RangeError],
  ["a negative cost", "a", -1, RangeError],
  ["a fractional cost", "a", 0.5, RangeError],
  ["a cost above burst", "a", 6, RangeError],
  ["a NaN cost", "a", NaN, RangeError],
  ["a non-string caller", 42, 1, TypeError],
];

for (const [name, caller, cost, type] of BAD_TAKES) {
  test(`take refuses ${name}`, () => {
    const rate = createRateLimiter({ perMinute: 60, burst: 5, clock: () => 0 });
    assert.throws(() => rate.take(caller as string, cost as number), type);
    assert.equal(rate.size(), 0);
  });
}

test("sessions: at most maxPerCaller per caller and maxConcurrent in all", () => {
  const s = createSessionLimiter({ maxConcurrent: 3, maxPerCaller: 2, retryAfterMs: 500 });
  const a1 = s.acquire("a");
  s.acquire("a");
  assert.throws(() => s.acquire("a"), limited("too-many-caller-sessions", 500));
  s.acquire("b");
  assert.throws(() => s.acquire("c"), limited("too-many-sessions", 500));
  assert.equal(s.active(), 3);
  assert.equal(s.active("a"), 2);
  a1();
  assert.equal(s.active("a"), 1);
  s.acquire("c");
  assert.equal(s.active(), 3);
});

test("sessions: release is idempotent and forgets idle callers", () => {
  const s = createSessionLimiter({ maxConcurrent: 2 });
  const r = s.acquire("a");
  r();
  r();
  r();
  assert.equal(s.active(), 0);
  assert.equal(s.active("a"), 0);
  // A double release did not create spare capacity.
  s.acquire("a");
  s.acquire("b");
  assert.throws(() => s.acquire("c"), RateLimited);
});

test("sessions: the default per-caller maximum is 2", () => {
  const s = createSessionLimiter({ maxConcurrent: 10 });
  s.acquire("a");
  s.acquire("a");
  assert.throws(() => s.acquire("a"), limited("too-many-caller-sessions", 1000));
});

test("sessions: a thousand callers' sessions are all released", () => {
  const s = createSessionLimiter({ maxConcurrent: 2000 });
  const releases = Array.from({ length: 1000 }, (_, i) => s.acquire(`c${i}`));
  assert.equal(s.active(), 1000);
  releases.forEach((r) => r());
  assert.equal(s.active(), 0);
});

for (
  const [name, options] of [
    ["zero maximum", { maxConcurrent: 0 }],
    ["fractional maximum", { maxConcurrent: 1.5 }],
    ["zero per caller", { maxConcurrent: 1, maxPerCaller: 0 }],
    ["zero retry hint", { maxConcurrent: 1, retryAfterMs: 0 }],
  ] as const
) {
  test(`createSessionLimiter refuses ${name}`, () => {
    assert.throws(() => createSessionLimiter(options), RangeError);
  });
}
