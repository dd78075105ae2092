/**
 * Picks the fastest big-integer backends the current runtime offers and installs them into
 * `core/math`. Entry points (`main.ts`, `cli.ts`, tests, benchmarks) and the Node / Deno entries of
 * the client library (`client/native.ts`) call `installPlatformBackends()` once; the pure library
 * modules never do. Browsers keep the pure BigInt defaults.
 *
 * | runtime                  | public exponents      | secret exponents           | safe primes |
 * |--------------------------|-----------------------|----------------------------|-------------|
 * | Node                     | OpenSSL (node:crypto) | OpenSSL, constant-time     | OpenSSL     |
 * | Deno, FFI permitted      | OpenSSL (FFI)         | OpenSSL (FFI), const.-time | core sieve  |
 * | Deno, no FFI / libcrypto | node:crypto polyfill  | BigInt, NOT constant-time  | core sieve  |
 * | browser                  | BigInt window         | BigInt, NOT constant-time  | core sieve  |
 *
 * In Deno without FFI the fallback is logged once per thread (a warning through `options.warn`,
 * `console.warn` by default). A server that must not run secrets on a variable-time backend checks
 * {@link requireConstantTimeSecret} after installing.
 * @module
 */
import {
  bigintUniformBackend,
  generateSafePrime,
  getModPowBackends,
  type ModPowBackends,
  type PrimeProgress,
  setModPowBackends,
} from "../core/math/mod.ts";
import {
  createNodeCryptoBackend,
  type NodeCryptoBackend,
  opensslSafePrime,
} from "./node_crypto.ts";
import { openSslFfiBackends } from "./openssl_ffi.ts";

/** The runtime this process runs on. */
export type RuntimeName = "deno" | "node" | "other";

/** Detects Deno or Node (Deno also defines `process`, so it is tested first). */
export function detectRuntime(): RuntimeName {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } } };
  if (typeof g.Deno !== "undefined") return "deno";
  if (g.process?.versions?.node) return "node";
  return "other";
}

/** Options of {@link installPlatformBackends}. */
export interface PlatformBackendOptions {
  /** Deno: try OpenSSL through FFI (default true; used only when the permission is granted). */
  readonly ffi?: boolean;
  /** Deno: libcrypto names or paths to try (default: `libcrypto.so.3`, `libcrypto.so.1.1`, ...). */
  readonly libcrypto?: readonly string[];
  /** Receives the fallback warning (default: one `console.warn` line, once per thread). */
  readonly warn?: (message: string, fields: Record<string, string>) => void;
}

/** What {@link installPlatformBackends} chose, for a log line. */
export interface PlatformBackendsInfo {
  readonly runtime: RuntimeName;
  readonly public: string;
  readonly secret: string;
  readonly secretConstantTime: boolean;
  /** The libcrypto loaded through FFI (Deno), if any, and its version. */
  readonly library?: string;
  readonly libraryVersion?: string;
  /** Why FFI was not used (Deno), if it was not. */
  readonly fallback?: string;
}

let info: PlatformBackendsInfo = {
  runtime: detectRuntime(),
  public: getModPowBackends().public.name,
  secret: getModPowBackends().secret.name,
  secretConstantTime: getModPowBackends().secret.constantTime,
};
/** Backends with a per-modulus context cache, sized by {@link sizeModPowCaches}. */
let sized: NodeCryptoBackend[] = [];
let accountsSized = 0;
let warned = false;
/** The FFI backends of this thread, loaded once (a second install reuses them). */
let ffi: ReturnType<typeof openSslFfiBackends> | undefined;

/**
 * Installs the backends of the table above and returns what was installed.
 * @param runtime the runtime (default: detected).
 * @param options FFI switch, library names and the warning sink (Deno).
 * @returns the installed backends.
 * @example
 * ```ts
 * import { installPlatformBackends } from "./mod.ts";
 * const be = installPlatformBackends(undefined, { warn: () => {} });
 * console.assert(be.secret.modPow(3n, 5n, 7n) === 5n);
 * ```
 */
export function installPlatformBackends(
  runtime: RuntimeName = detectRuntime(),
  options: PlatformBackendOptions = {},
): ModPowBackends {
  let library: string | undefined;
  let libraryVersion: string | undefined;
  let fallback: string | undefined;
  if (runtime === "node") {
    const ossl = createNodeCryptoBackend("openssl-consttime", true);
    sized = [ossl];
    setModPowBackends({ public: ossl, secret: ossl });
  } else if (runtime === "deno") {
    if (options.ffi !== false) {
      if (ffi === undefined || "reason" in ffi || options.libcrypto) {
        ffi = openSslFfiBackends({ libraries: options.libcrypto });
      }
    }
    if (options.ffi !== false && ffi && "secret" in ffi) {
      sized = [];
      library = ffi.library;
      libraryVersion = ffi.version;
      setModPowBackends({ public: ffi.public, secret: ffi.secret });
    } else {
      fallback = options.ffi === false ? "FFI switched off" : (ffi as { reason: string }).reason;
      const polyfill = createNodeCryptoBackend("deno-node-crypto", false);
      sized = [polyfill];
      setModPowBackends({ public: polyfill, secret: bigintUniformBackend });
      if (!warned || options.warn) {
        warned = true;
        (options.warn ?? consoleWarn)(
          "OpenSSL through FFI is not available: secret exponentiations run on BigInt, " +
            "not constant-time (run Deno with --allow-ffi and a system libcrypto)",
          { reason: fallback, secret: bigintUniformBackend.name },
        );
      }
    }
  }
  if (accountsSized > 0) sizeModPowCaches(accountsSized);
  const be = getModPowBackends();
  info = {
    runtime,
    public: be.public.name,
    secret: be.secret.name,
    secretConstantTime: be.secret.constantTime,
    ...(library ? { library, libraryVersion } : {}),
    ...(fallback ? { fallback } : {}),
  };
  return be;
}

function consoleWarn(message: string, fields: Record<string, string>): void {
  console.warn(`wallet-mpc: ${message} (${fields.reason})`);
}

/** What the last {@link installPlatformBackends} of this thread chose (for the `starting` log). */
export function platformBackendsInfo(): PlatformBackendsInfo {
  return info;
}

/**
 * Moduli per account that a party's context cache should hold: p, q, their halves, p^2, q^2, its
 * N and N^2, the peers' N and N^2, with room to spare.
 */
const MODULI_PER_ACCOUNT = 12;

/**
 * Sizes the per-modulus context caches of this thread's backends (Node's DH contexts) for
 * `accounts` accounts, so a service signing for many accounts does not rebuild, and re-check, a
 * context per exponentiation. The FFI backends keep no per-modulus state and need none. Kept for
 * later installs in this thread.
 * @param accounts the number of accounts the process serves.
 * @example
 * ```ts
 * import { sizeModPowCaches } from "./mod.ts";
 * sizeModPowCaches(100);
 * ```
 */
export function sizeModPowCaches(accounts: number): void {
  if (!Number.isInteger(accounts) || accounts < 0) {
    throw new RangeError(`sizeModPowCaches: expected a count of accounts, got ${accounts}`);
  }
  accountsSized = accounts;
  for (const b of sized) b.setCapacity(cacheCapacity(accounts));
}

function cacheCapacity(accounts: number): number {
  return Math.max(64, MODULI_PER_ACCOUNT * accounts + 16);
}

/**
 * How this thread's caches are sized: the accounts of the last {@link sizeModPowCaches} (0 when
 * never called) and the moduli a per-modulus cache keeps for them (the compute workers size
 * theirs from the pool's `accounts`).
 * @returns the accounts and the capacity.
 * @example
 * ```ts
 * import { modPowCacheSizing, sizeModPowCaches } from "./mod.ts";
 * sizeModPowCaches(10);
 * console.assert(modPowCacheSizing().capacity === 136);
 * ```
 */
export function modPowCacheSizing(): { readonly accounts: number; readonly capacity: number } {
  return { accounts: accountsSized, capacity: cacheCapacity(accountsSized) };
}

/**
 * Throws unless the installed secret backend is constant-time, or `allowVariableTime` says a
 * variable-time one is acceptable. For servers (the sign-service) to refuse to serve secrets on
 * BigInt arithmetic by default.
 * @param allowVariableTime the operator's explicit permission.
 * @returns the installed backends.
 * @throws {Error} naming the backend and how to get a constant-time one.
 * @example
 * ```ts
 * import { requireConstantTimeSecret } from "./mod.ts";
 * requireConstantTimeSecret(true); // allowed whatever is installed
 * ```
 */
export function requireConstantTimeSecret(allowVariableTime: boolean): ModPowBackends {
  const be = getModPowBackends();
  if (!be.secret.constantTime && !allowVariableTime) {
    throw new Error(
      `the secret exponentiation backend "${be.secret.name}" is not constant-time: run under ` +
        "Node, or under Deno with --allow-ffi and a system libcrypto (OpenSSL >= 1.1.1), or " +
        "allow a variable-time backend explicitly in the configuration",
    );
  }
  return be;
}

/** A safe prime of `bits` bits by the fastest generator of this runtime. */
export function platformSafePrime(
  bits: number,
  runtime: RuntimeName = detectRuntime(),
  onProgress?: PrimeProgress,
): Promise<bigint> {
  if (runtime === "node") return opensslSafePrime(bits);
  return generateSafePrime(bits, undefined, onProgress);
}
