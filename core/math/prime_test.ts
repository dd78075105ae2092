import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { checkPrimeSync } from "node:crypto";
import {
  generateSafePrimeSync,
  hasSmallFactor,
  isDefinitelyComposite,
  isProbablePrime,
  isSafePrime,
  millerRabin,
} from "./prime.ts";
import { bitLength, toBytesBE } from "./bigint.ts";
import { FIXTURE_SAFE_PRIMES } from "../../testing/fixtures/keys.ts";
import { SLOW } from "../../testing/setup.ts";
import { platformSafePrime } from "../../platform/mod.ts";

function opensslSaysPrime(n: bigint): boolean | null {
  const r = spawnSync("openssl", ["prime", n.toString(10)], { encoding: "utf8" });
  if (r.error) return null; // openssl CLI missing
  return /is prime/.test(r.stdout) && !/is not prime/.test(r.stdout);
}

test("primality agrees with known primes, Carmichael numbers and strong pseudoprimes", () => {
  const primes = [2n, 3n, 65537n, (1n << 127n) - 1n, (1n << 521n) - 1n];
  // 561, 41041 are Carmichael; 3215031751 is a strong pseudoprime to bases 2, 3, 5, 7.
  const composites = [1n, 0n, 4n, 561n, 41041n, 3215031751n, (1n << 127n) + 1n, (1n << 128n) - 1n];
  for (const p of primes) assert.equal(isProbablePrime(p), true, `${p}`);
  for (const c of composites) assert.equal(isProbablePrime(c), false, `${c}`);
  assert.equal(millerRabin(3215031751n, 1), false, "base 2 round rejects it at once");
});

test("hasSmallFactor and isDefinitelyComposite catch even, small-factor and Fermat composites", () => {
  assert.equal(hasSmallFactor(65537n * 65539n), false); // both above 2^16
  assert.equal(hasSmallFactor(3n * ((1n << 127n) - 1n)), true);
  assert.equal(isDefinitelyComposite((1n << 127n) - 1n), false);
  assert.equal(isDefinitelyComposite(((1n << 127n) - 1n) * ((1n << 61n) - 1n)), true);
  assert.equal(isDefinitelyComposite(1n << 100n), true);
});

test("fixture safe primes are 1536-bit safe primes according to our test and to OpenSSL", () => {
  for (const p of FIXTURE_SAFE_PRIMES) {
    assert.equal(bitLength(p), 1536);
    assert.equal(p % 4n, 3n);
    assert.equal(isSafePrime(p), true);
    // node:crypto checkPrime is OpenSSL's BN_check_prime: an implementation we did not write.
    assert.equal(checkPrimeSync(toBytesBE(p), { checks: 32 }), true);
    assert.equal(checkPrimeSync(toBytesBE((p - 1n) / 2n), { checks: 32 }), true);
  }
  const cli = opensslSaysPrime(FIXTURE_SAFE_PRIMES[0]);
  if (cli !== null) assert.equal(cli, true);
});

test("the pure safe-prime search finds 256-bit safe primes that OpenSSL confirms", () => {
  for (let i = 0; i < 3; i++) {
    const p = generateSafePrimeSync(256);
    assert.equal(bitLength(p), 256);
    assert.equal(p >> 254n, 3n, "top two bits set");
    assert.equal(p % 4n, 3n);
    assert.equal(checkPrimeSync(toBytesBE(p), { checks: 32 }), true);
    assert.equal(checkPrimeSync(toBytesBE((p - 1n) / 2n), { checks: 32 }), true);
  }
});

test("slow: 1536-bit safe primes from the pure search and from the platform, checked by OpenSSL", {
  skip: !SLOW,
}, async () => {
  for (const p of [generateSafePrimeSync(1536), await platformSafePrime(1536)]) {
    assert.equal(bitLength(p), 1536);
    assert.equal(checkPrimeSync(toBytesBE(p), { checks: 64 }), true);
    assert.equal(checkPrimeSync(toBytesBE((p - 1n) / 2n), { checks: 64 }), true);
    const cli = opensslSaysPrime(p);
    if (cli !== null) assert.equal(cli, true);
  }
});
