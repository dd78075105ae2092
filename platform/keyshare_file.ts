/**
 * Runtime adapter: reading and atomically replacing a key share file (Deno and Node, through
 * `node:fs/promises`).
 *
 * Bytes in, bytes out: the caller encodes with `core/keyshare.ts` (and, once the age issue
 * lands, encrypts) before `writeKeyShareFileAtomic`, and decrypts then decodes after
 * `readKeyShareFile`. Reading never writes, so a file that fails to load stays as it was.
 *
 * Atomic replacement (threat model: "written atomically (write to temp, fsync, rename); a crash
 * mid-write leaves the old file intact"):
 *
 * 1. create `.<name>.<random>.tmp` in the same directory (exclusive create, mode 0600);
 * 2. write all bytes and fsync the temp file, close it;
 * 3. rename it over the target (atomic within one file system on POSIX and Windows);
 * 4. fsync the directory so the rename itself survives a power loss (skipped where the platform
 *    cannot open or sync a directory, e.g. Windows).
 *
 * Any failure before the rename removes the temp file and leaves the old file untouched. A
 * process killed between steps 1 and 3 can leave a stray `.tmp` file next to an intact old file.
 * Not handled here: concurrent writers (last rename wins; callers serialize writes) and a
 * target that is a symlink (the link is replaced by a regular file).
 *
 * @example
 * ```ts
 * import { readKeyShareFile, writeKeyShareFileAtomic } from "./keyshare_file.ts";
 * import { decodeKeyShareFile, encodeKeyShareFile } from "../core/keyshare.ts";
 * const path = "/tmp/wallet-mpc-doc-example.json";
 * await writeKeyShareFileAtomic(path, new TextEncoder().encode(encodeKeyShareFile(new Map())));
 * console.assert(decodeKeyShareFile(await readKeyShareFile(path)).size === 0);
 * ```
 * @module
 */
import * as nodeFs from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { toHex } from "../core/bytes.ts";
import { InvalidKeyShare } from "../core/errors.ts";
import { MAX_FILE_BYTES } from "../core/keyshare.ts";

/**
 * The file-system calls this module makes (a subset of `node:fs/promises`). Tests pass a
 * wrapper that fails on purpose to simulate a crash at each step.
 */
export type KeyShareFs = Pick<typeof nodeFs, "open" | "rename" | "unlink">;

/** Options of `readKeyShareFile`. */
export interface ReadOptions {
  /** Largest file accepted, in bytes (default `MAX_FILE_BYTES` of core/keyshare.ts). */
  readonly maxBytes?: number;
  /** File-system implementation (default `node:fs/promises`). */
  readonly fs?: KeyShareFs;
}

/** Options of `writeKeyShareFileAtomic`. */
export interface WriteOptions {
  /** Permission bits of the new file (default 0o600: owner read/write only). */
  readonly mode?: number;
  /** File-system implementation (default `node:fs/promises`). */
  readonly fs?: KeyShareFs;
}

function randomSuffix(): string {
  return toHex(globalThis.crypto.getRandomValues(new Uint8Array(8)));
}

function errorCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e
    ? String((e as { code: unknown }).code)
    : undefined;
}

/**
 * Reads a key share file's bytes, refusing a file larger than `maxBytes` before reading it.
 *
 * @param path the file.
 * @param options `maxBytes` cap and an injectable `fs`.
 * @returns the file's bytes (still encrypted, once encryption exists).
 * @throws {InvalidKeyShare} `malformed` when the file is larger than the cap; the file-system
 *   error (e.g. ENOENT, EACCES) otherwise.
 * @example
 * ```ts
 * import { readKeyShareFile } from "./keyshare_file.ts";
 * try {
 *   await readKeyShareFile("/nonexistent/keys.json");
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "ENOENT");
 * }
 * ```
 */
export async function readKeyShareFile(
  path: string,
  options: ReadOptions = {},
): Promise<Uint8Array> {
  const fs = options.fs ?? nodeFs;
  const maxBytes = options.maxBytes ?? MAX_FILE_BYTES;
  const fh = await fs.open(path, "r");
  try {
    const { size } = await fh.stat();
    if (size > maxBytes) {
      throw new InvalidKeyShare(
        "malformed",
        `key share file: expected at most ${maxBytes} bytes, got ${size}`,
      );
    }
    const buf = await fh.readFile();
    if (buf.byteLength > maxBytes) {
      throw new InvalidKeyShare("malformed", "key share file grew beyond the cap while read");
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` with `bytes` atomically (module doc): after a crash or an error at any step,
 * `path` holds either its old contents or exactly `bytes`, never a mix.
 *
 * @param path the target file; its directory must exist.
 * @param bytes the complete new contents (already encrypted, once encryption exists).
 * @param options `mode` of the new file (default 0o600) and an injectable `fs`.
 * @returns when the new contents and the rename are on disk.
 * @throws the file-system error of the failed step (the temp file is removed first).
 * @example
 * ```ts
 * import { writeKeyShareFileAtomic } from "./keyshare_file.ts";
 * await writeKeyShareFileAtomic("/tmp/wallet-mpc-doc-example.bin", new Uint8Array([1, 2, 3]));
 * ```
 */
export async function writeKeyShareFileAtomic(
  path: string,
  bytes: Uint8Array,
  options: WriteOptions = {},
): Promise<void> {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("expected the file contents as bytes");
  const fs = options.fs ?? nodeFs;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomSuffix()}.tmp`);
  const fh = await fs.open(tmp, "wx", options.mode ?? 0o600);
  let renamed = false;
  try {
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
    renamed = true;
  } finally {
    if (!renamed) await fs.unlink(tmp).catch(() => {});
  }
  await syncDirectory(fs, dir);
}

/**
 * fsync of a directory, so that a rename or creation in it is durable; a no-op where the
 * platform cannot open or sync a directory (Windows, some file systems).
 * @param fs the file system (only `open` is used).
 * @param dir the directory.
 */
export async function syncDirectory(fs: Pick<KeyShareFs, "open">, dir: string): Promise<void> {
  let dh: nodeFs.FileHandle;
  try {
    dh = await fs.open(dir, "r");
  } catch (e) {
    // Windows cannot open a directory as a file.
    if (["EISDIR", "EPERM", "EACCES", "ENOTSUP"].includes(errorCode(e) ?? "")) return;
    throw e;
  }
  try {
    await dh.sync();
  } catch (e) {
    if (!["EINVAL", "ENOTSUP", "EBADF", "EPERM", "EISDIR"].includes(errorCode(e) ?? "")) throw e;
  } finally {
    await dh.close();
  }
}

/**
 * Removes the temp files that `writeKeyShareFileAtomic` leaves when its process dies between
 * creating the temp file and renaming it (`.<name>.<16 hex>.tmp` beside `path`). Call it only
 * while no writer of `path` can run (under the file's lock).
 *
 * @param path the key share file.
 * @returns the names removed.
 */
export async function removeStaleTemps(path: string): Promise<string[]> {
  const dir = dirname(path);
  const name = basename(path).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`^\\.${name}\\.[0-9a-f]{16}\\.tmp$`);
  let names: string[];
  try {
    names = await nodeFs.readdir(dir);
  } catch (e) {
    if (errorCode(e) === "ENOENT") return [];
    throw e;
  }
  const stale = names.filter((n) => pattern.test(n));
  for (const n of stale) await nodeFs.unlink(join(dir, n)).catch(() => {});
  return stale;
}
