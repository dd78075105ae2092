/**
 * Runtime adapter: modular exponentiation by the system's OpenSSL libcrypto, called from Deno
 * through FFI (`Deno.dlopen`). Under Deno, `node:crypto` is a Rust polyfill with variable-time
 * arithmetic; this adapter gives Deno what Node gets from its bundled OpenSSL: the secret slot on
 * `BN_mod_exp_mont_consttime` (fixed window, cache-line-uniform table access, the exponent read
 * word by word), and the public slot on `BN_mod_exp_mont` (sliding window, variable-time).
 *
 * Loading needs the FFI permission (`--allow-ffi`, or `-A`), asked of `Deno.permissions` without
 * prompting: when it is not granted, or no OpenSSL >= 1.1.1 libcrypto is found, {@link
 * openSslFfiBackends} answers why and `platform/mod.ts` keeps the pure backends. Note that FFI
 * code runs outside Deno's sandbox: `--allow-ffi` is as strong as `-A`.
 *
 * Memory: each call allocates its BIGNUMs and its `BN_CTX`, and frees them in `finally` with
 * `BN_clear_free` / `BN_CTX_free` (which clears the context's temporaries), so no secret stays in
 * native memory after a call and nothing leaks on an exception. Values cross as big-endian bytes,
 * padded to the modulus's length; the JavaScript byte buffers are zeroed after use.
 *
 * Leaks of the secret slot, as for Node's path: the word count of the exponent (OpenSSL reads
 * `p->top` words) and of the modulus. The modulus is marked `BN_FLG_CONSTTIME` too, so the
 * Montgomery set-up of a secret modulus (p^2, p) runs OpenSSL's constant-time division and inverse.
 *
 * Not for browsers; `core/` never imports this file. Entry points install it via `platform/mod.ts`.
 * @module
 */
import type { ModPowBackend } from "../core/math/modpow.ts";

/** The pointer type of Deno's FFI (an opaque object, or null). */
type Pointer = object | null;

/** r = a^p mod m (`BN_mod_exp_mont*`): 1 on success; `mont` may be null. */
type ModExp = (
  r: Pointer,
  a: Pointer,
  p: Pointer,
  m: Pointer,
  ctx: Pointer,
  mont: Pointer,
) => number;

/** What this adapter calls in libcrypto. */
interface LibcryptoSymbols {
  OpenSSL_version_num(): number | bigint;
  BN_bin2bn(s: Uint8Array, len: number, ret: Pointer): Pointer;
  BN_bn2binpad(a: Pointer, to: Uint8Array, len: number): number;
  BN_new(): Pointer;
  BN_clear_free(a: Pointer): void;
  BN_set_flags(a: Pointer, flags: number): void;
  BN_CTX_new(): Pointer;
  BN_CTX_free(c: Pointer): void;
  BN_mod_exp_mont_consttime: ModExp;
  BN_mod_exp_mont: ModExp;
  ERR_clear_error(): void;
}

/** Deno's FFI and permission API, as far as this file uses them (structural: no Deno types). */
interface DenoFfi {
  build: { os: string; arch: string };
  permissions?: {
    querySync?(d: { name: "ffi"; path?: string }): { state: "granted" | "denied" | "prompt" };
  };
  dlopen?(
    path: string,
    symbols: Record<string, { parameters: string[]; result: string }>,
  ): { symbols: unknown; close(): void };
}

const P = "pointer";
const SYMBOLS: Record<keyof LibcryptoSymbols, { parameters: string[]; result: string }> = {
  OpenSSL_version_num: { parameters: [], result: "u64" }, // unsigned long (LP64; u32 on Windows)
  BN_bin2bn: { parameters: ["buffer", "i32", P], result: P },
  BN_bn2binpad: { parameters: [P, "buffer", "i32"], result: "i32" },
  BN_new: { parameters: [], result: P },
  BN_clear_free: { parameters: [P], result: "void" },
  BN_set_flags: { parameters: [P, "i32"], result: "void" },
  BN_CTX_new: { parameters: [], result: P },
  BN_CTX_free: { parameters: [P], result: "void" },
  BN_mod_exp_mont_consttime: { parameters: [P, P, P, P, P, P], result: "i32" },
  BN_mod_exp_mont: { parameters: [P, P, P, P, P, P], result: "i32" },
  ERR_clear_error: { parameters: [], result: "void" },
};

/** OpenSSL's `BN_FLG_CONSTTIME` (include/openssl/bn.h). */
const BN_FLG_CONSTTIME = 0x04;

/**
 * Moduli larger than this are refused (RangeError): OpenSSL's own RSA limit (16384 bits), far
 * above N^2 of a 3072-bit N. Exponents have a looser cap, only against absurd inputs.
 */
export const MAX_MODULUS_BITS = 16384;
const MAX_EXPONENT_BITS = 1 << 20;

/**
 * The library names tried, in order, for an operating system and architecture (`Deno.build`).
 * @param os `linux`, `darwin`, `windows`, ...
 * @param arch `x86_64` or `aarch64`.
 * @returns names and paths for `dlopen`.
 */
export function defaultLibcryptoNames(os: string, arch = "x86_64"): string[] {
  switch (os) {
    case "darwin":
      // Never the unversioned /usr/lib/libcrypto.dylib: macOS aborts a process that loads it.
      return [
        "/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib",
        "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib",
        "/opt/homebrew/lib/libcrypto.3.dylib",
        "/usr/local/lib/libcrypto.3.dylib",
      ];
    case "windows":
      return ["libcrypto-3-x64.dll", "libcrypto-1_1-x64.dll"];
    default: {
      // Sonames first (the loader's search path); then the usual files, for a permission granted
      // to one file only (--allow-ffi=/usr/lib/x86_64-linux-gnu/libcrypto.so.3).
      const dirs = [
        `/usr/lib/${arch}-linux-gnu`,
        `/lib/${arch}-linux-gnu`,
        "/usr/lib64",
        "/usr/lib",
        "/lib",
      ];
      const names = ["libcrypto.so.3", "libcrypto.so.1.1"];
      return [...names, ...names.flatMap((n) => dirs.map((d) => `${d}/${n}`))];
    }
  }
}

/** The FFI backends and where they come from. */
export interface OpenSslFfiBackends {
  /** `BN_mod_exp_mont`: variable-time, for public exponents and bases. */
  readonly public: ModPowBackend;
  /** `BN_mod_exp_mont_consttime`: for secret exponents or bases. */
  readonly secret: ModPowBackend;
  /** The library name or path that was loaded. */
  readonly library: string;
  /** From `OpenSSL_version_num()`, e.g. "OpenSSL 3.0.13" or "OpenSSL 1.1.1w". */
  readonly version: string;
  /** Unloads the library; the backends must not be used afterwards (tests). */
  close(): void;
}

/** Why the FFI backends are not available. */
export interface OpenSslFfiUnavailable {
  readonly reason: string;
}

/** Options of {@link openSslFfiBackends}. */
export interface OpenSslFfiOptions {
  /** Library names or paths to try, in order (default: {@link defaultLibcryptoNames}). */
  readonly libraries?: readonly string[];
}

function denoFfi(): DenoFfi | undefined {
  return (globalThis as { Deno?: DenoFfi }).Deno;
}

/** Whether FFI may load `library` now, asked without a prompt. */
function ffiGranted(deno: DenoFfi, library: string): boolean {
  const query = deno.permissions?.querySync;
  if (!query) return false;
  const all = query.call(deno.permissions, { name: "ffi" }).state;
  if (all === "granted") return true;
  if (all === "denied" || !library.includes("/")) return false;
  // --allow-ffi=<path> grants single files.
  return query.call(deno.permissions, { name: "ffi", path: library }).state === "granted";
}

/**
 * The version of `OpenSSL_version_num()` (0xMNN00PPSL from 3.0, 0xMNNFFPPSL before), or null
 * when it is older than 1.1.1 or is LibreSSL (which always answers 0x20000000).
 */
function supportedVersion(num: number): string | null {
  if (num === 0x20000000 || num < 0x10101000) return null;
  const major = Math.floor(num / 0x10000000);
  const minor = Math.floor(num / 0x100000) & 0xff;
  if (major >= 3) return `OpenSSL ${major}.${minor}.${Math.floor(num / 0x10) & 0xff}`;
  const fix = Math.floor(num / 0x1000) & 0xff;
  const letter = Math.floor(num / 0x10) & 0xff;
  return `OpenSSL ${major}.${minor}.${fix}${letter ? String.fromCharCode(96 + letter) : ""}`;
}

/**
 * Loads libcrypto through Deno's FFI and returns the two backends, or why it could not.
 * Never prompts for a permission; outside Deno it answers "not Deno".
 *
 * @param options library names or paths to try.
 * @returns the backends with the library's name and version, or `{ reason }`.
 * @example
 * ```ts
 * import { openSslFfiBackends } from "./openssl_ffi.ts";
 * const ffi = openSslFfiBackends();
 * if ("secret" in ffi) {
 *   console.assert(ffi.secret.modPow(3n, 5n, 7n) === 5n); // 243 mod 7
 *   ffi.close();
 * } else {
 *   console.log("FFI not available:", ffi.reason);
 * }
 * ```
 */
export function openSslFfiBackends(
  options: OpenSslFfiOptions = {},
): OpenSslFfiBackends | OpenSslFfiUnavailable {
  const deno = denoFfi();
  if (!deno || typeof deno.dlopen !== "function") return { reason: "not Deno" };
  const names = options.libraries ?? defaultLibcryptoNames(deno.build.os, deno.build.arch);
  const failures: string[] = [];
  let permitted = false;
  for (const library of names) {
    if (!ffiGranted(deno, library)) continue;
    permitted = true;
    let lib: { symbols: unknown; close(): void };
    try {
      lib = deno.dlopen(library, SYMBOLS);
    } catch (e) {
      failures.push(`${library}: ${firstLine(e)}`);
      continue;
    }
    const S = lib.symbols as LibcryptoSymbols;
    const num = Number(BigInt.asUintN(32, BigInt(S.OpenSSL_version_num())));
    const version = supportedVersion(num);
    if (!version) {
      lib.close();
      failures.push(`${library}: unsupported version 0x${num.toString(16)}`);
      continue;
    }
    return {
      public: makeBackend(S, "openssl-ffi", false),
      secret: makeBackend(S, "openssl-ffi-consttime", true),
      library,
      version,
      close: () => lib.close(),
    };
  }
  if (!permitted) return { reason: "FFI not permitted" };
  return { reason: `no usable libcrypto (${failures.join("; ")})` };
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

function byteLength(x: bigint): number {
  return Math.max(1, Math.ceil(x.toString(16).length / 2));
}

/** The Uint8Array hex codec of recent engines (Deno 2.5+), or the loops below. */
const hexCodec = (Uint8Array as unknown as { fromHex?: (h: string) => Uint8Array }).fromHex;

/** x as `len` big-endian bytes (x < 256^len). */
function toBytes(x: bigint, len: number): Uint8Array {
  const hex = x.toString(16).padStart(len * 2, "0");
  if (hexCodec) return hexCodec(hex);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function fromBytes(bytes: Uint8Array): bigint {
  const toHex = (bytes as unknown as { toHex?: () => string }).toHex;
  if (toHex) return BigInt("0x" + toHex.call(bytes));
  let hex = "0x";
  for (let i = 0; i < bytes.length; i++) hex += bytes[i].toString(16).padStart(2, "0");
  return BigInt(hex);
}

/** Checks a backend's inputs: the contract of `ModPowBackend`, enforced here. */
function check(b: bigint, e: bigint, m: bigint): void {
  if (typeof b !== "bigint" || typeof e !== "bigint" || typeof m !== "bigint") {
    throw new TypeError("openssl modPow: expected bigint base, exponent and modulus");
  }
  if (m < 3n || (m & 1n) === 0n) {
    throw new RangeError("openssl modPow: expected an odd modulus >= 3 (Montgomery)");
  }
  if (m >> BigInt(MAX_MODULUS_BITS) !== 0n) {
    throw new RangeError(`openssl modPow: expected a modulus of at most ${MAX_MODULUS_BITS} bits`);
  }
  if (b < 0n || b >= m) throw new RangeError("openssl modPow: expected 0 <= base < modulus");
  if (e < 0n || e >> BigInt(MAX_EXPONENT_BITS) !== 0n) {
    throw new RangeError("openssl modPow: expected 0 <= exponent < 2^20 bits");
  }
}

function makeBackend(S: LibcryptoSymbols, name: string, constantTime: boolean): ModPowBackend {
  return {
    name,
    constantTime,
    modPow(b: bigint, e: bigint, m: bigint): bigint {
      check(b, e, m);
      const len = byteLength(m);
      const elen = byteLength(e);
      const bb = toBytes(b, len);
      const eb = toBytes(e, elen);
      const mb = toBytes(m, len);
      const out = new Uint8Array(len);
      let ctx: Pointer = null, B: Pointer = null, E: Pointer = null, M: Pointer = null;
      let R: Pointer = null;
      try {
        ctx = S.BN_CTX_new();
        B = S.BN_bin2bn(bb, len, null);
        E = S.BN_bin2bn(eb, elen, null);
        M = S.BN_bin2bn(mb, len, null);
        R = S.BN_new();
        if (!ctx || !B || !E || !M || !R) throw new Error("openssl modPow: out of memory");
        let ok: number;
        if (constantTime) {
          S.BN_set_flags(E, BN_FLG_CONSTTIME);
          S.BN_set_flags(M, BN_FLG_CONSTTIME);
          ok = S.BN_mod_exp_mont_consttime(R, B, E, M, ctx, null);
        } else {
          ok = S.BN_mod_exp_mont(R, B, E, M, ctx, null);
        }
        if (ok !== 1 || S.BN_bn2binpad(R, out, len) !== len) {
          S.ERR_clear_error();
          throw new Error("openssl modPow: libcrypto failed");
        }
        return fromBytes(out);
      } finally {
        // BN_clear_free / BN_CTX_free accept NULL.
        S.BN_clear_free(B);
        S.BN_clear_free(E);
        S.BN_clear_free(M);
        S.BN_clear_free(R);
        S.BN_CTX_free(ctx);
        bb.fill(0);
        eb.fill(0);
        out.fill(0);
      }
    },
  };
}
