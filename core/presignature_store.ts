/**
 * The presignature rules (CVE-2025-66017, fixed in cggmp24; Groth and Shoup, Eurocrypt 2022)
 * and the key lock after an invalid signature, behind one store interface.
 *
 * - A presignature is bound when it is made to its key id, its key EPOCH (the digest naming the
 *   set of shares, core/account_records.ts), its HD path (with the additive shift applied then)
 *   and the hash function the signer will apply to the message. `take` refuses a request for
 *   another key, epoch, path or hash, without consuming the presignature. So a presignature made
 *   before a refresh is refused after it; `purgeOtherEpochs(keyId, epoch)`, called by whoever
 *   changes the epoch of a key, also drops those presignatures from the store.
 * - `take` consumes the presignature atomically and records its id in the USED SET before it
 *   returns, so before any partial signature can leave. A second `take` of the same id is
 *   refused with "presignature-used".
 * - The used set only grows. A persistent store must write the id durably (fsync) before `take`
 *   returns, and must never roll the used set back: restoring a backup of the presignatures
 *   restores them into a store whose used set is the union of the backup's and the live one
 *   (a journal kept apart from the backups), so a restored snapshot of a used pool still
 *   refuses the used ids. `MemoryPresignatureStore` models this with a shared `usedLog`, which
 *   `restore` requires (a snapshot alone is refused); platform/presignature_journal.ts is the
 *   durable store (an fsync'd append-only journal of used ids and key locks).
 * - After an invalid final signature the key is locked for signing (`lockKey`) with the blame
 *   recorded; signing and `take` refuse "key-locked" until an operator calls `unlockKey`.
 *
 * @example
 * ```ts
 * import { MemoryPresignatureStore } from "./presignature_store.ts";
 * import { ProtocolAbort } from "./errors.ts";
 * import type { Presignature } from "./protocols/presign.ts";
 * // A presignature made by presigning (core/protocols/presign.ts) for the sha256 fast path.
 * export async function useOnce(presignature: Presignature) {
 *   const { keyId, epoch } = presignature.binding;
 *   const request = { keyId, epoch: epoch!, hdPath: [], hash: "sha256" } as const;
 *   const store = new MemoryPresignatureStore();
 *   await store.put(presignature);
 *   const p = await store.take(presignature.id, request); // consumed: the id is used now
 *   const again = await store.take(presignature.id, request).catch((e: unknown) => e);
 *   console.assert(again instanceof ProtocolAbort && again.code === "presignature-used");
 *   return p;
 * }
 * ```
 * @module
 */
import {
  decodeArray,
  decodePoint,
  decodeScalar,
  encodePoint,
  expectFields,
  scalarHex,
} from "./bytes.ts";
import { ProtocolAbort } from "./errors.ts";
import { mod, modInv } from "./math/mod.ts";
import { MAX_PARTIES, MAX_SID_BYTES, MIN_SID_BYTES, Point, Q } from "./params.ts";
import { assertKeyEpoch, type Presignature } from "./protocols/presign.ts";
import { assertHashName, type HashName } from "./signature.ts";

/** What a caller expects a presignature to be bound to. */
export interface PresignatureRequest {
  readonly keyId: string;
  /** The key's current epoch (64 lowercase hex digits, from the key store). */
  readonly epoch: string;
  readonly hdPath: readonly number[];
  readonly hash: HashName;
}

/** The record of a key locked for signing after an invalid signature. */
export interface KeyLock {
  readonly keyId: string;
  /** Protocol and round of the failed signing. */
  readonly protocol: string;
  readonly round: number;
  /** The parties blamed (empty when none could be named). */
  readonly culprits: readonly number[];
  /** Session id (hex) of the failed signing. */
  readonly sid: string;
  /** The abort message (never contains a secret). */
  readonly reason: string;
  /** When it happened (ms since the epoch, from the caller's clock). */
  readonly at: number;
}

/** Storage of presignatures, their used set and key locks. */
export interface PresignatureStore {
  /**
   * Stores a fresh presignature under `presignature.id`.
   * @throws {ProtocolAbort} "presignature-used" when the id is in the used set;
   *   {RangeError} when the id is already stored, or when the presignature is of another epoch
   *   than the one its key was last purged to (`purgeOtherEpochs`); {TypeError} for a
   *   presignature that cannot be stored (no hash or no epoch bound).
   */
  put(presignature: Presignature): Promise<void>;
  /**
   * Consumes a presignature: checks the key lock and the binding, then records the id as used
   * (durably) and removes the presignature, atomically, before returning it.
   * @throws {ProtocolAbort} "key-locked", "presignature-used"; {RangeError} for an unknown id or
   *   a binding other than `expected`, another key epoch included (the presignature is then NOT
   *   consumed).
   */
  take(id: string, expected: PresignatureRequest): Promise<Presignature>;
  /**
   * Drops every stored presignature of `keyId` bound to an epoch other than `epoch`, and refuses
   * to `put` one of another epoch for that key from then on (until the next call). Whoever
   * changes the epoch of a key (refresh promoted, reconciliation) calls it with the new epoch.
   * @returns how many presignatures were dropped.
   * @throws {TypeError} for a malformed epoch.
   */
  purgeOtherEpochs(keyId: string, epoch: string): Promise<number>;
  /** Whether `id` was ever taken. */
  isUsed(id: string): Promise<boolean>;
  /** Locks `lock.keyId` for signing (keeps the first lock if already locked). */
  lockKey(lock: KeyLock): Promise<void>;
  /** The lock of a key, if any. */
  keyLock(keyId: string): Promise<KeyLock | undefined>;
  /** Operator action: removes the lock of a key. */
  unlockKey(keyId: string): Promise<void>;
}

/** Whether two HD paths are equal. */
function samePath(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, k) => v === b[k]);
}

/**
 * Checks that a presignature was made for `expected` (key id, key epoch, HD path, hash).
 * @throws {RangeError} otherwise (the message names the field, never a secret); {TypeError}
 *   for a malformed expected epoch or hash.
 */
export function assertBinding(p: Presignature, expected: PresignatureRequest): void {
  const b = p.binding;
  if (b.keyId !== expected.keyId) throw new RangeError("presignature: made for another key");
  if (b.epoch === null || b.epoch !== assertKeyEpoch(expected.epoch, "expected key epoch")) {
    throw new RangeError("presignature: made for another key epoch (before a refresh?)");
  }
  if (!samePath(b.hdPath, expected.hdPath)) {
    throw new RangeError("presignature: made for another HD path");
  }
  if (b.hash === null || b.hash !== assertHashName(expected.hash)) {
    throw new RangeError("presignature: made for another hash function");
  }
}

function usedError(): ProtocolAbort {
  return new ProtocolAbort("sign", 1, "presignature-used", [], "presignature already used");
}

function lockedError(): ProtocolAbort {
  return new ProtocolAbort(
    "sign",
    1,
    "key-locked",
    [],
    "signing refused: the key is locked after an invalid signature",
  );
}

// ---------------------------------------------------------------------------------------------
// Wire form of a presignature (for persistent stores; it holds the secrets k_i and chi_i, so a
// store must encrypt it at rest).

/**
 * JSON form of a presignature (version 2: version 1 had no key epoch and is refused, since a
 * presignature of an unknown epoch must never be used).
 */
export interface EncodedPresignature {
  readonly v: 2;
  readonly id: string;
  readonly i: number;
  readonly n: number;
  readonly keyId: string;
  /** The key epoch (64 lowercase hex digits). */
  readonly epoch: string;
  readonly hdPath: readonly number[];
  readonly shift: string;
  readonly hash: HashName;
  readonly publicKey: string;
  readonly R: string;
  readonly k: string;
  readonly chi: string;
  readonly Gamma: string;
  readonly delta: string;
  readonly Delta: readonly string[];
  readonly S: readonly string[];
  readonly view: readonly string[];
}

/**
 * Encodes a storable presignature (one made for the fast path, with a hash and a key epoch).
 * @throws {TypeError} for a presignature of full signing (hash or epoch null), which is never
 *   stored.
 */
export function encodePresignature(p: Presignature): EncodedPresignature {
  if (p.binding.hash === null) throw new TypeError("a raw-digest presignature is never stored");
  if (p.binding.epoch === null) {
    throw new TypeError("a presignature without an epoch is never stored");
  }
  return {
    v: 2,
    id: p.id,
    i: p.i,
    n: p.n,
    keyId: p.binding.keyId,
    epoch: assertKeyEpoch(p.binding.epoch),
    hdPath: [...p.binding.hdPath],
    shift: scalarHex(p.binding.shift),
    hash: p.binding.hash,
    publicKey: encodePoint(p.publicKey),
    R: encodePoint(p.R),
    k: scalarHex(p.k),
    chi: scalarHex(p.chi),
    Gamma: encodePoint(p.Gamma),
    delta: scalarHex(p.delta),
    Delta: p.Delta.map(encodePoint),
    S: p.S.map(encodePoint),
    view: [...p.view],
  };
}

/** The label of a stored presignature's field in messages. */
const FIELD = (name: string) => `presignature field "${name}"`;

const FIELDS: (keyof EncodedPresignature)[] = [
  "v",
  "id",
  "i",
  "n",
  "keyId",
  "epoch",
  "hdPath",
  "shift",
  "hash",
  "publicKey",
  "R",
  "k",
  "chi",
  "Gamma",
  "delta",
  "Delta",
  "S",
  "view",
];

/** A presignature's id: the hex of its presigning session's id. */
const SID_HEX = new RegExp(`^([0-9a-f]{2}){${MIN_SID_BYTES},${MAX_SID_BYTES}}$`);

/**
 * Decodes and checks a stored presignature: shapes, then its internal consistency
 * (delta G = sum Delta_j, R = delta^-1 Gamma, Delta_i = k_i Gamma, S_i = chi_i Gamma,
 * sum S_j = delta X), so a corrupted or edited record is refused before use.
 * @throws {TypeError} / {SyntaxError} / {RangeError} naming the field or the failed relation.
 */
export function decodePresignature(json: unknown): Presignature {
  const o = expectFields<EncodedPresignature>(json, FIELDS, "presignature");
  if (o.v !== 2) throw new RangeError("presignature: unsupported version (expected 2)");
  const n = o.n;
  const i = o.i;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 2 || n > MAX_PARTIES) {
    throw new RangeError("presignature: bad n");
  }
  if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= n) {
    throw new RangeError("presignature: bad i");
  }
  if (typeof o.id !== "string" || !SID_HEX.test(o.id)) {
    throw new SyntaxError("presignature: bad id");
  }
  if (typeof o.keyId !== "string" || o.keyId.length === 0 || o.keyId.length > 256) {
    throw new TypeError("presignature: bad key id");
  }
  const epoch = assertKeyEpoch(o.epoch, 'presignature field "epoch"');
  const hdPath = decodeArray(
    o.hdPath,
    FIELD("hdPath"),
    Array.isArray(o.hdPath) ? o.hdPath.length : 0,
    (x) => {
      if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x >= 0x80000000) {
        throw new RangeError("presignature: bad HD index");
      }
      return x;
    },
  );
  const p: Presignature = {
    id: o.id,
    i,
    n,
    binding: {
      keyId: o.keyId,
      epoch,
      hdPath,
      shift: decodeScalar(o.shift, FIELD("shift")),
      hash: assertHashName(o.hash),
    },
    publicKey: decodePoint(o.publicKey, FIELD("publicKey")),
    R: decodePoint(o.R, FIELD("R")),
    k: decodeScalar(o.k, FIELD("k")),
    chi: decodeScalar(o.chi, FIELD("chi")),
    Gamma: decodePoint(o.Gamma, FIELD("Gamma")),
    delta: decodeScalar(o.delta, FIELD("delta")),
    Delta: decodeArray(o.Delta, FIELD("Delta"), n, (x, k) => decodePoint(x, FIELD(`Delta[${k}]`))),
    S: decodeArray(o.S, FIELD("S"), n, (x, k) => decodePoint(x, FIELD(`S[${k}]`))),
    view: decodeArray(o.view, FIELD("view"), n, (x) => {
      if (typeof x !== "string" || !/^[0-9a-f]{64}$/.test(x)) {
        throw new SyntaxError("presignature: bad view digest");
      }
      return x;
    }),
  };
  assertConsistent(p);
  return p;
}

/**
 * The relations every presignature satisfies (Figure 7, Output step 2, and the blame data).
 * @throws {RangeError} naming the first relation that fails.
 */
export function assertConsistent(p: Presignature): void {
  const sum = (ps: readonly Point[]) => ps.reduce((a, b) => a.add(b), Point.ZERO);
  const fail = (what: string) => {
    throw new RangeError(`presignature: inconsistent (${what})`);
  };
  if (p.k === 0n || p.delta === 0n || p.Gamma.is0() || p.publicKey.is0()) fail("zero value");
  if (!Point.BASE.multiplyUnsafe(p.delta).equals(sum(p.Delta))) fail("delta G = sum Delta");
  if (!p.Gamma.multiplyUnsafe(modInv(p.delta, Q)).equals(p.R)) fail("R = delta^-1 Gamma");
  if (!p.Gamma.multiply(p.k).equals(p.Delta[p.i])) fail("Delta_i = k_i Gamma");
  const Si = p.chi === 0n ? Point.ZERO : p.Gamma.multiply(p.chi);
  if (!Si.equals(p.S[p.i])) fail("S_i = chi_i Gamma");
  if (!p.publicKey.multiplyUnsafe(mod(p.delta, Q)).equals(sum(p.S))) fail("sum S = delta X");
}

// ---------------------------------------------------------------------------------------------
// In-memory store.

/** A snapshot of a memory store, as a backup would hold it (JSON-able). */
export interface MemoryStoreSnapshot {
  readonly presignatures: readonly EncodedPresignature[];
  readonly used: readonly string[];
  readonly locks: readonly KeyLock[];
}

/**
 * A `PresignatureStore` in memory, for tests, the demo and the browser wallet session. The
 * used set lives in `usedLog`, which stands for the durable journal of a persistent store:
 * `restore` requires it, so that a restart from a backup never rolls the used set back. The
 * durable store of the service is platform/presignature_journal.ts.
 */
export class MemoryPresignatureStore implements PresignatureStore {
  readonly #records = new Map<string, Presignature>();
  readonly #used: Set<string>;
  readonly #locks = new Map<string, KeyLock>();
  /** The epoch each key was last purged to (`purgeOtherEpochs`): `put` refuses any other. */
  readonly #epochs = new Map<string, string>();

  /**
   * @param options.usedLog the durable used set (shared across restarts); default a new set,
   *   which only suits a store that starts empty.
   */
  constructor(options: { usedLog?: Set<string> } = {}) {
    if (options.usedLog !== undefined && !(options.usedLog instanceof Set)) {
      throw new TypeError("expected options.usedLog as a Set of presignature ids");
    }
    this.#used = options.usedLog ?? new Set();
  }

  /** Number of unused presignatures held. */
  get size(): number {
    return this.#records.size;
  }

  put(presignature: Presignature): Promise<void> {
    try {
      const id = presignature.id;
      if (this.#used.has(id)) throw usedError();
      if (this.#records.has(id)) throw new RangeError("presignature: id already stored");
      encodePresignature(presignature); // only storable (hash- and epoch-bound) presignatures
      const { keyId, epoch } = presignature.binding;
      const current = this.#epochs.get(keyId);
      if (current !== undefined && epoch !== current) {
        throw new RangeError("presignature: made for another key epoch (before a refresh?)");
      }
      this.#records.set(id, presignature);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  take(id: string, expected: PresignatureRequest): Promise<Presignature> {
    // Synchronous from check to removal: no other call can interleave (atomic take).
    try {
      if (this.#locks.has(expected.keyId)) throw lockedError();
      if (this.#used.has(id)) throw usedError();
      const p = this.#records.get(id);
      if (!p) throw new RangeError("presignature: unknown id");
      assertBinding(p, expected);
      this.#used.add(id); // the durable mark comes first
      this.#records.delete(id);
      return Promise.resolve(p);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  purgeOtherEpochs(keyId: string, epoch: string): Promise<number> {
    try {
      assertKeyEpoch(epoch);
      this.#epochs.set(keyId, epoch);
      let dropped = 0;
      for (const [id, p] of this.#records) {
        if (p.binding.keyId === keyId && p.binding.epoch !== epoch) {
          this.#records.delete(id);
          dropped++;
        }
      }
      return Promise.resolve(dropped);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  isUsed(id: string): Promise<boolean> {
    return Promise.resolve(this.#used.has(id));
  }

  lockKey(lock: KeyLock): Promise<void> {
    if (!this.#locks.has(lock.keyId)) this.#locks.set(lock.keyId, { ...lock });
    return Promise.resolve();
  }

  keyLock(keyId: string): Promise<KeyLock | undefined> {
    return Promise.resolve(this.#locks.get(keyId));
  }

  unlockKey(keyId: string): Promise<void> {
    this.#locks.delete(keyId);
    return Promise.resolve();
  }

  /** A backup of the store's content (presignatures, used ids, locks). */
  snapshot(): MemoryStoreSnapshot {
    return structuredClone({
      presignatures: [...this.#records.values()].map(encodePresignature),
      used: [...this.#used],
      locks: [...this.#locks.values()],
    });
  }

  /**
   * A store restored from a snapshot over the live used journal. The used set is the union of
   * the snapshot's and `options.usedLog`, so ids used after the snapshot was taken stay refused.
   * The journal is REQUIRED: a snapshot alone would re-serve the presignatures used since it was
   * taken, and two signatures with one nonce reveal the key.
   * @param snapshot a backup made by `snapshot()` (possibly through JSON).
   * @param options.usedLog the live used journal (the set the store ran with).
   * @throws {TypeError} when `options.usedLog` is missing or not a Set; as `decodePresignature`
   *   for a corrupted snapshot.
   */
  static restore(
    snapshot: MemoryStoreSnapshot,
    options: { readonly usedLog: Set<string> },
  ): MemoryPresignatureStore {
    const usedLog = options?.usedLog;
    if (!(usedLog instanceof Set)) {
      throw new TypeError(
        "restore: expected the live used journal (options.usedLog); a snapshot alone would " +
          "serve used presignatures again",
      );
    }
    for (const id of snapshot.used) usedLog.add(id);
    const store = new MemoryPresignatureStore({ usedLog });
    for (const enc of snapshot.presignatures) {
      const p = decodePresignature(enc);
      if (!usedLog.has(p.id)) store.#records.set(p.id, p);
    }
    for (const lock of snapshot.locks) store.#locks.set(lock.keyId, { ...lock });
    return store;
  }
}
