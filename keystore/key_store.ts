/**
 * The key store of the client and of the service: one age-encrypted key share file of
 * epoch-versioned account records (core/account_records.ts; the container is `age_file.ts`),
 * held in memory after a validated load.
 *
 * ## One writer
 *
 * Every write is a read-modify-write under the exclusive lock of the file across processes
 * (platform/file_lock.ts: lock file with owner pid, stale-lock recovery): take the lock, read the
 * file again when it changed since this process last saw it, apply the change to what is on
 * disk, write it whole and atomically (temp, fsync, rename, directory fsync), release. So two
 * processes on one file (a keygen of one account while another is refreshed) never lose each
 * other's update. Temp files of a writer that crashed are removed at open, under the lock.
 *
 * ## Accounts and epochs
 *
 * `accounts()` / `get()` show COMMITTED accounts and their current epoch; `record()` shows every
 * epoch, pending ones too; `uncommitted()` lists accounts whose key generation never committed.
 * Lifecycle steps (stage a pending epoch, promote, discard) are `update(id, f)` with the pure
 * transitions of core/account_records.ts; `put` adds a committed account made offline.
 *
 * ## Errors
 *
 * Container problems are {@link KeyStoreError}s (`age_file.ts`), plus `locked` when another
 * process holds the lock past the timeout; contents that fail validation are `InvalidKeyShare`;
 * lifecycle refusals are `KeyEpochError`. Messages never hold a secret.
 *
 * @example
 * ```ts
 * import { generateAgeIdentity } from "./age_file.ts";
 * import { openKeyStore } from "./key_store.ts";
 * const { identity } = await generateAgeIdentity();
 * const store = await openKeyStore({
 *   path: "/tmp/wallet-mpc-key-store-example.age",
 *   decryptor: { identity },
 *   partyIndex: 1,
 *   allowMissing: true,
 * });
 * console.assert(store.accounts().length === 0);
 * ```
 * @module
 */
import * as nodeFs from "node:fs/promises";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  type AccountRecord,
  currentEntry,
  currentEpoch,
  decodeAccountRecords,
  encodeAccountRecords,
  fromEntry,
} from "../core/account_records.ts";
import { toHex } from "../core/bytes.ts";
import { InvalidKeyShare } from "../core/errors.ts";
import { ACCOUNT_ID_PATTERN, type AccountEntry, MAX_FILE_BYTES } from "../core/keyshare.ts";
import { acquireFileLock, LockError } from "../platform/file_lock.ts";
import {
  type KeyShareFs,
  readKeyShareFile,
  removeStaleTemps,
  writeKeyShareFileAtomic,
} from "../platform/keyshare_file.ts";
import {
  ageRecipientOf,
  checkWorkFactor,
  decryptKeyShareFileBytes,
  type Decryptor,
  DEFAULT_SCRYPT_WORK_FACTOR,
  detectKeyShareFileFormat,
  encryptKeyShareFileBytes,
  type EncryptTo,
  type KeyShareFileFormat,
  RECIPIENT,
} from "./age_file.ts";
import { KeyStoreError } from "./errors.ts";

// The container's functions, for callers that import the store's module only.
export {
  ageRecipientOf,
  decryptKeyShareFileBytes,
  type Decryptor,
  detectKeyShareFileFormat,
  encryptKeyShareFileBytes,
  type EncryptTo,
  generateAgeIdentity,
  type KeyShareFileFormat,
  parseAgeIdentityFile,
  resolveDecryptor,
} from "./age_file.ts";

/** One account's committed entry: its key share and pinned identity keys (core/keyshare.ts). */
export type KeyStoreEntry = AccountEntry;

/** Named points of a write where a test may crash the process (docs/key-lifecycle.md). */
export type KeyStoreCrashPoint = "keystore:before-rename" | "keystore:after-rename";

/** Options of {@link openKeyStore}. */
export interface KeyStoreOptions {
  /** The key share file. */
  readonly path: string;
  /** How to open it (age_file.ts). */
  readonly decryptor: Decryptor;
  /** This party's index: every share must have it (`key_share.i`). */
  readonly partyIndex: number;
  /** When set, every share must have this many parties (`key_share.n`). */
  readonly parties?: number;
  /** Accept a plaintext file although a key is configured (migration; writes encrypt). */
  readonly allowPlaintext?: boolean;
  /** A missing file opens an empty store; the first write creates it (default false). */
  readonly allowMissing?: boolean;
  /** Identity mode: more recipients every write is also encrypted to (a backup key). */
  readonly recipients?: readonly string[];
  /** Passphrase mode: scrypt work factor of writes (default 18; at most 20). */
  readonly scryptWorkFactor?: number;
  /** Write ASCII armor (default: as the file was read; binary for a new or plaintext file). */
  readonly armor?: boolean;
  /** Largest file read or written, in bytes (default `MAX_FILE_BYTES`, 64 MiB). */
  readonly maxBytes?: number;
  /** How long a write waits for another process's lock (default 30 s). */
  readonly lockTimeoutMs?: number;
  /** File-system implementation for reads and atomic writes (default `node:fs/promises`). */
  readonly fs?: KeyShareFs;
  /** Test hook: called at the named points of every write (never set from the network). */
  readonly crashPoint?: (point: KeyStoreCrashPoint) => void | Promise<void>;
  /**
   * Accept a file of the formats without record MACs (versions 1 and 2) and rewrite it at once
   * in the current format, with MACs (`deno task admin key-file migrate`). Off by default: such
   * a file is refused (`legacy-format`), because anyone able to write the file could otherwise
   * swap in a file without MACs.
   */
  readonly migrateLegacy?: boolean;
}

/** An open key store. Reads are synchronous (memory); writes persist before they take effect. */
export interface KeyStore {
  /** The file. */
  readonly path: string;
  /** The format the file has on disk now; null while it does not exist (`allowMissing`). */
  format(): KeyShareFileFormat | null;
  /** Committed account ids (a current epoch), sorted. */
  accounts(): string[];
  /** Accounts whose key generation never committed (only a pending epoch), sorted. */
  uncommitted(): string[];
  /** Whether a committed account is stored. */
  has(accountId: string): boolean;
  /** A committed account's current entry, or undefined. */
  get(accountId: string): KeyStoreEntry | undefined;
  /** Every epoch of an account (pending ones too), or undefined. */
  record(accountId: string): AccountRecord | undefined;
  /** Reads the file again when another process changed it. */
  reload(): Promise<void>;
  /**
   * Adds a committed account made offline (one current epoch of kind `import`).
   * @throws {KeyStoreError} `account-exists`, `wrong-party`, `too-large`, `io`, `locked`.
   * @throws {InvalidKeyShare} when the entry fails validation.
   */
  put(accountId: string, entry: KeyStoreEntry): Promise<void>;
  /**
   * Read-modify-write of one account under the file's lock: `f` gets the account's record as it
   * is on disk now (undefined when absent) and returns the new one (undefined deletes it). The
   * result is validated like a load before it is written.
   * @returns the record now stored.
   * @throws what `f` throws (nothing is written then); as `put`.
   */
  update(
    accountId: string,
    f: (rec: AccountRecord | undefined) => AccountRecord | undefined,
  ): Promise<AccountRecord | undefined>;
}

/** Checks every share's party index and count. */
function checkParty(
  records: ReadonlyMap<string, AccountRecord>,
  partyIndex: number,
  parties: number | undefined,
): void {
  for (const [id, rec] of records) {
    for (const { keyShare } of rec.epochs) {
      if (keyShare.i !== partyIndex) {
        throw new KeyStoreError(
          "wrong-party",
          `account "${id}": expected a share of party ${partyIndex} (server.index), got party ${keyShare.i}`,
        );
      }
      if (parties !== undefined && keyShare.n !== parties) {
        throw new KeyStoreError(
          "wrong-party",
          `account "${id}": expected a share of ${parties} parties, got ${keyShare.n}`,
        );
      }
    }
  }
}

function fsError(path: string, what: string, cause: unknown): KeyStoreError {
  if (cause instanceof KeyStoreError) return cause;
  if (cause instanceof LockError) {
    return new KeyStoreError(cause.code === "timeout" ? "locked" : "io", cause.message, { cause });
  }
  const code = (cause as { code?: unknown })?.code;
  if (code === "ENOENT" || (cause as { name?: unknown })?.name === "NotFound") {
    return new KeyStoreError("not-found", `key share file ${path}: not found`, { cause });
  }
  return new KeyStoreError(
    "io",
    `key share file ${path}: ${what} failed (${typeof code === "string" ? code : "error"})`,
    { cause },
  );
}

/** The target of writes, checked before anything is read. */
async function encryptionTarget(options: KeyStoreOptions): Promise<EncryptTo | null> {
  const { decryptor } = options;
  if ("identity" in decryptor) {
    const own = await ageRecipientOf(decryptor.identity);
    const extra = options.recipients ?? [];
    for (const r of extra) {
      if (typeof r !== "string" || !RECIPIENT.test(r)) {
        throw new KeyStoreError("bad-key", "recipients: expected age recipients (age1...)");
      }
    }
    return { recipients: [own, ...extra.filter((r) => r !== own)] };
  }
  if ("passphrase" in decryptor) {
    if (typeof decryptor.passphrase !== "string" || decryptor.passphrase === "") {
      throw new KeyStoreError("bad-key", "key share file: expected a non-empty passphrase");
    }
    if ((options.recipients ?? []).length > 0) {
      throw new KeyStoreError("bad-key", "recipients: age cannot mix recipients and a passphrase");
    }
    const logN = checkWorkFactor(options.scryptWorkFactor ?? DEFAULT_SCRYPT_WORK_FACTOR);
    return { passphrase: decryptor.passphrase, scryptWorkFactor: logN };
  }
  if ("plaintext" in decryptor && decryptor.plaintext === true) return null;
  throw new TypeError("decryptor: expected { identity }, { passphrase } or { plaintext: true }");
}

/**
 * Opens a key store: removes temp files of crashed writers, reads the file, decrypts it,
 * validates every record and checks every share's party index (module doc).
 *
 * @param options path, decryptor, party index and the options of {@link KeyStoreOptions}.
 * @returns the store.
 * @throws {KeyStoreError} see the module doc; `not-found` for a missing file unless
 *   `allowMissing`.
 * @throws {InvalidKeyShare} when the decrypted contents fail validation.
 * @example
 * ```ts
 * import { openKeyStore } from "./key_store.ts";
 * try {
 *   await openKeyStore({ path: "/nonexistent/keys.age", decryptor: { passphrase: "p" }, partyIndex: 1 });
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "not-found");
 * }
 * ```
 */
export async function openKeyStore(options: KeyStoreOptions): Promise<KeyStore> {
  const { path, decryptor, partyIndex, parties } = options;
  if (typeof path !== "string" || path === "") throw new TypeError("path: expected a file path");
  if (!Number.isSafeInteger(partyIndex) || partyIndex < 0) {
    throw new RangeError(`partyIndex: expected an integer >= 0, got ${String(partyIndex)}`);
  }
  if (parties !== undefined && (!Number.isSafeInteger(parties) || parties <= partyIndex)) {
    throw new RangeError(`parties: expected an integer above partyIndex, got ${String(parties)}`);
  }
  const maxBytes = options.maxBytes ?? MAX_FILE_BYTES;
  const to = await encryptionTarget(options);

  /** What this process last saw on disk: the digest of the file's bytes (null: no file). */
  let seen: string | null | undefined;
  /** Whether the file last read had no record MACs (read only under `migrateLegacy`). */
  let legacy = false;
  /** The records of the file last read, validated, by id and JSON (decodeAccountRecords memo). */
  let validated = new Map<string, AccountRecord>();
  let records = new Map<string, AccountRecord>();
  let onDisk: KeyShareFileFormat | null = null;

  const lock = async () => {
    try {
      return await acquireFileLock(path, { timeoutMs: options.lockTimeoutMs });
    } catch (e) {
      const cause = (e as { cause?: { code?: unknown } }).cause;
      if (cause?.code === "ENOENT") {
        throw new KeyStoreError(
          "not-found",
          `key share file ${path}: its directory does not exist`,
        );
      }
      throw fsError(path, "lock", e);
    }
  };

  /** Reads the file; decodes it again only when its bytes changed. */
  async function refresh(missingOk: boolean): Promise<void> {
    let bytes: Uint8Array | null = null;
    try {
      bytes = await readKeyShareFile(path, { maxBytes, fs: options.fs });
    } catch (e) {
      if (e instanceof InvalidKeyShare) {
        throw new KeyStoreError(
          "too-large",
          `key share file ${path}: larger than ${maxBytes} bytes`,
        );
      }
      const err = fsError(path, "read", e);
      if (!(err.code === "not-found" && missingOk)) throw err;
    }
    const digest = bytes === null ? null : toHex(sha256(bytes));
    if (digest === seen) return;
    if (bytes === null) {
      records = new Map();
      onDisk = null;
      seen = null;
      return;
    }
    const plain = await decryptKeyShareFileBytes(bytes, decryptor, {
      allowPlaintext: options.allowPlaintext,
    });
    try {
      let next: Map<string, AccountRecord>;
      // Records unchanged since the last read are not validated again (their checks cost
      // exponentiations); the memo keeps only the records of the file last read.
      const used = new Map<string, AccountRecord>();
      const memo = {
        get: (k: string) => {
          const r = validated.get(k);
          if (r) used.set(k, r);
          return r;
        },
        set: (k: string, r: AccountRecord) => void used.set(k, r),
      };
      try {
        next = decodeAccountRecords(plain, { maxBytes, requireMac: true, memo });
        validated = used;
        legacy = false;
      } catch (e) {
        if (!(e instanceof InvalidKeyShare && e.code === "legacy-format")) throw e;
        if (!options.migrateLegacy) {
          throw new KeyStoreError(
            "legacy-format",
            `key share file ${path}: ${e.message} (a file of an earlier release): check that ` +
              "it is yours, then run `deno task admin key-file migrate` on it once",
          );
        }
        next = decodeAccountRecords(plain, { maxBytes });
        legacy = true;
      }
      checkParty(next, partyIndex, parties);
      records = next;
    } finally {
      plain.fill(0);
    }
    onDisk = detectKeyShareFileFormat(bytes);
    seen = digest;
  }

  // Temp files of a crashed writer go first, under the lock (a live writer holds it).
  const l = await lock();
  try {
    await removeStaleTemps(path).catch((e) => {
      throw fsError(path, "cleanup", e);
    });
    await refresh(options.allowMissing === true);
  } finally {
    await l.release();
  }
  const writeFormat = (): KeyShareFileFormat =>
    to === null ? "plaintext" : (options.armor ?? onDisk === "age-armor") ? "age-armor" : "age";

  const crash = options.crashPoint;
  const baseFs: KeyShareFs = options.fs ?? nodeFs;
  const writeFs: KeyShareFs = crash
    ? {
      open: baseFs.open,
      unlink: baseFs.unlink,
      rename: async (from, to) => {
        await crash("keystore:before-rename");
        await baseFs.rename(from, to);
        await crash("keystore:after-rename");
      },
    }
    : baseFs;

  async function persist(next: Map<string, AccountRecord>): Promise<void> {
    const format = writeFormat();
    const text = encodeAccountRecords(next);
    const plain = new TextEncoder().encode(text);
    let out: Uint8Array;
    try {
      out = to === null
        ? plain
        : await encryptKeyShareFileBytes(plain, to, { armor: format === "age-armor" });
    } finally {
      if (to !== null) plain.fill(0);
    }
    if (out.length > maxBytes) {
      throw new KeyStoreError(
        "too-large",
        `key share file ${path}: would grow to ${out.length} bytes, above ${maxBytes}`,
      );
    }
    try {
      await writeKeyShareFileAtomic(path, out, { fs: writeFs });
    } catch (e) {
      throw fsError(path, "write", e);
    }
    records = next; // only once the file holds it
    onDisk = format;
    seen = toHex(sha256(out));
    legacy = false; // written in the current format
    // What was written is valid: a later re-read need not check these records again.
    const written = JSON.parse(text).accounts as Record<string, unknown>;
    validated = new Map(
      [...next].map(([id, rec]) => [`${id}\n${JSON.stringify(written[id])}`, rec]),
    );
  }

  let tail: Promise<unknown> = Promise.resolve();
  /** Runs `f` after every earlier write of this process, under the file's lock. */
  function locked<T>(f: () => Promise<T>): Promise<T> {
    const run = tail.then(async () => {
      const held = await lock();
      try {
        await refresh(true);
        const out = await f();
        return out;
      } finally {
        await held.release();
      }
    });
    tail = run.catch(() => {});
    return run;
  }

  function checkId(accountId: string): void {
    if (typeof accountId !== "string" || !ACCOUNT_ID_PATTERN.test(accountId)) {
      throw new InvalidKeyShare(
        "malformed",
        `account id does not match ${ACCOUNT_ID_PATTERN.source}`,
      );
    }
  }

  /** Validates one record as a load would, and returns the decoded (fresh) copy. */
  function checkRecord(accountId: string, rec: AccountRecord): AccountRecord {
    // The size cap applies to the whole file, in `persist`.
    const decoded = decodeAccountRecords(encodeAccountRecords(new Map([[accountId, rec]])));
    checkParty(decoded, partyIndex, parties);
    return decoded.get(accountId) as AccountRecord;
  }

  function update(
    accountId: string,
    f: (rec: AccountRecord | undefined) => AccountRecord | undefined,
  ): Promise<AccountRecord | undefined> {
    return locked(async () => {
      checkId(accountId);
      const before = records.get(accountId);
      const after = f(before);
      if (after === before) return before;
      const next = new Map(records);
      if (after === undefined) next.delete(accountId);
      else next.set(accountId, checkRecord(accountId, after));
      await persist(next);
      return next.get(accountId);
    });
  }

  // A legacy file opened for migration is rewritten now, with MACs (and stays so).
  if (legacy) await locked(() => legacy ? persist(new Map(records)) : Promise.resolve());

  const committed = (rec: AccountRecord) => currentEpoch(rec) !== undefined;
  return {
    path,
    format: () => onDisk,
    accounts: () => [...records].filter(([, r]) => committed(r)).map(([id]) => id).sort(),
    uncommitted: () => [...records].filter(([, r]) => !committed(r)).map(([id]) => id).sort(),
    has: (accountId) => {
      const r = records.get(accountId);
      return r !== undefined && committed(r);
    },
    get: (accountId) => {
      const r = records.get(accountId);
      return r && currentEntry(r);
    },
    record: (accountId) => records.get(accountId),
    reload: () => locked(() => Promise.resolve()),
    async put(accountId, entry) {
      checkId(accountId);
      await update(accountId, (rec) => {
        if (rec) {
          throw new KeyStoreError("account-exists", `account "${accountId}" is already stored`);
        }
        return fromEntry(entry);
      });
    },
    update,
  };
}
