/**
 * Epoch-versioned account records: what one party holds of one account across key changes, and
 * the pure rules of the two-phase key lifecycle (docs/key-lifecycle.md).
 *
 * ## Epochs
 *
 * A key epoch is one set of shares of an account: the output of a key generation or of a key
 * refresh. It is named by a `counter` (0 for key generation, +1 per refresh) and a `digest`: the
 * SHA-256 of every PUBLIC value that both parties must agree on (public key, public key shares,
 * every party's Paillier modulus and ring-Pedersen parameters), so both parties compute the same
 * digest for the same epoch and a different one for anything else.
 *
 * Each epoch a party holds is `current` (committed: the party uses it) or `pending` (stored
 * durably, waiting for the peer's commit confirmation). A record holds at most one current epoch
 * and pending epochs newer than it; a record of a key generation that never committed holds one
 * pending epoch and no current one ("uncommitted account").
 *
 * ## The rules (pure functions, no I/O)
 *
 * - `stagePending`: adds a new pending epoch (key generation: a new record; refresh: counter of
 *   the current epoch + 1, same public key and identities).
 * - `promote`: a pending epoch becomes the only epoch, current. A party promotes only once it
 *   knows the peer holds the same epoch durably (the peer's commit confirmation, or its
 *   reconciliation statement), so no epoch the peer may still use is ever dropped: the peer
 *   holds the promoted epoch too and will never go back.
 * - `discard`: drops a pending epoch (the peer does not hold it).
 * - `chooseEpoch`: at the start of every session both parties state what they hold
 *   (`statement`); they use the newest epoch both hold, current or pending.
 *
 * ## File format, version 2 (`encodeAccountRecords` / `decodeAccountRecords`)
 *
 * ```json
 * { "version": 2,
 *   "accounts": {
 *     "<account_id>": {
 *       "public_key": "<33-byte compressed point hex>",
 *       "identity": { ...as in version 1, optional },
 *       "epochs": [
 *         { "counter": 0, "digest": "<32 bytes hex>", "state": "current", "kind": "keygen",
 *           "session_id": "<hex or empty>", "key_share": { ...version-1 key share... } } ] } } }
 * ```
 *
 * A version-1 file (core/keyshare.ts: an object of accounts) decodes with each account as one
 * current epoch of counter 0 and kind `import`. Validation on load: every key share as version 1
 * does, every epoch's digest recomputed, one public key, party index and party count per
 * account, identities matching every share, at most one current epoch, pending counters above
 * the current one, distinct digests, at most {@link MAX_EPOCHS} epochs.
 *
 * @example
 * ```ts
 * import { decodeAccountRecords, encodeAccountRecords } from "./account_records.ts";
 * const text = encodeAccountRecords(new Map());
 * console.assert(decodeAccountRecords(text).size === 0);
 * ```
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { InvalidKeyShare, KeyEpochError } from "./errors.ts";
import {
  type AccountEntry,
  type AccountIdentity,
  checkAccountId,
  checkIdentity,
  decodeAccountsFile,
  decodeIdentity,
  decodeKeyShare,
  decodePoint,
  encodeIdentity,
  encodeKeyShare,
  expectObject,
  inAccount,
  MAX_FILE_BYTES,
  parseJson,
} from "./keyshare.ts";
import { toHexInt } from "./math/mod.ts";
import { fromHex, type KeyShare, toHex } from "./protocols/types.ts";

/** The file format version this module writes. */
export const ACCOUNT_RECORDS_VERSION = 2;
/** Most epochs one account may hold at once (one current and pending ones). */
export const MAX_EPOCHS = 4;
/** Largest epoch counter (refreshes of one account). */
export const MAX_EPOCH_COUNTER = 2 ** 32 - 1;

/** Whether an epoch is committed (`current`) or waits for the peer's confirmation. */
export type EpochState = "current" | "pending";
/** How an epoch was made: distributed key generation, refresh, or loaded from a v1 file. */
export type EpochKind = "keygen" | "refresh" | "import";

/** The public name of an epoch, as parties state it to each other. */
export interface EpochId {
  readonly counter: number;
  /** 64 lowercase hex digits (`epochDigest`). */
  readonly digest: string;
}

/** One epoch a party holds. */
export interface EpochRecord extends EpochId {
  readonly state: EpochState;
  readonly kind: EpochKind;
  /** The session that made it (hex), empty when unknown (offline or imported). */
  readonly sessionId: string;
  readonly keyShare: KeyShare;
}

/** Everything one party holds of one account. */
export interface AccountRecord {
  /** The identity keys pinned at key generation (kept across refreshes). */
  readonly identity?: AccountIdentity;
  /** Sorted by counter, oldest first. */
  readonly epochs: readonly EpochRecord[];
}

/** What a party states it holds of an account at the start of a session. */
export interface HeldEpoch extends EpochId {
  readonly state: EpochState;
}

const DOMAIN = new TextEncoder().encode("wallet-mpc/key-epoch/v1");

/**
 * The digest naming a key epoch: SHA-256 over the length-prefixed public values both parties
 * hold identically (public key, public key shares, every party's N, s, t).
 *
 * @param share a key share of the epoch.
 * @returns 64 lowercase hex digits.
 * @example
 * ```ts ignore
 * console.assert(epochDigest(clientShare) === epochDigest(serviceShare));
 * ```
 */
export function epochDigest(share: KeyShare): string {
  const parts: Uint8Array[] = [DOMAIN, u32(share.n), share.publicKey.toBytes(true)];
  for (const X of share.publicShares) parts.push(X.toBytes(true));
  for (const { N, s, t } of share.aux.parties) {
    for (const v of [N, s, t]) parts.push(fromHex(toHexInt(v)));
  }
  const h = sha256.create();
  for (const p of parts) h.update(u32(p.length)).update(p);
  return toHex(h.digest());
}

function u32(v: number): Uint8Array {
  return new Uint8Array([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
}

/** Named points between the steps of a key change where a test may crash a process. */
export type CrashPoint =
  | `${"keygen" | "refresh"}:${
    | "after-pending-write"
    | "after-commit-sent"
    | "after-commit-received"
    | "after-promote"}`
  | "keystore:before-rename"
  | "keystore:after-rename";

/** Every crash point, for entry points that validate a configured one. */
export const CRASH_POINTS: readonly CrashPoint[] = [
  ...(["keygen", "refresh"] as const).flatMap((op) =>
    ([
      "after-pending-write",
      "after-commit-sent",
      "after-commit-received",
      "after-promote",
    ] as const)
      .map((p): CrashPoint => `${op}:${p}`)
  ),
  "keystore:before-rename",
  "keystore:after-rename",
];

/** Called at each crash point (a test hook; absent in production). */
export type CrashHook = (point: CrashPoint) => void | Promise<void>;

// ---------------------------------------------------------------------------------------------
// Queries

/** The current epoch of a record, if any. */
export function currentEpoch(rec: AccountRecord): EpochRecord | undefined {
  return rec.epochs.find((e) => e.state === "current");
}

/** The account entry (share and identities) of the current epoch, if any. */
export function currentEntry(rec: AccountRecord): AccountEntry | undefined {
  const cur = currentEpoch(rec);
  if (!cur) return undefined;
  return rec.identity
    ? { keyShare: cur.keyShare, identity: rec.identity }
    : { keyShare: cur.keyShare };
}

/** What this party states it holds (every epoch, oldest first). */
export function statement(rec: AccountRecord): HeldEpoch[] {
  return rec.epochs.map(({ counter, digest, state }) => ({ counter, digest, state }));
}

/**
 * The epoch to use: the newest one both parties hold, current or pending.
 *
 * @param mine this party's statement.
 * @param theirs the peer's statement (already decoded).
 * @returns the chosen epoch, or undefined when the parties hold none in common.
 */
export function chooseEpoch(
  mine: readonly HeldEpoch[],
  theirs: readonly HeldEpoch[],
): EpochId | undefined {
  let best: EpochId | undefined;
  for (const e of mine) {
    if (!theirs.some((t) => t.counter === e.counter && t.digest === e.digest)) continue;
    if (!best || e.counter > best.counter) best = { counter: e.counter, digest: e.digest };
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Transitions (each returns a new record; the key store persists it)

function find(rec: AccountRecord, digest: string): EpochRecord | undefined {
  return rec.epochs.find((e) => e.digest === digest);
}

/**
 * Adds a pending epoch: a new record for key generation (`rec` undefined), or the next epoch of
 * a refresh. Idempotent: staging the same epoch again returns the record unchanged.
 *
 * @param rec the record, or undefined for a key generation.
 * @param entry the new share and (key generation) the identities.
 * @param meta how it was made and by which session.
 * @returns the new record.
 * @throws {KeyEpochError} `conflict` when a keygen meets a committed account, a refresh meets
 *   an uncommitted one, or the share does not continue the account (public key, index).
 */
export function stagePending(
  rec: AccountRecord | undefined,
  entry: AccountEntry,
  meta: { readonly kind: "keygen" | "refresh"; readonly sessionId: string },
): AccountRecord {
  const digest = epochDigest(entry.keyShare);
  if (rec && find(rec, digest)) return rec;
  if (meta.kind === "keygen") {
    if (rec && currentEpoch(rec)) {
      throw new KeyEpochError("conflict", "key generation of an account that is committed");
    }
    // A new key generation replaces an uncommitted one (the peer asked for a fresh one).
    const e: EpochRecord = {
      counter: 0,
      digest,
      state: "pending",
      kind: "keygen",
      sessionId: meta.sessionId,
      keyShare: entry.keyShare,
    };
    return entry.identity ? { identity: entry.identity, epochs: [e] } : { epochs: [e] };
  }
  const cur = rec && currentEpoch(rec);
  if (!rec || !cur) {
    throw new KeyEpochError("conflict", "refresh of an account with no committed epoch");
  }
  const ks = entry.keyShare;
  if (
    !ks.publicKey.equals(cur.keyShare.publicKey) || ks.i !== cur.keyShare.i ||
    ks.n !== cur.keyShare.n
  ) {
    throw new KeyEpochError("conflict", "a refreshed share must keep the public key and party");
  }
  if (rec.epochs.length >= MAX_EPOCHS) {
    throw new KeyEpochError("conflict", `at most ${MAX_EPOCHS} epochs per account`);
  }
  const counter = Math.max(...rec.epochs.map((e) => e.counter)) + 1;
  if (counter > MAX_EPOCH_COUNTER) throw new KeyEpochError("conflict", "epoch counter exhausted");
  const e: EpochRecord = {
    counter,
    digest,
    state: "pending",
    kind: "refresh",
    sessionId: meta.sessionId,
    keyShare: ks,
  };
  return { ...rec, epochs: [...rec.epochs, e] };
}

/**
 * Makes an epoch the only one, current (both parties hold it: see the module doc). Idempotent.
 *
 * @param rec the record.
 * @param digest the epoch to keep.
 * @returns the new record.
 * @throws {KeyEpochError} `unknown-epoch` when the record does not hold it.
 */
export function promote(rec: AccountRecord, digest: string): AccountRecord {
  const e = find(rec, digest);
  if (!e) throw new KeyEpochError("unknown-epoch", "promote: this party does not hold the epoch");
  return { ...rec, epochs: [{ ...e, state: "current" }] };
}

/**
 * Drops a pending epoch. A record left without epochs is deleted (undefined).
 *
 * @param rec the record.
 * @param digest the pending epoch.
 * @returns the new record, or undefined when nothing is left.
 * @throws {KeyEpochError} `conflict` for a current epoch (never dropped this way).
 */
export function discard(rec: AccountRecord, digest: string): AccountRecord | undefined {
  const e = find(rec, digest);
  if (!e) return rec;
  if (e.state === "current") {
    throw new KeyEpochError("conflict", "a current epoch is never discarded");
  }
  const epochs = rec.epochs.filter((x) => x !== e);
  return epochs.length ? { ...rec, epochs } : undefined;
}

// ---------------------------------------------------------------------------------------------
// File format version 2

type Obj = Record<string, unknown>;

function malformed(message: string): InvalidKeyShare {
  return new InvalidKeyShare("malformed", message);
}

const EPOCH_FIELDS = ["counter", "digest", "state", "kind", "session_id", "key_share"];

function decodeEpoch(v: unknown, k: number): EpochRecord {
  const what = `epochs[${k}]`;
  const o = expectObject(v, what, EPOCH_FIELDS);
  const counter = o.counter;
  if (
    typeof counter !== "number" || !Number.isSafeInteger(counter) || counter < 0 ||
    counter > MAX_EPOCH_COUNTER
  ) {
    throw malformed(`${what}.counter: expected an integer in 0..${MAX_EPOCH_COUNTER}`);
  }
  if (typeof o.digest !== "string" || !/^[0-9a-f]{64}$/.test(o.digest)) {
    throw malformed(`${what}.digest: expected 64 lowercase hex digits`);
  }
  if (o.state !== "current" && o.state !== "pending") {
    throw malformed(`${what}.state: expected "current" or "pending"`);
  }
  if (o.kind !== "keygen" && o.kind !== "refresh" && o.kind !== "import") {
    throw malformed(`${what}.kind: expected "keygen", "refresh" or "import"`);
  }
  if (typeof o.session_id !== "string" || !/^([0-9a-f]{2}){0,64}$/.test(o.session_id)) {
    throw malformed(`${what}.session_id: expected at most 64 bytes of lowercase hex`);
  }
  const keyShare = decodeKeyShare(o.key_share);
  if (epochDigest(keyShare) !== o.digest) {
    throw new InvalidKeyShare("inconsistent", `${what}: the digest does not match the key share`);
  }
  return {
    counter,
    digest: o.digest,
    state: o.state,
    kind: o.kind,
    sessionId: o.session_id,
    keyShare,
  };
}

/**
 * Checks the invariants of a record (module doc).
 * @throws {InvalidKeyShare} `inconsistent` naming the broken rule.
 */
export function assertRecord(rec: AccountRecord): void {
  const bad = (m: string) => {
    throw new InvalidKeyShare("inconsistent", m);
  };
  const es = rec.epochs;
  if (es.length === 0 || es.length > MAX_EPOCHS) {
    bad(`expected 1..${MAX_EPOCHS} epochs, got ${es.length}`);
  }
  const first = es[0].keyShare;
  const current = es.filter((e) => e.state === "current");
  if (current.length > 1) bad("more than one current epoch");
  for (let k = 0; k < es.length; k++) {
    const ks = es[k].keyShare;
    if (!ks.publicKey.equals(first.publicKey)) bad("epochs of different public keys");
    if (ks.i !== first.i || ks.n !== first.n) bad("epochs of different parties");
    if (k > 0 && es[k].counter <= es[k - 1].counter) bad("epoch counters must increase");
    if (current.length && es[k].state === "pending" && es[k].counter <= current[0].counter) {
      bad("a pending epoch older than the current one");
    }
    if (rec.identity) checkIdentity(rec.identity, ks);
  }
  if (new Set(es.map((e) => e.digest)).size !== es.length) bad("repeated epoch digest");
}

/**
 * Encodes account records as a version-2 file, accounts sorted by id (equal input, equal bytes).
 *
 * @param records account id -> record.
 * @returns the JSON text.
 * @throws {InvalidKeyShare} for a bad account id or a record that breaks the invariants.
 */
export function encodeAccountRecords(records: ReadonlyMap<string, AccountRecord>): string {
  const ids = [...records.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const accounts: [string, Obj][] = ids.map((id) => {
    checkAccountId(id);
    const rec = records.get(id) as AccountRecord;
    return inAccount(id, () => {
      assertRecord(rec);
      const out: Obj = { public_key: rec.epochs[0].keyShare.publicKey.toHex(true) };
      if (rec.identity) out.identity = encodeIdentity(rec.identity, rec.epochs[0].keyShare);
      out.epochs = rec.epochs.map((e) => ({
        counter: e.counter,
        digest: e.digest,
        state: e.state,
        kind: e.kind,
        session_id: e.sessionId,
        key_share: encodeKeyShare(e.keyShare),
      }));
      return [id, out];
    });
  });
  return JSON.stringify(
    { version: ACCOUNT_RECORDS_VERSION, accounts: Object.fromEntries(accounts) },
    null,
    2,
  ) + "\n";
}

/**
 * Decodes and validates a key share file of version 2, or of version 1 (each account then one
 * current epoch of kind `import`). Nothing is returned unless everything is valid.
 *
 * @param json the file's contents (text or UTF-8 bytes, after decryption).
 * @param options `maxBytes` cap, checked before parsing.
 * @returns account id -> record.
 * @throws {InvalidKeyShare} naming the account; `unsupported-version` for a later version.
 */
export function decodeAccountRecords(
  json: string | Uint8Array,
  options: { readonly maxBytes?: number } = {},
): Map<string, AccountRecord> {
  const maxBytes = options.maxBytes ?? MAX_FILE_BYTES;
  const v = parseJson(json, maxBytes, "key share file");
  const isV2 = typeof v === "object" && v !== null && !Array.isArray(v) &&
    typeof (v as Obj).version === "number";
  const out = new Map<string, AccountRecord>();
  if (!isV2) {
    for (const [id, entry] of decodeAccountsFile(json, { maxBytes })) {
      out.set(id, fromEntry(entry));
    }
    return out;
  }
  const top = v as Obj;
  if (top.version !== ACCOUNT_RECORDS_VERSION) {
    throw new InvalidKeyShare(
      "unsupported-version",
      `key share file: expected version ${ACCOUNT_RECORDS_VERSION}, got ${String(top.version)}`,
    );
  }
  const o = expectObject(top, "key share file", ["version", "accounts"]);
  const accounts = o.accounts;
  if (typeof accounts !== "object" || accounts === null || Array.isArray(accounts)) {
    throw malformed("key share file: expected an object of accounts");
  }
  const ids = Object.keys(accounts);
  ids.forEach(checkAccountId);
  for (const id of ids) {
    out.set(
      id,
      inAccount(id, () => {
        const raw = (accounts as Obj)[id];
        const hasIdentity = typeof raw === "object" && raw !== null &&
          Object.hasOwn(raw, "identity");
        const e = expectObject(
          raw,
          "account",
          hasIdentity ? ["public_key", "identity", "epochs"] : ["public_key", "epochs"],
        );
        const listed = decodePoint(e.public_key, "public_key");
        if (!Array.isArray(e.epochs) || e.epochs.length === 0 || e.epochs.length > MAX_EPOCHS) {
          throw malformed(`epochs: expected an array of 1..${MAX_EPOCHS} epochs`);
        }
        const epochs = e.epochs.map(decodeEpoch);
        const rec: AccountRecord = hasIdentity
          ? { identity: decodeIdentity(e.identity), epochs }
          : { epochs };
        assertRecord(rec);
        if (!listed.equals(epochs[0].keyShare.publicKey)) {
          throw new InvalidKeyShare("inconsistent", "public_key differs from the key shares'");
        }
        return rec;
      }),
    );
  }
  return out;
}

/**
 * A record holding one committed (current) epoch: an account made offline or imported.
 * @param entry the share and identities.
 * @returns the record (counter 0, kind `import`).
 */
export function fromEntry(entry: AccountEntry): AccountRecord {
  const e: EpochRecord = {
    counter: 0,
    digest: epochDigest(entry.keyShare),
    state: "current",
    kind: "import",
    sessionId: "",
    keyShare: entry.keyShare,
  };
  return entry.identity ? { identity: entry.identity, epochs: [e] } : { epochs: [e] };
}
