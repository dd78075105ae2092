/**
 * OpenSSL through Deno's FFI (`openssl_ffi.ts`) and the runtime's choice of backends
 * (`mod.ts`): the FFI backends agree with BigInt on random and edge inputs and refuse what
 * Montgomery cannot do; native memory does not grow over 100,000 calls; without the FFI
 * permission Deno falls back, with a warning, to the pure backends; a server refuses a
 * variable-time secret backend unless allowed. Node's backend: the prime moduli skip
 * `DH_check`'s primality test, and the context cache is sized to the accounts.
 *
 * The FFI tests run under Deno on a machine with libcrypto (CI: Debian's libssl3); under Node
 * they are skipped, and the Node backend's tests run instead.
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  bigintBackend,
  bigintUniformBackend,
  getModPowBackends,
  randomBits,
  setModPowBackends,
} from "../core/math/mod.ts";
import { FIXTURE_SAFE_PRIMES } from "../testing/fixtures/keys.ts";
import { DENO, ROOT } from "../testing/processes.ts";
import { openSslFfiBackends } from "./openssl_ffi.ts";
import { createNodeCryptoBackend, type NodeCryptoBackend } from "./node_crypto.ts";
import {
  detectRuntime,
  installPlatformBackends,
  requireConstantTimeSecret,
  sizeModPowCaches,
} from "./mod.ts";

const isDeno = detectRuntime() === "deno";
const ffi = isDeno ? openSslFfiBackends() : { reason: "not Deno" };
const ffiSkip = "reason" in ffi ? `OpenSSL through FFI unavailable: ${ffi.reason}` : false;

/** Plain square-and-multiply, written independently of every backend. */
function reference(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  for (const bit of e.toString(2)) {
    r = (r * r) % m;
    if (bit === "1") r = (r * b) % m;
  }
  return e === 0n ? 1n % m : r;
}

const [p, q] = FIXTURE_SAFE_PRIMES;
const N = p * q;

test(
  "the FFI backends agree with BigInt on random and edge inputs: 0, 1, N-1, exponents of 1 and 7000 bits, 1536- to 6144-bit moduli",
  {
    skip: ffiSkip,
  },
  () => {
    if ("reason" in ffi) return;
    const moduli: Array<[string, bigint]> = [
      ["3", 3n],
      ["2^127-1", (1n << 127n) - 1n],
      ["p (1536-bit prime)", p],
      ["p^2 (3072)", p * p],
      ["N (3072)", N],
      ["N^2 (6144)", N * N],
      ["random odd 4000", randomBits(4000) | 1n | (1n << 3999n)],
    ];
    for (const [name, m] of moduli) {
      const bits = m.toString(2).length;
      const b = randomBits(bits) % m;
      const bases = [0n, 1n, 2n, m - 1n, m - 2n, b];
      const exponents = [
        0n,
        1n,
        2n,
        m - 1n,
        randomBits(64),
        (1n << 6999n) | randomBits(6999), // 7000 bits
        1n << 4096n, // one bit set, many zero words
      ];
      for (const x of bases) {
        for (const e of exponents) {
          // Above 3072 bits the exponents longer than 3072 bits run once, on the random base.
          if (bits > 3072 && e.toString(2).length > 3072 && x !== b) continue;
          const want = reference(x, e, m);
          for (const be of [ffi.public, ffi.secret]) {
            assert.equal(
              be.modPow(x, e, m),
              want,
              `${be.name}: ${name}, e of ${e.toString(2).length} bits`,
            );
          }
        }
      }
      // Random inputs against the fast BigInt backend.
      for (let i = 0; i < 4; i++) {
        const x = randomBits(bits) % m;
        const e = randomBits(Math.min(bits, 3072));
        assert.equal(ffi.secret.modPow(x, e, m), bigintBackend.modPow(x, e, m), `secret: ${name}`);
        assert.equal(ffi.public.modPow(x, e, m), bigintBackend.modPow(x, e, m), `public: ${name}`);
      }
    }
    assert.equal(ffi.secret.constantTime, true);
    assert.equal(ffi.public.constantTime, false);
  },
);

test(
  "the FFI backends refuse even moduli, moduli below 3, bases out of range, negative exponents and non-bigints",
  {
    skip: ffiSkip,
  },
  () => {
    if ("reason" in ffi) return;
    for (const be of [ffi.public, ffi.secret]) {
      for (const m of [2n, 4n, 1n << 64n, N * 2n, (N * N) - 1n]) {
        assert.throws(
          () => be.modPow(3n, 5n, m),
          RangeError,
          `${be.name}: even modulus ${m.toString(2).length} bits`,
        );
      }
      for (const m of [1n, 0n, -7n]) assert.throws(() => be.modPow(0n, 5n, m), RangeError);
      assert.throws(() => be.modPow(N, 5n, N), RangeError, "base = modulus");
      assert.throws(() => be.modPow(-1n, 5n, N), RangeError, "negative base");
      assert.throws(() => be.modPow(2n, -1n, N), RangeError, "negative exponent");
      assert.throws(
        () => be.modPow(2n, 3n, (1n << 16384n) + 1n),
        RangeError,
        "modulus of 16385 bits",
      );
      assert.throws(() => be.modPow(2 as unknown as bigint, 3n, N), TypeError);
    }
  },
);

test("native memory does not grow over 100,000 FFI calls (RSS, in a child process)", {
  skip: ffiSkip,
}, () => {
  const r = spawnSync(DENO, [
    "run",
    "--allow-ffi",
    "--allow-read",
    "--allow-env",
    "--v8-flags=--expose-gc",
    "platform/_ffi_probe_test_helper.ts",
    "rss",
    "50000", // per slot: 100,000 calls
  ], { cwd: ROOT, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { secret: string; before: number; after: number };
  assert.equal(out.secret, "openssl-ffi-consttime");
  // Measured: +4-5 MB (one-time growth of the heaps), whether 50,000 or 100,000 calls per slot;
  // one BIGNUM of 1024 bits left behind per call adds ~18 MB, a BN_CTX ~200 MB.
  const grown = (out.after - out.before) / 2 ** 20;
  assert.ok(grown < 12, `RSS grew by ${grown.toFixed(1)} MiB over 100,000 calls`);
});

test(
  "Deno without --allow-ffi falls back to the pure backends and says so; with it, OpenSSL serves both slots",
  {
    skip: isDeno ? false : "Deno only",
  },
  () => {
    const probe = (flags: string[]) => {
      const r = spawnSync(DENO, ["run", ...flags, "platform/_ffi_probe_test_helper.ts", "info"], {
        cwd: ROOT,
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stderr);
      return { info: JSON.parse(r.stdout), stderr: r.stderr };
    };
    const denied = probe(["--allow-read", "--allow-env"]);
    assert.equal(denied.info.secret, "bigint-fixed-window");
    assert.equal(denied.info.public, "deno-node-crypto");
    assert.equal(denied.info.secretConstantTime, false);
    assert.equal(denied.info.fallback, "FFI not permitted");
    assert.match(
      denied.stderr,
      /OpenSSL through FFI is not available.*not constant-time.*--allow-ffi/,
    );
    const refused = probe(["--allow-read", "--allow-env", "--deny-ffi"]);
    assert.equal(refused.info.secret, "bigint-fixed-window");
    assert.match(refused.stderr, /OpenSSL through FFI is not available/);
    if (ffiSkip) return;
    const allowed = probe(["--allow-read", "--allow-env", "--allow-ffi"]);
    assert.equal(allowed.info.secret, "openssl-ffi-consttime");
    assert.equal(allowed.info.public, "openssl-ffi");
    assert.equal(allowed.info.secretConstantTime, true);
    assert.doesNotMatch(allowed.stderr, /not available/);
  },
);

test("requireConstantTimeSecret refuses a variable-time secret backend unless allowed", () => {
  const prev = setModPowBackends({ public: bigintBackend, secret: bigintUniformBackend });
  try {
    assert.throws(
      () => requireConstantTimeSecret(false),
      /"bigint-fixed-window" is not constant-time/,
    );
    assert.equal(requireConstantTimeSecret(true).secret, bigintUniformBackend);
    setModPowBackends({
      secret: { ...bigintUniformBackend, name: "ct-stand-in", constantTime: true },
    });
    assert.equal(requireConstantTimeSecret(false).secret.name, "ct-stand-in");
  } finally {
    setModPowBackends(prev);
  }
});

test("installPlatformBackends installs a constant-time secret backend in this runtime when it can", () => {
  const prev = getModPowBackends();
  try {
    const be = installPlatformBackends(undefined, { warn: () => {} });
    if (!isDeno || !ffiSkip) assert.equal(be.secret.constantTime, true, be.secret.name);
  } finally {
    setModPowBackends(prev);
  }
});

test(
  "node:crypto backend: prime moduli are worked modulo 3m, so DH_check stops at trial division; results stay exact",
  {
    skip: isDeno ? "Node's OpenSSL only (Deno's polyfill has no DH_check)" : false,
  },
  () => {
    const be = createNodeCryptoBackend("t", true);
    const e = randomBits(1536);
    const x = randomBits(1535);
    assert.equal(be.modPow(x, e, p), reference(x, e, p));
    // Fermat: x^(p-1) = 1 and Euler: 2^((p-1)/2) = +-1, results OpenSSL refuses as DH secrets.
    assert.equal(be.modPow(x, p - 1n, p), 1n);
    const half = be.modPow(2n, (p - 1n) / 2n, p);
    assert.ok(half === 1n || half === p - 1n);
    // One context, of 3p (1538 bits), found not prime (DH_CHECK_P_NOT_PRIME = 1) by trial division.
    const [ctx] = be.contexts();
    assert.equal(be.contexts().length, 1);
    assert.equal(ctx.bits, 1538);
    assert.equal(ctx.verifyError & 1, 1);
    // The composites keep their own modulus.
    be.modPow(x, e, N);
    assert.equal(be.contexts()[1].bits, 3072);
    assert.equal(be.modPow(x, e, N), reference(x, e, N));
  },
);

test(
  "node:crypto backend: the context cache keeps its capacity, and sizeModPowCaches sizes it to the accounts",
  {
    skip: isDeno ? "Node's OpenSSL only" : false,
  },
  () => {
    const be = createNodeCryptoBackend("t", true, 2);
    const moduli = [N, p * p, q * q];
    for (const m of moduli) be.modPow(3n, 5n, m);
    be.modPow(3n, 5n, N); // evicted by q^2: built again
    assert.equal(be.contextsCreated(), 4);
    be.setCapacity(3);
    for (const m of moduli) be.modPow(3n, 5n, m);
    assert.equal(be.contextsCreated(), 5, "p^2 only: N and q^2 were kept");
    const prev = getModPowBackends();
    try {
      installPlatformBackends();
      sizeModPowCaches(100);
      assert.equal((getModPowBackends().secret as NodeCryptoBackend).capacity(), 1216);
      installPlatformBackends(); // a later install keeps the size
      assert.equal((getModPowBackends().secret as NodeCryptoBackend).capacity(), 1216);
      sizeModPowCaches(0);
      assert.equal((getModPowBackends().secret as NodeCryptoBackend).capacity(), 64);
      assert.throws(() => sizeModPowCaches(-1), RangeError);
    } finally {
      setModPowBackends(prev);
    }
  },
);
