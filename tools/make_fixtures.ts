// Regenerates testing/fixtures/safe_primes.json: pre-generated 1536-bit safe primes for the
// fast test tier, made by this project's own platform code (OpenSSL under Node) and each
// re-checked by core's own safe-prime test. Run: `deno task fixtures` (uses Node).
import { writeFileSync } from "node:fs";
import { toHexInt } from "../core/bytes.ts";
import { bitLength, isSafePrime } from "../core/math/mod.ts";
import { installPlatformBackends, platformSafePrime } from "../platform/mod.ts";

installPlatformBackends();
const count = Number(process.argv[2] ?? 8);
const bits = 1536;
const primes: string[] = [];
while (primes.length < count) {
  const batch = await Promise.all([platformSafePrime(bits), platformSafePrime(bits)]);
  for (const p of batch) {
    if (bitLength(p) !== bits || !isSafePrime(p)) {
      throw new Error("generated value is not a safe prime");
    }
    if (primes.length < count) primes.push(toHexInt(p));
  }
  console.error(`fixtures: ${primes.length}/${count}`);
}
const out = {
  note:
    "Test fixtures only: 1536-bit safe primes made by tools/make_fixtures.ts. Never use for keys.",
  bits,
  safePrimes: primes,
};
writeFileSync(
  new URL("../testing/fixtures/safe_primes.json", import.meta.url),
  JSON.stringify(out, null, 2) + "\n",
);
