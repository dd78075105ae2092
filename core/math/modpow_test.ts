import { test } from "node:test";
import assert from "node:assert/strict";
import {
  bigintBackend,
  bigintUniformBackend,
  clearModPowCache,
  getModPowBackends,
  invertBlinded,
  modPow,
  modPow2,
  modPow2Secret,
  type ModPowCounter,
  modPowSecret,
  setModPowBackends,
  setModPowCounter,
} from "./modpow.ts";
import { gcd, modInv } from "./bigint.ts";
import { randomBits, type RandomSource, webCryptoRandom } from "./random.ts";
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

/** The reference for any sign of e: (b^-1)^|e| for e < 0. */
function referenceSigned(b: bigint, e: bigint, m: bigint): bigint {
  b = ((b % m) + m) % m;
  return e < 0n ? reference(modInv(b, m), -e, m) : reference(b, e, m);
}

/** A random source that counts the bytes it hands out. */
function countingRng(): { rng: RandomSource; bytes: () => number } {
  let n = 0;
  return {
    rng: (out) => {
      n += out.length;
      webCryptoRandom(out);
    },
    bytes: () => n,
  };
}

test("modPowSecret, modPow2Secret, modPow and modPow2 are bit-identical to the reference on random and edge inputs, for every secret backend", () => {
  const p = (1n << 127n) - 1n; // prime
  const odd = randomBits(3072) | 1n | (1n << 3071n);
  const square = (randomBits(1536) | 1n | (1n << 1535n)) ** 2n;
  const moduli = [1000003n, p, odd, square, 1n << 64n];
  const prev = getModPowBackends();
  try {
    for (const m of moduli) {
      const bits = m.toString(2).length;
      const unit = () => {
        let u: bigint;
        do u = randomBits(bits - 1) + 2n; while (gcd(u, m) !== 1n);
        return u;
      };
      const u = unit();
      const e = randomBits(Math.min(bits, 320));
      for (const b of [u, 1n, m - 1n, -u, m + u]) {
        for (const x of [0n, 1n, 2n, -1n, -2n, e, -e]) {
          const want = referenceSigned(b, x, m);
          const want2 = (want * referenceSigned(u, -x, m)) % m;
          for (const secret of backends) {
            setModPowBackends({ secret });
            const what = `${secret.name}, ${bits}-bit m, b ${b < 0n ? "<" : ">="} 0, e = ${x}`;
            assert.equal(modPowSecret(b, x, m), want, what);
            assert.equal(modPow(b, x, m), want, what);
            assert.equal(modPow2Secret(b, x, u, -x, m), want2, what);
            assert.equal(modPow2(b, x, u, -x, m), want2, what);
          }
        }
      }
      // Base 0 (not a unit): positive exponents work, negative ones are refused.
      for (const secret of backends) {
        setModPowBackends({ secret });
        assert.equal(modPowSecret(0n, e + 1n, m), 0n);
        assert.equal(modPowSecret(0n, 0n, m), 1n);
        assert.throws(() => modPowSecret(0n, -1n, m), RangeError);
        assert.throws(() => modPow2Secret(0n, -1n, u, 1n, m), RangeError);
      }
    }
  } finally {
    setModPowBackends(prev);
  }
});

test("invertBlinded inverts through a fresh random blinding factor and refuses non-units", () => {
  const m = randomBits(3072) | 1n | (1n << 3071n);
  let b: bigint;
  do b = randomBits(3071); while (gcd(b, m) !== 1n);
  const { rng, bytes } = countingRng();
  assert.equal(invertBlinded(b, m, rng), modInv(b, m));
  assert.ok(bytes() >= 3072 / 8, "a 3072-bit blinding factor was drawn");
  assert.equal(invertBlinded(b, m), modInv(b, m));
  assert.equal(invertBlinded(1n, 2n), 1n);
  // 9 = 3^2: the blinding factor is often a non-unit there, and is drawn again.
  for (let i = 0; i < 50; i++) assert.equal(invertBlinded(7n, 9n), 4n);
  assert.throws(() => invertBlinded(3n, 9n), RangeError);
  assert.throws(() => invertBlinded(0n, m), RangeError);
  assert.throws(() => invertBlinded(1n, 1n), RangeError);
});

test("the secret slot takes no inverse for e >= 0 and only a blinded one for e < 0; public bases' inverses are cached", () => {
  const m = randomBits(3072) | 1n | (1n << 3071n);
  const unit = () => {
    let u: bigint;
    do u = randomBits(3071); while (gcd(u, m) !== 1n);
    return u;
  };
  const [b, c] = [unit(), unit()];
  const e = randomBits(512);
  const counter: ModPowCounter = { counts: new Map(), inversions: new Map() };
  const { rng, bytes } = countingRng();
  clearModPowCache();
  setModPowCounter(counter);
  try {
    // Non-negative secret exponents: no Euclid at all, no randomness.
    modPowSecret(b, e, m, rng);
    modPowSecret(b, 0n, m, rng);
    assert.deepEqual([...counter.inversions!], []);
    assert.equal(bytes(), 0);
    // Negative: one blinded inverse, with a fresh blinding factor each time.
    modPowSecret(b, -e, m, rng);
    const first = bytes();
    assert.ok(first >= 3072 / 8);
    modPowSecret(b, -e, m, rng);
    assert.ok(bytes() >= first + 3072 / 8);
    assert.deepEqual([...counter.inversions!], [["blinded:3072", 2]]);
    // Public bases (ring-Pedersen s, t): inverted once, then served from the cache.
    counter.inversions!.clear();
    for (let i = 0; i < 3; i++) modPow2Secret(b, -e, c, -e, m);
    assert.deepEqual([...counter.inversions!].sort(), [["cached:3072", 4], ["public:3072", 2]]);
  } finally {
    setModPowCounter(null);
    clearModPowCache();
  }
});
