/**
 * The enclave's root filesystem, reproducibly: the deno binary, the shared libraries `ldd` lists
 * for it (glibc and friends; FFI's `libc.so.6` among them), a CA bundle, `/etc/hosts` and
 * `/etc/nsswitch.conf`, and one JavaScript bundle of the boot program (`deno bundle`), laid out
 * as nitro-cli's two ramdisks: the bootstrap one (`dev/`, `init`, `nsm.ko`, from nitro-cli's
 * blobs) and the customer one (`rootfs/...`, `cmd`, `env`, one item per line, read by AWS's init
 * before it chroots into `/rootfs`; see aws-nitro-enclaves-cli enclave_build/src/yaml_generator.rs
 * and aws-nitro-enclaves-sdk-bootstrap init/init.c).
 *
 * Every member has owner 0:0, mtime 0 and a fixed mode (0755 programs and libraries, 0644 data),
 * so the archives depend only on file contents: the same commit, deno binary and host libraries
 * give the same PCR2. Runs under Deno and Node (node: APIs); `ldd` and `deno bundle` are run as
 * child processes.
 * @module
 */

import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { completeTree, type CpioEntry, writeCpio } from "./cpio.ts";

/** Where things go inside the root filesystem. */
export const ROOTFS_DENO = "bin/deno";
export const ROOTFS_BUNDLE = "app/boot.js";
const CA_BUNDLE_PATH = "etc/ssl/certs/ca-certificates.crt";
/** Directories AWS's init mounts over (dev, proc, sys, run, tmp) or expects (var). */
const MOUNT_POINTS = ["dev", "proc", "run", "sys", "tmp", "var"];

/** Options of {@linkcode collectRootfs}. */
export interface RootfsOptions {
  /** The deno executable to ship (its bytes, and `ldd`'s list of its libraries). */
  denoBinary: string;
  /** The bundled boot program (`deno bundle` output). */
  bundle: Uint8Array;
  /** Shared libraries to ship; default: what `ldd denoBinary` lists. */
  libraries?: readonly string[];
  /** CA bundle (PEM) to ship at /etc/ssl/certs/ca-certificates.crt; null for none. */
  caBundle?: string | null;
  /** Host names resolved to 127.0.0.1 in /etc/hosts (the vsock forwarders, e.g. KMS). */
  loopbackHosts?: readonly string[];
  /** More files (the baked configuration, config.ts); a path the tree has already is refused. */
  extraFiles?: readonly CpioEntry[];
}

/**
 * The absolute library paths in `ldd` output (the vDSO, which has no file, is skipped).
 * @param text what `ldd BINARY` printed
 * @returns sorted, distinct paths
 * @throws {SyntaxError} a library ldd could not find ("not found")
 */
export function parseLdd(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    if (/not found/.test(line)) throw new SyntaxError(`ldd: ${line}`);
    const m = line.match(/=>\s*(\/\S+)\s*\(0x[0-9a-f]+\)$/) ??
      line.match(/^(\/\S+)\s*\(0x[0-9a-f]+\)$/);
    if (m) out.add(m[1]);
    else if (!/^linux-(vdso|gate)\.so/.test(line) && !/statically linked/.test(line)) {
      throw new SyntaxError(`ldd: unexpected line ${JSON.stringify(line)}`);
    }
  }
  return [...out].sort();
}

/**
 * The system's OpenSSL libcrypto and the libraries it links: the service's constant-time
 * exponentiation backend loads it through FFI (platform/openssl_ffi.ts), and without it the
 * service refuses to start on a variable-time one. Found through `ldconfig -p`.
 * @returns absolute paths (empty when the host has no libcrypto.so.3: the build then warns).
 */
export function libcryptoLibraries(): string[] {
  let listing = "";
  try {
    listing = execFileSync("ldconfig", ["-p"], { encoding: "utf8" });
  } catch {
    // no ldconfig: try the usual path below
  }
  const found = /libcrypto\.so\.3 \([^)]*x86-64[^)]*\) => (\S+)/.exec(listing)?.[1] ??
    ["/lib/x86_64-linux-gnu/libcrypto.so.3", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"]
      .find((p) => existsSync(p));
  if (!found) {
    console.error(
      "warning: no libcrypto.so.3 on this host: the image's service will refuse to start",
    );
    return [];
  }
  return [found, ...lddLibraries(found)];
}

/**
 * The shared libraries of a dynamically linked executable, by running `ldd`.
 * @param binary path of the executable
 * @returns absolute paths (as the dynamic loader will look for them)
 */
export function lddLibraries(binary: string): string[] {
  return parseLdd(execFileSync("ldd", [binary], { encoding: "utf8" }));
}

/**
 * Bundles a TypeScript entry point and everything it imports (npm packages included) into one
 * JavaScript file with `deno bundle` (offline; deterministic for the same sources).
 * @param entry path of the entry module
 * @param denoBinary the deno executable to run
 * @param outFile where `deno bundle` writes (a scratch path)
 * @returns the bundle
 */
export function bundleEntry(entry: string, denoBinary: string, outFile: string): Uint8Array {
  if (!existsSync(entry)) {
    throw new Error(
      `enclave image: entry ${entry} does not exist (the boot program; pass --entry FILE)`,
    );
  }
  execFileSync(
    denoBinary,
    ["bundle", "--quiet", "--platform", "deno", "--output", outFile, entry],
    {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, NO_COLOR: "1" },
    },
  );
  return new Uint8Array(readFileSync(outFile));
}

const text = (s: string) => new TextEncoder().encode(s);
const rel = (abs: string) => abs.replace(/^\/+/, "");

/**
 * The members of the root filesystem (paths relative to it), complete and sorted.
 * @param opts what to ship
 * @returns the tree, parents first
 */
export function collectRootfs(opts: RootfsOptions): CpioEntry[] {
  const libs = opts.libraries ?? [
    ...new Set([...lddLibraries(opts.denoBinary), ...libcryptoLibraries()]),
  ].sort();
  const entries: CpioEntry[] = [
    {
      type: "file",
      path: ROOTFS_DENO,
      mode: 0o755,
      data: new Uint8Array(readFileSync(opts.denoBinary)),
    },
    { type: "file", path: ROOTFS_BUNDLE, mode: 0o644, data: opts.bundle },
    ...libs.map((l): CpioEntry => ({
      type: "file",
      path: rel(l),
      mode: 0o755,
      data: new Uint8Array(readFileSync(l)), // follows symlinks: the loader's path gets the bytes
    })),
    {
      type: "file",
      path: "etc/hosts",
      mode: 0o644,
      data: text(
        [
          "127.0.0.1\tlocalhost",
          "::1\tlocalhost",
          ...[...new Set(opts.loopbackHosts ?? [])].sort().map((h) => `127.0.0.1\t${h}`),
        ]
          .join("\n") + "\n",
      ),
    },
    { type: "file", path: "etc/nsswitch.conf", mode: 0o644, data: text("hosts: files dns\n") },
    ...MOUNT_POINTS.map((d): CpioEntry => ({
      type: "dir",
      path: d,
      mode: d === "tmp" ? 0o1777 : 0o755,
    })),
    ...(opts.extraFiles ?? []),
  ];
  const ca = opts.caBundle === undefined ? "/" + CA_BUNDLE_PATH : opts.caBundle;
  if (ca !== null) {
    entries.push({
      type: "file",
      path: CA_BUNDLE_PATH,
      mode: 0o644,
      data: new Uint8Array(readFileSync(ca)),
    });
  }
  return completeTree(entries);
}

/**
 * The command AWS's init runs (one argument per line of /cmd) and its environment (/env).
 * @param denoFlags flags of `deno run`
 * @param settings more `NAME=VALUE` lines (the boot settings, config.ts), after the fixed ones
 */
export function enclaveCommand(
  denoFlags: readonly string[],
  settings: readonly string[] = [],
): { cmd: string[]; env: string[] } {
  return {
    cmd: [
      "/" + ROOTFS_DENO,
      "run",
      "--no-remote",
      "--no-prompt",
      ...denoFlags,
      "/" + ROOTFS_BUNDLE,
    ],
    env: [
      "DENO_DIR=/tmp/deno",
      "HOME=/tmp",
      "NO_COLOR=1",
      "DENO_NO_UPDATE_CHECK=1",
      "PATH=/bin",
      ...settings,
    ],
  };
}

/**
 * The customer ramdisk: the tree under `rootfs/`, plus `cmd` and `env`.
 * @param tree from {@linkcode collectRootfs}
 * @param command from {@linkcode enclaveCommand}
 * @returns the cpio archive
 */
export function customerRamdisk(
  tree: readonly CpioEntry[],
  command: { cmd: string[]; env: string[] },
): Uint8Array {
  for (const line of [...command.cmd, ...command.env]) {
    if (line.includes("\n") || line === "") {
      throw new RangeError("enclave image: empty or multi-line cmd/env item");
    }
  }
  return writeCpio([
    { type: "dir", path: "rootfs", mode: 0o755 },
    ...tree.map((e) => ({ ...e, path: "rootfs/" + e.path })),
    { type: "file", path: "cmd", mode: 0o644, data: text(command.cmd.join("\n") + "\n") },
    { type: "file", path: "env", mode: 0o644, data: text(command.env.join("\n") + "\n") },
  ]);
}

/**
 * The bootstrap ramdisk: `dev/`, AWS's `init` and the `nsm.ko` driver.
 * @param init nitro-cli's init (blobs/init) or a placeholder
 * @param nsmKo nitro-cli's nsm.ko (blobs/nsm.ko) or a placeholder
 * @returns the cpio archive
 */
export function bootstrapRamdisk(init: Uint8Array, nsmKo: Uint8Array): Uint8Array {
  return writeCpio([
    { type: "dir", path: "dev", mode: 0o755 },
    { type: "file", path: "init", mode: 0o755, data: init },
    { type: "file", path: "nsm.ko", mode: 0o755, data: nsmKo },
  ]);
}

/**
 * Writes the tree into a directory (for the chroot smoke test and the Dockerfile path). Modes are
 * set explicitly (no umask).
 * @param tree from {@linkcode collectRootfs}
 * @param dir an empty or missing directory
 */
export function materializeRootfs(tree: readonly CpioEntry[], dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const e of tree) {
    const p = join(dir, e.path);
    if (e.type === "dir") {
      mkdirSync(p, { recursive: true });
      chmodSync(p, e.mode);
    } else if (e.type === "file") {
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, e.data);
      chmodSync(p, e.mode);
    } else {
      symlinkSync(e.target, p);
    }
  }
}
