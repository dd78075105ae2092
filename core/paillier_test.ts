import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { fixturePaillier } from "../testing/fixtures/keys.ts";
import { isValidCiphertext, PaillierPublicKey, RandomizerPool } from "./paillier.ts";
import { randomBelow, randomSigned } from "./math/mod.ts";

const sk = fixturePaillier(0);
const pk = sk.publicKey;

test("paillier N of two fixture primes has 3072 bits and is a Blum integer", () => {
  assert.equal(pk.bits, 3072);
  assert.equal(sk.p % 4n, 3n);
  assert.equal(sk.q % 4n, 3n);
});

test("paillier decrypts what the public key encrypts, signed plaintexts included", () => {
  for (const m of [0n, 1n, -1n, randomSigned(1000), pk.N >> 1n, -(pk.N >> 1n) + 1n]) {
    const [c] = pk.encrypt(m);
    assert.equal(sk.decrypt(c), m);
  }
});

test("paillier owner-side CRT encryption equals public-key encryption", () => {
  const m = randomBelow(pk.N);
  const [, rho] = pk.encrypt(0n);
  assert.equal(sk.encryptWithNonce(m, rho), pk.encryptWithNonce(m, rho));
});

test("paillier homomorphisms: add and scalar multiply", () => {
  const a = randomSigned(300), b = randomSigned(300), k = randomSigned(256);
  const [ca] = pk.encrypt(a);
  const [cb] = pk.encrypt(b);
  assert.equal(sk.decrypt(pk.add(ca, cb)), a + b);
  assert.equal(sk.decrypt(pk.mul(ca, k)), a * k);
  assert.equal(sk.decrypt(pk.mulPublic(ca, k)), a * k);
});

test("paillier recovers the nonce of a ciphertext", () => {
  const [c, rho] = pk.encrypt(12345n);
  assert.equal(sk.recoverNonce(c), rho);
});

test("paillier randomizer pool hands out valid, distinct randomizers", () => {
  const pool = new RandomizerPool(sk);
  pool.fill(2);
  const [r1, r1N] = pool.take();
  const [r2, r2N] = pool.take();
  assert.notEqual(r1, r2);
  assert.equal(pk.encryptWithRandomizer(7n, r1N), pk.encryptWithNonce(7n, r1));
  assert.equal(pk.encryptWithRandomizer(7n, r2N), pk.encryptWithNonce(7n, r2));
  assert.equal(pool.size, 0);
});

test("paillier ciphertext validity rejects 0, N, non-units and N^2", () => {
  const N = pk.N;
  for (const c of [0n, N, 2n * N, N * N, N * N + 1n, -1n]) {
    assert.equal(isValidCiphertext(c, N), false);
  }
  assert.equal(isValidCiphertext(1n, N), true);
  assert.throws(() => new PaillierPublicKey(14n), RangeError);
});
