import { test } from "node:test";
import assert from "node:assert/strict";
import {
  bitLength,
  crt2,
  egcd,
  fromBytesBE,
  gcd,
  isqrt,
  isUnit,
  jacobi,
  mod,
  modInv,
  toBytesBE,
} from "./bigint.ts";

test("bitLength counts bits of the magnitude", () => {
  assert.deepEqual([0n, 1n, 2n, 255n, 256n, -256n].map(bitLength), [0, 1, 2, 8, 9, 9]);
  assert.equal(bitLength(1n << 3071n), 3072);
});

test("mod, gcd, egcd and modInv agree on random values", () => {
  assert.equal(mod(-7n, 5n), 3n);
  assert.equal(gcd(-12n, 18n), 6n);
  const [g, x, y] = egcd(240n, 46n);
  assert.equal(g, 2n);
  assert.equal(240n * x + 46n * y, 2n);
  const m = (1n << 127n) - 1n; // prime
  for (const a of [2n, 3n, m - 1n, 123456789n]) assert.equal((a * modInv(a, m)) % m, 1n);
});

test("modInv refuses a non-invertible value and a modulus below 2", () => {
  assert.throws(() => modInv(6n, 9n), RangeError);
  assert.throws(() => modInv(0n, 7n), RangeError);
  assert.throws(() => modInv(1n, 1n), RangeError);
});

test("isUnit is membership in Z*_m", () => {
  assert.equal(isUnit(0n, 15n), false);
  assert.equal(isUnit(3n, 15n), false);
  assert.equal(isUnit(15n, 15n), false);
  assert.equal(isUnit(16n, 15n), false);
  assert.equal(isUnit(2n, 15n), true);
});

test("jacobi matches Euler's criterion for a prime and the product rule for a composite", () => {
  const p = 1000003n;
  const q = 999983n;
  for (const a of [2n, 3n, 5n, 10n, 12345n, p - 1n]) {
    // Euler: a^((p-1)/2) mod p is 1 or p-1.
    let r = 1n, b = a % p, e = (p - 1n) / 2n;
    while (e > 0n) {
      if (e & 1n) r = (r * b) % p;
      b = (b * b) % p;
      e >>= 1n;
    }
    assert.equal(jacobi(a, p), r === 1n ? 1 : -1);
    assert.equal(jacobi(a, p * q), jacobi(a, p) * jacobi(a, q));
  }
  assert.equal(jacobi(p, p * q), 0);
  assert.throws(() => jacobi(3n, 10n), RangeError);
});

test("crt2 recombines residues", () => {
  const p = 1000003n, q = 999983n;
  const x = 123456789012n;
  assert.equal(crt2(x % p, p, x % q, q, modInv(p, q)), x);
});

test("isqrt is the floor square root", () => {
  for (const n of [0n, 1n, 2n, 3n, 4n, 99n, 100n, (1n << 200n) + 12345n]) {
    const r = isqrt(n);
    assert.ok(r * r <= n && (r + 1n) * (r + 1n) > n);
  }
});

test("bytes round trips", () => {
  const x = 0x0102030405060708090an;
  assert.equal(fromBytesBE(toBytesBE(x)), x);
  assert.deepEqual(toBytesBE(1n, 4), new Uint8Array([0, 0, 0, 1]));
  assert.throws(() => toBytesBE(256n, 1), RangeError);
});
