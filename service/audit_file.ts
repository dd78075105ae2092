/**
 * An append-only file writer for the audit log (Node and Deno, through `node:fs/promises`):
 * the `write` function of `createAuditLog` (audit.ts). The file is opened once, in append mode
 * with permissions 0o600 when created; lines are written one at a time in call order, each
 * followed by a newline and, when asked, an fsync. A failed write rejects its own promise only:
 * later lines are still attempted.
 *
 * At start, {@link recoverAuditFile} closes what a dead process left open: an `interrupted`
 * record for every session whose write-ahead `started` record has no end (audit.ts), then a
 * `service_start` record.
 *
 * @example
 * ```ts
 * import { openAuditFile } from "./audit_file.ts";
 * import { createAuditLog } from "./audit.ts";
 * const file = await openAuditFile("/tmp/wallet-mpc-audit-example.jsonl");
 * const audit = createAuditLog({ write: file.write });
 * await audit.record({ caller: null, action: "sign", account: "a", outcome: "denied", durationMs: 0 });
 * await file.close();
 * ```
 * @module
 */

import * as nodeFs from "node:fs/promises";
import { type AuditLog, findInterrupted, SERVICE_START_ACTION } from "./audit.ts";

/** The file-system call this module makes (tests inject failures). */
export type AuditFs = Pick<typeof nodeFs, "open">;

/** Options of {@link openAuditFile}. */
export interface AuditFileOptions {
  /** fsync after every line (default false). */
  readonly fsync?: boolean;
  /** Permission bits when the file is created (default 0o600). */
  readonly mode?: number;
  /** File-system implementation (default `node:fs/promises`). */
  readonly fs?: AuditFs;
}

/** An open audit file. */
export interface AuditFile {
  /**
   * Appends `line` and a newline (and fsyncs when configured), after every earlier line.
   *
   * @throws {TypeError} when `line` is not a one-line string.
   * @throws the file-system error of this write; `Error` after `close`.
   */
  write(line: string): Promise<void>;
  /** Waits for pending lines, then closes the file (later writes reject). */
  close(): Promise<void>;
}

/**
 * Opens (or creates) an audit file for appending.
 *
 * @param path the file; its directory must exist.
 * @param options `fsync`, `mode`, and an injectable `fs`.
 * @returns the writer; `write` is bound, pass it as is.
 * @throws the file-system error when the file cannot be opened (fail at start, not at the first
 *   request).
 * @example
 * ```ts
 * import { openAuditFile } from "./audit_file.ts";
 * const file = await openAuditFile("/tmp/wallet-mpc-audit-example.jsonl", { fsync: true });
 * await file.write('{"type":"audit"}');
 * await file.close();
 * ```
 */
export async function openAuditFile(
  path: string,
  options: AuditFileOptions = {},
): Promise<AuditFile> {
  const fs = options.fs ?? nodeFs;
  const fh = await fs.open(path, "a", options.mode ?? 0o600);
  const fsync = options.fsync ?? false;
  const encoder = new TextEncoder();
  // A process that died in the middle of a line left it without its newline: end it first, so
  // the next record is a line of its own.
  let tail: Promise<unknown> = endsCut(fs, path)
    .then((cut) => (cut ? append(encoder.encode("\n")) : undefined))
    .catch(() => {});
  let closed = false;

  async function append(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
      if (bytesWritten <= 0) throw new Error("audit file: write made no progress");
      off += bytesWritten;
    }
    if (fsync) await fh.sync();
  }

  function write(line: string): Promise<void> {
    if (typeof line !== "string" || /[\r\n]/.test(line)) {
      return Promise.reject(new TypeError("audit file: expected one line of text"));
    }
    if (closed) return Promise.reject(new Error("audit file: closed"));
    const bytes = encoder.encode(`${line}\n`);
    const done = tail.then(() => append(bytes));
    tail = done.catch(() => {});
    return done;
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    await tail;
    await fh.close();
  }

  return { write, close };
}

/** Whether a file is not empty and does not end with a newline. */
async function endsCut(fs: AuditFs, path: string): Promise<boolean> {
  const fh = await fs.open(path, "r");
  try {
    const { size } = await fh.stat();
    if (size === 0) return false;
    const last = new Uint8Array(1);
    await fh.read(last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    await fh.close();
  }
}

/** Options of {@link recoverAuditFile}. */
export interface RecoverOptions {
  /**
   * Bytes read back from the end at most, looking for the last `service_start`, rounded up to
   * whole 64 KiB blocks (default 64 MiB).
   */
  readonly maxBytes?: number;
  /** Milliseconds since the epoch (default `Date.now`). */
  readonly clock?: () => number;
  readonly fs?: Pick<typeof nodeFs, "open">;
}

/**
 * The lines of an audit file after its last `service_start` record (all of them when it has
 * none), read backwards from the end in blocks, at most `maxBytes`: a long log costs what its
 * last run wrote, not its size.
 *
 * @param path the audit file (missing: no lines).
 * @param options the read bound and the file system.
 * @returns the lines, oldest first (a line cut by the bound is left out).
 * @throws the file-system error of a file that exists but cannot be read.
 */
export async function readSinceLastStart(
  path: string,
  options: Pick<RecoverOptions, "maxBytes" | "fs"> = {},
): Promise<string[]> {
  const fs = options.fs ?? nodeFs;
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  let fh;
  try {
    fh = await fs.open(path, "r");
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return [];
    throw e;
  }
  try {
    const { size } = await fh.stat();
    const lines: string[] = [];
    const decoder = new TextDecoder();
    let pos = size;
    let carry = new Uint8Array(0);
    const block = 64 * 1024;
    while (pos > 0 && size - pos < maxBytes) {
      const len = Math.min(block, pos);
      pos -= len;
      const buf = new Uint8Array(len + carry.length);
      const { bytesRead } = await fh.read(buf, 0, len, pos);
      if (bytesRead !== len) throw new Error("audit file: short read");
      buf.set(carry, len);
      // Every complete line after the first newline of the block; the rest waits for more.
      let end = buf.length;
      for (let k = buf.length - 1; k >= 0; k--) {
        if (buf[k] !== 0x0a) continue;
        const line = decoder.decode(buf.subarray(k + 1, end));
        end = k;
        if (line === "") continue;
        if (isServiceStart(line)) return lines.reverse();
        lines.push(line);
      }
      carry = buf.slice(0, end);
    }
    if (pos === 0 && carry.length > 0) {
      const line = decoder.decode(carry);
      if (!isServiceStart(line)) lines.push(line);
    }
    return lines.reverse();
  } finally {
    await fh.close();
  }
}

function isServiceStart(line: string): boolean {
  if (!line.includes(SERVICE_START_ACTION)) return false;
  try {
    return JSON.parse(line).action === SERVICE_START_ACTION;
  } catch {
    return false;
  }
}

/**
 * Closes what a dead process left open in an audit file, before the service takes requests:
 * appends an `interrupted` record for every session of the last run whose `started` record has
 * no end, then a `service_start` record (audit.ts, "Write-ahead records of sessions").
 *
 * @param path the audit file.
 * @param log the audit log writing to it (opened on `path`).
 * @param options the read bound, clock and file system.
 * @returns the interrupted sessions recorded.
 * @throws the file-system errors of reading or writing.
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { openAuditFile, recoverAuditFile } from "./audit_file.ts";
 * import { createAuditLog } from "./audit.ts";
 * const dir = mkdtempSync(join(tmpdir(), "audit-"));
 * const path = join(dir, "audit.jsonl");
 * const file = await openAuditFile(path);
 * const audit = createAuditLog({ write: file.write });
 * const interrupted = await recoverAuditFile(path, audit); // at the service's start
 * console.assert(interrupted === 0); // a new file: no session left open
 * await file.close();
 * rmSync(dir, { recursive: true });
 * ```
 */
export async function recoverAuditFile(
  path: string,
  log: AuditLog,
  options: RecoverOptions = {},
): Promise<number> {
  const clock = options.clock ?? Date.now;
  const open = findInterrupted(await readSinceLastStart(path, options), clock());
  for (const r of open) await log.record(r);
  await log.record({
    caller: null,
    action: SERVICE_START_ACTION,
    account: null,
    outcome: "ok",
    durationMs: 0,
  });
  return open.length;
}
