/**
 * Runtime adapter: the durable presignature store of the sign service. The USED set and the KEY
 * LOCKS live in an append-only journal file that survives restarts (Deno and Node, through
 * `node:fs/promises`); the unused presignatures stay in memory.
 *
 * Why this is enough (threat model: "presignatures are bound to the key epoch and to a durable
 * used-journal"): two signatures with one nonce reveal the key, so a used id must never be served
 * again, across restarts and restored backups. Losing unused presignatures is safe, since they
 * are simply never served; losing a used id or a key lock is not. So only those are written.
 *
 * ## File format
 *
 * UTF-8, one JSON object per line, each line ending with `\n`:
 *
 * ```text
 * {"v":1,"event":"used","id":"<presignature id, lowercase hex>"}
 * {"v":1,"event":"lock","lock":{"keyId":"...","protocol":"sign","round":1,"culprits":[1],"sid":"<hex>","reason":"...","at":1700000000000}}
 * {"v":1,"event":"unlock","keyId":"..."}
 * ```
 *
 * Replayed in order at open: `used` adds the id to the used set, `lock` locks the key (the first
 * lock is kept, as `lockKey` does), `unlock` removes the lock.
 *
 * ## Durability and crashes
 *
 * - Every event is appended and fsync'd before the call that caused it returns: `take` returns
 *   the presignature only once its used id is on disk, `lockKey` / `unlockKey` once the event is.
 *   Concurrent events share one write and one fsync (group commit).
 * - The in-memory state changes first (the id is used, the key locked, before the write), so a
 *   concurrent call never sees a state older than the journal's.
 * - Only one write is in flight at a time and the next starts after its fsync, so a crash can
 *   damage the LAST line only. At open, a last line without its `\n` (a torn append) is dropped
 *   and the file truncated to the last complete line, or, when it parses as a whole event, kept
 *   and terminated. Its call had not returned, so dropping it is safe: a torn `used` id belongs
 *   to a presignature that was never handed out, and that lived in memory only. Any other
 *   unreadable line is corruption: `openPresignatureJournal` refuses with `JournalError`
 *   `corrupt` naming the line, and never rewrites the file.
 * - After a failed write or fsync the file's tail is unknown, so the store refuses every further
 *   change (`JournalError` `failed`) until it is reopened, which repairs a torn tail as above.
 * - The directory is fsync'd at open, so a newly created journal survives a power loss.
 *
 * ## One writer
 *
 * A journal is opened once: a second open in the same process is refused at once
 * (`JournalError` `in-use`), and another process is kept out by the lock file of
 * platform/file_lock.ts (`<path>.lock`, broken when its owner died, e.g. after kill -9).
 *
 * The journal only grows (one line of about 110 bytes per presignature used); it holds no
 * secret (ids, key ids, blame data), so it is not encrypted. `purgeOtherEpochs` is not written:
 * it concerns the presignatures in memory, which a restart drops anyway, and `take` refuses a
 * presignature of another epoch whatever the store holds.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { openPresignatureJournal } from "./presignature_journal.ts";
 * import type { Presignature } from "../core/protocols/presign.ts";
 * // A presignature made by presigning (core/protocols/presign.ts) for the sha256 fast path.
 * export async function useOnceAcrossRestarts(presignature: Presignature) {
 *   const { keyId, epoch } = presignature.binding;
 *   const dir = mkdtempSync(join(tmpdir(), "journal-"));
 *   const path = join(dir, "presignatures.journal");
 *   const store = await openPresignatureJournal({ path });
 *   await store.put(presignature);
 *   const request = { keyId, epoch: epoch!, hdPath: [], hash: "sha256" } as const;
 *   const p = await store.take(presignature.id, request);
 *   await store.close();
 *   // the id is on disk now: after a restart, put / take of it are refused "presignature-used"
 *   const again = await openPresignatureJournal({ path });
 *   console.assert(await again.isUsed(presignature.id));
 *   await again.close();
 *   rmSync(dir, { recursive: true });
 *   return p;
 * }
 * ```
 * @module
 */
import * as nodeFs from "node:fs/promises";
import { dirname, resolve } from "node:path";
import {
  type KeyLock,
  MemoryPresignatureStore,
  type PresignatureRequest,
  type PresignatureStore,
} from "../core/presignature_store.ts";
import type { Presignature } from "../core/protocols/presign.ts";
import { acquireFileLock, type FileLock, LockError } from "./file_lock.ts";
import { syncDirectory } from "./keyshare_file.ts";

/**
 * The file-system calls this module makes on the journal (a subset of `node:fs/promises`).
 * Tests pass a wrapper that fails on purpose to simulate a crash mid-append.
 */
export type JournalFs = Pick<typeof nodeFs, "open">;

/** Options of {@link openPresignatureJournal}. */
export interface JournalOptions {
  /** The journal file; created (mode 0600) when missing. Its directory must exist. */
  readonly path: string;
  /** File-system implementation (default `node:fs/promises`). */
  readonly fs?: JournalFs;
  /** How long to wait for another process holding the journal (default 5000 ms). */
  readonly lockTimeoutMs?: number;
}

/** Why a journal cannot be opened or written. */
export class JournalError extends Error {
  override readonly name = "JournalError";
  /**
   * `corrupt`: a line other than a torn last one is unreadable (the file is left as it is);
   * `in-use`: the journal is open already (this process or another);
   * `failed`: an earlier write or fsync failed, reopen the journal;
   * `closed`: the store was closed.
   */
  readonly code: "corrupt" | "in-use" | "failed" | "closed";
  constructor(code: JournalError["code"], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** What replay found at open. */
export interface JournalRecovery {
  /** Events replayed. */
  readonly events: number;
  /** Bytes of a torn last line dropped (0 when the file ended cleanly). */
  readonly tornBytes: number;
}

/** A `PresignatureStore` whose used set and key locks are durable (module doc). */
export interface PresignatureJournal extends PresignatureStore {
  /** The journal file. */
  readonly path: string;
  /** Number of unused presignatures held (in memory). */
  readonly size: number;
  /** What replay found at open. */
  readonly recovery: JournalRecovery;
  /** Waits for pending writes, then closes the file and releases the lock. Idempotent. */
  close(): Promise<void>;
}

/** Journals open in this process (resolved paths). */
const OPEN = new Set<string>();

/** Longest line accepted (events are bounded far below this). */
const MAX_LINE = 16 * 1024;
const ID_PATTERN = /^([0-9a-f]{2}){16,1024}$/;

type JournalEvent =
  | { readonly v: 1; readonly event: "used"; readonly id: string }
  | { readonly v: 1; readonly event: "lock"; readonly lock: KeyLock }
  | { readonly v: 1; readonly event: "unlock"; readonly keyId: string };

function isKeyId(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= 256;
}

function exactKeys(o: object, keys: readonly string[]): boolean {
  const have = Object.keys(o);
  return have.length === keys.length && keys.every((k) => Object.hasOwn(o, k));
}

/** The lock as stored, or null when it does not have the shape `lockKey` accepts. */
function checkLock(v: unknown): KeyLock | null {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const ok = exactKeys(o, ["keyId", "protocol", "round", "culprits", "sid", "reason", "at"]) &&
    isKeyId(o.keyId) &&
    typeof o.protocol === "string" && o.protocol.length <= 64 &&
    Number.isSafeInteger(o.round) && (o.round as number) >= 0 &&
    Array.isArray(o.culprits) && o.culprits.length <= 255 &&
    o.culprits.every((j) => Number.isInteger(j) && j >= 0 && j < 256) &&
    typeof o.sid === "string" && /^[0-9a-f]{0,2048}$/.test(o.sid) &&
    typeof o.reason === "string" && o.reason.length <= 4096 &&
    typeof o.at === "number" && Number.isFinite(o.at);
  if (!ok) return null;
  const { keyId, protocol, round, culprits, sid, reason, at } = o as unknown as KeyLock;
  return { keyId, protocol, round, culprits: [...culprits], sid, reason, at };
}

/** Parses one line; null when it is not exactly one event of version 1. */
function parseEvent(line: string): JournalEvent | null {
  if (line.length > MAX_LINE) return null;
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) return null;
  const e = o as Record<string, unknown>;
  if (e.v !== 1) return null;
  if (e.event === "used" && exactKeys(e, ["v", "event", "id"])) {
    return typeof e.id === "string" && ID_PATTERN.test(e.id)
      ? { v: 1, event: "used", id: e.id }
      : null;
  }
  if (e.event === "lock" && exactKeys(e, ["v", "event", "lock"])) {
    const lock = checkLock(e.lock);
    return lock ? { v: 1, event: "lock", lock } : null;
  }
  if (e.event === "unlock" && exactKeys(e, ["v", "event", "keyId"])) {
    return isKeyId(e.keyId) ? { v: 1, event: "unlock", keyId: e.keyId } : null;
  }
  return null;
}

function errorCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e
    ? String((e as { code: unknown }).code)
    : undefined;
}

async function readAll(fh: nodeFs.FileHandle): Promise<Uint8Array> {
  const { size } = await fh.stat();
  const buf = new Uint8Array(size);
  let off = 0;
  while (off < size) {
    const { bytesRead } = await fh.read(buf, off, size - off, off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return buf.subarray(0, off);
}

async function appendAll(fh: nodeFs.FileHandle, bytes: Uint8Array): Promise<void> {
  // The file is open in append mode: every write lands at its end.
  let off = 0;
  while (off < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, off, bytes.length - off, null);
    off += bytesWritten;
  }
}

/**
 * Replays the journal into `store`; drops or terminates a torn last line (module doc).
 * @throws {JournalError} `corrupt` for any other unreadable line.
 */
async function replay(
  fh: nodeFs.FileHandle,
  path: string,
  store: MemoryPresignatureStore,
  used: Set<string>,
): Promise<JournalRecovery> {
  const bytes = await readAll(fh);
  const end = bytes.lastIndexOf(0x0a) + 1; // the end of the last complete line
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, end));
  } catch (e) {
    throw new JournalError("corrupt", `presignature journal ${path}: not UTF-8`, { cause: e });
  }
  const lines = text.split("\n");
  lines.pop(); // after the last "\n"
  const events: JournalEvent[] = [];
  for (const [k, line] of lines.entries()) {
    const event = parseEvent(line);
    if (!event) {
      throw new JournalError(
        "corrupt",
        `presignature journal ${path}: line ${k + 1} of ${lines.length} is not an event ` +
          `(expected one JSON event of version 1 per line; only a torn last line is repaired)`,
      );
    }
    events.push(event);
  }
  let tornBytes = 0;
  if (end < bytes.length) {
    const tail = bytes.subarray(end);
    let event: JournalEvent | null = null;
    try {
      event = parseEvent(new TextDecoder("utf-8", { fatal: true }).decode(tail));
    } catch {
      // not UTF-8: torn
    }
    if (event) {
      // Only the "\n" was lost: keep the event and terminate its line.
      events.push(event);
      await appendAll(fh, new Uint8Array([0x0a]));
    } else {
      tornBytes = tail.length;
      await fh.truncate(end);
    }
    await fh.sync();
  }
  for (const e of events) {
    if (e.event === "used") used.add(e.id);
    else if (e.event === "lock") await store.lockKey(e.lock);
    else await store.unlockKey(e.keyId);
  }
  return { events: events.length, tornBytes };
}

/** A waiter of the group commit. */
interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

class JournalStore implements PresignatureJournal {
  readonly path: string;
  readonly recovery: JournalRecovery;
  readonly #mem: MemoryPresignatureStore;
  readonly #fh: nodeFs.FileHandle;
  readonly #release: () => Promise<void>;
  #pending: Uint8Array[] = [];
  #waiters: Waiter[] = [];
  #writing: Promise<void> | null = null;
  #failed: JournalError | null = null;
  #closed: Promise<void> | null = null;

  constructor(
    path: string,
    mem: MemoryPresignatureStore,
    fh: nodeFs.FileHandle,
    recovery: JournalRecovery,
    release: () => Promise<void>,
  ) {
    this.path = path;
    this.#mem = mem;
    this.#fh = fh;
    this.recovery = recovery;
    this.#release = release;
  }

  get size(): number {
    return this.#mem.size;
  }

  /** The error every change gets once the store is closed or a write failed. */
  #unusable(): JournalError | null {
    if (this.#closed) return new JournalError("closed", "presignature journal: closed");
    return this.#failed;
  }

  /** Appends one event; resolves once it is on disk (fsync'd). */
  #append(event: JournalEvent): Promise<void> {
    const bad = this.#unusable();
    if (bad) return Promise.reject(bad);
    const line = new TextEncoder().encode(JSON.stringify(event) + "\n");
    return new Promise<void>((resolve, reject) => {
      this.#pending.push(line);
      this.#waiters.push({ resolve, reject });
      this.#writing ??= this.#flush();
    });
  }

  /** Writes and fsyncs batches until nothing is pending (one write in flight at a time). */
  async #flush(): Promise<void> {
    // Yield first, so that `#writing` is set before the loop can end and clear it.
    await null;
    while (this.#pending.length > 0) {
      const lines = this.#pending;
      const waiters = this.#waiters;
      this.#pending = [];
      this.#waiters = [];
      const bytes = new Uint8Array(lines.reduce((n, l) => n + l.length, 0));
      let off = 0;
      for (const l of lines) {
        bytes.set(l, off);
        off += l.length;
      }
      try {
        if (this.#failed) throw this.#failed; // never write after a torn write
        await appendAll(this.#fh, bytes);
        await this.#fh.sync();
      } catch (e) {
        this.#failed ??= new JournalError(
          "failed",
          `presignature journal ${this.path}: a write failed (${errorCode(e) ?? e}); ` +
            "reopen the journal",
          { cause: e },
        );
        for (const w of waiters) w.reject(this.#failed);
        continue; // the next batch (if any) is refused the same way
      }
      for (const w of waiters) w.resolve();
    }
    this.#writing = null;
  }

  /** Resolves once every event appended so far is on disk. */
  async #barrier(): Promise<void> {
    while (this.#writing) await this.#writing;
    if (this.#failed) throw this.#failed;
  }

  put(presignature: Presignature): Promise<void> {
    const bad = this.#unusable();
    if (bad) return Promise.reject(bad);
    if (typeof presignature?.id !== "string" || !ID_PATTERN.test(presignature.id)) {
      return Promise.reject(new TypeError("presignature: expected an id of 16-1024 hex bytes"));
    }
    return this.#mem.put(presignature);
  }

  async take(id: string, expected: PresignatureRequest): Promise<Presignature> {
    const bad = this.#unusable();
    if (bad) throw bad;
    // Checks, marks used and removes in one synchronous step (MemoryPresignatureStore.take) ...
    const p = await this.#mem.take(id, expected);
    // ... and returns the presignature only once the used id is durable. If the write fails
    // the presignature is lost, never served: safe.
    await this.#append({ v: 1, event: "used", id });
    return p;
  }

  purgeOtherEpochs(keyId: string, epoch: string): Promise<number> {
    // Presignatures are in memory only: nothing to write.
    const bad = this.#unusable();
    if (bad) return Promise.reject(bad);
    return this.#mem.purgeOtherEpochs(keyId, epoch);
  }

  isUsed(id: string): Promise<boolean> {
    return this.#mem.isUsed(id);
  }

  async lockKey(lock: KeyLock): Promise<void> {
    const bad = this.#unusable();
    if (bad) throw bad;
    const checked = checkLock(lock);
    if (!checked) throw new TypeError("expected a key lock (keyId, protocol, round, ...)");
    if (await this.#mem.keyLock(checked.keyId)) {
      await this.#barrier(); // the first lock is kept; make sure it is on disk
      return;
    }
    await this.#mem.lockKey(checked);
    await this.#append({ v: 1, event: "lock", lock: checked });
  }

  keyLock(keyId: string): Promise<KeyLock | undefined> {
    return this.#mem.keyLock(keyId);
  }

  async unlockKey(keyId: string): Promise<void> {
    const bad = this.#unusable();
    if (bad) throw bad;
    if (!isKeyId(keyId)) throw new TypeError("expected a key id of 1-256 characters");
    if (!(await this.#mem.keyLock(keyId))) {
      await this.#barrier();
      return;
    }
    await this.#mem.unlockKey(keyId);
    await this.#append({ v: 1, event: "unlock", keyId });
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        while (this.#writing) await this.#writing;
        await this.#fh.close();
      } finally {
        await this.#release();
      }
    })();
    return this.#closed;
  }
}

/**
 * Opens (or creates) a presignature journal and replays it: a `PresignatureStore` whose used set
 * and key locks survive restarts (module doc). Presignatures `put` into it live in memory only.
 *
 * @param options `path` of the journal, an injectable `fs`, `lockTimeoutMs`.
 * @returns the store; `close()` it at shutdown.
 * @throws {JournalError} `in-use` when the journal is open in this process or held by another
 *   live process; `corrupt` for an unreadable line other than a torn last one; the file-system
 *   error otherwise (e.g. ENOENT for a missing directory, EACCES).
 * @example
 * ```ts
 * import { openPresignatureJournal } from "./presignature_journal.ts";
 * const path = `/tmp/wallet-mpc-doc-journal-${crypto.randomUUID()}.jsonl`;
 * const store = await openPresignatureJournal({ path });
 * console.assert((await store.isUsed("00".repeat(32))) === false);
 * await store.close();
 * ```
 */
export async function openPresignatureJournal(
  options: JournalOptions,
): Promise<PresignatureJournal> {
  const { path } = options ?? {};
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError("expected options.path, the journal file");
  }
  const fs = options.fs ?? nodeFs;
  const key = resolve(path);
  if (OPEN.has(key)) {
    throw new JournalError(
      "in-use",
      `presignature journal ${path} is already open in this process`,
    );
  }
  OPEN.add(key);
  let lock: FileLock | undefined;
  let fh: nodeFs.FileHandle | undefined;
  try {
    try {
      lock = await acquireFileLock(key, { timeoutMs: options.lockTimeoutMs ?? 5_000 });
    } catch (e) {
      if (e instanceof LockError && e.code === "timeout") {
        throw new JournalError(
          "in-use",
          `presignature journal ${path} is open in another process (lock file ${key}.lock)`,
          { cause: e },
        );
      }
      throw e;
    }
    fh = await fs.open(key, "a+", 0o600);
    await syncDirectory(fs, dirname(key));
    const used = new Set<string>();
    const mem = new MemoryPresignatureStore({ usedLog: used });
    const recovery = await replay(fh, path, mem, used);
    const held = lock;
    const release = async () => {
      OPEN.delete(key);
      await held.release();
    };
    return new JournalStore(path, mem, fh, recovery, release);
  } catch (e) {
    await fh?.close().catch(() => {});
    await lock?.release().catch(() => {});
    OPEN.delete(key);
    throw e;
  }
}
