/**
 * An append-only file writer for the audit log (Node and Deno, through `node:fs/promises`):
 * the `write` function of `createAuditLog` (audit.ts). The file is opened once, in append mode
 * with permissions 0o600 when created; lines are written one at a time in call order, each
 * followed by a newline and, when asked, an fsync. A failed write rejects its own promise only:
 * later lines are still attempted.
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
  let tail: Promise<unknown> = Promise.resolve();
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
