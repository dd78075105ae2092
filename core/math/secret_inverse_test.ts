/**
 * Inverses modulo secret primes without extended Euclid (core/math/modpow.ts): Fermat modulo a
 * prime, Fermat modulo p' lifted to p - 1 for a safe prime, and 4^-1 by arithmetic; the Paillier
 * key, Pi-mod's prover and CRT exponentiation use them on the real (fixture) safe primes.
 * @module
 */
import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { FIXTURE_SAFE_PRIMES, fixturePaillier } from "../../testing/fixtures/keys.ts";
import { modInv } from "./bigint.ts";
import {
  inverseOfFour,
  invertModSafePrimeOrder,
  invertModSecretPrime,
  modPow,
  type ModPowCounter,
  setModPowCounter,
} from "./modpow.ts";
import { randomBelow } from "./random.ts";

/** Runs `f` counting exponentiations and inversions. */
function counted(f: () => void): ModPowCounter {
  const c: ModPowCounter = { counts: new Map(), inversions: new Map() };
  setModPowCounter(c);
  try {
    f();
  } finally {
    setModPowCounter(null);
  }
  return c;
}

test("invertModSecretPrime agrees with Euclid on the fixture safe primes and small primes", () => {
  for (const p of [3n, 5n, 1000003n, ...FIXTURE_SAFE_PRIMES.slice(0, 2)]) {
    for (let k = 0; k < 4; k++) {
      const a = randomBelow(p - 1n) + 1n;
      assert.equal(invertModSecretPrime(a, p), modInv(a, p));
      assert.equal(invertModSecretPrime(a - p * 5n, p), modInv(a, p), "reduces negative a");
    }
  }
});

test("invertModSecretPrime refuses 0 mod p, an even modulus and a composite one", () => {
  assert.throws(() => invertModSecretPrime(0n, 1000003n), RangeError);
  assert.throws(() => invertModSecretPrime(1000003n * 7n, 1000003n), RangeError);
  assert.throws(() => invertModSecretPrime(3n, 1000004n), RangeError);
  // 15 is composite: 2^13 * 2 = 4 mod 15, so the check catches it. (For a Carmichael number
  // such as 561 Fermat still gives the inverse of a unit: whatever is returned is checked.)
  assert.throws(() => invertModSecretPrime(2n, 15n), RangeError);
  assert.equal(invertModSecretPrime(2n, 561n), modInv(2n, 561n));
});

test("invertModSafePrimeOrder: the Fermat path on safe primes (no Euclid), Euclid on others", () => {
  const safe = FIXTURE_SAFE_PRIMES[0];
  const c = counted(() => {
    for (let k = 0; k < 4; k++) {
      const a = (randomBelow(safe) | 1n) % (safe - 1n);
      if (a < 3n) continue;
      const inv = invertModSafePrimeOrder(a, safe);
      assert.equal((a * inv) % (safe - 1n), 1n);
      assert.equal(inv, modInv(a, safe - 1n));
    }
  });
  assert.equal(c.inversions!.size, 0, "no Euclid on the secret modulus");
  assert.ok([...c.counts.keys()].some((k) => k.startsWith("secret:")), "Fermat on the secret slot");
  // 23 = 2 * 11 + 1 is safe; 13 = 2 * 6 + 1 and 29 = 2 * 14 + 1 are not.
  assert.equal(invertModSafePrimeOrder(5n, 23n), modInv(5n, 22n));
  const d = counted(() => {
    assert.equal(invertModSafePrimeOrder(5n, 13n), modInv(5n, 12n));
    assert.equal(invertModSafePrimeOrder(3n, 29n), modInv(3n, 28n));
  });
  assert.equal([...d.inversions!.values()].reduce((x, y) => x + y, 0), 2, "counted fallback");
  assert.throws(() => invertModSafePrimeOrder(11n, 23n), RangeError, "11 | 22");
});

test("inverseOfFour is 4^-1 for odd moduli and refuses even ones", () => {
  for (const m of [3n, 5n, 11n, 1000003n, FIXTURE_SAFE_PRIMES[1] >> 1n]) {
    assert.equal((inverseOfFour(m) * 4n) % m, 1n);
  }
  assert.throws(() => inverseOfFour(12n), RangeError);
  assert.throws(() => inverseOfFour(1n), RangeError);
});

test("a Paillier key on safe primes takes no Euclid on its secrets; recoverNonce inverts encryption", () => {
  let key!: ReturnType<typeof fixturePaillier>;
  const c = counted(() => {
    key = fixturePaillier(0);
    const [ct, rho] = key.encrypt(12345n);
    assert.equal(key.recoverNonce(ct), rho);
    assert.equal(key.decrypt(ct), 12345n);
  });
  assert.equal(c.inversions!.get("euclid-secret:1536") ?? 0, 0);
  // The reference: the N-th root with the exponent by Euclid on phi (test only).
  const [ct, rho] = key.encrypt(-7n);
  assert.equal(modPow(ct % key.N, modInv(key.N, key.phi), key.N), rho);
  assert.equal(key.recoverNonce(ct), rho);
});

test("the secret-key code paths do not import the variable-time modInv", () => {
  for (const file of ["../paillier.ts", "../zk/pi_mod.ts", "../zk/_crt_pow.ts"]) {
    const src = readFileSync(new URL(file, import.meta.url), "utf8");
    assert.doesNotMatch(src, /\bmodInv\b/, file);
  }
});
