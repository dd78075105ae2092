import { test } from "node:test";
import assert from "node:assert/strict";
import {
  bigintBackend,
  bigintUniformBackend,
  getModPowBackends,
  modPow,
  modPowSecret,
  setModPowBackends,
  setModPowCounter,
} from "./modpow.ts";
import { modInv } from "./bigint.ts";
import { randomBits } from "./random.ts";
import { createNodeCryptoBackend } from "../../platform/node_crypto.ts";
import { detectRuntime } from "../../platform/mod.ts";

// Reference: plain square-and-multiply, written independently of the backends.
function reference(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

const backends = [
  bigintBackend,
  bigintUniformBackend,
  createNodeCryptoBackend(`node-crypto (${detectRuntime()})`, false),
];

test("every modpow backend agrees with square-and-multiply, edge bases included", () => {
  for (const bits of [64, 521, 1536, 3072]) {
    const m = randomBits(bits) | 1n | (1n << BigInt(bits - 1));
    const e = randomBits(bits);
    const b = randomBits(bits - 1);
    const want = reference(b, e, m);
    for (const be of backends) {
      assert.equal(be.modPow(b, e, m), want, `${be.name} at ${bits} bits`);
      assert.equal(be.modPow(0n, e, m), 0n, be.name);
      assert.equal(be.modPow(1n, e, m), 1n, be.name);
      assert.equal(be.modPow(m - 1n, 3n, m), m - 1n, be.name);
      assert.equal(be.modPow(m - 1n, 2n, m), 1n, be.name);
      assert.equal(be.modPow(b, 1n, m), b, be.name);
    }
  }
});

test("node-crypto backend answers results equal to 1 and m-1 (OpenSSL refuses those as DH secrets)", () => {
  const p = 1000000000000000003n; // prime: 2^((p-1)/2) = +-1
  for (const be of backends) {
    assert.equal(be.modPow(2n, p - 1n, p), 1n, be.name);
    const half = be.modPow(2n, (p - 1n) / 2n, p);
    assert.ok(half === 1n || half === p - 1n, be.name);
  }
});

test("modPow handles negative exponents, even moduli and modulus 1", () => {
  const m = 1000003n;
  assert.equal(modPow(5n, -3n, m), reference(modInv(5n, m), 3n, m));
  assert.equal(modPow(3n, 5n, 16n), 243n % 16n);
  assert.equal(modPow(3n, 5n, 1n), 0n);
  assert.equal(modPow(-2n, 3n, 11n), (11n - 8n) % 11n);
  assert.throws(() => modPow(3n, -1n, 9n), RangeError);
  assert.equal(modPowSecret(5n, -3n, m), reference(modInv(5n, m), 3n, m));
  assert.equal(modPowSecret(3n, 2n, 9n), 0n, "non-unit base, positive exponent");
  assert.throws(() => modPowSecret(3n, -1n, 9n), RangeError);
  assert.throws(() => modPow(3n, 1n, 0n), RangeError);
});

test("secret and public slots can hold different backends; the counter counts by modulus size", () => {
  const prev = setModPowBackends({ public: bigintBackend, secret: bigintUniformBackend });
  try {
    assert.equal(getModPowBackends().secret.name, "bigint-fixed-window");
    const counts = new Map<string, number>();
    setModPowCounter({ counts });
    modPow(3n, 100n, (1n << 61n) - 1n);
    modPowSecret(3n, 100n, (1n << 61n) - 1n);
    setModPowCounter(null);
    assert.deepEqual([...counts.entries()].sort(), [["public:64", 1], ["secret:64", 1]]);
  } finally {
    setModPowBackends(prev);
  }
});
