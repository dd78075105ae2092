/**
 * The enclave's files in S3, as the parent keeps them (docs/enclave.md, "S3 layout"):
 *
 * ```
 * <prefix>age-key.kms                     the KMS ciphertext of the age identity (the operator's)
 * <prefix>shares/CURRENT.json             { version, key, generation, sha256, previous }
 * <prefix>shares/000007-<sha256:16>.age   one object per version of the key share file
 * ```
 *
 * A new version is written under a new key that must not exist yet (`If-None-Match: *`), read
 * back and compared by SHA-256, and only then does `CURRENT.json` point at it (a conditional
 * write on the pointer's ETag, so two parents cannot both advance it from the same version).
 * The last good version is never overwritten: a failure at any step leaves the pointer on it.
 * Versions older than the newest `keep` are deleted after the pointer moved.
 *
 * @example
 * ```ts
 * import type { S3Client } from "@aws-sdk/client-s3";
 * import { createShareBucket } from "./share_bucket.ts";
 * import type { UploadReceipt } from "./share_upload.ts";
 * // Needs S3 (or a stand-in: enclave/testing/moto.ts).
 * async function publishNext(s3: S3Client, fileBytes: Uint8Array): Promise<UploadReceipt> {
 *   const bucket = createShareBucket({ s3, bucket: "b", prefix: "prod/" });
 *   const current = await bucket.current(); // null: no version yet
 *   console.log(current?.pointer.generation ?? 0);
 *   return await bucket.publish(fileBytes); // the next generation (1 on an empty bucket)
 * }
 * ```
 * @module
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { sha256 } from "@noble/hashes/sha2.js";
import { toHex } from "../core/bytes.ts";
import { MAX_FILE_BYTES } from "../core/keyshare.ts";
import type { UploadReceipt } from "./share_upload.ts";

/** `CURRENT.json`. */
export interface SharePointer {
  readonly version: 1;
  /** Object key of the current version. */
  readonly key: string;
  readonly generation: number;
  /** SHA-256 of that object, hex. */
  readonly sha256: string;
  /** Object key of the version before it, if any. */
  readonly previous: string | null;
}

/** Why the bucket refused. */
export type ShareBucketErrorCode =
  | "corrupt" // an object's digest differs from the pointer's, or a bad pointer
  | "too-large" // an object above the size bound
  | "conflict" // the version key already exists, or the pointer moved meanwhile
  | "s3"; // S3 failed (its error name is in the message)

/** A failure of the S3 layout. */
export class ShareBucketError extends Error {
  override readonly name = "ShareBucketError";
  /** Why. */
  readonly code: ShareBucketErrorCode;
  /**
   * @param code why.
   * @param message what was expected and what was got.
   */
  constructor(code: ShareBucketErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Options of {@link createShareBucket}. */
export interface ShareBucketOptions {
  /** The S3 client (credentials and region set). */
  readonly s3: S3Client;
  readonly bucket: string;
  /** Key prefix, empty or ending in "/". */
  readonly prefix: string;
  /** Versions kept (default 5, at least 2). */
  readonly keep?: number;
}

/** The enclave's files in one bucket. */
export interface ShareBucket {
  /** The age key's KMS ciphertext. */
  ageKeyCiphertext(): Promise<Uint8Array>;
  /** The current key share file and its pointer; null when there is none yet. */
  current(): Promise<{ file: Uint8Array; pointer: SharePointer } | null>;
  /** Stores a new version and moves the pointer to it (module doc). */
  publish(file: Uint8Array): Promise<UploadReceipt>;
}

const POINTER_MAX_BYTES = 4096;
const AGE_KEY_MAX_BYTES = 16 * 1024;

function s3Error(what: string, e: unknown): ShareBucketError {
  const name = (e as Error)?.name ?? "Error";
  if (name === "PreconditionFailed" || name === "ConditionalRequestConflict") {
    return new ShareBucketError("conflict", `${what}: ${name} (another writer got there first)`);
  }
  return new ShareBucketError("s3", `${what}: ${name}`);
}

const isMissing = (e: unknown) => ["NoSuchKey", "NotFound"].includes((e as Error)?.name);

/**
 * Opens the layout in a bucket.
 * @param options client, bucket, prefix, versions kept.
 * @returns the bucket's operations.
 */
export function createShareBucket(options: ShareBucketOptions): ShareBucket {
  const { s3, bucket, prefix } = options;
  if (prefix !== "" && !prefix.endsWith("/")) {
    throw new RangeError(`prefix: expected "" or a prefix ending in "/", got "${prefix}"`);
  }
  const keep = options.keep ?? 5;
  if (!Number.isSafeInteger(keep) || keep < 2) {
    throw new RangeError(`keep: expected an integer >= 2, got ${String(keep)}`);
  }
  const pointerKey = `${prefix}shares/CURRENT.json`;
  const versionKey = /shares\/(\d{6,})-[0-9a-f]{16}\.age$/;

  async function get(key: string, max: number): Promise<{ bytes: Uint8Array; etag?: string }> {
    let out;
    try {
      out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    } catch (e) {
      if (isMissing(e)) throw e;
      throw s3Error(`get ${key}`, e);
    }
    if ((out.ContentLength ?? 0) > max) {
      throw new ShareBucketError("too-large", `${key}: ${out.ContentLength} bytes, at most ${max}`);
    }
    const bytes = await out.Body!.transformToByteArray();
    if (bytes.length > max) {
      throw new ShareBucketError("too-large", `${key}: ${bytes.length} bytes, at most ${max}`);
    }
    return { bytes, etag: out.ETag };
  }

  async function pointer(): Promise<{ p: SharePointer; etag?: string } | null> {
    let got;
    try {
      got = await get(pointerKey, POINTER_MAX_BYTES);
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
    let p: SharePointer;
    try {
      p = JSON.parse(new TextDecoder().decode(got.bytes));
    } catch {
      throw new ShareBucketError("corrupt", `${pointerKey}: not JSON`);
    }
    if (
      p?.version !== 1 || typeof p.key !== "string" || !p.key.startsWith(`${prefix}shares/`) ||
      !Number.isSafeInteger(p.generation) || p.generation < 1 ||
      typeof p.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(p.sha256)
    ) {
      throw new ShareBucketError("corrupt", `${pointerKey}: not a version 1 pointer`);
    }
    return { p, etag: got.etag };
  }

  return {
    async ageKeyCiphertext() {
      try {
        return (await get(`${prefix}age-key.kms`, AGE_KEY_MAX_BYTES)).bytes;
      } catch (e) {
        if (isMissing(e)) throw new ShareBucketError("s3", `${prefix}age-key.kms: NoSuchKey`);
        throw e;
      }
    },

    async current() {
      const cur = await pointer();
      if (!cur) return null;
      let file: Uint8Array;
      try {
        file = (await get(cur.p.key, MAX_FILE_BYTES)).bytes;
      } catch (e) {
        if (isMissing(e)) {
          throw new ShareBucketError("corrupt", `${cur.p.key} (named by the pointer) is missing`);
        }
        throw e;
      }
      if (toHex(sha256(file)) !== cur.p.sha256) {
        throw new ShareBucketError("corrupt", `${cur.p.key}: its SHA-256 is not the pointer's`);
      }
      return { file, pointer: cur.p };
    },

    async publish(file) {
      if (file.length > MAX_FILE_BYTES) {
        throw new ShareBucketError("too-large", `key share file: ${file.length} bytes`);
      }
      const digest = toHex(sha256(file));
      const cur = await pointer();
      const generation = (cur?.p.generation ?? 0) + 1;
      const key = `${prefix}shares/${String(generation).padStart(6, "0")}-${
        digest.slice(0, 16)
      }.age`;
      try {
        await s3.send(
          new PutObjectCommand({ Bucket: bucket, Key: key, Body: file, IfNoneMatch: "*" }),
        );
      } catch (e) {
        throw s3Error(`put ${key}`, e);
      }
      const back = await get(key, MAX_FILE_BYTES);
      if (toHex(sha256(back.bytes)) !== digest) {
        throw new ShareBucketError("corrupt", `${key}: read back with another SHA-256`);
      }
      const next: SharePointer = {
        version: 1,
        key,
        generation,
        sha256: digest,
        previous: cur?.p.key ?? null,
      };
      try {
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: pointerKey,
            Body: JSON.stringify(next),
            ContentType: "application/json",
            ...(cur ? { IfMatch: cur.etag } : { IfNoneMatch: "*" }),
          }),
        );
      } catch (e) {
        throw s3Error(`put ${pointerKey}`, e);
      }
      await prune(generation).catch(() => {}); // old versions stay on a failure; no harm
      return { ok: true, key, generation, sha256: digest };
    },
  };

  /** Deletes versions older than the newest `keep`. */
  async function prune(generation: number): Promise<void> {
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: `${prefix}shares/`,
          ContinuationToken: token,
        }),
      );
      for (const o of page.Contents ?? []) {
        const m = o.Key ? versionKey.exec(o.Key) : null;
        if (m && Number(m[1]) <= generation - keep) {
          await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}
