import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { fixturePaillier } from "../testing/fixtures/keys.ts";
import {
  getRandomizerSource,
  inlineRandomizers,
  isValidCiphertext,
  PaillierPublicKey,
  RandomizerPool,
  RandomizerRegistry,
  setRandomizerSource,
} from "./paillier.ts";
import { modPow, randomBelow, randomSigned, randomUnit, webCryptoRandom } from "./math/mod.ts";

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

test("paillier randomizer pool hands out valid, distinct randomizers, each once (counted)", () => {
  const pool = new RandomizerPool(sk);
  pool.fill(2);
  const [r1, r1N] = pool.take();
  const [r2, r2N] = pool.take();
  assert.notEqual(r1, r2);
  assert.equal(pk.encryptWithRandomizer(7n, r1N), pk.encryptWithNonce(7n, r1));
  assert.equal(pk.encryptWithRandomizer(7n, r2N), pk.encryptWithNonce(7n, r2));
  assert.equal(pool.size, 0);
  // Empty: computed on demand, counted apart; a pool of the public key makes the same values.
  const [r3, r3N] = pool.take();
  assert.equal(r3N, pk.randomizer(r3));
  assert.deepEqual(pool.stats(), { ready: 0, made: 2, fromPool: 2, inline: 1 });
  const pub = new RandomizerPool(pk);
  assert.equal(pub.owned, false);
  pub.useOwnerKey(sk);
  assert.equal(pub.owned, true);
  assert.throws(() => pub.useOwnerKey(fixturePaillier(1)), RangeError);
});

test("randomizer registry: a pool per modulus in use, filled to its target, no entry handed out twice", () => {
  const peer = fixturePaillier(1).publicKey;
  const reg = new RandomizerRegistry({ own: 3, peer: 2, moduli: 2 });
  assert.equal(reg.missing, 0, "no modulus in use yet: nothing to make");
  assert.equal(reg.refill(10), 0);
  const first = [reg.take(sk, webCryptoRandom), reg.take(peer, webCryptoRandom)];
  assert.deepEqual(reg.stats(), {
    moduli: 2,
    ready: 0,
    made: 0,
    fromPool: 0,
    inline: 2,
    missing: 5,
  });
  assert.equal(reg.refill(2), 2, "a few at a time");
  assert.equal(reg.refill(100), 3, "up to the targets: own 3, peer 2");
  assert.equal(reg.missing, 0);
  // Every entry handed out once: 3 own and 2 peer from the pools, then computed on demand.
  const seen = new Set(first.map(([rho]) => rho));
  const handed = [...first];
  for (let k = 0; k < 4; k++) handed.push(reg.take(sk, webCryptoRandom));
  for (let k = 0; k < 3; k++) handed.push(reg.take(peer, webCryptoRandom));
  for (const [rho] of handed) seen.add(rho);
  assert.equal(seen.size, handed.length, "never the same randomizer twice");
  for (const [rho, rhoN] of handed.slice(2, 6)) assert.equal(rhoN, pk.randomizer(rho));
  for (const [rho, rhoN] of handed.slice(6)) assert.equal(rhoN, peer.randomizer(rho));
  const s = reg.stats();
  assert.equal(s.fromPool, 5);
  assert.equal(s.inline, 2 + 2);
  assert.equal(s.made, 5);
  assert.equal(s.fromPool + s.inline, handed.length);
  // A third modulus drops the least recently used pool (moduli: 2), its counters kept.
  reg.refill(100);
  reg.take(fixturePaillier(2).publicKey, webCryptoRandom);
  assert.equal(reg.stats().moduli, 2);
  assert.equal(reg.stats().made, 10);
  reg.clear();
  assert.equal(reg.stats().ready, 0);
  assert.throws(() => new RandomizerRegistry({ moduli: 0 }), RangeError);
  assert.throws(() => new RandomizerRegistry({ own: -1 }), RangeError);
});

test("randomizer source of the thread: none installed means computed on the spot", () => {
  assert.equal(getRandomizerSource(), inlineRandomizers);
  const reg = new RandomizerRegistry();
  const prev = setRandomizerSource(reg);
  try {
    assert.equal(getRandomizerSource(), reg);
  } finally {
    setRandomizerSource(prev);
  }
  assert.equal(getRandomizerSource(), inlineRandomizers);
});

test("powProduct by CRT equals the product modulo N and N^2 on random and edge inputs", () => {
  const { N, N2 } = pk;
  const plain = (terms: [bigint, bigint][], m: bigint) =>
    terms.reduce((acc, [b, e]) => (acc * modPow(b, e, m)) % m, 1n);
  const phiP2 = sk.p * (sk.p - 1n);
  const exps = [
    0n,
    1n,
    2n,
    randomBelow(1n << 128n),
    randomBelow(1n << 3072n),
    randomBelow(1n << 4000n),
    N,
    sk.p - 1n,
    sk.q - 1n,
    phiP2,
    phiP2 * 3n + 1n,
    sk.phi,
  ];
  for (const [M, modulus] of [[N, "N"], [N2, "N2"]] as const) {
    const bases = [1n, M - 1n, 2n, randomUnit(N, webCryptoRandom), randomUnit(N, webCryptoRandom)];
    for (const e of exps) {
      for (const b of bases) {
        assert.equal(sk.powProduct([[b, e]], modulus), plain([[b, e]], M), `${modulus} ${e}`);
      }
    }
    const terms: [bigint, bigint][] = bases.map((b, k) => [b, exps[(k * 5) % exps.length]]);
    assert.equal(sk.powProduct(terms, modulus), plain(terms, M));
    assert.equal(sk.powProduct([], modulus), 1n);
    assert.throws(() => sk.powProduct([[2n, -1n]], modulus), RangeError);
  }
});

test("paillier ciphertext validity rejects 0, N, non-units and N^2", () => {
  const N = pk.N;
  for (const c of [0n, N, 2n * N, N * N, N * N + 1n, -1n]) {
    assert.equal(isValidCiphertext(c, N), false);
  }
  assert.equal(isValidCiphertext(1n, N), true);
  assert.throws(() => new PaillierPublicKey(14n), RangeError);
});
