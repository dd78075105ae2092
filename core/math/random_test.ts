import { test } from "node:test";
import assert from "node:assert/strict";
import { gcd } from "./bigint.ts";
import {
  randomBelow,
  randomBits,
  randomInRange,
  randomSigned,
  type RandomSource,
  randomUnit,
} from "./random.ts";

test("randomBelow stays below the bound and covers it (no modulo bias on a small range)", () => {
  // Bound 3 out of 2 bits: a biased "x mod 3" would give 0 twice as often.
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[Number(randomBelow(3n))]++;
  for (const c of counts) assert.ok(c > 850 && c < 1150, `counts ${counts}`);
});

test("randomBelow rejects rather than reduces: a source of all-ones bytes is never accepted", () => {
  let calls = 0;
  const ones: RandomSource = (out) => {
    calls++;
    out.fill(calls < 5 ? 0xff : 0x01);
  };
  // 0xff.. > 200 must be rejected four times; then 1 is accepted.
  assert.equal(randomBelow(200n, ones), 1n);
  assert.equal(calls, 5);
});

test("randomBits, randomInRange and randomSigned respect their intervals", () => {
  for (let i = 0; i < 200; i++) {
    assert.ok(randomBits(13) < 1n << 13n);
    const r = randomInRange(-5n, 5n);
    assert.ok(r >= -5n && r <= 5n);
    const s = randomSigned(8);
    assert.ok(s >= -256n && s <= 256n);
  }
  assert.throws(() => randomBelow(0n), RangeError);
  assert.throws(() => randomInRange(2n, 1n), RangeError);
});

test("randomUnit returns units of Z*_n", () => {
  const n = 3n * 5n * 7n * 11n;
  for (let i = 0; i < 200; i++) {
    const u = randomUnit(n);
    assert.ok(u > 0n && u < n && gcd(u, n) === 1n);
  }
});
