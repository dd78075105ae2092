/**
 * New key share files leave the enclave through the parent: after a key generation or a refresh
 * the enclave's key store writes its whole file again (age-encrypted, docs/enclave.md "Keys"),
 * and before that write takes effect the file is handed to the parent on vsock port 7103, which
 * stores it in S3 as a new version and answers with a receipt. Only then is the write renamed
 * into place in the enclave, so the enclave's state is never ahead of S3: a pending epoch is
 * "stored durably" (docs/key-lifecycle.md) once S3 holds it.
 *
 * - enclave side: {@link createShareUploader} and {@link uploadingFs}, the file-system wrapper
 *   given to the key store (`openKeyStore({ fs })`) whose `rename` uploads the new file first;
 * - parent side: {@link serveShareUploads}.
 *
 * One frame each way (framing.ts): `share-upload` (the file), then `upload-result` (JSON
 * {@link UploadReceipt} or `{ ok: false, error }`). The receipt's SHA-256 must be the file's.
 * The parent is not trusted: a receipt it lies about can lose an update (a denial of service,
 * or a rollback at the next boot), never disclose a share.
 *
 * @module
 */
import * as nodeFs from "node:fs/promises";
import { sha256 } from "@noble/hashes/sha2.js";
import type { KeyShareFs } from "../platform/keyshare_file.ts";
import { acceptEach, closeQuietly } from "./channel.ts";
import { encodeFrame, FramingError, readFrame, writeAll } from "./framing.ts";
import { toHex } from "../core/bytes.ts";

/** What the parent answers once a file is stored (S3 object, generation, digest). */
export interface UploadReceipt {
  readonly ok: true;
  /** The object key of this version. */
  readonly key: string;
  /** Its generation (1, 2, ...). */
  readonly generation: number;
  /** SHA-256 of the file, hex. */
  readonly sha256: string;
}

/** Uploads one file and returns the parent's receipt. */
export interface ShareUploader {
  /**
   * @param file the whole key share file (age-encrypted).
   * @returns the receipt, checked against the file's digest.
   * @throws {FramingError} when the parent refused, failed, timed out or lied about the digest.
   */
  upload(file: Uint8Array): Promise<UploadReceipt>;
}

function parseReceipt(payload: Uint8Array): UploadReceipt | { ok: false; error: string } {
  let o: unknown;
  try {
    o = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    throw new FramingError("malformed", "upload-result: not JSON");
  }
  const r = o as Record<string, unknown>;
  if (r?.ok === false && typeof r.error === "string") return { ok: false, error: r.error };
  if (
    r?.ok !== true || typeof r.key !== "string" || !Number.isSafeInteger(r.generation) ||
    typeof r.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(r.sha256)
  ) {
    throw new FramingError("malformed", "upload-result: expected { ok, key, generation, sha256 }");
  }
  return { ok: true, key: r.key, generation: r.generation as number, sha256: r.sha256 };
}

/**
 * The enclave's uploader.
 * @param options `connect` opens a connection to the parent's upload port; `timeoutMs` bounds
 *   one upload from the connection to the receipt (default 60 s).
 * @returns the uploader.
 */
export function createShareUploader(options: {
  readonly connect: () => Promise<Deno.Conn>;
  readonly timeoutMs?: number;
}): ShareUploader {
  const ms = options.timeoutMs ?? 60_000;
  return {
    async upload(file) {
      let conn: Deno.Conn;
      try {
        conn = await options.connect();
      } catch (e) {
        throw new FramingError(
          "refused",
          `share upload: cannot reach the parent (${(e as Error)?.name})`,
        );
      }
      try {
        await writeAll(conn, encodeFrame("share-upload", file));
        await conn.closeWrite();
        const r = parseReceipt(
          await readFrame(conn, { kind: "upload-result", timeoutMs: ms, what: "share upload" }),
        );
        if (!r.ok) {
          throw new FramingError("refused", `share upload: the parent failed (${r.error})`);
        }
        if (r.sha256 !== toHex(sha256(file))) {
          throw new FramingError("malformed", "share upload: the receipt names another file");
        }
        return r;
      } finally {
        closeQuietly(conn);
      }
    },
  };
}

/**
 * A file-system wrapper for the key store: `rename(temp, target)` uploads the temp file's bytes
 * first and renames only once the parent's receipt came; a failed upload fails the write (the
 * key store then leaves its state and file as they were).
 * @param uploader the uploader.
 * @param onUploaded told of each receipt (for the log).
 * @param base the file system underneath (default `node:fs/promises`).
 * @returns the wrapper.
 */
export function uploadingFs(
  uploader: ShareUploader,
  onUploaded: (r: UploadReceipt) => void = () => {},
  base: KeyShareFs = nodeFs,
): KeyShareFs {
  return {
    open: base.open,
    unlink: base.unlink,
    rename: async (from, to) => {
      const bytes = new Uint8Array(await nodeFs.readFile(from));
      onUploaded(await uploader.upload(bytes));
      await base.rename(from, to);
    },
  };
}

/**
 * The parent's side: answers each upload on `listener` with `publish`'s receipt, or with
 * `{ ok: false, error }` naming the error (never its details) when it fails.
 * @param listener the upload port's listener.
 * @param publish stores a file (S3, share_bucket.ts) and returns its receipt.
 * @param onError told of each failed upload.
 * @returns when the listener is closed.
 */
export async function serveShareUploads(
  listener: Deno.Listener,
  publish: (file: Uint8Array) => Promise<UploadReceipt>,
  onError: (e: unknown) => void = () => {},
): Promise<void> {
  const handle = async (conn: Deno.Conn) => {
    try {
      const file = await readFrame(conn, { kind: "share-upload", what: "share upload" });
      let answer: UploadReceipt | { ok: false; error: string };
      try {
        answer = await publish(file);
      } catch (e) {
        onError(e);
        answer = { ok: false, error: (e as Error)?.name ?? "Error" };
      }
      await writeAll(
        conn,
        encodeFrame("upload-result", new TextEncoder().encode(JSON.stringify(answer))),
      );
    } catch (e) {
      onError(e);
    } finally {
      closeQuietly(conn);
    }
  };
  await acceptEach(listener, (conn) => void handle(conn));
}
