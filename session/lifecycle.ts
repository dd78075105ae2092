/**
 * The key lifecycle inside a session (docs/key-lifecycle.md): the epoch statements that open
 * every session of an existing account (reconciliation), and the commit confirmations of the
 * two-phase key generation and refresh. Both run over the authenticated, encrypted session as
 * envelopes of the protocol "lifecycle" (round 1: statement, round 2: commit).
 *
 * - `reconcile`: both parties state the epochs they hold; both use the newest epoch both hold,
 *   current or pending, and settle on it at once (promote it, drop the others), so an interrupted
 *   commit is finished by the next session of any kind.
 * - `commitEpoch`: store the new epoch as pending (durably), send the commit confirmation,
 *   receive the peer's, then promote (unless the caller promotes later: the client's key
 *   generation waits for the service's confirmation over the API).
 *
 * The named crash points (`CrashPoint`, core/account_records.ts) let tests kill a process between the steps; they are
 * off unless an entry point installs a hook from its own environment.
 * @module
 */
import {
  type AccountRecord,
  chooseEpoch,
  type CrashHook,
  discard,
  type EpochRecord,
  type HeldEpoch,
  MAX_EPOCH_COUNTER,
  MAX_EPOCHS,
  promote,
  stagePending,
  statement,
} from "../core/account_records.ts";
import { toHex } from "../core/bytes.ts";
import { KeyEpochError, ProtocolAbort, TransportError } from "../core/errors.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import type { Message } from "../core/protocols/types.ts";
import type { SecureSession } from "../transport/mod.ts";

/** What the lifecycle needs of a key store (the client's and the service's). */
export interface AccountStore {
  /** The account's record as stored now (read again when another process may have written). */
  record(accountId: string): Promise<AccountRecord | undefined>;
  /** Read-modify-write of one account under the store's lock (keystore/key_store.ts). */
  update(
    accountId: string,
    f: (rec: AccountRecord | undefined) => AccountRecord | undefined,
  ): Promise<AccountRecord | undefined>;
}

const PROTOCOL = "lifecycle";
const STATEMENT = 1;
const COMMIT = 2;

/** Sends this party's lifecycle message of `round` (a broadcast). */
function send(s: SecureSession, i: number, round: number, payload: unknown): Promise<void> {
  const sid = toHex(s.protocolSid(PROTOCOL));
  return s.send({ sid, protocol: PROTOCOL, round, from: i, to: null, payload });
}

/** Reads the peer's lifecycle message of `round` (the next envelope it sent). */
async function receive(
  s: SecureSession,
  i: number,
  round: number,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<Message> {
  const sid = toHex(s.protocolSid(PROTOCOL));
  const deadline = AbortSignal.timeout(timeoutMs);
  const sig = signal ? AbortSignal.any([signal, deadline]) : deadline;
  let m: Message;
  try {
    m = await s.receive(sig);
  } catch (e) {
    if (e instanceof TransportError) throw e;
    if (signal?.aborted) throw new TransportError("aborted", "lifecycle: cancelled", { cause: e });
    throw new TransportError("timeout", `lifecycle round ${round}: timed out`, { cause: e });
  }
  if (m.sid !== sid || m.protocol !== PROTOCOL || m.round !== round || m.from === i) {
    throw new ProtocolAbort(
      PROTOCOL,
      round,
      "unexpected-message",
      m.from === i ? [] : [m.from],
      `expected the peer's lifecycle round ${round} message`,
    );
  }
  return m;
}

function malformed(round: number, from: number, what: string): ProtocolAbort {
  return new ProtocolAbort(PROTOCOL, round, "malformed-message", [from], what);
}

function decodeDigest(v: unknown, round: number, from: number): string {
  if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) {
    throw malformed(round, from, "expected an epoch digest (64 lowercase hex digits)");
  }
  return v;
}

/** Decodes a peer's statement (hostile input: bounded, exact shape). */
export function decodeStatement(m: Message): HeldEpoch[] {
  const p = m.payload as { held?: unknown } | null;
  if (
    typeof p !== "object" || p === null || Object.keys(p).length !== 1 || !Array.isArray(p.held) ||
    p.held.length > MAX_EPOCHS
  ) {
    throw malformed(STATEMENT, m.from, `expected { held: [at most ${MAX_EPOCHS} epochs] }`);
  }
  return p.held.map((e: unknown): HeldEpoch => {
    const o = e as Record<string, unknown> | null;
    if (
      typeof o !== "object" || o === null || Object.keys(o).length !== 3 ||
      typeof o.counter !== "number" || !Number.isSafeInteger(o.counter) || o.counter < 0 ||
      o.counter > MAX_EPOCH_COUNTER || (o.state !== "current" && o.state !== "pending")
    ) {
      throw malformed(STATEMENT, m.from, "expected epochs { counter, digest, state }");
    }
    return {
      counter: o.counter,
      digest: decodeDigest(o.digest, STATEMENT, m.from),
      state: o.state,
    };
  });
}

function describe(held: readonly HeldEpoch[]): string {
  return held.length === 0
    ? "none"
    : held.map((e) => `${e.counter}:${e.digest.slice(0, 12)} (${e.state})`).join(", ");
}

/** Options of the lifecycle steps. */
export interface LifecycleOptions {
  readonly signal?: AbortSignal;
  /** Time allowed for the peer's message (default 60 s). */
  readonly timeoutMs?: number;
  readonly crashPoint?: CrashHook;
}

/**
 * Reconciliation at the start of a session of an existing account: states this party's epochs,
 * reads the peer's, chooses the newest epoch both hold and settles on it (promotes it, drops
 * the others) in the store.
 *
 * @param s the open session (pinned identities).
 * @param i this party's index.
 * @param accountId the account.
 * @param store this party's key store.
 * @param options `promoteKeygen: false` keeps a chosen key-generation epoch pending (the
 *   client promotes one only after the service confirms it over the API).
 * @returns the chosen epoch (its share is the one to use).
 * @throws {KeyEpochError} `no-common-epoch` (the message says what each side holds and what to
 *   do); {ProtocolAbort} for a malformed statement; {TransportError}.
 */
export async function reconcile(
  s: SecureSession,
  i: number,
  accountId: string,
  store: AccountStore,
  options: LifecycleOptions & { readonly promoteKeygen: boolean },
): Promise<EpochRecord> {
  const rec = await store.record(accountId);
  const mine = rec ? statement(rec) : [];
  await send(s, i, STATEMENT, { held: mine });
  const m = await receive(s, i, STATEMENT, options.signal, options.timeoutMs ?? 60_000);
  const theirs = decodeStatement(m);
  const chosen = chooseEpoch(mine, theirs);
  if (!rec || !chosen) {
    throw new KeyEpochError(
      "no-common-epoch",
      `account "${accountId}": the parties hold no key epoch in common (this party: ${
        describe(mine)
      }; peer: ${describe(theirs)}). The shares cannot sign together: restore the key share ` +
        `file of the newest epoch one side lacks from its backup (docs/key-lifecycle.md, Backups)`,
    );
  }
  const epoch = rec.epochs.find((e) => e.digest === chosen.digest) as EpochRecord;
  const keepPending = epoch.state === "pending" && epoch.kind === "keygen" &&
    !options.promoteKeygen;
  const settled = keepPending || (rec.epochs.length === 1 && epoch.state === "current");
  if (!settled) {
    await store.update(accountId, (r) => (r ? promote(r, chosen.digest) : r));
  }
  return { ...epoch, state: keepPending ? "pending" : "current" };
}

/**
 * The two-phase commit of a new epoch (key generation or refresh): stores it as pending, sends
 * the commit confirmation, reads the peer's (the same digest), then promotes it unless
 * `promote` is false.
 *
 * @param s the session the epoch was made in.
 * @param i this party's index.
 * @param accountId the account.
 * @param entry the new share (and, for key generation, the identities).
 * @param store this party's key store.
 * @param options kind, whether to promote now, cancellation, crash hook.
 * @returns the digest of the new epoch.
 * @throws {KeyEpochError} `commit-mismatch` when the peer confirmed another epoch (the pending
 *   one is then discarded); `conflict` from the store; {TransportError} when the peer does not
 *   confirm (the pending epoch stays: the next session settles it).
 */
export async function commitEpoch(
  s: SecureSession,
  i: number,
  accountId: string,
  entry: AccountEntry,
  store: AccountStore,
  options: LifecycleOptions & { readonly kind: "keygen" | "refresh"; readonly promote: boolean },
): Promise<string> {
  const { kind } = options;
  const crash = options.crashPoint ?? (() => {});
  const sessionId = toHex(s.sid);
  let digest = "";
  await store.update(accountId, (rec) => {
    const next = stagePending(rec, entry, { kind, sessionId });
    digest = next.epochs[next.epochs.length - 1].digest;
    return next;
  });
  await crash(`${kind}:after-pending-write`);
  await send(s, i, COMMIT, { digest });
  await crash(`${kind}:after-commit-sent`);
  const m = await receive(s, i, COMMIT, options.signal, options.timeoutMs ?? 60_000);
  const p = m.payload as { digest?: unknown } | null;
  if (typeof p !== "object" || p === null || Object.keys(p).length !== 1) {
    throw malformed(COMMIT, m.from, "expected { digest }");
  }
  const theirs = decodeDigest(p.digest, COMMIT, m.from);
  if (theirs !== digest) {
    await store.update(accountId, (rec) => (rec ? discard(rec, digest) : rec));
    throw new KeyEpochError(
      "commit-mismatch",
      `account "${accountId}": the peer confirmed another ${kind} epoch; nothing was kept`,
    );
  }
  await crash(`${kind}:after-commit-received`);
  if (options.promote) await promoteEpoch(accountId, digest, store, kind, options.crashPoint);
  return digest;
}

/**
 * Promotes a pending epoch (the peer holds it durably) and fires the `after-promote` point.
 * @param accountId the account.
 * @param digest the epoch.
 * @param store the key store.
 * @param kind for the crash point's name.
 * @param crashPoint the hook.
 */
export async function promoteEpoch(
  accountId: string,
  digest: string,
  store: AccountStore,
  kind: "keygen" | "refresh",
  crashPoint?: CrashHook,
): Promise<void> {
  await store.update(accountId, (rec) => {
    if (!rec) throw new KeyEpochError("unknown-epoch", `account "${accountId}" is not stored`);
    return promote(rec, digest);
  });
  await crashPoint?.(`${kind}:after-promote`);
}

export type { CrashHook, CrashPoint } from "../core/account_records.ts";
