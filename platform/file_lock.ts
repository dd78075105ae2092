/**
 * An exclusive lock across processes on one file, for read-modify-write of the key store
 * (Deno and Node, `node:fs`).
 *
 * The lock is a file `<path>.lock` created with `O_CREAT | O_EXCL` (atomic on local file
 * systems) holding `{ pid, host, nonce }`, fsync'd. It is STALE when its owner is a process of
 * this host that no longer runs (`kill(pid, 0)` answers ESRCH), or when it is empty or torn (a
 * crash between create and write) and older than {@link TORN_LOCK_MS}. A stale lock is broken by
 * renaming it to a unique name first and checking that the moved file is the one judged stale;
 * a live lock moved by a race is linked back (link fails when a new lock exists). A holder
 * checks that the lock is still its own (`assertHeld`) right before it commits a write.
 *
 * Why a lock file and not per-account files: every write of the store is a read-modify-write
 * of one encrypted file (the whole file is one age ciphertext, so two accounts cannot be
 * written apart), and the lock also serializes the promotion of an epoch against a concurrent
 * refresh of the same account. Advisory `flock` would be simpler but Node has no API for it.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { acquireFileLock } from "./file_lock.ts";
 * const dir = mkdtempSync(join(tmpdir(), "lock-"));
 * const lock = await acquireFileLock(join(dir, "keys.age")); // creates keys.age.lock
 * try {
 *   await lock.assertHeld(); // before each write of keys.age
 * } finally {
 *   await lock.release();
 * }
 * rmSync(dir, { recursive: true });
 * ```
 * @module
 */
import * as fsp from "node:fs/promises";
import { hostname } from "node:os";
import process from "node:process";

/** An empty or unparsable lock file older than this is a crash between create and write. */
export const TORN_LOCK_MS = 5_000;

/** What a lock file holds. */
interface Owner {
  readonly pid: number;
  readonly host: string;
  readonly nonce: string;
}

/** A held lock. */
export interface FileLock {
  /** The lock file. */
  readonly lockPath: string;
  /** Throws {LockError} `lost` when the lock file is no longer this holder's. */
  assertHeld(): Promise<void>;
  /** Removes the lock file (when it is still this holder's). */
  release(): Promise<void>;
}

/** Why a lock could not be taken or was lost. */
export class LockError extends Error {
  override readonly name = "LockError";
  readonly code: "timeout" | "lost" | "io";
  constructor(code: LockError["code"], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Options of {@link acquireFileLock}. */
export interface LockOptions {
  /** How long to wait for a live holder (default 30 s). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Clock (ms), for tests. */
  readonly now?: () => number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: unknown }).code !== "ESRCH";
  }
}

function parseOwner(text: string): Owner | null {
  try {
    const o = JSON.parse(text);
    if (
      typeof o === "object" && o !== null && Number.isSafeInteger(o.pid) && o.pid > 0 &&
      typeof o.host === "string" && typeof o.nonce === "string"
    ) return o as Owner;
  } catch {
    // torn
  }
  return null;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await fsp.readFile(path, "utf8");
  } catch (e) {
    if ((e as { code?: unknown }).code === "ENOENT") return null;
    throw e;
  }
}

function errno(e: unknown): string {
  const c = (e as { code?: unknown })?.code;
  return typeof c === "string" ? c : "error";
}

/**
 * Takes the exclusive lock of `path` (the lock file is `path + ".lock"`), waiting for a live
 * holder and breaking a stale one (module doc).
 *
 * @param path the file the lock protects.
 * @param options timeout and cancellation.
 * @returns the held lock.
 * @throws {LockError} `timeout` when a live holder keeps it (its pid in the message), `io`.
 */
export async function acquireFileLock(path: string, options: LockOptions = {}): Promise<FileLock> {
  const lockPath = `${path}.lock`;
  const now = options.now ?? Date.now;
  const deadline = now() + (options.timeoutMs ?? 30_000);
  const nonce = crypto.randomUUID();
  const me: Owner = { pid: process.pid, host: hostname(), nonce };
  const mine = JSON.stringify(me) + "\n";
  let delay = 5;
  for (;;) {
    options.signal?.throwIfAborted();
    let handle: fsp.FileHandle | undefined;
    try {
      handle = await fsp.open(lockPath, "wx", 0o600);
    } catch (e) {
      if (errno(e) !== "EEXIST") {
        throw new LockError("io", `lock ${lockPath}: create failed (${errno(e)})`, { cause: e });
      }
    }
    if (handle) {
      try {
        await handle.writeFile(mine);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return held(lockPath, mine);
    }
    // Someone holds it: stale or live?
    const seen = await readText(lockPath);
    if (seen === null) continue; // released meanwhile
    const owner = parseOwner(seen);
    let stale: boolean;
    if (owner) {
      stale = owner.host === me.host && !alive(owner.pid);
    } else {
      const st = await fsp.stat(lockPath).catch(() => null);
      stale = st !== null && now() - st.mtimeMs > TORN_LOCK_MS;
    }
    if (stale) {
      await breakStale(lockPath, seen, nonce);
      continue;
    }
    if (now() >= deadline) {
      throw new LockError(
        "timeout",
        `key share file is locked by ${
          owner ? `process ${owner.pid} on ${owner.host}` : "a process"
        }` +
          ` (lock file ${lockPath}); another writer is running`,
      );
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}

/** Moves the stale lock aside; puts back a live one moved by a race. */
async function breakStale(lockPath: string, seen: string, nonce: string): Promise<void> {
  const aside = `${lockPath}.stale-${nonce}`;
  try {
    await fsp.rename(lockPath, aside);
  } catch (e) {
    if (errno(e) === "ENOENT") return; // someone else broke it
    throw new LockError("io", `lock ${lockPath}: break failed (${errno(e)})`, { cause: e });
  }
  const moved = await readText(aside);
  if (moved !== seen) {
    // A new holder's lock was moved: put it back unless yet another lock exists now.
    await fsp.link(aside, lockPath).catch(() => {});
  }
  await fsp.unlink(aside).catch(() => {});
}

function held(lockPath: string, mine: string): FileLock {
  let released = false;
  return {
    lockPath,
    async assertHeld() {
      const now = released ? null : await readText(lockPath).catch(() => null);
      if (now !== mine) {
        throw new LockError("lost", `lock ${lockPath}: no longer held by this process`);
      }
    },
    async release() {
      if (released) return;
      released = true;
      if ((await readText(lockPath).catch(() => null)) === mine) {
        await fsp.unlink(lockPath).catch(() => {});
      }
    },
  };
}
