/**
 * Key epochs: what one party holds of one account across key changes (`AccountRecord`), and the
 * pure rules of the two-phase key lifecycle (docs/key-lifecycle.md).
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
 * The file format that stores the records is `account_records.ts`.
 *
 * @example
 * ```ts
 * import { chooseEpoch } from "./key_epochs.ts";
 * const a = { counter: 1, digest: "ab".repeat(32), state: "pending" as const };
 * console.assert(chooseEpoch([a], [a])?.counter === 1);
 * ```
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { fromHex, toHex, toHexInt, u32be } from "./bytes.ts";
import { InvalidKeyShare, KeyEpochError } from "./errors.ts";
import { type AccountEntry, type AccountIdentity, checkIdentity } from "./accounts_file_v1.ts";
import type { KeyShare } from "./protocols/types.ts";

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
 * ```ts
 * import { epochDigest } from "./key_epochs.ts";
 * import type { KeyShare } from "./protocols/types.ts";
 * // Both parties' shares of one key name the same epoch.
 * export function sameEpoch(clientShare: KeyShare, serviceShare: KeyShare): boolean {
 *   return epochDigest(clientShare) === epochDigest(serviceShare); // 64 lowercase hex digits
 * }
 * ```
 */
export function epochDigest(share: KeyShare): string {
  const parts: Uint8Array[] = [DOMAIN, u32be(share.n), share.publicKey.toBytes(true)];
  for (const X of share.publicShares) parts.push(X.toBytes(true));
  for (const { N, s, t } of share.aux.parties) {
    for (const v of [N, s, t]) parts.push(fromHex(toHexInt(v)));
  }
  const h = sha256.create();
  for (const p of parts) h.update(u32be(p.length)).update(p);
  return toHex(h.digest());
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
// Invariants and records made whole

/**
 * Checks the invariants of a record (`account_records.ts`, "Validation on load").
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
