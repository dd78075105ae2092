/**
 * The client's key shares in a browser: IndexedDB holds one age file, encrypted with a
 * passphrase (age's scrypt recipient, work factor 2^18), whose contents are the key share file of
 * the file key store (core/account_records.ts: epoch records with their MACs). The page asks the
 * user for the passphrase, opens the store (scrypt once), and the client reads the shares from
 * memory; every write (import, key generation, refresh) encrypts the whole file again.
 *
 * ## Why a passphrase (and not a non-extractable WebCrypto key)
 *
 * A non-extractable `CryptoKey` kept in IndexedDB stops a script from reading the key's bytes,
 * but not from using it: any script of the origin (an injected one too), and anyone who copies
 * the browser profile, decrypts the shares without asking the user. It is also lost with the
 * site's data, with no backup. A passphrase is needed at every opening, never stored, and the
 * stored file is the same age format as `client_key_shares.json`: `exportFile()` is a backup
 * that `openFileKeyStore({ passphrase })` and `age -d` open, and `importFile()` takes the file
 * the CLI or `keygen offline` wrote. What no storage scheme prevents: a script running in the
 * page while the store is open sees the shares in memory (as it sees the passphrase typed);
 * a wallet page needs a strict Content-Security-Policy either way.
 *
 * ## Several tabs
 *
 * Each write is compare-and-set on a version number in one IndexedDB transaction: a tab whose
 * copy is stale reads the file again and re-applies its change (`update`'s `f` may run more than
 * once; the record transitions it gets are pure). Reads check the version and decrypt again only
 * when another tab wrote.
 *
 * @example
 * ```ts
 * import { type MpcClient, newMpcClient } from "wallet-mpc/client";
 * import { openBrowserKeyStore } from "wallet-mpc/client/browser_key_store";
 * // In the page: the passphrase the user typed; the first time, the key share file the user
 * // picked and the age identity it is encrypted to.
 * async function openWallet(
 *   passphrase: string,
 *   firstTime: { fileBytes: Uint8Array; identity: string } | null,
 * ): Promise<MpcClient> {
 *   const keyStore = await openBrowserKeyStore({ passphrase });
 *   if (firstTime !== null && (await keyStore.ids()).length === 0) {
 *     await keyStore.importFile(firstTime.fileBytes, { identity: firstTime.identity });
 *   }
 *   return newMpcClient({
 *     serviceUrl: "https://sign.example",
 *     gatewayUrl: "https://gateway.example",
 *     token: "<the caller's token>",
 *     keyStore,
 *     protocol: "grpc-web",
 *   });
 * }
 * ```
 * @module
 */
import {
  type AccountRecord,
  assertRecord,
  currentEntry,
  currentEpoch,
  decodeAccountRecords,
  encodeAccountRecords,
} from "../core/account_records.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import {
  decryptKeyShareFileBytes,
  type Decryptor,
  DEFAULT_SCRYPT_WORK_FACTOR,
  encryptKeyShareFileBytes,
} from "../keystore/age_file.ts";
import { KeyStoreError } from "../keystore/errors.ts";
import type { ClientKeyStore } from "./mpc_client.ts";

export { KeyStoreError } from "../keystore/errors.ts";
export type { Decryptor } from "../keystore/age_file.ts";

/** An event handler slot of IndexedDB (structural, so that Deno's and the DOM's types fit). */
type Handler = ((this: never, ev: never) => unknown) | null;

/** The parts of an `IDBRequest` this store uses. */
export interface IdbRequestLike<T> {
  readonly result: T;
  readonly error: unknown;
  onsuccess: Handler;
  onerror: Handler;
}

/** The parts of IndexedDB this store uses; `globalThis.indexedDB` (an `IDBFactory`) is one. */
export interface IdbFactoryLike {
  open(name: string, version: number): IdbRequestLike<IdbDatabaseLike> & {
    onupgradeneeded: Handler;
    onblocked: Handler;
  };
}

/** The parts of an `IDBDatabase` this store uses. */
export interface IdbDatabaseLike {
  transaction(store: string, mode: "readonly" | "readwrite"): IdbTransactionLike;
  createObjectStore(name: string): unknown;
  close(): void;
  onversionchange: Handler;
}

/** The parts of an `IDBTransaction` this store uses. */
export interface IdbTransactionLike {
  objectStore(name: string): {
    get(key: string): IdbRequestLike<unknown>;
    put(value: unknown, key: string): unknown;
    delete(key: string): unknown;
  };
  readonly error: unknown;
  oncomplete: Handler;
  onerror: Handler;
  onabort: Handler;
}

/** Options of {@link openBrowserKeyStore}. */
export interface BrowserKeyStoreOptions {
  /** Opens the stored file and encrypts every write (never stored). */
  readonly passphrase: string;
  /** IndexedDB database name (default "wallet-mpc"): one store per name. */
  readonly name?: string;
  /** The IndexedDB factory (default `globalThis.indexedDB`). */
  readonly indexedDB?: IdbFactoryLike;
  /** scrypt work factor (log2 N) of writes: default 18 as `age -p`; at most 20. */
  readonly scryptWorkFactor?: number;
  /** The client's party index in its shares (default 0). */
  readonly partyIndex?: number;
}

/** The browser's key store: the client's `ClientKeyStore` plus import, export and deletion. */
export interface BrowserKeyStore extends ClientKeyStore {
  /** The IndexedDB database name. */
  readonly name: string;
  /** Whether a file is stored (false until the first write). */
  exists(): Promise<boolean>;
  /**
   * Adds every account of a key share file (age, armored age, or plaintext JSON with
   * `{ plaintext: true }`), all or none.
   * @returns the imported account ids.
   * @throws {KeyStoreError} `account-exists` when the store holds one of them already,
   *   `wrong-party` for another party's shares; as `decryptKeyShareFileBytes`.
   */
  importFile(bytes: Uint8Array, decryptor: Decryptor): Promise<string[]>;
  /** The stored age file (passphrase-encrypted): a backup the file key store opens. */
  exportFile(): Promise<Uint8Array>;
  /** Deletes the stored file (every account): the database stays, empty. */
  clear(): Promise<void>;
  /** Closes the database connection. */
  close(): void;
}

const STORE = "files";
const KEY = "key_shares";
/** Compare-and-set attempts of one write before giving up (another tab keeps writing). */
const MAX_ATTEMPTS = 8;

interface Stored {
  readonly version: number;
  readonly bytes: Uint8Array;
}

function request<T>(r: IdbRequestLike<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function ioError(what: string, cause: unknown): KeyStoreError {
  return cause instanceof KeyStoreError
    ? cause
    : new KeyStoreError("io", `browser key store: ${what} failed`, { cause });
}

function openDatabase(factory: IdbFactoryLike, name: string): Promise<IdbDatabaseLike> {
  return new Promise((resolve, reject) => {
    const r = factory.open(name, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(ioError("opening IndexedDB", r.error));
    r.onblocked = () =>
      reject(new KeyStoreError("locked", "browser key store: IndexedDB is blocked"));
  });
}

function checkParty(records: ReadonlyMap<string, AccountRecord>, partyIndex: number): void {
  for (const [id, rec] of records) {
    for (const { keyShare } of rec.epochs) {
      if (keyShare.i !== partyIndex) {
        throw new KeyStoreError(
          "wrong-party",
          `account "${id}": expected a share of party ${partyIndex} (the client), got party ${keyShare.i}`,
        );
      }
    }
  }
}

/**
 * Whether the database `name` holds a key share file, without opening it (no passphrase): a page
 * asks this to offer "unlock" or "import".
 *
 * @param o the database name (default "wallet-mpc") and the IndexedDB factory.
 * @returns whether a file is stored.
 * @throws {KeyStoreError} `io` when IndexedDB fails.
 */
export async function browserKeyStoreExists(
  o: { readonly name?: string; readonly indexedDB?: IdbFactoryLike } = {},
): Promise<boolean> {
  const factory = o.indexedDB ?? (globalThis as { indexedDB?: IdbFactoryLike }).indexedDB;
  if (!factory) throw new TypeError("browser key store: IndexedDB is not available here");
  const db = await openDatabase(factory, o.name ?? "wallet-mpc");
  try {
    const get = db.transaction(STORE, "readonly").objectStore(STORE).get(KEY);
    return (await request(get)) !== undefined;
  } catch (e) {
    throw ioError("reading", e);
  } finally {
    db.close();
  }
}

/**
 * Opens the key store of the database `name`: decrypts the stored file with the passphrase
 * (scrypt), or opens an empty store when nothing is stored yet (the first write creates it,
 * encrypted with this passphrase).
 *
 * @param o the passphrase, the database name, the IndexedDB factory.
 * @returns the store.
 * @throws {KeyStoreError} `decrypt-failed` for a wrong passphrase, `bad-key` for an empty one,
 *   `io` when IndexedDB fails; {InvalidKeyShare} for contents that fail validation.
 */
export async function openBrowserKeyStore(o: BrowserKeyStoreOptions): Promise<BrowserKeyStore> {
  if (typeof o.passphrase !== "string" || o.passphrase === "") {
    throw new KeyStoreError("bad-key", "browser key store: expected a non-empty passphrase");
  }
  const factory = o.indexedDB ?? (globalThis as { indexedDB?: IdbFactoryLike }).indexedDB;
  if (!factory) throw new TypeError("browser key store: IndexedDB is not available here");
  const name = o.name ?? "wallet-mpc";
  const partyIndex = o.partyIndex ?? 0;
  const decryptor = { passphrase: o.passphrase };
  const to = {
    passphrase: o.passphrase,
    scryptWorkFactor: o.scryptWorkFactor ?? DEFAULT_SCRYPT_WORK_FACTOR,
  };
  const db = await openDatabase(factory, name);
  db.onversionchange = () => db.close();

  const read = async (): Promise<Stored | undefined> => {
    try {
      const get = db.transaction(STORE, "readonly").objectStore(STORE).get(KEY);
      return await request(get as IdbRequestLike<Stored | undefined>);
    } catch (e) {
      throw ioError("reading", e);
    }
  };
  /** Stores `next` when the stored version is still `expected`; false when another tab wrote. */
  const compareAndSet = (expected: number, next: Stored | undefined): Promise<boolean> =>
    new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, "readwrite");
      const files = tx.objectStore(STORE);
      let written = false;
      const get = files.get(KEY) as IdbRequestLike<Stored | undefined>;
      get.onsuccess = () => {
        if ((get.result?.version ?? 0) !== expected) return;
        if (next) files.put(next, KEY);
        else files.delete(KEY);
        written = true;
      };
      tx.oncomplete = () => resolve(written);
      tx.onerror = () => reject(ioError("writing", tx.error));
      tx.onabort = () => reject(ioError("writing", tx.error));
    });

  const decrypt = async (s: Stored | undefined) => {
    if (!s) return { version: 0, records: new Map<string, AccountRecord>() };
    const plain = await decryptKeyShareFileBytes(s.bytes, decryptor);
    try {
      const records = decodeAccountRecords(plain, { requireMac: true });
      checkParty(records, partyIndex);
      return { version: s.version, records };
    } finally {
      plain.fill(0);
    }
  };

  let cache = await decrypt(await read());
  /** The file again when another tab wrote since this store last saw it. */
  const fresh = async () => {
    const s = await read();
    if ((s?.version ?? 0) !== cache.version) cache = await decrypt(s);
    return cache;
  };

  /** Read-modify-write of the whole file by compare-and-set (module doc); one at a time here. */
  let queue: Promise<unknown> = Promise.resolve();
  const write = <T>(
    change: (records: Map<string, AccountRecord>) => T,
  ): Promise<T> => {
    const run = async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const base = await fresh();
        const records = new Map(base.records);
        const result = change(records);
        checkParty(records, partyIndex);
        let next: Stored | undefined;
        if (records.size > 0) {
          const text = new TextEncoder().encode(encodeAccountRecords(records));
          try {
            next = { version: base.version + 1, bytes: await encryptKeyShareFileBytes(text, to) };
          } finally {
            text.fill(0);
          }
        }
        const version = next ? next.version : base.version + 1;
        if (await compareAndSet(base.version, next && { ...next, version })) {
          cache = { version: next ? version : 0, records };
          return result;
        }
      }
      throw new KeyStoreError(
        "locked",
        `browser key store: another tab kept writing (${MAX_ATTEMPTS} attempts)`,
      );
    };
    const p = queue.then(run, run);
    queue = p.catch(() => {});
    return p;
  };

  return {
    name,
    async ids() {
      const { records } = await fresh();
      return [...records].filter(([, r]) => currentEpoch(r)).map(([id]) => id).sort();
    },
    async get(accountId: string): Promise<AccountEntry | undefined> {
      const r = (await fresh()).records.get(accountId);
      return r && currentEntry(r);
    },
    async record(accountId: string) {
      return (await fresh()).records.get(accountId);
    },
    update(accountId, f) {
      return write((records) => {
        const next = f(records.get(accountId));
        if (next) {
          assertRecord(next);
          records.set(accountId, next);
        } else records.delete(accountId);
        return next;
      });
    },
    async exists() {
      return (await read()) !== undefined;
    },
    async importFile(bytes, from) {
      const plain = await decryptKeyShareFileBytes(bytes, from);
      let incoming: Map<string, AccountRecord>;
      try {
        incoming = decodeAccountRecords(plain, { requireMac: true });
      } finally {
        plain.fill(0);
      }
      checkParty(incoming, partyIndex);
      return write((records) => {
        const held = [...incoming.keys()].filter((id) => records.has(id));
        if (held.length > 0) {
          throw new KeyStoreError(
            "account-exists",
            `expected new accounts, got accounts already stored: ${
              held.join(", ")
            }; nothing imported`,
          );
        }
        for (const [id, rec] of incoming) records.set(id, rec);
        return [...incoming.keys()].sort();
      });
    },
    async exportFile() {
      const s = await read();
      if (!s) throw new KeyStoreError("not-found", "browser key store: nothing is stored");
      return Uint8Array.from(s.bytes);
    },
    async clear() {
      await write((records) => records.clear());
    },
    close: () => db.close(),
  };
}
