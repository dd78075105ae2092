/**
 * Child process of `openssl_ffi_test.ts`, run under Deno with the permissions a test chooses.
 *
 * - `info`: installs the platform backends and prints what was chosen as one JSON line (the
 *   fallback warning, if any, goes to stderr).
 * - `rss <calls>`: installs them, then runs `calls` exponentiations of each slot on fresh
 *   random inputs and prints the resident set size before and after (after a warm-up and a
 *   garbage collection: run with `--v8-flags=--expose-gc`), as one JSON line.
 * @module
 */
import { toHex } from "../core/bytes.ts";
import { installPlatformBackends, platformBackendsInfo } from "./mod.ts";

const [mode, arg] = Deno.args;
const be = installPlatformBackends();
if (mode === "info") {
  console.log(JSON.stringify(platformBackendsInfo()));
} else if (mode === "rss") {
  const calls = Number(arg);
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  // A 1024-bit odd modulus and 64-bit exponents: cheap calls, so the per-call allocations
  // (four BIGNUMs, a BN_CTX, the Montgomery context) dominate.
  const m = (1n << 1023n) + 1155n;
  const rand = (bytes: number) =>
    BigInt("0x" + toHex(crypto.getRandomValues(new Uint8Array(bytes))));
  const run = (n: number) => {
    let acc = 0n;
    for (let i = 0; i < n; i++) {
      const b = rand(127);
      const e = rand(8);
      acc ^= be.secret.modPow(b, e, m) ^ be.public.modPow(b, e, m);
    }
    return acc;
  };
  run(Math.min(10_000, calls));
  gc();
  const before = Deno.memoryUsage().rss;
  run(calls);
  gc();
  const after = Deno.memoryUsage().rss;
  console.log(JSON.stringify({ ...platformBackendsInfo(), calls, before, after }));
} else {
  throw new Error(`unknown mode ${mode}`);
}
